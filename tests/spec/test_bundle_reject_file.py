"""Quarantine: a load given a reject file loads the valid rows and writes out the others.

Each rejected row gets a line per problem (file, row, column, reason, the values given); rows
naming a rejected patient go with it; every copy of a duplicated id goes. Problems that are not
a row's still stop the load, and a load that stops writes no reject file and changes nothing.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordagent.errors import DataLoadError, UserError
from recordagent.records import load as load_module
from recordagent.records.bundle import read_table
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.rejects import REJECT_COLUMNS
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.store_file import open_for_load
from recordagent.settings import ChunkingSettings, LoadSettings, Settings
from tests.helpers import FIXTURES, store_snapshot, use_document_folder

RECORD_TABLES = ("patients", "documents", "chunks", "labs", "events")


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == REJECT_COLUMNS
        return list(reader)


def records(store: RecordStore) -> dict[str, list[tuple[object, ...]]]:
    """Every record row but its source, for comparing two loads of different files."""
    return {
        t: store.connection.execute(
            f"SELECT * EXCLUDE (source_id) FROM {t} ORDER BY ALL"
        ).fetchall()
        for t in RECORD_TABLES
    }


def append(bundle: Path, table: str, *lines: str) -> None:
    with (bundle / f"{table}.csv").open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


BAD_ROWS = {
    "patients": ["P9,female,1950-13-01,"],  # no 13th month
    "documents": ['DX,A,2020-02-30,progress note,Bad date,"text"'],
    "labs": ["LX,B,2020-01-01 10:00,,Creatinine,high,,mg/dL,,,"],
    "events": ["EX,A,2020-01-01,,holiday,,Away,"],  # not an event kind
}


def test_invalid_rows_of_every_table_are_rejected_and_the_rest_loads_as_without_them(
    tmp_path: Path, two_patients: Path
):
    clean = tmp_path / "clean"
    shutil.copytree(two_patients, clean)
    for table, lines in BAD_ROWS.items():
        append(two_patients, table, *lines)
    out = tmp_path / "rejects.csv"

    with connect() as quarantined, connect() as reference:
        report = load_bundle(quarantined, two_patients, source="x", reject_path=out)
        load_bundle(reference, clean, source="x")
        assert records(quarantined) == records(reference)

    assert report.rejected == {"patients": 1, "documents": 1, "labs": 1, "events": 1}
    assert report.reject_file == str(out)
    lines = rejects(out)
    assert [(r["file"], r["row"], r["column"]) for r in lines] == [
        ("patients.csv", "3", "birth_date"),
        ("documents.csv", "4", "date"),
        ("labs.csv", "6", "value_num"),
        ("events.csv", "4", "kind"),
    ]
    assert "expected a number (got 'high')" in lines[2]["reason"]
    assert json.loads(lines[2]["values"]) == {
        "lab_id": "LX",
        "patient_id": "B",
        "time": "2020-01-01 10:00",
        "analyte_name": "Creatinine",
        "value_num": "high",
        "unit": "mg/dL",
    }


def test_rows_of_a_rejected_patient_are_rejected_with_it(store: RecordStore, tmp_path: Path):
    bundle = tmp_path / "b"
    shutil.copytree(FIXTURES / "two_patients", bundle)
    text = (bundle / "patients.csv").read_text().replace("B,male,1960-06-15", "B,male,1960-06-31")
    (bundle / "patients.csv").write_text(text)
    out = tmp_path / "rejects.csv"

    report = load_bundle(store, bundle, reject_path=out)

    assert store.patient_ids() == ["A"]
    b_rows = {
        t: store.connection.execute(f"SELECT count(*) FROM {t} WHERE patient_id = 'B'").fetchone()
        for t in ("documents", "labs", "events", "chunks")
    }
    assert set(b_rows.values()) == {(0,)}
    cascaded = [r for r in rejects(out) if r["file"] != "patients.csv"]
    assert cascaded and all(
        r["reason"] == "patient 'B' was rejected (patients.csv, row 2)"
        and r["column"] == "patient_id"
        for r in cascaded
    )
    assert report.rejected["patients"] == 1
    assert sum(report.rejected.values()) == 1 + len(cascaded)


def test_every_copy_of_a_duplicated_id_is_rejected(store: RecordStore, two_patients: Path):
    append(two_patients, "labs", "LA1,A,2020-02-01 08:00,,Creatinine,1.0,,mg/dL,,,")
    out = two_patients.parent / "rejects.csv"
    load_bundle(store, two_patients, reject_path=out)

    assert [(r["row"], r["reason"]) for r in rejects(out)] == [
        ("1", "duplicate id 'LA1' (rows 1, 6); every copy is rejected"),
        ("6", "duplicate id 'LA1' (rows 1, 6); every copy is rejected"),
    ]
    assert store.connection.execute(
        "SELECT count(*) FROM labs WHERE lab_id = 'LA1'"
    ).fetchone() == (0,)


def test_unknown_patients_and_ids_already_loaded_are_row_problems_too(tmp_path: Path):
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients", source="first")
        bundle = tmp_path / "second"
        bundle.mkdir()
        (bundle / "labs.csv").write_text(
            "lab_id,patient_id,time,analyte_name,value_num\n"
            "LA1,A,2021-01-01,Creatinine,1.0\n"  # LA1 is source first's
            "LN1,A,2021-01-01,Creatinine,1.1\n"
            "LN2,Q,2021-01-01,Creatinine,1.2\n"
        )
        out = tmp_path / "rejects.csv"
        report = load_bundle(store, bundle, reject_path=out)

        assert report.counts["labs"] == 1
        assert [(r["row"], r["reason"]) for r in rejects(out)] == [
            ("1", "id 'LA1' is already loaded (source 'first')"),
            ("3", "unknown patient 'Q' (not in this bundle's patients nor in the store)"),
        ]


def test_a_clean_bundle_writes_a_reject_file_of_its_header_alone(
    store: RecordStore, two_patients: Path
):
    out = two_patients.parent / "rejects.csv"
    out.write_text("stale rejects of an earlier load\n")
    report = load_bundle(store, two_patients, reject_path=out)

    assert rejects(out) == []
    assert report.rejected == {"patients": 0, "documents": 0, "labs": 0, "events": 0}
    assert report.counts["labs"] == 5


@pytest.mark.parametrize(
    ("table", "text"),
    [
        ("labs", "lab_id,patient_id,time,value_num\nL1,A,2020-01-01,1.0\n"),  # no analyte_name
        ("labs", "lab_id,patient_id,time,analyte_name,value_num,colour\nL1,A,2020,x,1,red\n"),
    ],
)
def test_a_problem_that_is_not_a_rows_still_stops_the_load(
    store: RecordStore, two_patients: Path, table: str, text: str
):
    (two_patients / f"{table}.csv").write_text(text)
    out = two_patients.parent / "rejects.csv"
    before = store_snapshot(store)
    with pytest.raises(DataLoadError) as caught:
        load_bundle(store, two_patients, reject_path=out)
    assert all(p.row is None for p in caught.value.problems)
    assert store_snapshot(store) == before
    assert not out.exists()


def test_a_bundle_whose_every_row_is_rejected_loads_nothing(store: RecordStore, tmp_path: Path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "patients.csv").write_text("patient_id,sex\nP1,x\nP2,y\n")
    (bundle / "labs.csv").write_text(
        "lab_id,patient_id,time,analyte_name,value_num\nL1,P1,2020-01-01,Creatinine,1\n"
    )
    out = tmp_path / "rejects.csv"
    with pytest.raises(DataLoadError) as caught:
        load_bundle(store, bundle, reject_path=out)
    assert [str(p) for p in caught.value.problems[:2]] == [
        "patients.csv: every row was rejected (2 rows); nothing to load",
        "labs.csv: every row was rejected (1 row); nothing to load",
    ]
    assert store.connection.execute("SELECT count(*) FROM sources").fetchone() == (0,)
    assert not out.exists()


def test_a_load_that_fails_after_validation_leaves_no_reject_file_and_the_store_as_it_was(
    store: RecordStore, two_patients: Path, monkeypatch: pytest.MonkeyPatch
):
    append(two_patients, "labs", "LX,B,2020-01-01 10:00,,Creatinine,high,,mg/dL,,,")
    out = two_patients.parent / "rejects.csv"
    before = store_snapshot(store)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(load_module, "insert_index", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        load_bundle(store, two_patients, reject_path=out)
    assert store_snapshot(store) == before
    assert sorted(p.name for p in two_patients.parent.iterdir()) == ["two_patients"]


def test_a_commit_that_fails_takes_the_published_reject_file_back(
    store: RecordStore, two_patients: Path, monkeypatch: pytest.MonkeyPatch
):
    out = two_patients.parent / "rejects.csv"
    real = load_module.publish_rejects

    def publish_then_fail(temporary: Path, target: Path) -> None:
        real(temporary, target)
        assert target.exists()
        raise KeyboardInterrupt  # as if Ctrl-C came between the rename and the commit

    monkeypatch.setattr(load_module, "publish_rejects", publish_then_fail)
    with pytest.raises(KeyboardInterrupt):
        load_bundle(store, two_patients, reject_path=out)
    assert store.patient_ids() == []
    assert sorted(p.name for p in two_patients.parent.iterdir()) == ["two_patients"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp, bundle: tmp / "missing" / "rejects.csv", "does not exist"),
        (lambda tmp, bundle: tmp, "is a folder"),
        (lambda tmp, bundle: bundle / "labs.csv" / "rejects.csv", "is a file, not a folder"),
        (lambda tmp, bundle: bundle / "rejects.csv", "inside the bundle folder"),
    ],
)
def test_a_reject_file_that_cannot_be_written_there_is_refused_before_loading(
    store: RecordStore, two_patients: Path, tmp_path: Path, where, message: str
):
    with pytest.raises(UserError, match=message):
        load_bundle(store, two_patients, reject_path=where(tmp_path, two_patients))
    assert store.patient_ids() == []


def test_unreadable_document_files_are_rejected_with_their_manifest_row(
    store: RecordStore, two_patients: Path
):
    documents = pl.read_csv(two_patients / "documents.csv")
    folder = use_document_folder(
        two_patients, documents.drop("text").with_columns(file=pl.col("document_id") + ".txt")
    )
    for document_id, text in documents.select("document_id", "text").rows()[1:]:
        (folder / f"{document_id}.txt").write_text(text)
    out = two_patients.parent / "rejects.csv"
    report = load_bundle(store, two_patients, reject_path=out)

    (line,) = rejects(out)
    assert (line["file"], line["row"], line["column"]) == (
        "documents/manifest.parquet",
        "1",
        "file",
    )
    assert "not found" in line["reason"]
    assert json.loads(line["values"])["file"] == "DA1.txt"
    assert report.counts["documents"] == documents.height - 1


def test_a_parquet_tables_values_are_written_as_json_values(store: RecordStore, two_patients: Path):
    (two_patients / "labs.csv").unlink()
    pl.DataFrame(
        {
            "lab_id": ["L1", "L2"],
            "patient_id": ["A", "A"],
            "time": ["2020-01-01", "2020-01-02"],
            "analyte_name": ["Creatinine", "Creatinine"],
            "value_num": [1.0, float("inf")],
        }
    ).write_parquet(two_patients / "labs.parquet")
    out = two_patients.parent / "rejects.csv"
    load_bundle(store, two_patients, reject_path=out)
    (line,) = rejects(out)
    assert (line["file"], line["row"], line["column"]) == ("labs.parquet", "2", "value_num")
    assert json.loads(line["values"])["value_num"] == "inf"


CELL = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "A", "B", "Z", "-1", "nan", "1e309", "2020-02-30", "2020-01-01", "2020-01-01T10:00Z"]
    ),
    st.sampled_from(["therapy", "female", "x" * 30, "\x00", "1,5", "2020-01-01 25:00", "7"]),
    st.text(max_size=6),
)


@st.composite
def fuzzed_table(draw: st.DrawFn) -> tuple[str, list[str], list[list[str | None]]]:
    table = draw(st.sampled_from(sorted(BUNDLE_TABLES)))
    spec = BUNDLE_TABLES[table]
    # Every column the spec has (most tables then survive as tables and rows are judged).
    columns = list(spec.column_names)
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=8))
    return table, columns, rows


CHUNKER = Chunker(ChunkingSettings())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fuzzed_table(), as_parquet=st.booleans())
def test_a_quarantining_load_accounts_for_every_row_or_changes_nothing(case, as_parquet):
    table, columns, rows = case
    with tempfile.TemporaryDirectory() as tmp, connect() as store:
        load_bundle(store, FIXTURES / "two_patients", source="base", chunker=CHUNKER)
        before = store_snapshot(store)
        bundle = Path(tmp) / "bundle"
        shutil.copytree(FIXTURES / "two_patients", bundle)
        (bundle / f"{table}.csv").unlink()
        frame = pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")
        target = bundle / f"{table}.{'parquet' if as_parquet else 'csv'}"
        frame.write_parquet(target) if as_parquet else frame.write_csv(target)
        out = Path(tmp) / "rejects.csv"
        try:
            report = load_bundle(store, bundle, source="fuzzed", reject_path=out, chunker=CHUNKER)
        except DataLoadError:
            assert store_snapshot(store) == before
            assert not out.exists()
            return
        read = {
            t: read_table(path, path.name).height
            for t in BUNDLE_TABLES
            if (path := next(bundle.glob(f"{t}.*"), None)) is not None
        }
        assert {t: report.counts[t] + report.rejected[t] for t in read} == read
        listed = {(r["file"], int(r["row"])) for r in rejects(out)}
        assert sum(report.rejected.values()) == len(listed)


def test_a_killed_loads_half_written_reject_file_is_removed_by_the_next_load(
    store: RecordStore, two_patients: Path
):
    dead_pid = 2**22 + 1  # above Linux's largest process id: no process has it
    left = two_patients.parent / f".rejects.csv.{dead_pid}.0badcafe.tmp"
    left.write_text("file,row\nlabs.csv,")
    load_bundle(store, two_patients, reject_path=two_patients.parent / "rejects.csv")
    assert sorted(p.name for p in two_patients.parent.iterdir()) == ["rejects.csv", "two_patients"]


def test_converted_timestamps_are_counted_in_the_rows_that_loaded(
    store: RecordStore, two_patients: Path
):
    (two_patients / "labs.csv").write_text(
        "lab_id,patient_id,time,analyte_name,value_num\n"
        "L1,A,2021-06-01T10:00Z,Creatinine,1.0\n"
        "L2,A,2021-06-01T11:00Z,Creatinine,high\n"
        "L3,A,2021-06-01 12:00,Creatinine,1.2\n"
    )
    report = load_bundle(
        store,
        two_patients,
        settings=Settings(load=LoadSettings(convert_timezone="Europe/Berlin")),
        reject_path=two_patients.parent / "rejects.csv",
    )
    assert report.counts["labs"] == 2
    assert report.converted_timestamps == 1


def test_a_first_loads_store_file_and_its_log_are_refused_as_the_reject_file(
    two_patients: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    for named in (db, tmp_path / "store.duckdb.wal", tmp_path / "." / "store.duckdb"):
        with (
            pytest.raises(UserError, match=r"is the record store .*store\.duckdb"),
            open_for_load(db) as store,
        ):
            load_bundle(store, two_patients, reject_path=named)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["two_patients"]


def test_an_existing_stores_file_is_refused_as_the_reject_file_under_any_name(
    two_patients: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    with open_for_load(db) as store:
        load_bundle(store, two_patients, source="first")
    (tmp_path / "alias.csv").hardlink_to(db)
    (tmp_path / "link.csv").symlink_to(db)
    before = db.read_bytes()
    for named in ("alias.csv", "link.csv", "store.duckdb", "store.duckdb.wal"):
        with (
            pytest.raises(UserError, match="is the record store"),
            open_for_load(db) as store,
        ):
            load_bundle(store, two_patients, source="second", reject_path=tmp_path / named)
        assert db.read_bytes() == before


def test_a_first_load_that_loses_the_race_to_create_the_store_leaves_the_winners_reject_file(
    tmp_path: Path,
):
    db, out = tmp_path / "store.duckdb", tmp_path / "rejects.csv"
    winner, loser = tmp_path / "winner", tmp_path / "loser"
    for bundle, lab in ((winner, "LW"), (loser, "LL")):
        shutil.copytree(FIXTURES / "two_patients", bundle)
        append(bundle, "labs", f"{lab},A,2020-01-01 10:00,,Creatinine,high,,mg/dL,,,")
    with pytest.raises(UserError, match="another load created the record store"):
        with open_for_load(db) as losing:
            # The winner starts later and lands first, while the loser's store is open.
            with open_for_load(db) as winning:
                load_bundle(winning, winner, reject_path=out)
            load_bundle(losing, loser, reject_path=out)
    assert [json.loads(r["values"])["lab_id"] for r in rejects(out)] == ["LW"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "loser",
        "rejects.csv",
        "store.duckdb",
        "winner",
    ]


def test_a_first_loads_reject_file_appears_only_once_the_store_has_landed(
    two_patients: Path, tmp_path: Path
):
    db, out = tmp_path / "store.duckdb", tmp_path / "rejects.csv"
    append(two_patients, "labs", "LX,A,2020-01-01 10:00,,Creatinine,high,,mg/dL,,,")
    with open_for_load(db) as store:
        report = load_bundle(store, two_patients, reject_path=out)
        assert not out.exists()
    assert report.reject_file == str(out.resolve())
    assert [r["file"] for r in rejects(out)] == ["labs.csv"]


def test_a_first_load_that_fails_after_loading_leaves_an_earlier_reject_file_as_it_was(
    two_patients: Path, tmp_path: Path
):
    db, out = tmp_path / "store.duckdb", tmp_path / "rejects.csv"
    out.write_text("an earlier load's\n")
    with pytest.raises(RuntimeError, match="after the load"):
        with open_for_load(db) as store:
            load_bundle(store, two_patients, reject_path=out)
            raise RuntimeError("after the load")
    assert out.read_text() == "an earlier load's\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rejects.csv", "two_patients"]
