"""Tables printed into a pipe, a file or CI keep every id whole; in a narrow terminal an id that
does not fit is folded onto the next line, never cut with an ellipsis."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from recordagent.cli.render import output_console, render_summary
from recordagent.evaluation.log import RunLog
from recordagent.evaluation.report import build_report, render_terminal
from recordagent.evaluation.report.tables import MOCK_WARNING
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES, recordagent
from tests.unit.evaluation.test_results_table import LONG_MODEL, LONG_PATIENT, two_logs


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return two_logs(tmp_path_factory.mktemp("runs"), model=LONG_MODEL)


@pytest.fixture(scope="module")
def long_id_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-patient bundle with patient B renamed to a 51-character id, loaded."""
    root = tmp_path_factory.mktemp("long_ids")
    bundle = root / "bundle"
    bundle.mkdir()
    for table in ("patients", "documents", "labs", "events"):
        frame = pl.read_csv(FIXTURES / "two_patients" / f"{table}.csv", infer_schema=False)
        frame.with_columns(
            pl.when(pl.col("patient_id") == "B")
            .then(pl.lit(LONG_PATIENT))
            .otherwise(pl.col("patient_id"))
            .alias("patient_id")
        ).write_csv(bundle / f"{table}.csv")
    db = root / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, bundle)
    return db


def test_a_piped_report_keeps_long_model_names_and_run_ids_whole(logs: list[Path]):
    # The helper sets COLUMNS=100, as a CI runner might: a pipe is laid out wider than that.
    done = recordagent("report", *map(str, logs))
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    [runs_row] = [line for line in done.stdout.splitlines() if "run-agent" in line]
    assert LONG_MODEL in runs_row
    # The mock banner is one line at its natural width, not padded out to the pipe's width.
    [banner] = [line for line in done.stdout.splitlines() if "MOCK RUN" in line]
    assert MOCK_WARNING in banner and len(banner) < len(MOCK_WARNING) + 10


def test_a_piped_summary_keeps_long_patient_ids_whole(long_id_store: Path):
    done = recordagent("summary", "--db", str(long_id_store))
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert any(line.startswith(LONG_PATIENT + " ") for line in done.stdout.splitlines())


def test_a_narrow_terminal_folds_ids_instead_of_cutting_them(logs: list[Path]):
    report = build_report([RunLog.read(p) for p in logs])
    narrow = Console(file=io.StringIO(), width=60, force_terminal=True, color_system=None)
    render_terminal(report, narrow)
    text = narrow.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in text
    # The model name, folded over lines of its cell, reads whole once the cells are joined.
    runs_table = text.split("┡")[1].split("└")[0]
    model_cells = "".join(line.split("│")[2].strip() for line in runs_table.splitlines()[1:])
    assert model_cells == f"{LONG_MODEL}(MOCK)" * 2

    frame = pl.DataFrame(
        {
            "patient_id": [LONG_PATIENT],
            "sex": ["female"],
            "documents": [1],
            "chunks": [2],
            "tokens": [30],
            "labs": [4],
            "events": [5],
            "first_entry": ["2020-01-01"],
            "last_entry": ["2021-01-01"],
        }
    )
    small = Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None)
    small.print(render_summary(frame, "one patient"))
    summary = small.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in summary
    lines = summary.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith(LONG_PATIENT[:3]))
    assert "".join(line.split(" ")[0] for line in lines[first:]) == LONG_PATIENT


def test_an_output_console_not_on_a_terminal_lays_each_thing_out_at_its_own_width():
    buffer = io.StringIO()
    console = output_console(file=buffer)
    assert not console.is_terminal
    console.print(Panel("short banner", title="MOCK"))
    table = Table()
    table.add_column("id", no_wrap=True)
    table.add_column("question")
    table.add_row("x" * 150, "a question " * 20)
    console.print(table)
    lines = buffer.getvalue().splitlines()
    assert len(lines[0]) == len("short banner") + 4  # the panel hugs its text
    assert any("x" * 150 in line for line in lines) and "…" not in buffer.getvalue()
    assert any(("a question " * 20).strip() in line for line in lines)  # not wrapped
