"""PatientScope: one patient's record, and nothing else.

A scope's SQL runs on a database that holds only this patient's rows
(:mod:`recordagent.records.patient_database`): an in-memory copy of the patient's rows of the
record tables (``patients``, ``documents``, ``chunks``, ``chunk_terms``, ``labs``, ``events``),
which cannot read files or attach other databases. Isolation is therefore by construction: no
SQL, however it names a table, can reach another patient's rows, because none are there. The SQL
must be one SELECT statement (checked on DuckDB's parse tree, once per statement and store).
Tools never pass SQL from a model; the SQL here is library code, or an analyst's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import polars as pl
from pydantic import BaseModel

from recordagent.errors import UserError
from recordagent.records.frames import query_frame
from recordagent.records.ids import normalise_id
from recordagent.records.patient_database import PATIENT_TABLES
from recordagent.records.schema import Chunk, Document, Event, LabValue, Patient

if TYPE_CHECKING:
    from recordagent.records.db import RecordStore

__all__ = ["CHUNK_TEXT", "PatientScope", "as_datetime"]

# Chunks hold offsets; a query that wants their text cuts it from the document with
# CHUNK_TEXT (joining documents d), so queries that do not need it pay no join.
CHUNK_TEXT = "substr(d.text, c.char_start + 1, c.char_end - c.char_start)"
_RowT = TypeVar("_RowT", bound=BaseModel)
_T = TypeVar("_T")


class PatientScope:
    """Read access to exactly one patient's record.

    Args:
        store: The record store.
        patient_id: The patient; must exist in the store.

    Raises:
        UserError: No such patient.
    """

    def __init__(self, store: RecordStore, patient_id: str) -> None:
        if not isinstance(patient_id, str) or not patient_id:
            raise UserError("a patient scope needs a non-empty patient id")
        if store.has_patient(patient_id):
            patient_id = normalise_id(patient_id)  # the stored form of the id
        else:
            # repr: an id with control characters or lone surrogates is shown, not obeyed.
            raise UserError(f"no patient {patient_id!r} in the record store")
        self._patient_id = patient_id
        self._connection = store.connection
        self._store_version = store.data_version
        self._databases = store.patient_databases
        self._checked_sql = store.checked_scope_sql
        self._memo: dict[str, tuple[str, Any]] = {}

    @property
    def patient_id(self) -> str:
        """The one patient this scope can see."""
        return self._patient_id

    def data_version(self) -> str:
        """The store's data version (:meth:`RecordStore.data_version`): a key for caches."""
        return self._store_version()

    def memo(self, key: str, build: Callable[[], _T]) -> _T:
        """``build()``, kept on this scope for as long as the store's data version holds.

        For summaries of the record that several tool calls of one question need (the lab
        series of the record): a load or reload in between makes them be built again.
        """
        version = self.data_version()
        kept = self._memo.get(key)
        if kept is not None and kept[0] == version:
            value: _T = kept[1]
            return value
        value = build()
        self._memo[key] = (version, value)
        return value

    def __repr__(self) -> str:
        return f"PatientScope({self._patient_id!r})"

    # -- raw access for library code -------------------------------------------------------

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one SELECT over this patient's rows; ``$name`` placeholders bind ``params``.

        The SQL sees a database holding only this patient's rows of the record tables, under
        their usual names; it cannot read files or other databases.

        Raises:
            ValueError: The SQL is not one SELECT statement, tries to read a file or another
                database, or a parameter is named ``patient_id`` (the scope's own).
            duckdb.Error: The SQL fails, e.g. it names a table that is not a record table.
        """
        tables, bound = self._prepare(sql, params)
        with self._cursor(tables) as cursor, _outside_access_refused():
            return cursor.execute(sql, bound).fetchall()

    def frame(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Like :meth:`fetch`, returning a polars DataFrame."""
        tables, bound = self._prepare(sql, params)
        with self._cursor(tables) as cursor, _outside_access_refused():
            return query_frame(cursor, sql, bound)

    def _prepare(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        tables = self._checked_sql.get(sql)
        if tables is None:
            tables = self._check_sql(sql)
            self._checked_sql[sql] = tables
        bound = dict(params or {})
        if "patient_id" in bound:
            raise ValueError("'patient_id' is the scope's own and cannot be passed as a parameter")
        return tables, bound

    def _cursor(self, tables: tuple[str, ...]) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A cursor on this patient's database, holding current copies of ``tables``."""
        return self._databases.cursor(
            self._connection, self._patient_id, tables, version=self._store_version
        )

    def _check_sql(self, sql: str) -> tuple[str, ...]:
        """Refuse anything but one SELECT; name the record tables it reads (to copy them).

        Not a guard of isolation (the database a scope's SQL runs on holds one patient only):
        it keeps statements that write or configure out, and says which tables to copy.
        """
        with self._connection.cursor() as cursor:
            row = cursor.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchone()
        tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
        if tree.get("error"):
            raise ValueError(
                f"scoped SQL must be one SELECT statement: {tree.get('error_message', sql)}"
            )
        if len(tree["statements"]) != 1:
            raise ValueError(f"scoped SQL must be one SELECT statement, got: {sql!r}")
        # DuckDB identifiers are case-insensitive: LABS and "Labs" are labs. A CTE named like a
        # record table still gets the table copied; copying more than needed is harmless.
        named = {
            str(node.get("table_name") or "").lower()
            for node in _tree_nodes(tree["statements"])
            if node["type"] == "BASE_TABLE" and _is_table_ref(node)
        }
        return tuple(t for t in PATIENT_TABLES if t in named)

    def _models(
        self, model: type[_RowT], sql: str, params: Mapping[str, Any] | None = None
    ) -> list[_RowT]:
        tables, bound = self._prepare(sql, params)
        # A cursor per query: DuckDB cursors are single-threaded, scopes may be shared.
        with self._cursor(tables) as cursor, _outside_access_refused():
            cursor.execute(sql, bound)
            names = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        return [model.model_validate(dict(zip(names, row, strict=True))) for row in rows]

    # -- typed readers ---------------------------------------------------------------------

    def patient(self) -> Patient:
        """Demographics of the patient."""
        return self._models(
            Patient, "SELECT patient_id, sex, birth_date, death_date FROM patients"
        )[0]

    def documents(
        self,
        *,
        types: Iterable[str] | None = None,
        start: dt.datetime | dt.date | None = None,
        end: dt.datetime | dt.date | None = None,
        document_ids: Iterable[str] | None = None,
    ) -> list[Document]:
        """Documents in date order, optionally filtered by type, date range (inclusive) or id."""
        where, params = _filters(
            ("type", types), ("document_id", document_ids), time_column="date", start=start, end=end
        )
        return self._models(
            Document,
            "SELECT document_id, patient_id, date, type, title, text FROM documents"
            f"{where} ORDER BY date, document_id",
            params,
        )

    def document(self, document_id: str) -> Document | None:
        """One document by id, or None if this patient has no such document."""
        found = self.documents(document_ids=[normalise_id(document_id)])
        return found[0] if found else None

    def chunks(self, *, document_ids: Iterable[str] | None = None) -> list[Chunk]:
        """Chunks in document-date and position order, optionally of some documents only."""
        where, params = _filters(("c.document_id", document_ids))
        return self._models(
            Chunk,
            "SELECT c.chunk_id, c.document_id, c.patient_id, c.position, c.section, c.char_start,"
            f" c.char_end, {CHUNK_TEXT} AS text, c.token_count"
            " FROM chunks c JOIN documents d USING (document_id)"
            f"{where} ORDER BY d.date, c.document_id, c.position",
            params,
        )

    def labs(
        self,
        *,
        analyte_names: Iterable[str] | None = None,
        analyte_codes: Iterable[str] | None = None,
        start: dt.datetime | dt.date | None = None,
        end: dt.datetime | dt.date | None = None,
    ) -> list[LabValue]:
        """Lab values in time order; names match case-insensitively."""
        names = None if analyte_names is None else [n.lower() for n in analyte_names]
        where, params = _filters(
            ("lower(analyte_name)", names),
            ("analyte_code", analyte_codes),
            time_column="time",
            start=start,
            end=end,
        )
        return self._models(
            LabValue,
            "SELECT lab_id, patient_id, time, analyte_code, analyte_name, value_num, value_text,"
            " unit, ref_low, ref_high, flag, fluid, category, priority, comment, local_code"
            f" FROM labs{where} ORDER BY time, lab_id",
            params,
        )

    def events(
        self,
        *,
        kinds: Iterable[str] | None = None,
        start: dt.datetime | dt.date | None = None,
        end: dt.datetime | dt.date | None = None,
    ) -> list[Event]:
        """Events in start order, optionally by kind and by start time (inclusive)."""
        where, params = _filters(("kind", kinds), time_column="start_time", start=start, end=end)
        return self._models(
            Event,
            "SELECT event_id, patient_id, start_time, end_time, kind, code, label, detail"
            f" FROM events{where} ORDER BY start_time, event_id",
            params,
        )

    def counts(self) -> dict[str, int]:
        """How many documents, chunks, lab values and events the patient has."""
        row = self.fetch(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),"
            " (SELECT count(*) FROM labs), (SELECT count(*) FROM events)"
        )[0]
        return dict(zip(("documents", "chunks", "labs", "events"), map(int, row), strict=True))


@contextmanager
def _outside_access_refused() -> Iterator[None]:
    """DuckDB's refusal of a file read, said as what it is for the author of the SQL."""
    try:
        yield
    except duckdb.PermissionException as exc:
        raise ValueError(
            "scoped SQL may not read files or databases outside the patient's record "
            f"({str(exc).splitlines()[0]})"
        ) from exc


def _tree_nodes(tree: Any) -> Iterable[dict[str, Any]]:
    """Every typed node of a serialized parse tree that is not an expression."""
    if isinstance(tree, dict):
        if isinstance(tree.get("type"), str) and "class" not in tree:
            yield tree
        for value in tree.values():
            yield from _tree_nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _tree_nodes(value)


def _is_table_ref(node: dict[str, Any]) -> bool:
    # DuckDB serializes every TableRef with an alias and a sample; query nodes carry modifiers.
    return "alias" in node and "sample" in node and "modifiers" not in node


def _filters(
    *value_filters: tuple[str, Iterable[str] | None],
    time_column: str | None = None,
    start: dt.datetime | dt.date | None = None,
    end: dt.datetime | dt.date | None = None,
) -> tuple[str, dict[str, Any]]:
    """A WHERE clause with every value bound as a parameter (column names are library constants)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for i, (column, values) in enumerate(value_filters):
        if values is None:
            continue
        listed = _as_str_list(values, column)
        params[f"v{i}"] = listed
        clauses.append(f"list_contains($v{i}, {column})")
    if time_column is not None:
        if start is not None:
            params["start"] = as_datetime(start, end_of_day=False)
            clauses.append(f"{time_column} >= $start")
        if end is not None:
            params["end"] = as_datetime(end, end_of_day=True)
            clauses.append(f"{time_column} <= $end")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _as_str_list(values: Iterable[str], column: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"filter on {column} takes a list of strings, not one string")
    listed: Sequence[Any] = list(values)
    if not all(isinstance(v, str) for v in listed):
        raise TypeError(f"filter on {column} takes strings only")
    return list(listed)


def as_datetime(value: dt.datetime | dt.date, *, end_of_day: bool) -> dt.datetime:
    """A bound for a time column: a date means its first (or, for an end, its last) moment."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.max if end_of_day else dt.time.min)
    raise TypeError(f"expected a date or datetime, got {type(value).__name__}")
