"""A store file that cannot be used ends in a UserError naming it and saying what to do.

Damaged (truncated, bytes flipped), in use by another process, read-only on disk, or a path that
cannot hold a store: ``connect`` says which, instead of letting DuckDB's IOException through.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from recordagent.errors import UserError
from recordagent.records import db as db_module
from recordagent.records.db import connect, damaged_store_error, store_file_error
from recordagent.records.load import load_bundle
from recordagent.records.migrations import MIGRATIONS, Migration
from tests.faults.stores import read_only_on_disk

REMEDY = "restore it from a backup, or delete it and load the data again"


@pytest.fixture
def store_file(two_patients: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    with connect(path) as store:
        load_bundle(store, two_patients)
    return path


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:5000])
    elif how == "header-flipped":
        path.write_bytes(data[:4096] + bytes(b ^ 0xFF for b in data[4096:4160]) + data[4160:])
    else:
        raise ValueError(how)


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
@pytest.mark.parametrize("how", ["truncated", "header-flipped"])
def test_a_damaged_store_is_named_with_the_remedy(store_file: Path, how: str, read_only: bool):
    damage(store_file, how)
    with pytest.raises(UserError) as refused:
        connect(store_file, read_only=read_only)
    message = str(refused.value)
    assert message.startswith(f"the record store {store_file} is damaged and cannot be read (")
    assert message.endswith(REMEDY)
    assert "\n" not in message


def test_damage_found_by_a_later_query_is_recognised(store_file: Path):
    data = store_file.read_bytes()
    # Zeros over the second third: data blocks, read only when a query needs them.
    third = len(data) // 3
    store_file.write_bytes(data[:third] + bytes(third) + data[2 * third :])
    with connect(store_file, read_only=True) as store:
        with pytest.raises(duckdb.Error) as raised:
            for table in ("documents", "chunks", "chunk_terms", "labs", "events"):
                store.connection.execute(f"SELECT * FROM {table}").fetchall()
    error = damaged_store_error(raised.value, str(store_file))
    assert error is not None
    assert str(error).startswith(f"the record store {store_file} is damaged")
    assert store_file_error(raised.value, str(store_file)) is not None


def test_errors_that_are_not_about_the_file_are_left_alone():
    with connect() as store:
        with pytest.raises(duckdb.Error) as raised:
            store.connection.execute("SELECT * FROM no_such_table")
    assert damaged_store_error(raised.value) is None
    assert store_file_error(raised.value) is None


@pytest.fixture
def held_open(store_file: Path) -> Iterator[int]:
    """Another process with the store open for writing; its process id."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(store_file),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
    yield holder.pid
    holder.communicate("", timeout=30)


def test_a_store_in_use_by_another_process_names_it(store_file: Path, held_open: int):
    with pytest.raises(UserError) as refused:
        connect(store_file)
    assert str(refused.value) == (
        f"the record store {store_file} is in use by another process (PID {held_open}): one "
        "process at a time may write a store; try again when it has finished"
    )


def test_a_read_only_store_file_is_refused_for_writing_and_opens_for_reading(store_file: Path):
    with read_only_on_disk(store_file):
        with pytest.raises(UserError) as refused:
            connect(store_file)
        with connect(store_file, read_only=True) as store:
            assert store.patient_ids() == ["A", "B"]
    message = str(refused.value)
    assert message.startswith(f"the record store {store_file} cannot be written here (")
    assert message.endswith("make the file and its folder writable, or open the store read-only")


def test_paths_that_cannot_hold_a_store(tmp_path: Path):
    a_file = tmp_path / "labs.csv"
    a_file.write_text("a\n")
    cases = {
        tmp_path: "is a folder, not a record store file",
        tmp_path / "no" / "s.duckdb": "folder for the record store does not exist",
        a_file / "s.duckdb": f"{a_file} is a file, not a folder, so it cannot hold",
        tmp_path / ("x" * 5000): "cannot use",
    }
    for path, expected in cases.items():
        with pytest.raises(UserError) as refused:
            connect(path)
        assert expected in str(refused.value), path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labs.csv"]


def test_a_failed_migration_is_reported_even_when_its_rollback_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The statement ends the migration's transaction early, as an interrupted statement does,
    # so the ROLLBACK after the failure fails too: the failure itself must surface.
    broken = Migration(
        MIGRATIONS[-1].version + 1, "broken", ("ROLLBACK", "SELECT error('the step failed')")
    )
    monkeypatch.setattr(db_module, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(duckdb.Error, match="the step failed"):
        connect(tmp_path / "s.duckdb")
