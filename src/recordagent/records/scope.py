"""PatientScope: one patient's record, and nothing else.

Every query a scope runs is wrapped so that the record tables it names (``patients``,
``documents``, ``chunks``, ``chunk_terms``, ``labs``, ``events``) resolve to that patient's rows
only, filtered by the patient id as a bound parameter. Isolation is therefore structural: a
query cannot forget the filter, and no argument can widen it. The SQL is checked on DuckDB's
parse tree before it runs (once per statement and store). Tools never pass SQL from a model;
the SQL here is library code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
from pydantic import BaseModel

from recordagent.errors import UserError
from recordagent.records.db import data_version, query_frame
from recordagent.records.schema import Chunk, Document, Event, LabValue, Patient

if TYPE_CHECKING:
    from recordagent.records.db import RecordStore

__all__ = ["CHUNK_TEXT", "PatientScope", "as_datetime"]

SCOPED_TABLES = ("patients", "documents", "chunks", "chunk_terms", "labs", "events")
_SCOPED = {t: f"SELECT * FROM main.{t} WHERE patient_id = $patient_id" for t in SCOPED_TABLES}
# Chunks hold offsets; a query that wants their text cuts it from the document with
# CHUNK_TEXT (joining documents d), so queries that do not need it pay no join.
CHUNK_TEXT = "substr(d.text, c.char_start + 1, c.char_end - c.char_start)"
# Library SQL may open with its own WITH clause; its CTEs then join the scoped ones.
_LEADING_WITH = re.compile(r"\A\s*WITH\s+(RECURSIVE\s+)?", re.IGNORECASE)
# Table references a scoped query may contain. Anything else (table functions such as read_csv
# or glob, SHOW/DESCRIBE, references added by future DuckDB versions) is refused: fail closed.
_ALLOWED_TABLE_REFS = frozenset(
    {"BASE_TABLE", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY", "PIVOT"}
)
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
        if not store.has_patient(patient_id):
            raise UserError(f"no patient '{patient_id}' in the record store")
        self._patient_id = patient_id
        self._connection = store.connection
        self._checked_sql = store.checked_scope_sql
        self._memo: dict[str, tuple[str, Any]] = {}

    @property
    def patient_id(self) -> str:
        """The one patient this scope can see."""
        return self._patient_id

    def data_version(self) -> str:
        """The store's data version (:meth:`RecordStore.data_version`): a key for caches."""
        return data_version(self._connection)

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
        """Run library SQL over this patient's rows; ``$name`` placeholders bind ``params``.

        Raises:
            ValueError: The SQL is not one SELECT; names a table other than the unqualified
                record tables (or qualifies one, or defines a CTE that shadows a table); calls a
                table function (file readers, ``glob``); or a parameter rebinds ``patient_id``.
        """
        query, bound = self._prepare(sql, params)
        with self._connection.cursor() as cursor:
            return cursor.execute(query, bound).fetchall()

    def frame(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Like :meth:`fetch`, returning a polars DataFrame."""
        query, bound = self._prepare(sql, params)
        with self._connection.cursor() as cursor:
            return query_frame(cursor, query, bound)

    def _prepare(self, sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        tables = self._checked_sql.get(sql)
        if tables is None:
            tables = self._check_sql(sql)
            self._checked_sql[sql] = tables
        bound = dict(params or {})
        if "patient_id" in bound:
            raise ValueError("'patient_id' is bound by the scope and cannot be passed")
        if not tables:
            return sql, bound
        bound["patient_id"] = self._patient_id
        return _with_scoped_tables(sql, tables), bound

    def _check_sql(self, sql: str) -> tuple[str, ...]:
        """Refuse SQL that could read anything but this patient's rows; name the tables it reads.

        The check runs on DuckDB's own parse tree, not on the text, so quoting, comments and
        odd spacing cannot hide a qualified name, a file read or a second statement.
        """
        with self._connection.cursor() as cursor:
            row = cursor.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchone()
            tables = {
                name
                for (name,) in cursor.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
        tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
        if tree.get("error"):
            raise ValueError(
                f"scoped SQL must be one SELECT statement: {tree.get('error_message', sql)}"
            )
        if len(tree["statements"]) != 1:
            raise ValueError(f"scoped SQL must be one SELECT statement, got: {sql!r}")
        nodes = list(_tree_nodes(tree["statements"]))
        cte_names = {name for node in nodes for name in _cte_names(node)}
        if clash := cte_names & (tables | set(SCOPED_TABLES)):
            raise ValueError(f"scoped SQL may not define CTEs named like tables: {sorted(clash)}")
        allowed = set(SCOPED_TABLES) | cte_names
        for node in filter(_is_table_ref, nodes):
            kind = node["type"]
            if kind not in _ALLOWED_TABLE_REFS:
                raise ValueError(f"scoped SQL may not use {kind.lower()} references: {sql!r}")
            if kind == "BASE_TABLE" and (
                node.get("catalog_name")
                or node.get("schema_name")
                or node.get("table_name") not in allowed
            ):
                name = ".".join(n for n in _qualified(node) if n)
                raise ValueError(
                    f"scoped SQL may name only the unqualified record tables "
                    f"{', '.join(SCOPED_TABLES)}; it names {name!r}"
                )
        named = {
            str(node.get("table_name"))
            for node in nodes
            if node["type"] == "BASE_TABLE" and _is_table_ref(node)
        }
        # Only the record tables the query reads get a patient-filtered CTE: less to bind.
        return tuple(t for t in SCOPED_TABLES if t in named - cte_names)

    def _models(
        self, model: type[_RowT], sql: str, params: Mapping[str, Any] | None = None
    ) -> list[_RowT]:
        query, bound = self._prepare(sql, params)
        # A cursor per query: DuckDB cursors are single-threaded, scopes may be shared.
        with self._connection.cursor() as cursor:
            cursor.execute(query, bound)
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
        found = self.documents(document_ids=[document_id])
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


def _with_scoped_tables(sql: str, tables: tuple[str, ...]) -> str:
    ctes = ", ".join(f"{t} AS NOT MATERIALIZED ({_SCOPED[t]})" for t in tables)
    if match := _LEADING_WITH.match(sql):
        return f"WITH {match.group(1) or ''}{ctes},\n{sql[match.end() :]}"
    return f"WITH {ctes}\n{sql}"


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


def _cte_names(node: dict[str, Any]) -> list[str]:
    cte_map = node.get("cte_map")
    if not isinstance(cte_map, dict):
        return []
    return [str(entry.get("key")) for entry in cte_map.get("map", [])]


def _qualified(node: dict[str, Any]) -> tuple[str, str, str]:
    return (
        str(node.get("catalog_name") or ""),
        str(node.get("schema_name") or ""),
        str(node.get("table_name") or ""),
    )


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
