"""`recordagent report` and `recordagent summary` in every format: stdout holds the output
alone (notices go to stderr), --out writes a file, parquet is never written to stdout."""

from __future__ import annotations

import io
import json
import shutil
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
    assert frame.select("runner", "item_id", "model").rows() == expected.select(
        "runner", "item_id", "model"
    ).rows()
    assert frame["citations"][0] == "chunk:A-D3#2;lab:L-12"


def test_json_and_jsonl_on_stdout_hold_one_object_per_row(logs: list[str]):
    whole = invoke("report", *logs, "--format", "json")
    assert whole.code == 0 and whole.stderr == ""
    rows = json.loads(whole.stdout)
    lines = invoke("report", *logs, "--format", "JSONL").stdout.splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert [r["item_id"] for r in rows] == results(logs)["item_id"].to_list()
    assert rows[0]["citations"] == ["chunk:A-D3#2", "lab:L-12"]


def test_labels_and_rescore_reach_the_results(logs: list[str], labels: str):
    stored = json.loads(invoke("report", *logs, "--labels", labels, "--format", "json").stdout)
    rescored = json.loads(
        invoke("report", *logs, "--labels", labels, "--rescore", "--format", "json").stdout
    )
    drugs = [(s, r) for s, r in zip(stored, rescored, strict=True) if r["item_id"] == "drugs/A"]
    [(before, after)] = drugs
    assert before["score"] is None and before["reference_text"] == "lenalidomide"
    assert after["score"] == "incorrect" and after["reference_source"] == "single"


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


def test_parquet_is_never_written_to_stdout(logs: list[str]):
    done = invoke("report", *logs, "--format", "parquet")
    assert done.code == 2 and done.stdout == ""
    assert "error: --format parquet writes a binary file: give it with --out" in done.stderr


def test_bad_report_arguments_are_one_error_line(logs: list[str], tmp_path: Path):
    folder = invoke("report", *logs, "--out", str(tmp_path))
    assert folder.code == 2 and "--out" in folder.stderr and "is a folder" in folder.stderr
    unknown = invoke("report", *logs, "--format", "xlsx")
    assert unknown.code == 2 and "Invalid value for '--format'" in unknown.stderr
    missing = invoke("report", str(tmp_path / "nope.jsonl"), "--format", "csv")
    assert missing.code == 2 and missing.stdout == ""
    assert f"no run log at {tmp_path / 'nope.jsonl'}" in missing.stderr
    assert "Traceback" not in folder.stderr + unknown.stderr + missing.stderr


def test_a_half_written_log_warns_on_stderr_and_stdout_stays_data(
    logs: list[str], tmp_path: Path
):
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
