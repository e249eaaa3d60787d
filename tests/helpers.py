"""Helpers shared by the tests (fixtures themselves live in the conftest.py files).

Fixture paths, bundles written in code, store snapshots, load problems, scripted runner answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.load import load_bundle
from recordagent.records.schema import BUNDLE_TABLES

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LAB_HEADER = ",".join(BUNDLE_TABLES["labs"].column_names)


def write_csv(folder: Path, table: str, rows: list[dict[str, object]]) -> Path:
    """Write ``rows`` as ``folder/table.csv`` (all values as text, None as empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv"
    frame = pl.DataFrame(
        [{k: (None if v is None else str(v)) for k, v in row.items()} for row in rows]
    )
    frame.write_csv(path)
    return path


def store_snapshot(store: RecordStore) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, ordered, for before/after comparisons."""
    tables = ["sources", "patients", "documents", "chunks", "labs", "events", "schema_migrations"]
    return {
        t: sorted(store.connection.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
        for t in tables
    }


def set_labs(bundle: Path, *rows: str) -> None:
    (bundle / "labs.csv").write_text("\n".join([LAB_HEADER, *rows]) + "\n")


def load_problems(store: RecordStore, bundle: Path) -> list[LoadProblem]:
    before = store_snapshot(store)
    with pytest.raises(DataLoadError) as caught:
        load_bundle(store, bundle)
    assert store_snapshot(store) == before, "a failed load must leave the store unchanged"
    return list(caught.value.problems)


def only(problems: list[LoadProblem]) -> LoadProblem:
    assert len(problems) == 1, problems
    return problems[0]


def use_document_folder(bundle: Path, manifest: pl.DataFrame | str) -> Path:
    (bundle / "documents.csv").unlink()
    folder = bundle / "documents"
    folder.mkdir()
    if isinstance(manifest, str):
        (folder / "manifest.csv").write_text(manifest)
    else:
        manifest.write_parquet(folder / "manifest.parquet")
    return folder


def asct_item(**overrides: Any) -> EvalItem:
    """Patient A's ASCT date question (gold: 2020-06-15, event EA3, document A-D3)."""
    fields: dict[str, Any] = {
        "id": "asct_date/A",
        "patient_id": "A",
        "question": "When was the autologous stem cell transplantation (ASCT)?",
        "answer": AnswerSpec(type="date"),
        "level": 1,
    }
    return EvalItem(**(fields | overrides))


def final(value: Any, citations: list[str], status: str = "answered") -> dict[str, Any]:
    """A scripted final answer."""
    return {
        "json": {
            "status": status,
            "value": value,
            "text": f"scripted answer {value}",
            "citations": citations,
        }
    }


def recordagent(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line in a child process, as a user does (100 columns, no colour)."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "recordagent", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
