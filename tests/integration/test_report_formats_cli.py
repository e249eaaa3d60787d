"""`recordagent report` and `recordagent summary` in every format: stdout holds the output
alone (notices go to stderr), --out writes a file, parquet is never written to stdout, and no
output ever replaces an input (a run log, the labels, the store)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from recordagent.cli.main import run
from recordagent.evaluation.results_table import results
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES
from tests.unit.evaluation.test_results_table import LABELS, LONG_MODEL, two_logs


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


def invoke(*args: str) -> Finished:
    """``recordagent ARGS`` in this process, its output captured as a pipe would (80 columns)."""
    runner = CliRunner()
    code = 0
    with runner.isolation(env={"COLUMNS": "80", "NO_COLOR": "1"}) as (out, err, _):
        try:
            run(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        stdout = out.getvalue().decode("utf-8")
        stderr = err.getvalue().decode("utf-8") if err is not None else ""
    return Finished(code, stdout, stderr)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return [str(p) for p in two_logs(tmp_path_factory.mktemp("runs"), model=LONG_MODEL)]


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("labels") / "labels.jsonl"
    path.write_text("".join(label.model_dump_json() + "\n" for label in LABELS))
    return str(path)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("store") / "store.duckdb"
    with connect(path) as store:
        load_bundle(store, FIXTURES / "two_patients")
    return str(path)


def test_csv_on_stdout_is_the_results_table_and_nothing_else(logs: list[str]):
    done = invoke("report", *logs, "--format", "csv")
    assert done.code == 0 and done.stderr == ""
    frame = pl.read_csv(io.StringIO(done.stdout), infer_schema=False)
    expected = results(logs)
    assert frame.columns == expected.columns
    assert (
        frame.select("runner", "item_id", "model").rows()
        == expected.select("runner", "item_id", "model").rows()
    )
    assert frame["citations"][0] == "chunk:A-D3#2;lab:L-12"


def test_json_and_jsonl_on_stdout_hold_one_object_per_row(logs: list[str]):
    whole = invoke("report", *logs, "--format", "json")
    assert whole.code == 0 and whole.stderr == ""
    rows = json.loads(whole.stdout)
    lines = invoke("report", *logs, "--format", "JSONL").stdout.splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert [r["item_id"] for r in rows] == results(logs)["item_id"].to_list()
    assert rows[0]["citations"] == ["chunk:A-D3#2", "lab:L-12"]


def test_labels_rescore_the_results_by_default_as_the_library_does(logs: list[str], labels: str):
    stored = json.loads(invoke("report", *logs, "--format", "json").stdout)
    by_default = invoke("report", *logs, "--labels", labels, "--format", "json")
    rescored = invoke("report", *logs, "--labels", labels, "--rescore", "--format", "json")
    assert by_default.code == 0 and by_default.stdout == rescored.stdout
    rows = json.loads(by_default.stdout)
    library = results(logs, labels=labels)
    assert [(r["score"], r["reference"]) for r in rows] == library.select(
        "score", "reference"
    ).rows()
    drugs = [(s, r) for s, r in zip(stored, rows, strict=True) if r["item_id"] == "drugs/A"]
    [(before, after)] = drugs
    assert before["score"] is None and before["reference_text"] is None
    assert after["score"] == "incorrect" and after["reference_text"] == "lenalidomide"
    assert after["reference_source"] == "single"


def test_no_rescore_with_labels_keeps_stored_scores_in_the_report_and_is_refused_for_results(
    logs: list[str], labels: str
):
    refused = invoke("report", *logs, "--labels", labels, "--no-rescore", "--format", "csv")
    assert refused.code == 2 and refused.stdout == ""
    assert "--no-rescore with --labels and --format csv" in refused.stderr
    stored = invoke("report", *logs, "--labels", labels, "--no-rescore", "--format", "markdown")
    assert stored.code == 0
    assert "not scored again against the labels given" in stored.stdout
    assert "not scored again" not in (
        invoke("report", *logs, "--labels", labels, "--format", "markdown").stdout
    )


def test_markdown_on_stdout_is_the_report(logs: list[str]):
    done = invoke("report", *logs, "--format", "markdown")
    assert done.code == 0 and done.stderr == ""
    assert done.stdout.startswith("# Evaluation report\n")
    assert f"| agent | {LONG_MODEL} (MOCK) |" in done.stdout


def test_out_writes_the_file_its_suffix_names_and_says_so_on_stderr(
    logs: list[str], tmp_path: Path
):
    parquet = tmp_path / "results.parquet"
    done = invoke("report", *logs, "--out", str(parquet))
    assert done.code == 0 and done.stdout == ""
    assert f"written: {parquet} (6 rows)" in done.stderr
    assert pl.read_parquet(parquet).drop("log").equals(results(logs).drop("log"))

    markdown = tmp_path / "report.md"
    assert invoke("report", *logs, "--out", str(markdown)).stdout == ""
    assert markdown.read_text().startswith("# Evaluation report")

    text = tmp_path / "report.txt"
    html = tmp_path / "report.html"
    done = invoke("report", *logs, "--out", str(text), "--html", str(html))
    assert done.code == 0 and done.stdout == ""
    table = text.read_text()
    assert "Evaluation report" in table and LONG_MODEL in table and "cost total:" in table
    assert "\x1b[" not in table  # no colour in a file
    assert html.read_text().startswith("<!DOCTYPE html>") or "<html" in html.read_text()

    forced = tmp_path / "results.txt"
    assert invoke("report", *logs, "--format", "csv", "--out", str(forced)).code == 0
    assert forced.read_text().startswith("run_id,log,runner,")
    unnamed = tmp_path / "results.dat"
    assert invoke("report", *logs, "--format", "jsonl", "--out", str(unnamed)).code == 0
    assert len(unnamed.read_text().splitlines()) == 6


@pytest.mark.parametrize("option", ["--out", "--html"])
def test_an_output_that_is_a_run_log_is_refused_and_the_log_kept(
    logs: list[str], tmp_path: Path, option: str
):
    log = Path(logs[0])
    before = log.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(log)
    for target in (log, link, log.parent / "." / log.name):
        done = invoke("report", *logs, option, str(target))
        assert done.code == 2 and done.stdout == "", done.stderr
        assert f"error: {option} {target} is the run log {log}: writing it would destroy it" in (
            done.stderr
        )
    assert log.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl"]


def test_an_output_that_is_the_labels_or_the_other_output_is_refused(
    logs: list[str], labels: str, tmp_path: Path
):
    kept = Path(labels).read_bytes()
    done = invoke("report", *logs, "--labels", labels, "--out", labels)
    assert done.code == 2 and f"--out {labels} is the --labels file {labels}" in done.stderr
    done = invoke("report", *logs, "--labels", labels, "--html", labels)
    assert done.code == 2 and f"--html {labels} is the --labels file" in done.stderr
    assert Path(labels).read_bytes() == kept
    both = tmp_path / "report.txt"
    done = invoke("report", *logs, "--out", str(both), "--format", "markdown", "--html", str(both))
    assert done.code == 2 and not both.exists()
    assert f"--html {both} and --out {both} are the same file" in done.stderr


def test_stdout_redirected_into_a_run_log_is_refused_and_the_log_kept(
    logs: list[str], tmp_path: Path
):
    log = tmp_path / "agent.jsonl"
    shutil.copy(logs[0], log)
    before = log.read_bytes()
    with log.open("ab") as appended:  # recordagent report agent.jsonl --format jsonl >> agent.jsonl
        done = subprocess.run(
            [sys.executable, "-m", "recordagent", "report", str(log), "--format", "jsonl"],
            stdout=appended,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
            timeout=120,
            check=False,
        )
    assert done.returncode == 2
    assert f"stdout is redirected into the run log {log}" in done.stderr
    assert log.read_bytes() == before


def test_a_format_the_out_suffix_contradicts_is_refused_naming_both(
    logs: list[str], db: str, tmp_path: Path
):
    target = tmp_path / "x.parquet"
    done = invoke("report", *logs, "--format", "csv", "--out", str(target))
    assert done.code == 2 and not target.exists()
    assert f"--format csv contradicts --out {target}, whose suffix '.parquet' names parquet" in (
        done.stderr
    )
    markdown = tmp_path / "x.md"
    done = invoke("summary", "--db", db, "--format", "json", "--out", str(markdown))
    assert done.code == 2 and not markdown.exists()
    assert f"--format json contradicts --out {markdown}" in done.stderr
    binary_text = invoke("report", *logs, "--format", "parquet", "--out", str(tmp_path / "x.txt"))
    assert binary_text.code == 2 and "names table" in binary_text.stderr


def test_parquet_is_never_written_to_stdout(logs: list[str]):
    done = invoke("report", *logs, "--format", "parquet")
    assert done.code == 2 and done.stdout == ""
    assert "error: --format parquet writes a binary file: give it with --out" in done.stderr


def test_bad_report_arguments_are_one_error_line(logs: list[str], tmp_path: Path):
    folder = invoke("report", *logs, "--out", str(tmp_path))
    assert folder.code == 2 and f"--out {tmp_path} is a folder" in folder.stderr
    unnamed = invoke("report", *logs, "--out", str(tmp_path / "report.html"))
    assert unnamed.code == 2 and not (tmp_path / "report.html").exists()
    assert "its suffix '.html' names no format; end it in one of .txt, .md, .csv" in (
        unnamed.stderr
    )
    unknown = invoke("report", *logs, "--format", "xlsx")
    assert unknown.code == 2 and "Invalid value for '--format'" in unknown.stderr
    missing = invoke("report", str(tmp_path / "nope.jsonl"), "--format", "csv")
    assert missing.code == 2 and missing.stdout == ""
    assert f"no run log at {tmp_path / 'nope.jsonl'}" in missing.stderr
    assert "Traceback" not in folder.stderr + unknown.stderr + missing.stderr


def test_a_half_written_log_warns_on_stderr_and_stdout_stays_data(logs: list[str], tmp_path: Path):
    cut = tmp_path / "cut.jsonl"
    shutil.copy(logs[1], cut)
    with cut.open("a") as out:
        out.write('{"kind": "record", "item": {"id": "half')
    done = invoke("report", str(cut), "--format", "jsonl")
    assert done.code == 0
    assert len(done.stdout.splitlines()) == 2
    assert all(json.loads(line)["runner"] == "full_context" for line in done.stdout.splitlines())
    assert "line 4 is half-written" in done.stderr and str(cut) in done.stderr


def test_summary_writes_every_patient_and_column_in_the_data_formats(db: str, tmp_path: Path):
    csv = invoke("summary", "--db", db, "--format", "csv")
    assert csv.code == 0 and csv.stderr == ""
    frame = pl.read_csv(io.StringIO(csv.stdout))
    assert frame["patient_id"].to_list() == ["A", "B"]
    assert "analytes" in frame.columns and "birth_date" in frame.columns
    assert frame.schema["tokens"] == pl.Int64

    rows = json.loads(invoke("summary", "--db", db, "--format", "json").stdout)
    assert [r["patient_id"] for r in rows] == ["A", "B"] and isinstance(rows[0]["tokens"], int)
    limited = invoke("summary", "--db", db, "--format", "jsonl", "--limit", "1").stdout
    assert [json.loads(line)["patient_id"] for line in limited.splitlines()] == ["A"]

    markdown = invoke("summary", "--db", db, "--format", "markdown").stdout
    assert markdown.splitlines()[0].startswith("| patient_id | sex |")
    assert markdown.splitlines()[2].startswith("| A | female |")

    parquet = tmp_path / "summary.parquet"
    done = invoke("summary", "--db", db, "--out", str(parquet))
    assert done.code == 0 and done.stdout == "" and "written:" in done.stderr
    assert pl.read_parquet(parquet).height == 2
    refused = invoke("summary", "--db", db, "--format", "parquet")
    assert refused.code == 2 and refused.stdout == "" and "--out" in refused.stderr

    table = invoke("summary", "--db", db)
    assert "2 patients in" in table.stdout
    text = tmp_path / "summary.txt"
    assert invoke("summary", "--db", db, "--out", str(text)).stdout == ""
    assert text.read_text() == table.stdout  # the table, as a file


def test_summary_never_writes_over_its_store(db: str, tmp_path: Path):
    store = tmp_path / "store.duckdb"
    shutil.copy(db, store)
    before = store.read_bytes()
    for args, message in [
        ([], f"--out {store}: its suffix '.duckdb' names no format; end it in one of .txt"),
        (["--format", "table"], f"--out {store} is the record store {store}: writing it"),
        (["--format", "csv"], f"--out {store} is the record store {store}"),
    ]:
        done = invoke("summary", "--db", str(store), "--out", str(store), *args)
        assert done.code == 2 and done.stdout == "" and message in done.stderr, done.stderr
    wal = Path(f"{store}.wal")
    done = invoke("summary", "--db", str(store), "--format", "jsonl", "--out", str(wal))
    assert done.code == 2 and f"is the record store's write-ahead log {wal}" in done.stderr
    assert store.read_bytes() == before and not wal.exists()
    assert invoke("summary", "--db", str(store), "--out", str(tmp_path / "p.csv")).code == 0
