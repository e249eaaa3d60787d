from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from recordagent.errors import UserError
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.migrations import MIGRATIONS
from recordagent.records.schema import BUNDLE_TABLES, ColumnType

DUCKDB_TYPES = {
    ColumnType.TEXT: "VARCHAR",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.NUMBER: "DOUBLE",
}


def test_bundle_specs_match_the_migrated_tables():
    with connect() as store:
        for name, spec in BUNDLE_TABLES.items():
            columns = store.connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = $t ORDER BY ordinal_position",
                {"t": name},
            ).fetchall()
            expected = [(c.name, DUCKDB_TYPES[c.type]) for c in spec.columns]
            # Columns added by later migrations come after source_id; the order of the rest
            # is the bundle's.
            assert [c for c in columns if c[0] != "source_id"] == expected, name
            assert ("source_id", "INTEGER") in columns, name


def test_new_store_is_at_the_latest_version_and_reopening_migrates_nothing(tmp_path: Path):
    path = tmp_path / "s.duckdb"
    with connect(path) as store:
        assert store.schema_version == MIGRATIONS[-1].version
    with connect(path) as again:
        rows = again.connection.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert rows == (len(MIGRATIONS),)


def test_store_written_by_a_newer_version_is_refused(tmp_path: Path):
    path = tmp_path / "s.duckdb"
    with connect(path) as store:
        store.connection.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    with pytest.raises(UserError, match="newer than this recordagent"):
        connect(path)
    with pytest.raises(UserError, match="newer than this recordagent"):
        connect(path, read_only=True)


def test_foreign_duckdb_files_are_refused(tmp_path: Path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE unrelated (x INTEGER)")
    con.close()
    with pytest.raises(UserError, match="not a recordagent store"):
        connect(path)


def test_missing_files_and_folders(tmp_path: Path):
    with pytest.raises(UserError, match="no record store"):
        connect(tmp_path / "absent.duckdb", read_only=True)
    with pytest.raises(UserError, match="folder for the record store does not exist"):
        connect(tmp_path / "no" / "such" / "s.duckdb")


def test_thread_and_memory_settings_reach_duckdb():
    from recordagent.settings import StoreSettings

    with connect(settings=StoreSettings(threads=1, memory_limit="512MB")) as store:
        threads, memory = store.connection.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        ).fetchone()
    assert threads == 1
    assert memory.replace(" ", "").upper().startswith(("512", "488"))


def test_the_data_version_changes_with_every_load_and_only_then(tmp_path: Path):
    from recordagent.records.load import load_bundle
    from tests.helpers import FIXTURES

    bundle = tmp_path / "tool_patients"
    shutil.copytree(FIXTURES / "tool_patients", bundle)
    with connect() as store:
        assert store.data_version() == ""
        load_bundle(store, bundle)
        loaded = store.data_version()
        assert loaded and store.scope("A").data_version() == loaded
        load_bundle(store, bundle)  # the same files again: a no-op
        assert store.data_version() == loaded
        with (bundle / "labs.csv").open("a", encoding="utf-8") as labs:
            labs.write("LA99,A,2021-09-09 08:00,33358-4,M-protein,0.1,,g/dL,,,\n")
        load_bundle(store, bundle, replace=True)
        assert store.data_version() not in ("", loaded)


def test_a_rollback_that_fails_does_not_replace_the_error_that_led_to_it():
    from recordagent.records.db import roll_back

    with connect() as store:
        # No transaction is open, so DuckDB's own ROLLBACK raises here.
        with pytest.raises(duckdb.TransactionException):
            store.connection.execute("ROLLBACK")
        with pytest.raises(ZeroDivisionError):
            try:
                store.connection.execute("BEGIN TRANSACTION")
                store.connection.execute("COMMIT")
                1 / 0  # noqa: B018 — the load's own failure
            except BaseException:
                roll_back(store.connection)  # nothing to roll back: quiet
                raise


def test_missing_patients_are_found_in_one_query_in_the_order_given(two_patients: Path):
    with connect() as store:
        load_bundle(store, two_patients)
        given = ["nobody", "A", "\ud800", "B", "nobody", "  A  "]
        assert store.missing_patients(given) == ["nobody", "\ud800"]
        assert [p for p in dict.fromkeys(given) if not store.has_patient(p)] == [
            "nobody",
            "\ud800",
        ]
