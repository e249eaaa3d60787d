"""Shared fixtures: tiny readable bundles and fresh stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def two_patients(tmp_path: Path) -> Path:
    """A writable copy of the two-patient bundle (patients A and B)."""
    target = tmp_path / "two_patients"
    shutil.copytree(FIXTURES / "two_patients", target)
    return target


@pytest.fixture(scope="module")
def open_world_store() -> Iterator[RecordStore]:
    """Labs named the way real exports name them (tests/fixtures/open_world_labs), loaded."""
    with connect() as opened:
        load_bundle(opened, FIXTURES / "open_world_labs")
        yield opened


@pytest.fixture
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        yield opened


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
