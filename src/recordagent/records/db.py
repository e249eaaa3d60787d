"""Opening the record store: a DuckDB database with the recordagent schema, migrated on open."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from recordagent.errors import UserError
from recordagent.paths import path_kind
from recordagent.records.ids import normalise_id
from recordagent.records.migrations import MIGRATIONS
from recordagent.records.patient_database import PatientDatabases, data_version
from recordagent.records.scope import PatientScope
from recordagent.records.search_index import index_missing_sources
from recordagent.settings import StoreSettings

__all__ = [
    "RecordStore",
    "roll_back",
    "connect",
    "damaged_store_error",
    "opened_store",
    "error_chain",
    "first_row",
    "store_file_error",
]

MEMORY = ":memory:"
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


class RecordStore:
    """An open record store. Use :func:`connect` to get one; close it or use it as a context."""

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, location: str, *, read_only: bool = False
    ) -> None:
        self._con = connection
        self.location = location
        self.read_only = read_only
        self._fixed_version: str | None = None
        # Library SQL already checked by a PatientScope, with the record tables it reads:
        # shared by every scope of the store, since tools run the same statements for every
        # patient.
        self.checked_scope_sql: dict[str, tuple[str, ...]] = {}
        # Where scopes' SQL runs: each patient's rows copied into a database of their own.
        self.patient_databases = PatientDatabases()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection (for library code; tools go through PatientScope)."""
        return self._con

    @property
    def schema_version(self) -> int:
        """The highest migration applied to this store."""
        row = self._con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0]
        return int(row[0]) if row and row[0] is not None else 0

    def data_version(self) -> str:
        """Changes whenever a source is loaded, replaced or re-indexed: a key for caches.

        Every write of record data goes through a source (its row in ``sources`` is replaced
        with the data), so the loaded sources' ids, fingerprints and load times name the data.
        A store opened read-only is read once: no process can write the file while it is open
        (DuckDB's file lock), and every query of a scope asks (a query each, some 0.7 ms).
        """
        if not self.read_only:
            return data_version(self._con)
        if self._fixed_version is None:
            self._fixed_version = data_version(self._con)
        return self._fixed_version

    def patient_ids(self) -> list[str]:
        """Every patient id in the store, sorted."""
        with self._con.cursor() as cursor:
            rows = cursor.execute("SELECT patient_id FROM patients ORDER BY patient_id").fetchall()
        return [r[0] for r in rows]

    def has_patient(self, patient_id: str) -> bool:
        """Whether the store holds a patient with this id."""
        if not _storable(patient_id):
            return False  # DuckDB holds UTF-8 text only: no stored id has a lone surrogate
        patient_id = normalise_id(patient_id)  # as every loader stored it
        # A cursor: scopes are made from worker threads while the connection may be busy.
        with self._con.cursor() as cursor:
            row = cursor.execute(
                "SELECT count(*) FROM patients WHERE patient_id = $pid", {"pid": patient_id}
            ).fetchall()[0]
        return bool(row and row[0])

    def missing_patients(self, patient_ids: Iterable[str]) -> list[str]:
        """The ids of ``patient_ids`` the store does not hold, in order (one query for all)."""
        given = list(dict.fromkeys(patient_ids))
        storable = [p for p in given if _storable(p)]
        with self._con.cursor() as cursor:
            rows = cursor.execute(
                "SELECT p FROM unnest($ids) AS t(p) "
                "WHERE p NOT IN (SELECT patient_id FROM patients)",
                {"ids": [normalise_id(p) for p in storable]},
            ).fetchall()
        absent = {r[0] for r in rows}
        return [p for p in given if not _storable(p) or normalise_id(p) in absent]

    def scope(self, patient_id: str) -> PatientScope:
        """A read-only view of one patient's record: the only read path for tools."""
        return PatientScope(self, patient_id)

    def close(self) -> None:
        """Close the connection; the store object is unusable afterwards."""
        self.patient_databases.clear()
        self._con.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RecordStore({self.location!r}, schema_version={self.schema_version})"


