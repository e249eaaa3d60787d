"""A first load builds its store under a temporary name and moves it into place only on success.

``open_for_load`` (records/store_file.py) is exercised here in-process: what exists during and
after a load, a load that fails or is interrupted, a store another load created meanwhile, and
the temporary files of loads whose process died.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from recordagent.errors import DataLoadError, UserError
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.store_file import (
    LoadInterrupted,
    is_temporary_store,
    open_for_load,
    remove_stale_temporaries,
    temporary_store_path,
)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def patients(db: Path) -> list[str]:
    with connect(db, read_only=True) as store:
        return store.patient_ids()


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_first_load_is_invisible_until_it_is_published_whole(two_patients: Path, tmp_path):
    db = tmp_path / "store.duckdb"
    with open_for_load(db) as store:
        load_bundle(store, two_patients)
        assert not db.exists(), "readers must not see a store before the load has committed"
        [temporary] = [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
        assert is_temporary_store(temporary, db) and temporary.name.startswith(".store.duckdb.")
    assert names(tmp_path) == ["store.duckdb", "two_patients"], "no WAL, no temporary file"
    assert patients(db) == ["A", "B"]


def test_a_first_load_that_fails_leaves_no_file(two_patients: Path, tmp_path: Path):
    (two_patients / "labs.csv").write_text(
        "lab_id,patient_id,time,analyte_name,value_num\nL1,A,2020-01-01,Creatinine,abc\n"
    )
    with pytest.raises(DataLoadError), open_for_load(tmp_path / "store.duckdb") as store:
        load_bundle(store, two_patients)
    assert names(tmp_path) == ["two_patients"]


def test_a_store_another_load_created_meanwhile_is_kept_and_this_load_refused(
    two_patients: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    with pytest.raises(UserError, match="another load created the record store") as refused:
        with open_for_load(db) as store:
            load_bundle(store, two_patients, source="mine")
            with open_for_load(db) as other:  # the other load finishes first
                load_bundle(other, two_patients, source="theirs")
    assert f"{db} while this one ran, so this load wrote nothing to it" in str(refused.value)
    with connect(db, read_only=True) as store:
        sources = store.connection.execute("SELECT name FROM sources").fetchall()
    assert sources == [("theirs",)]
    assert names(tmp_path) == ["store.duckdb", "two_patients"]


def test_without_hard_links_a_first_load_is_moved_into_place_by_rename(
    two_patients: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "hard links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    db = tmp_path / "store.duckdb"
    with open_for_load(db) as store:
        load_bundle(store, two_patients)
    assert names(tmp_path) == ["store.duckdb", "two_patients"]
    assert patients(db) == ["A", "B"]


def test_ctrl_c_during_a_first_load_creates_no_store(two_patients: Path, tmp_path: Path):
    db = tmp_path / "store.duckdb"
    with pytest.raises(LoadInterrupted) as interrupted, open_for_load(db) as store:
        load_bundle(store, two_patients)
        raise KeyboardInterrupt
    assert isinstance(interrupted.value, KeyboardInterrupt), "code that stops on Ctrl-C stops"
    assert not interrupted.value.changed
    assert str(interrupted.value) == (
        f"interrupted; nothing was written and no store was created at {db}"
    )
    assert names(tmp_path) == ["two_patients"]


def interrupted_by_duckdb() -> BaseException:
    """What DuckDB raises when Ctrl-C arrives while a statement runs."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("Ctrl-C is not turned into KeyboardInterrupt in this process")
    con = duckdb.connect()
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        con.execute("SELECT count(*) FROM range(5000000000) t(x) WHERE x % 7 = 3").fetchall()
    except BaseException as exc:  # what the interrupt became is the point
        return exc
    finally:
        timer.join()
        con.close()
    pytest.fail("the statement ran to its end")


def loader_cleanup_error(interrupt: BaseException) -> BaseException:
    """A loader's UserError raised while cleaning up after the interrupt (it hides it)."""
    try:
        try:
            raise interrupt
        except BaseException:
            raise duckdb.TransactionException("Current transaction is aborted") from None
    except duckdb.TransactionException as cleanup:
        error = UserError("the load conflicts with uncommitted changes to the store")
        error.__cause__ = cleanup
        cleanup.__context__ = interrupt
        return error


