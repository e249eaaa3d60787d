"""A patient scope's SQL cannot reach another patient's rows, whatever SQL DuckDB accepts.

Queries are generated from a small SQL grammar of the tricks that widen a name-checked scope
(case variants and quoting of table names, qualified names, CTEs that shadow tables, subqueries,
lateral joins, set operations, table functions, file paths, ATTACH, PRAGMA, SET, COPY, several
statements) and run on patient A's scope of a file store that also holds patient B, next to a
CSV export of B's rows. Every query either fails or returns rows that hold nothing of B: not
B's ids, text, analyte names or values. The same queries also run on A's patient database with
the statement check bypassed, which shows isolation does not rest on that check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.patient_database import PATIENT_TABLES, PatientDatabase
from tests.helpers import write_csv

ALPHA, BRAVO = "pt-alpha-7731", "pt-bravo-4409"
# Everything of B that must never come back from A's scope; none of it occurs in A's record.
BRAVO_SECRETS = (
    BRAVO,
    "doc-bravo",
    "lab-bravo",
    "evt-bravo",
    "Quokka",
    "zygoma",
    "Bravonium",
    "4409.5",
    "Zanzibar",
    "1961-03-17",
)
OTHER_TABLES = ("sources", "search_index", "schema_migrations", "chunk_terms")


def _write_bundle(folder: Path) -> None:
    write_csv(
        folder,
        "patients",
        [
            {"patient_id": ALPHA, "sex": "female", "birth_date": "1950-01-01", "death_date": None},
            {"patient_id": BRAVO, "sex": "male", "birth_date": "1961-03-17", "death_date": None},
        ],
    )
    write_csv(
        folder,
        "documents",
        [
            {
                "document_id": "doc-alpha-1",
                "patient_id": ALPHA,
                "date": "2020-01-05",
                "type": "progress note",
                "title": "First visit",
                "text": "HISTORY\nMyeloma, IgG kappa.\n\nPLAN\nStart therapy.",
            },
            {
                "document_id": "doc-bravo-1",
                "patient_id": BRAVO,
                "date": "2021-02-01",
                "type": "Zanzibar letter",
                "title": "Zanzibar clinic",
                "text": "HISTORY\nQuokka effusion over the left zygoma.\n\nPLAN\nDrain it.",
            },
        ],
    )
    write_csv(
        folder,
        "labs",
        [
            {
                "lab_id": "lab-alpha-1",
                "patient_id": ALPHA,
                "time": "2020-01-04 08:00",
                "analyte_code": "2160-0",
                "analyte_name": "Creatinine",
                "value_num": "0.9",
                "unit": "mg/dL",
            },
            {
                "lab_id": "lab-bravo-1",
                "patient_id": BRAVO,
                "time": "2021-02-01 22:00",
                "analyte_code": "99999-9",
                "analyte_name": "Bravonium",
                "value_num": "4409.5",
                "unit": "mg/dL",
            },
        ],
    )
    write_csv(
        folder,
        "events",
        [
            {
                "event_id": "evt-alpha-1",
                "patient_id": ALPHA,
                "start_time": "2020-01-03",
                "kind": "diagnosis",
                "label": "Multiple myeloma",
            },
            {
                "event_id": "evt-bravo-1",
                "patient_id": BRAVO,
                "start_time": "2021-02-01",
                "kind": "admission",
                "label": "Quokka bite",
            },
        ],
    )


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RecordStore, Path]]:
    root = tmp_path_factory.mktemp("isolation")
    _write_bundle(root / "bundle")
    store_file = root / "store.duckdb"
    with connect(store_file) as store:
        load_bundle(store, root / "bundle")
        # B's rows on disk beside the store, for queries that try to read files.
        store.connection.execute(
            f"COPY (SELECT * FROM labs UNION ALL BY NAME SELECT * FROM documents) "
            f"TO '{root / 'bravo.csv'}' (HEADER)"
        )
        yield store, root


def _leaks(rows: list[tuple[Any, ...]]) -> list[str]:
    text = repr(rows)
    return [secret for secret in BRAVO_SECRETS if secret in text]


# -- the grammar ----------------------------------------------------------------------------


def _casings(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [name, name.upper(), name.capitalize(), f'"{name}"', f'"{name.upper()}"']
    )


def _table_name(root: Path) -> st.SearchStrategy[str]:
    plain = st.sampled_from(PATIENT_TABLES + OTHER_TABLES).flatmap(_casings)
    qualifier = st.sampled_from(
        ["", "main.", "MAIN.", '"main".', "memory.main.", "store.main.", "temp.main.", "system."]
    )
    qualified = st.builds(lambda q, n: q + n, qualifier, plain)
    files = st.sampled_from(
        [
            f"'{root / 'bravo.csv'}'",
            f"read_csv('{root / 'bravo.csv'}')",
            f"read_text('{root / 'bravo.csv'}')",
            f"read_blob('{root / 'store.duckdb'}')",
            f"glob('{root}/*')",
            "query_table('labs')",
            "query_table('main.documents')",
            "duckdb_tables()",
            "duckdb_databases()",
            "information_schema.tables",
            "duckdb_settings()",
        ]
    )
    return st.one_of(qualified, qualified, files)


def _queries(root: Path) -> st.SearchStrategy[str]:
    table = _table_name(root)
    column = st.sampled_from(["*", "patient_id", "count(*)", "count(DISTINCT patient_id)"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        relation = st.one_of(table, inner.map(lambda q: f"({q})"))
        return st.one_of(
            st.builds(lambda c, r: f"SELECT {c} FROM {r} AS x", column, relation),
            st.builds(lambda a, b: f"{a} UNION ALL BY NAME {b}", inner, inner),
            st.builds(
                lambda name, q, t: f"SELECT * FROM (WITH {name} AS ({q}) SELECT * FROM {t})",
                st.sampled_from(PATIENT_TABLES + OTHER_TABLES).flatmap(_casings),
                inner,
                table,
            ),
            st.builds(
                lambda a, b: f"SELECT * FROM ({a}) AS l, LATERAL (SELECT * FROM {b}) AS r",
                inner,
                table,
            ),
            st.builds(lambda q: f"SELECT (SELECT count(*) FROM ({q}) AS s) AS n", inner),
            # A CTE in a subquery, and the same name read outside it.
            st.builds(
                lambda n, c: (
                    f"SELECT * FROM (WITH {n} AS (SELECT 1 AS one) SELECT * FROM {n}) "
                    f"AS s, (SELECT {c} FROM {n}) AS r"
                ),
                st.sampled_from(PATIENT_TABLES).flatmap(_casings),
                column,
            ),
            st.builds(lambda q, t: f"SELECT * FROM {t} AS y WHERE EXISTS ({q})", inner, table),
        )

    selects = st.recursive(
        st.builds(lambda c, t: f"SELECT {c} FROM {t}", column, table), extend, max_leaves=6
    )
    prefixes = st.sampled_from(
        [
            "",
            f"ATTACH '{root / 'store.duckdb'}' AS store (READ_ONLY); ",
            "SET enable_external_access = true; ",
            "PRAGMA enable_external_access = true; ",
            "RESET lock_configuration; ",
            f"COPY labs TO '{root / 'out.csv'}'; ",
            "CREATE TEMP VIEW v AS SELECT 1; ",
            "INSTALL sqlite; ",
            "/* comment */ ",
        ]
    )
    return st.builds(lambda p, q: p + q, prefixes, selects)


@pytest.fixture(scope="module")
def bypass(setting: tuple[RecordStore, Path]) -> PatientDatabase:
    """Patient A's database with every table copied, not shared with the store's scopes."""
    store, _ = setting
    database = PatientDatabase(ALPHA, store.data_version())
    database.cursor(store.connection, PATIENT_TABLES).close()
    return database


# -- the properties ---------------------------------------------------------------------------


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_generated_sql_returns_another_patients_rows(setting, data):
    store, root = setting
    sql = data.draw(_queries(root))
    try:
        rows = store.scope(ALPHA).fetch(sql)
    except (ValueError, duckdb.Error):
        return
    assert not _leaks(rows), sql


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_patient_database_holds_no_other_patient_even_without_the_statement_check(
    setting, bypass, data
):
    store, root = setting
    sql = data.draw(_queries(root))
    with bypass.cursor(store.connection, PATIENT_TABLES) as cursor:
        try:
            # Every statement runs, in order, as a hostile caller with the raw cursor would.
            rows = cursor.execute(sql).fetchall()
        except duckdb.Error:
            return
    assert not _leaks(rows), sql


TRICKS = [
    # Case variants of a shadowing CTE: the widening a name check missed.
    "SELECT (SELECT 1 FROM (WITH LABS AS (SELECT 1) SELECT * FROM LABS)), "
    "(SELECT count(DISTINCT patient_id) FROM LABS)",
    'SELECT (SELECT 1 FROM (WITH "Documents" AS (SELECT 1) SELECT * FROM "Documents")), '
    "(SELECT string_agg(text, '|') FROM \"Documents\")",
    "SELECT * FROM main.labs",
    "SELECT * FROM memory.main.documents",
    "SELECT * FROM query_table('labs')",
    "FROM labs UNION ALL BY NAME FROM documents",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM patients p, LATERAL (SELECT * FROM labs l WHERE l.patient_id <> p.patient_id)",
]


@pytest.mark.parametrize("sql", TRICKS)
def test_known_widening_tricks_see_only_the_scoped_patient(setting, sql):
    store, _ = setting
    try:
        rows = store.scope(ALPHA).fetch(sql)
    except duckdb.Error:
        return
    assert not _leaks(rows)


def test_a_shadowing_cte_in_another_case_counts_one_patient(setting):
    store, _ = setting
    rows = store.scope(ALPHA).fetch(
        "SELECT (SELECT 1 FROM (WITH LABS AS (SELECT 1) SELECT * FROM LABS)), "
        "(SELECT count(DISTINCT patient_id) FROM LABS)"
    )
    assert rows == [(1, 1)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{root}/bravo.csv')",
        "SELECT * FROM '{root}/bravo.csv'",
        "SELECT * FROM glob('{root}/*')",
        "SELECT * FROM read_blob('{root}/store.duckdb')",
    ],
)
def test_scoped_sql_cannot_read_files(setting, sql):
    store, root = setting
    with pytest.raises(ValueError, match="may not read files"):
        store.scope(ALPHA).fetch(sql.format(root=root))


def test_python_variables_are_not_scanned(setting):
    store, _ = setting
    bravo_frame = store.connection.sql("SELECT * FROM labs").pl()  # noqa: F841 — the bait
    with pytest.raises(duckdb.CatalogException):
        store.scope(ALPHA).fetch("SELECT * FROM bravo_frame")