def roll_back(connection: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK after a failed write; a rollback that fails too does not hide why it failed.

    After an interrupt or a write error DuckDB may have aborted the transaction already, and
    its ROLLBACK then raises an error of its own that would replace the one that matters.
    """
    with contextlib.suppress(duckdb.Error):
        connection.execute("ROLLBACK")


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_row(rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The first of fully fetched ``rows`` (never leave a DuckDB result half-read)."""
    return rows[0] if rows else None


def connect(
    path: str | Path = MEMORY,
    *,
    settings: StoreSettings | None = None,
    read_only: bool = False,
) -> RecordStore:
    """Open (creating and migrating if needed) a record store.

    Args:
        path: A DuckDB file path, or ``":memory:"`` for an in-memory store.
        settings: Thread and memory limits; defaults when omitted.
        read_only: Open an existing file without writing to it (no migrations run).

    Raises:
        UserError: The file cannot be opened (missing, a folder, unreadable, read-only on disk
            where it must be written, in use by another process), is damaged, is not a
            recordagent store, or was written by a newer recordagent.
    """
    settings = settings or StoreSettings()
    location = str(path)
    if location != MEMORY:
        _check_store_path(Path(location), read_only=read_only)
    config: dict[str, str | bool | int | float | list[str]] = {}
    if settings.threads is not None:
        config["threads"] = settings.threads
    if settings.memory_limit is not None:
        config["memory_limit"] = settings.memory_limit
    try:
        con = duckdb.connect(location, read_only=read_only, config=config)
    except duckdb.Error as exc:
        known = store_file_error(exc, location)
        raise known or UserError(f"cannot open record store {location}: {exc}") from exc
    try:
        if read_only:
            if _check_version(con, location) < MIGRATIONS[-1].version:
                raise UserError(
                    f"{location} was written by an older recordagent (schema "
                    f"{_applied_version(con)}); open it once without read_only to upgrade it"
                )
        else:
            _migrate(con, location)
            index_missing_sources(con)  # stores loaded before the search index existed
    except duckdb.Error as exc:
        # Opening reads only the file's header; a damaged block or a file that cannot be
        # written shows up here, when the schema version is read or a migration writes.
        con.close()
        known = store_file_error(exc, location)
        if known is None:
            raise
        raise known from exc
    except BaseException:
        con.close()
        raise
    return RecordStore(con, location, read_only=read_only)


@contextlib.contextmanager
def opened_store(
    store: RecordStore | str | Path, settings: StoreSettings | None = None
) -> Iterator[RecordStore]:
    """``store`` itself when it is open, else the store file at that path, read-only.

    A store opened here is closed when the block ends; one given open stays the caller's.

    Raises:
        UserError: The path is a folder or no file (and what :func:`connect` refuses).
    """
    if isinstance(store, RecordStore):
        yield store
        return
    path = Path(store)
    kind = path_kind(path, "store")
    if kind == "folder":
        raise UserError(f"store {path} is a folder, not a DuckDB store file")
    if kind != "file":
        raise UserError(f"no store file {path} (make one with recordagent load)")
    with connect(path, settings=settings, read_only=True) as opened:
        yield opened


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling, each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__context__, current.__cause__) if e is not None)


def damaged_store_error(exc: BaseException, location: str | None = None) -> UserError | None:
    """The UserError for a DuckDB error that says a store file is damaged, or ``None``.

    DuckDB finds damage (a checksum mismatch, a truncated file, an unreadable WAL) when it first
    reads the damaged part, which may be at open, at the first query or deep into a session.
    ``exc`` and the exceptions it was raised from are looked at: a cleanup statement that fails
    afterwards must not hide the damage.

    Args:
        exc: The error raised while using the store.
        location: The store file, for the message.
    """
    for error in error_chain(exc):
        if isinstance(error, duckdb.Error) and any(m in str(error) for m in _DAMAGE_MARKERS):
            where = f"the record store {location}" if location else "the record store"
            return UserError(
                f"{where} is damaged and cannot be read ({_first_line(error)}); restore it "
                "from a backup, or delete it and load the data again"
            )
    return None


