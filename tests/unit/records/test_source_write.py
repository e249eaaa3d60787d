"""The write skeleton every loader shares (records/source_write.py): plan, transaction, rollback."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recordagent.errors import DataLoadError, UserError
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, connect
from recordagent.records.source_write import PhaseClock, plan_source, source_write
from recordagent.settings import ChunkingSettings


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    return Chunker(ChunkingSettings())


def sources(store: RecordStore) -> list[tuple[str, str, int]]:
    return [
        (str(n), str(f), int(p))
        for n, f, p in store.connection.execute(
            "SELECT name, fingerprint, n_patients FROM sources ORDER BY name"
        ).fetchall()
    ]


def write_patient(store: RecordStore, chunker: Chunker, name: str, fingerprint: str, **kw):
    plan = plan_source(store, name, Path("/in") / name, fingerprint, what="these files", **kw)
    if plan.unchanged:
        return plan.report()
    with source_write(store, plan, chunker, PhaseClock()) as write:
        write.con.execute(
            "INSERT INTO patients (patient_id, source_id) VALUES ($p, $s)",
            {"p": f"P-{fingerprint}", "s": write.source_id},
        )
        write.counts["patients"] += 1
    return plan.report(counts=write.counts)


def test_a_write_registers_its_source_with_the_counts_it_kept(chunker: Chunker):
    with connect() as store:
        report = write_patient(store, chunker, "a", "f1", replace=False)
        assert report.status == "loaded" and report.location == "/in/a"
        assert sources(store) == [("a", "f1", 1)]


def test_the_same_files_again_are_unchanged_and_other_files_need_replace(chunker: Chunker):
    with connect() as store:
        write_patient(store, chunker, "a", "f1", replace=False)
        assert write_patient(store, chunker, "a", "f1", replace=False).status == "unchanged"
        with pytest.raises(
            UserError, match=r"pass --replace \(replace=True in code\) to swap it for these files"
        ):
            write_patient(store, chunker, "a", "f2", replace=False)
        assert write_patient(store, chunker, "a", "f2", replace=True).status == "replaced"
        assert sources(store) == [("a", "f2", 1)]
        assert store.patient_ids() == ["P-f2"]


def test_a_failing_write_rolls_back_everything_and_keeps_its_own_error(chunker: Chunker):
    with connect() as store:
        write_patient(store, chunker, "a", "f1", replace=False)
        plan = plan_source(store, "a", Path("/in/a"), "f2", replace=True, what="these files")
        with pytest.raises(KeyError, match="why it failed"):
            with source_write(store, plan, chunker, PhaseClock()) as write:
                write.con.execute("DELETE FROM patients")
                raise KeyError("why it failed")
        assert sources(store) == [("a", "f1", 1)]
        assert store.patient_ids() == ["P-f1"]


def test_rows_the_store_refuses_are_a_load_problem(chunker: Chunker):
    with connect() as store:
        write_patient(store, chunker, "a", "f1", replace=False)
        plan = plan_source(store, "b", Path("/in/b"), "f2", replace=False, what="these files")
        with pytest.raises(DataLoadError, match="the store refused the rows"):
            with source_write(store, plan, chunker, PhaseClock()) as write:
                write.con.execute(
                    "INSERT INTO patients (patient_id, source_id) VALUES ('P-f1', $s)",
                    {"s": write.source_id},
                )
        assert sources(store) == [("a", "f1", 1)]


def test_the_clock_times_the_phases_it_is_given_in_order():
    clock = PhaseClock(("read", "write"))
    with clock("write"):
        pass
    with clock("read"):
        pass
    assert list(clock.rounded()) == ["read", "write"]
    assert all(seconds >= 0 for seconds in clock.rounded().values())


def test_a_duckdb_error_is_still_a_duckdb_error_when_not_a_store_refusal(chunker: Chunker):
    with connect() as store:
        plan = plan_source(store, "a", Path("/in/a"), "f1", replace=False, what="these files")
        with pytest.raises(duckdb.CatalogException):
            with source_write(store, plan, chunker, PhaseClock()) as write:
                write.con.execute("SELECT * FROM no_such_table")
        assert sources(store) == []
