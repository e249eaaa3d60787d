"""``recordagent load`` with exports as they come: --convert-timezone, --reject-file, --help.

The help lists every kind of source, in a terminal of 80 columns and piped; the options print
what they did after the load report; kinds that do not take them refuse them by name; a load
killed at any moment leaves no store and no half-written reject file.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from recordagent.sources.registry import SOURCES
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.faults.stores import Command, invoke, store_content
from tests.helpers import LAB_HEADER


def help_text(columns: int | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    result = subprocess.run(
        [sys.executable, "-m", "recordagent", "load", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize("columns", [80, None], ids=["80 columns", "piped"])
def test_load_help_lists_every_kind_with_the_path_it_takes(columns: int | None):
    text = help_text(columns)
    flat = " ".join(text.split())
    assert max(len(line) for line in text.splitlines()) <= (columns or 80)
    for kind in SOURCES:
        assert f"'{kind.name} PATH': {kind.description} ({kind.expects})" in flat
    assert "--convert-timezone" in flat and "--reject-file" in flat


def write_bad_labs(bundle: Path) -> None:
    (bundle / "labs.csv").write_text(
        "\n".join(
            [
                LAB_HEADER,
                "L1,A,2021-06-01T10:00Z,,Creatinine,1.0,,mg/dL,,,",
                "L2,A,2021-06-01 12:00,,Creatinine,high,,mg/dL,,,",
                "L3,Q,2021-06-01 12:00,,Creatinine,1.0,,mg/dL,,,",
            ]
        )
        + "\n"
    )


def test_converting_and_rejecting_print_what_they_did(tmp_path: Path, two_patients: Path):
    write_bad_labs(two_patients)
    db, out = tmp_path / "store.duckdb", tmp_path / "rejects.csv"
    result = invoke(
        "load",
        str(two_patients),
        "--db",
        str(db),
        "--convert-timezone",
        "Europe/Berlin",
        "--reject-file",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "source 'two_patients': loaded" in flat
    assert "1 timestamp(s) with a UTC offset to Europe/Berlin local time" in flat
    assert "2 row(s) (labs 2)" in flat
    assert str(out) in flat
    with out.open(newline="") as handle:
        assert [(r["row"], r["column"]) for r in csv.DictReader(handle)] == [
            ("2", "value_num"),
            ("3", "patient_id"),
        ]

    out.unlink()
    again = invoke(
        "load",
        str(two_patients),
        "--db",
        str(db),
        "--convert-timezone",
        "Europe/Berlin",
        "--reject-file",
        str(out),
    )
    assert again.returncode == 0, again.stderr
    assert "no reject file written: two_patients is loaded already" in again.stdout
    assert not out.exists()


def test_without_the_options_the_load_refuses_naming_them(tmp_path: Path, two_patients: Path):
    write_bad_labs(two_patients)
    db = tmp_path / "store.duckdb"
    result = invoke("load", str(two_patients), "--db", str(db))
    assert result.returncode == 3
    flat = " ".join(result.stderr.split())
    assert "--convert-timezone ZONE" in flat
    assert not db.exists()


def test_a_zone_that_is_not_one_is_an_error_with_a_suggestion(tmp_path: Path, two_patients: Path):
    result = invoke(
        "load",
        str(two_patients),
        "--db",
        str(tmp_path / "s.duckdb"),
        "--convert-timezone",
        "Europe/Berln",
    )
    assert result.returncode == 2
    assert result.errors == [
        "error: --convert-timezone: 'Europe/Berln' is not an IANA time zone name such as "
        "Europe/Berlin or UTC; did you mean 'Europe/Berlin'?"
    ]


@pytest.mark.parametrize("kind", [k.name for k in SOURCES if k.row_options is None])
def test_kinds_without_row_checks_refuse_the_options_naming_the_kinds_that_take_them(
    tmp_path: Path, kind: str
):
    db = tmp_path / "store.duckdb"
    rejected = invoke(
        "load", kind, str(tmp_path), "--db", str(db), "--reject-file", str(tmp_path / "r.csv")
    )
    assert rejected.returncode == 2
    assert rejected.errors == [
        "error: a reject file (--reject-file) is for bundle loads only: a "
        f"{kind} load is all or nothing and keeps times as its loader documents; leave the "
        "option out"
    ]
    converted = invoke("load", kind, str(tmp_path), "--db", str(db), "--convert-timezone", "UTC")
    assert converted.returncode == 2
    assert "converting timestamps to UTC (--convert-timezone;" in converted.errors[0]
    assert not db.exists()


def test_a_zone_set_in_a_preset_is_refused_for_a_kind_that_cannot_convert(tmp_path: Path):
    preset = tmp_path / "berlin.yaml"
    preset.write_text("load:\n  convert_timezone: Europe/Berlin\n")
    result = invoke(
        "--preset", str(preset), "load", "fhir", str(tmp_path), "--db", str(tmp_path / "s.duckdb")
    )
    assert result.returncode == 2
    assert "load.convert_timezone in settings" in result.errors[0]


@pytest.mark.parametrize(
    ("named", "what"),
    [("store.duckdb", "the store file"), ("store.duckdb.wal", "the store's log")],
)
def test_a_reject_file_that_is_the_store_or_its_log_is_refused(
    tmp_path: Path, two_patients: Path, named: str, what: str
):
    db = tmp_path / "store.duckdb"
    reject = tmp_path / named
    result = invoke("load", str(two_patients), "--db", str(db), "--reject-file", str(reject))
    assert result.returncode == 2
    assert f"is {what}" in result.errors[0]
    assert not db.exists() and not reject.exists()


def test_a_reject_file_that_is_a_hard_link_to_the_store_is_refused(
    tmp_path: Path, two_patients: Path
):
    db = tmp_path / "store.duckdb"
    assert invoke("load", str(two_patients), "--db", str(db), "--source", "first").returncode == 0
    alias = tmp_path / "alias.csv"
    alias.hardlink_to(db)
    before = store_content(db)
    write_bad_labs(two_patients)
    result = invoke("load", str(two_patients), "--db", str(db), "--reject-file", str(alias))
    assert result.returncode == 2
    assert "is the store file" in result.errors[0]
    assert store_content(db) == before


def test_a_failed_load_says_it_left_an_earlier_reject_file_as_it_was(
    tmp_path: Path, two_patients: Path
):
    db, out = tmp_path / "store.duckdb", tmp_path / "rejects.csv"
    out.write_text("an earlier load's\n")
    (two_patients / "labs.csv").write_text("lab_id,patient_id\n")  # columns missing: no row
    result = invoke("load", str(two_patients), "--db", str(db), "--reject-file", str(out))
    assert result.returncode == 3
    assert f"the reject file {out} from an earlier load was left as it was" in result.errors[0]
    assert out.read_text() == "an earlier load's\n"
    assert not db.exists()


def test_a_taken_source_name_says_which_flag_replaces_it(tmp_path: Path, two_patients: Path):
    db = tmp_path / "store.duckdb"
    assert invoke("load", str(two_patients), "--db", str(db)).returncode == 0
    write_bad_labs(two_patients)
    (two_patients / "labs.csv").write_text(LAB_HEADER + "\n")
    again = invoke("load", str(two_patients), "--db", str(db))
    assert again.returncode == 2
    assert "pass --replace (replace=True in code) to swap it" in again.errors[0]


@pytest.fixture(scope="module")
def cohort_with_bad_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic cohort (5 patients, 280 documents) with three labs out of range."""
    out = tmp_path_factory.mktemp("cohort") / "cohort"
    generate_cohort(load_preset("tiny"), 5, out)
    labs = pl.read_parquet(out / "labs.parquet")
    labs = labs.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(float("inf"))
        .otherwise(pl.col("value_num"))
        .alias("value_num")
    )
    labs.write_parquet(out / "labs.parquet")
    return out


