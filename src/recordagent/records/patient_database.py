"""A private in-memory database per patient: the rows a PatientScope's SQL can reach.

Isolation is by construction. A scope's SQL never runs on the store's connection: it runs on a
separate in-memory DuckDB database that holds copies of this one patient's rows of the record
tables, and nothing else. Whatever the SQL says (another casing of a table name, a qualified
name, a CTE that shadows a table, a subquery, a table function, a file path), there is no other
patient in the database it runs on to find. The database also cannot reach outside itself:
external access is off (no file reads or writes, no ATTACH, no extension installs, no scans of
Python variables) and its configuration is locked, so no statement can turn that back on.

Tables are copied on first use, so a scope that only reads labs never copies document text. A
database holds the store's data version it was copied at; a load in between makes the scope
copy again. Opening a DuckDB database costs 10-40 ms, far more than copying one patient's rows,
so databases dropped from the most-recently-used set are emptied and reused for the next
patient once no query runs on them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb

__all__ = [
    "ISOLATED_CONFIG",
    "DATA_VERSION_SQL",
    "PATIENT_TABLES",
    "PatientDatabase",
    "PatientDatabases",
    "data_version",
]

PATIENT_TABLES = ("patients", "documents", "chunks", "chunk_terms", "labs", "events")
"""The record tables, each keyed by ``patient_id``: the only tables a patient database holds."""

DATA_VERSION_SQL = (
    "SELECT coalesce(string_agg(source_id || ':' || fingerprint || ':' || loaded_at, ';' "
    "ORDER BY source_id), '') FROM main.sources"
)
"""The store's data version: changes whenever a source is loaded, replaced or re-indexed."""

# Tables are small (one patient's rows) and a process may hold many databases at once: one
# thread each keeps a many-core host from starting a thread pool per patient. No file, no
# extension, no change of these settings: what runs there sees the rows copied in, and nothing.
ISOLATED_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "threads": 1,
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "lock_configuration": True,
}
_COPY_ATTEMPTS = 5  # a copy is retried when a load commits while it is taken
_SPARE = 4  # emptied databases kept for reuse


class PatientDatabase:
    """One patient's rows of the record tables, in a database of their own.

    Args:
        patient_id: The patient whose rows are copied.
        data_version: The store's data version the copies are taken at.
        connection: An empty database to fill; a new one when omitted.
    """

    def __init__(
        self,
        patient_id: str,
        data_version: str,
        connection: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self.patient_id = patient_id
        self.data_version = data_version
        self.connection = connection or duckdb.connect(":memory:", config=ISOLATED_CONFIG)
        self.in_use = 0  # queries running on it; guarded by the owning PatientDatabases' lock
        self.dropped = False  # no longer kept: empty it once in_use is back to 0
        self._copied: set[str] = set()
        self._lock = threading.Lock()

    def cursor(
        self, store: duckdb.DuckDBPyConnection, tables: tuple[str, ...]
    ) -> duckdb.DuckDBPyConnection:
        """A cursor on this database, once ``tables`` are copied from ``store``.

        Raises:
            StaleCopyError: The store's data changed since this database was made.
        """
        if any(t not in self._copied for t in tables):
            with self._lock:
                self._copy(store, [t for t in tables if t not in self._copied])
        return self.connection.cursor()

    def empty(self) -> duckdb.DuckDBPyConnection:
        """Drop every copied table; the bare database, for another patient."""
        for table in sorted(self._copied):
            self.connection.execute(f"DROP TABLE IF EXISTS {_known(table)}")
        self._copied.clear()
        return self.connection

    def _copy(self, store: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
        if not tables:
            return
        with store.cursor() as source:
            # One transaction: the version check and the copies see the same committed data.
            source.begin()
            try:
                version = source.execute(DATA_VERSION_SQL).fetchall()[0][0]
                if version != self.data_version:
                    raise StaleCopyError(self.patient_id)
                for table in tables:
                    rows = source.sql(
                        f"SELECT * FROM main.{_known(table)} WHERE patient_id = $patient_id",
                        params={"patient_id": self.patient_id},
                    ).to_arrow_table()
                    # from_arrow(...).create names no Python object, so no view of the copied
                    # rows outlives the copy (registered views would be visible to this
                    # connection only, not to the cursors queries run on).
                    self.connection.from_arrow(rows).create(table)
                    self._copied.add(table)
            finally:
                source.rollback()


class StaleCopyError(Exception):
    """The store's data changed after a patient database was made (internal; never escapes)."""


class PatientDatabases:
    """The patient databases of one store, the most recently used kept.

    Args:
        capacity: How many patients' databases to keep.
    """

    def __init__(self, capacity: int = 16) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[str, PatientDatabase] = OrderedDict()
        self._spare: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    @contextmanager
    def cursor(
        self,
        store: duckdb.DuckDBPyConnection,
        patient_id: str,
        tables: tuple[str, ...],
        version: Callable[[], str] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the current copy of ``patient_id``'s ``tables``, for one query.

        ``version`` gives the store's data version (default: read from ``store``); the
        database is not emptied or reused while the cursor is open.
        """
        for _ in range(_COPY_ATTEMPTS):
            current = version() if version is not None else data_version(store)
            database = self._lease(patient_id, current)
            try:
                try:
                    cursor = database.cursor(store, tables)
                except StaleCopyError:
                    continue
                with cursor:
                    yield cursor
                return
            finally:
                self._release(database)
        raise RuntimeError(
            f"the store's data changed {_COPY_ATTEMPTS} times while patient rows were copied"
        )

    def clear(self) -> None:
        """Drop every kept database (those in use are dropped when their query ends)."""
        with self._lock:
            for database in self._kept.values():
                database.dropped = True
            self._kept.clear()
            self._spare.clear()

    def _lease(self, patient_id: str, data_version: str) -> PatientDatabase:
        with self._lock:
            kept = self._kept.get(patient_id)
            if kept is None or kept.data_version != data_version:
                if kept is not None:
                    self._drop(kept)
                spare = self._spare.pop() if self._spare else None
                kept = PatientDatabase(patient_id, data_version, spare)
                self._kept[patient_id] = kept
                while len(self._kept) > self._capacity:
                    self._drop(self._kept.popitem(last=False)[1])
            self._kept.move_to_end(patient_id)
            kept.in_use += 1
            return kept

    def _release(self, database: PatientDatabase) -> None:
        with self._lock:
            database.in_use -= 1
            if database.dropped and database.in_use == 0:
                self._recycle(database)

    def _drop(self, database: PatientDatabase) -> None:
        """Stop keeping ``database`` (lock held); empty it now or when its queries end."""
        self._kept.pop(database.patient_id, None)
        database.dropped = True
        if database.in_use == 0:
            self._recycle(database)

    def _recycle(self, database: PatientDatabase) -> None:
        if len(self._spare) < _SPARE:
            self._spare.append(database.empty())


def data_version(connection: duckdb.DuckDBPyConnection) -> str:
    """The data version of the store behind ``connection`` (:meth:`RecordStore.data_version`)."""
    with connection.cursor() as cursor:
        rows = cursor.execute(DATA_VERSION_SQL).fetchall()
    return str(rows[0][0]) if rows else ""


def _known(table: str) -> str:
    # Table names are interpolated into SQL: only the fixed record tables ever are.
    if table not in PATIENT_TABLES:
        raise ValueError(f"not a record table: {table!r}")
    return table