@pytest.mark.parametrize("hidden", [False, True], ids=["as-raised", "behind-cleanup-errors"])
def test_an_interrupt_duckdb_reports_as_its_own_error_is_still_an_interrupt(
    hidden: bool, two_patients: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    with open_for_load(db) as store:
        load_bundle(store, two_patients)
    raised = interrupted_by_duckdb()
    assert not isinstance(raised, KeyboardInterrupt), "duckdb consumes the KeyboardInterrupt"
    if hidden:
        raised = loader_cleanup_error(raised)
    with pytest.raises(LoadInterrupted) as interrupted, open_for_load(db) as store:
        raise raised
    assert str(interrupted.value) == f"interrupted; the store {db} is unchanged"
    assert patients(db) == ["A", "B"]


def interrupted_while_reading_a_python_frame() -> BaseException:
    """What DuckDB raises when Ctrl-C lands while it reads a registered Python object."""

    def batches():
        yield pa.record_batch([pa.array([1, 2])], names=["row"])
        raise KeyboardInterrupt

    reader = pa.RecordBatchReader.from_batches(pa.schema([("row", pa.int64())]), batches())
    con = duckdb.connect()
    con.register("_incoming", reader)
    try:
        con.execute("SELECT count(*) FROM _incoming").fetchall()
    except BaseException as error:  # noqa: BLE001 - the error itself is the result
        return error
    finally:
        con.close()
    raise AssertionError("reading the frame did not fail")


def test_an_interrupt_while_duckdb_reads_a_python_frame_is_still_an_interrupt(
    two_patients: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    with open_for_load(db) as store:
        load_bundle(store, two_patients)
    raised = interrupted_while_reading_a_python_frame()
    assert isinstance(raised, duckdb.InvalidInputException)
    with pytest.raises(LoadInterrupted) as interrupted, open_for_load(db) as store:
        raise raised
    assert str(interrupted.value) == f"interrupted; the store {db} is unchanged"
    assert patients(db) == ["A", "B"]


def test_an_interrupt_after_the_load_committed_says_the_data_is_in_the_store(
    two_patients: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    with open_for_load(db) as store:
        load_bundle(store, two_patients)
    with pytest.raises(LoadInterrupted) as interrupted, open_for_load(db) as store:
        (two_patients / "patients.csv").write_text("patient_id,sex\nA,female\nB,male\n")
        load_bundle(store, two_patients, replace=True)
        raise KeyboardInterrupt
    assert interrupted.value.changed
    assert str(interrupted.value) == (
        f"interrupted after the load was committed; its data is in {db}"
    )


def test_temporary_files_of_ended_processes_are_removed_and_no_others(tmp_path: Path):
    target = tmp_path / "store.duckdb"
    dead, alive = dead_pid(), os.getppid()
    stale = [
        tmp_path / f".store.duckdb.{dead}.0a1b2c3d.tmp",
        tmp_path / f".store.duckdb.{dead}.0a1b2c3d.tmp.wal",
    ]
    spill = tmp_path / f".store.duckdb.{dead}.0a1b2c3d.tmp.tmp"
    kept = [
        tmp_path / f".store.duckdb.{alive}.1a1b2c3d.tmp",  # a load still running
        tmp_path / f".other.duckdb.{dead}.2a1b2c3d.tmp",  # another store's
        tmp_path / f"store.duckdb.{dead}.3a1b2c3d.tmp",  # not hidden: not ours
        tmp_path / "notes.txt",
        temporary_store_path(target),  # this process's own
    ]
    for path in stale + kept:
        path.write_bytes(b"x")
    spill.mkdir()
    (spill / "block").write_bytes(b"x")

    removed = remove_stale_temporaries(target)

    assert sorted(removed) == sorted([*stale, spill])
    assert names(tmp_path) == sorted(p.name for p in kept)


def test_a_load_into_memory_needs_no_file(two_patients: Path):
    with open_for_load(":memory:") as store:
        report = load_bundle(store, two_patients)
    assert report.status == "loaded"