def test_a_load_killed_at_any_moment_leaves_no_store_and_no_half_reject_file(
    cohort_with_bad_rows: Path, tmp_path: Path
):
    whole = tmp_path / "whole"
    whole.mkdir()
    start = time.perf_counter()
    done = invoke(
        "load",
        str(cohort_with_bad_rows),
        "--db",
        str(whole / "store.duckdb"),
        "--reject-file",
        str(whole / "rejects.csv"),
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    complete_rejects = (whole / "rejects.csv").read_bytes()
    assert complete_rejects.count(b"\n") == 4  # the header and the three labs
    complete_store = store_content(whole / "store.duckdb")

    outcomes = []
    for i, share in enumerate((0.3, 0.8, 1.2)):
        folder = tmp_path / f"kill{i}"
        folder.mkdir()
        db, out = folder / "store.duckdb", folder / "rejects.csv"
        command = Command(
            "load", str(cohort_with_bad_rows), "--db", str(db), "--reject-file", str(out)
        )
        command.wait_until_imported()
        time.sleep(seconds * share)
        command.signal(signal.SIGKILL)
        code = command.finish().returncode
        content = store_content(db)
        where = f"killed {seconds * share:.2f}s into a {seconds:.2f}s load (exit {code})"
        assert content in (None, complete_store), where
        if out.exists():
            assert out.read_bytes() == complete_rejects, where
        if content is not None:
            assert out.exists(), where
        # Only hidden temporary files (a killed load's) may be left besides the two.
        left = {p.name for p in folder.iterdir()} - {"store.duckdb", "rejects.csv"}
        assert all(name.startswith(".") and ".tmp" in name for name in left), (where, left)
        outcomes.append("none" if content is None else "complete")
    assert "none" in outcomes, f"no kill landed inside a load: {outcomes}"
