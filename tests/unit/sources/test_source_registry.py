"""The kinds of source ``recordagent load`` reads come from one registry (sources/registry.py)."""

from __future__ import annotations

from recordagent.cli.load import kinds_help
from recordagent.records.load import load_bundle
from recordagent.sources.registry import DEFAULT_KIND, SOURCES, source_kind


def test_the_kinds_are_bundle_mimic_iv_fhir_and_omop_each_named_once():
    assert [kind.name for kind in SOURCES] == ["bundle", "mimic-iv", "fhir", "omop"]


def test_a_lone_path_is_a_bundle():
    assert DEFAULT_KIND.name == "bundle" and DEFAULT_KIND.load is load_bundle


def test_a_kind_is_found_by_its_name_and_an_unknown_name_finds_none():
    assert all(source_kind(kind.name) is kind for kind in SOURCES)
    assert source_kind("fhir-ish") is None


def test_the_load_help_names_every_kind_and_the_path_it_takes():
    text = kinds_help()
    for kind in SOURCES:
        assert f"'{kind.name} PATH': {kind.description} ({kind.expects})" in text