def store_file_error(exc: BaseException, location: str | None = None) -> UserError | None:
    """The UserError for a DuckDB error that says what is wrong with a store *file*, or ``None``.

    Recognised, in ``exc`` and the exceptions it was raised from: a damaged file
    (:func:`damaged_store_error`), a file in use by another process, and a file or folder that
    cannot be written (permissions, read-only file system).

    Args:
        exc: The error raised while opening or using the store.
        location: The store file, for the message.

    Returns:
        The error to raise instead, or ``None`` when ``exc`` is not about the store file (a
        bug, or an error the caller reports itself).
    """
    damaged = damaged_store_error(exc, location)
    if damaged is not None:
        return damaged
    where = f"the record store {location}" if location else "the record store"
    for error in error_chain(exc):
        if not isinstance(error, duckdb.Error):
            continue
        message = str(error)
        if _LOCK_MARKER in message:
            pid = _HOLDER_PID.search(message)
            holder = f" (PID {pid.group(1)})" if pid else ""
            return UserError(
                f"{where} is in use by another process{holder}: one process at a time may "
                "write a store; try again when it has finished"
            )
        if any(marker in message for marker in _PERMISSION_MARKERS):
            return UserError(
                f"{where} cannot be written here ({_first_line(error)}): make the file and its "
                "folder writable, or open the store read-only"
            )
    return None


# How DuckDB words errors about the file itself (duckdb 1.x-2.x). Corruption surfaces when a
# damaged block is first read, which may be long after the file was opened.
_DAMAGE_MARKERS = (
    "Corrupt database file",
    "Could not read enough bytes",
    "Corrupt WAL file",
    "Failure while replaying WAL",
    "not a valid DuckDB database file",
)
_LOCK_MARKER = "Could not set lock on file"
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")
_PERMISSION_MARKERS = ("Permission denied", "Operation not permitted", "Read-only file system")


def _first_line(error: BaseException, limit: int = 200) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_store_path(file: Path, *, read_only: bool) -> None:
    """Refuse a path that cannot hold a store, before DuckDB creates or locks anything."""
    try:
        if read_only and not file.exists():
            raise UserError(f"no record store at {file}")
        if not file.parent.exists():
            raise UserError(f"folder for the record store does not exist: {file.parent}")
        if not file.parent.is_dir():
            raise UserError(f"{file.parent} is a file, not a folder, so it cannot hold {file}")
        if file.is_dir():
            raise UserError(f"{file} is a folder, not a record store file")
        if file.exists() and not file.is_file():
            raise UserError(f"{file} is not a regular file, so not a record store")
        if file.is_file() and file.stat().st_size > 0 and not _is_duckdb_file(file):
            raise UserError(
                f"{file} is not a DuckDB database, so not a record store; a record store is "
                "the file written by `recordagent load BUNDLE --db STORE.duckdb`"
            )
    except OSError as exc:  # a name too long, a file that cannot be read, ...
        raise UserError(f"cannot use {file} as a record store: {exc.strerror or exc}") from None


def _is_duckdb_file(file: Path) -> bool:
    with file.open("rb") as handle:
        header = handle.read(12)
    return header[8:12] == _DUCKDB_MAGIC


def _applied_version(con: duckdb.DuckDBPyConnection) -> int | None:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = 'schema_migrations'"
    ).fetchall()[0]
    if not exists or not exists[0]:
        return None
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0]
    return int(row[0]) if row and row[0] is not None else 0


def _refuse_foreign_tables(con: duckdb.DuckDBPyConnection, location: str) -> None:
    """Refuse a database that holds tables but no migrations: another program's database."""
    tables = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()[0]
    if tables and tables[0]:
        raise UserError(f"{location} is a DuckDB database but not a recordagent store")


def _check_version(con: duckdb.DuckDBPyConnection, location: str) -> int:
    version = _applied_version(con)
    latest = MIGRATIONS[-1].version
    if version is None:
        _refuse_foreign_tables(con, location)
        raise UserError(f"{location} is empty: load a bundle into it first")
    if version > latest:
        raise UserError(
            f"{location} has schema version {version}, newer than this recordagent "
            f"understands ({latest}); upgrade recordagent"
        )
    return version


def _migrate(con: duckdb.DuckDBPyConnection, location: str) -> None:
    version = _applied_version(con)
    if version is None:
        _refuse_foreign_tables(con, location)
        con.execute(
            "CREATE TABLE schema_migrations ("
            "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        version = 0
    else:
        _check_version(con, location)
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations VALUES ($v, $n, $t)",
                {"v": migration.version, "n": migration.name, "t": dt.datetime.now()},
            )
            con.execute("COMMIT")
        except BaseException:
            roll_back(con)
            raise
