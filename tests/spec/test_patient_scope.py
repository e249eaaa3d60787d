"""PatientScope: a scope for patient A never returns B's rows, whatever arguments are passed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordagent.errors import UserError
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES


@pytest.fixture(scope="module")
def loaded() -> Iterator[RecordStore]:
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        yield store


HOSTILE = [
    "B",
    "DB1",
    "LB1",
    "EB1",
    "' OR 1=1 --",
    "B' OR patient_id='B",
    "%",
    "*",
    "",
    "admission",
    "Calcium",
    "calcium",
]
strings = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))
string_lists = st.one_of(st.none(), st.lists(strings, max_size=4))
moments = st.one_of(
    st.none(),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    types=string_lists,
    ids=string_lists,
    names=string_lists,
    codes=string_lists,
    kinds=string_lists,
    start=moments,
    end=moments,
)
def test_scope_for_a_never_returns_rows_of_b(loaded, types, ids, names, codes, kinds, start, end):
    scope = loaded.scope("A")
    rows = [
        *scope.documents(types=types, document_ids=ids, start=start, end=end),
        *scope.labs(analyte_names=names, analyte_codes=codes, start=start, end=end),
        *scope.events(kinds=kinds, start=start, end=end),
        *scope.chunks(document_ids=ids),
        scope.patient(),
    ]
    assert {row.patient_id for row in rows} == {"A"}
    for doc_id in ids or []:
        found = scope.document(doc_id)
        assert found is None or found.patient_id == "A"


def test_unfiltered_readers_return_all_of_a_and_nothing_else(loaded: RecordStore):
    scope = loaded.scope("A")
    assert [d.document_id for d in scope.documents()] == ["DA1", "DA2"]
    assert [lab.lab_id for lab in scope.labs()] == ["LA1", "LA2", "LA3"]
    assert [e.event_id for e in scope.events()] == ["EA1", "EA2"]
    assert scope.document("DB1") is None
    assert scope.counts() == {"documents": 2, "chunks": 2, "labs": 3, "events": 2}


def test_raw_sql_sees_only_the_scoped_patient(loaded: RecordStore):
    scope = loaded.scope("A")
    assert scope.fetch(
        "SELECT DISTINCT patient_id FROM labs UNION SELECT patient_id FROM events"
    ) == [("A",)]
    joined = scope.fetch(
        "SELECT count(*) FROM labs l JOIN patients p USING (patient_id) WHERE l.lab_id = $id",
        {"id": "LB1"},
    )
    assert joined == [(0,)]
    frame = scope.frame("SELECT lab_id FROM labs ORDER BY lab_id")
    assert frame["lab_id"].to_list() == ["LA1", "LA2", "LA3"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM main.labs",
        'SELECT * FROM "main".documents',
        "SELECT * FROM main/**/.documents",
        'SELECT * FROM "memory".documents',
        "SELECT * FROM memory.main.labs",
        "SELECT * FROM LABS",
        'SELECT * FROM "Labs"',
        "SELECT * FROM query_table('labs')",
        "WITH labs AS (SELECT * FROM labs) SELECT * FROM labs",
        "SELECT * FROM labs WHERE lab_id IN (SELECT lab_id FROM information_schema.tables)",
    ],
)
def test_any_name_of_a_record_table_reads_the_scoped_patients_rows(loaded: RecordStore, sql: str):
    rows = loaded.scope("A").fetch(sql)
    assert "B" not in {row[1] for row in rows}
    assert not {repr(row) for row in rows} & {"LB1", "DB1", "EB1"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM sources",
        "SELECT (SELECT count(*) FROM schema_migrations)",
        "SELECT * FROM store6.documents",
        "SELECT * FROM temp.main.labs",
    ],
)
def test_tables_other_than_the_record_tables_do_not_exist_for_a_scope(
    loaded: RecordStore, sql: str
):
    with pytest.raises(duckdb.CatalogException):
        loaded.scope("A").fetch(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('labs.csv')",
        "SELECT * FROM glob('*')",
        "SELECT * FROM parquet_scan('x.parquet')",
        "SELECT * FROM labs, read_text('/etc/hostname')",
        "SELECT * FROM labs WHERE EXISTS (SELECT * FROM read_blob('/etc/hostname'))",
        "SELECT * FROM '/etc/hostname'",
    ],
)
def test_sql_reading_files_is_refused(loaded: RecordStore, sql: str):
    # A bare path is not looked up as a file at all (replacement scans are off): no such table.
    with pytest.raises((ValueError, duckdb.CatalogException), match="may not read files|/etc"):
        loaded.scope("A").fetch(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DELETE FROM labs",
        "DELETE FROM labs",
        "ATTACH 'other.duckdb'",
        "SET enable_external_access = true",
    ],
)
def test_anything_but_one_select_is_refused(loaded: RecordStore, sql: str):
    with pytest.raises(ValueError, match="one SELECT statement"):
        loaded.scope("A").fetch(sql)
    assert loaded.scope("A").counts()["labs"] == 3


def test_library_sql_with_ctes_set_operations_and_subqueries_is_allowed(loaded: RecordStore):
    scope = loaded.scope("A")
    rows = scope.fetch(
        "WITH recent AS (SELECT * FROM labs ORDER BY time DESC LIMIT 2) "
        "SELECT DISTINCT lab_id FROM recent "
        "UNION ALL SELECT document_id FROM documents WHERE document_id IN "
        "(SELECT document_id FROM chunks) ORDER BY 1"
    )
    assert rows == [("DA1",), ("DA2",), ("LA2",), ("LA3",)]
    counted = scope.fetch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
        "SELECT count(*) FROM n JOIN labs ON true"
    )
    assert counted == [(9,)]


def test_patient_id_cannot_be_rebound(loaded: RecordStore):
    with pytest.raises(ValueError, match="the scope's own"):
        loaded.scope("A").fetch("SELECT * FROM labs", {"patient_id": "B"})


def test_filters_reject_a_bare_string(loaded: RecordStore):
    with pytest.raises(TypeError, match="list of strings"):
        loaded.scope("A").documents(types="progress note")  # type: ignore[arg-type]


def test_unknown_patient_is_a_user_error(loaded: RecordStore):
    with pytest.raises(UserError, match="no patient 'Z'"):
        loaded.scope("Z")


def test_date_bounds_are_inclusive_whole_days(loaded: RecordStore):
    scope = loaded.scope("A")
    assert [
        d.document_id for d in scope.documents(start=dt.date(2020, 6, 1), end=dt.date(2020, 6, 1))
    ] == ["DA2"]
    assert [lab.lab_id for lab in scope.labs(end=dt.date(2020, 1, 4))] == ["LA1"]


def test_scopes_are_usable_from_threads(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        scopes = [store.scope("A"), store.scope("B")] * 8
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda s: {lab.patient_id for lab in s.labs()}, scopes))
    assert results == [{"A"}, {"B"}] * 8
