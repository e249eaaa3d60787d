"""`recordagent synth` as a user runs it, and loading what it writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.helpers import recordagent


def test_synth_writes_a_bundle_the_loader_accepts(tmp_path: Path):
    out = tmp_path / "tiny"
    result = recordagent("synth", "--preset", "tiny", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "synthetic cohort 'tiny' (seed 3)" in result.stdout
    assert {p.name for p in out.iterdir()} == {
        "patients.parquet",
        "documents.parquet",
        "labs.parquet",
        "events.parquet",
        "gold",
    }
    with connect() as store:
        report = load_bundle(store, out)
        assert report.status == "loaded"
        assert report.ignored_files == ["gold"]
        assert report.counts["patients"] == 5
        assert report.counts["documents"] == pl.read_parquet(out / "documents.parquet").height
        assert report.counts["chunks"] >= report.counts["documents"]
        patient = store.patient_ids()[0]
        assert store.scope(patient).events(kinds=["therapy"])


def test_synth_from_the_command_is_byte_identical_to_the_library(tmp_path: Path):
    recordagent("synth", "--preset", "tiny", "--seed", "5", "--out", str(tmp_path / "cli"))
    generate_cohort(load_preset("tiny"), 5, tmp_path / "lib")
    for name in ("labs.parquet", "documents.parquet", "gold/facts.parquet"):
        digests = {
            hashlib.sha256((tmp_path / side / name).read_bytes()).hexdigest()
            for side in ("cli", "lib")
        }
        assert len(digests) == 1, name


def test_synth_refuses_a_folder_with_files_and_an_unknown_preset(tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")
    busy = recordagent("synth", "--out", str(tmp_path))
    assert busy.returncode == 2
    assert "is not empty" in " ".join(busy.stderr.split())  # rich wraps long paths
    assert (tmp_path / "keep.txt").read_text() == "mine"
    unknown = recordagent("synth", "--preset", "huge", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2
    assert "unknown cohort preset 'huge'" in " ".join(unknown.stderr.split())
    assert "Traceback" not in unknown.stderr + busy.stderr


def test_reference_preset_is_the_reference_study_scale():
    reference = load_preset("reference")
    assert (reference.patients, reference.documents, reference.labs) == (811, 44962, 1334677)
    assert (reference.first_year, reference.last_year) == (2001, 2025)


def test_a_preset_file_is_validated(tmp_path: Path):
    custom = tmp_path / "mine.yaml"
    custom.write_text("name: mine\npatients: 3\ndocuments: 100\nlabs: 3000\n")
    assert load_preset(str(custom)).patients == 3
    custom.write_text("name: mine\npatients: 0\ndocuments: 100\nlabs: 3000\ncolour: red\n")
    with pytest.raises(UserError, match="invalid cohort preset"):
        load_preset(str(custom))


def test_generation_refuses_a_negative_seed_and_an_output_that_is_not_a_folder(tmp_path: Path):
    tiny = load_preset("tiny")
    with pytest.raises(UserError, match="seed must be a non-negative integer, not -1"):
        generate_cohort(tiny, -1, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(UserError, match="is a file"):
        generate_cohort(tiny, 0, tmp_path / "file")
    with pytest.raises(UserError, match="cannot create output folder .*Not a directory"):
        generate_cohort(tiny, 0, tmp_path / "file" / "sub")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_preset_file_must_be_yaml_text_with_years_the_simulation_covers(tmp_path: Path):
    custom = tmp_path / "mine.yaml"
    fields = "name: mine\npatients: 3\ndocuments: 100\nlabs: 3000\n"
    custom.write_text(fields + "first_year: 1990\nlast_year: 2000\n")
    with pytest.raises(UserError, match="first_year: Input should be greater than or equal"):
        load_preset(str(custom))
    custom.write_text(fields + "first_year: 2020\nlast_year: 2010\n")
    with pytest.raises(UserError, match="first_year 2020 is after last_year 2010"):
        load_preset(str(custom))
    custom.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not UTF-8 text"):
        load_preset(str(custom))
    custom.write_text("patients: [3\n")
    with pytest.raises(UserError, match=r"is not valid YAML: .*\(line 2, column 1\)"):
        load_preset(str(custom))
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        load_preset(str(tmp_path / "folder.yaml"))
