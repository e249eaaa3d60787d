"""search_documents finds the gold evidence of level-1 facts on the `small` synthetic cohort."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.sources.synthetic import generate_cohort, load_preset
from recordagent.tools.recall import LEVEL1_QUESTIONS, evidence_recall


@pytest.fixture(scope="module")
def recall(tmp_path_factory: pytest.TempPathFactory):
    bundle = tmp_path_factory.mktemp("recall") / "small"
    generate_cohort(load_preset("small"), 3, bundle)
    with connect() as store:
        load_bundle(store, bundle)
        return evidence_recall(store, pl.read_parquet(bundle / "gold" / "facts.parquet"))


def test_an_evidence_document_is_in_the_top_10_for_90_percent_of_level_1_facts(recall):
    assert recall.facts >= 600
    assert recall.overall[10] >= 0.90, recall.per_fact
    assert recall.overall[5] <= recall.overall[10] <= recall.overall[20]


def test_every_level_1_fact_kind_is_asked_and_mostly_found(recall):
    assert set(recall.per_fact) >= set(LEVEL1_QUESTIONS) - {"crs_max_grade", "death_date"}
    weakest = min(values[20] for values in recall.per_fact.values())
    assert weakest >= 0.8, recall.per_fact


def test_recall_is_measured_not_assumed(tmp_path: Path):
    """A search that cannot see the evidence scores zero: the measure can fail."""
    bundle = tmp_path / "tiny"
    generate_cohort(load_preset("tiny"), 0, bundle)
    facts = pl.read_parquet(bundle / "gold" / "facts.parquet")
    wrong = facts.with_columns(pl.lit(["no-such-document"]).alias("evidence_documents"))
    with connect() as store:
        load_bundle(store, bundle)
        assert evidence_recall(store, wrong).overall[20] == 0.0
