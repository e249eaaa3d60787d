"""Loading MIMIC-IV: the real demo (100 patients), the note fixture, and bad input."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from recordagent.errors import DataLoadError, UserError
from recordagent.records.db import RecordStore, connect
from recordagent.sources.mimic_iv import load_mimic_iv, packaged_labitem_loinc
from recordagent.tools.labs import QueryLabsInput, query_labs
from recordagent.tools.search import SearchDocumentsInput, search_documents
from recordagent.tools.timeline import GetTimelineInput, get_timeline
from tests.helpers import FIXTURES, SHARED_DATA, recordagent

DEMO = SHARED_DATA / "mimic-iv-demo"
NOTES = FIXTURES / "mimic_iv_notes"
needs_demo = pytest.mark.skipif(
    not (DEMO / "hosp" / "patients.csv.gz").is_file(),
    reason=f"the MIMIC-IV demo is not at {DEMO} (../shared/data/mimic-iv-demo)",
)


def raw(sql: str) -> list[tuple]:
    """An independent query over the demo's own files (``{hosp}`` is the hosp folder)."""
    with duckdb.connect() as con:
        return con.execute(sql.format(hosp=DEMO / "hosp", icu=DEMO / "icu")).fetchall()


def store_rows(store: RecordStore, sql: str) -> list[tuple]:
    return store.connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def demo() -> Iterator[RecordStore]:
    if not (DEMO / "hosp" / "patients.csv.gz").is_file():
        pytest.skip(f"the MIMIC-IV demo is not at {DEMO}")
    with connect() as store:
        load_mimic_iv(store, DEMO)
        yield store


@needs_demo
def test_all_100_patients_load_with_sex_birth_estimate_and_death(demo: RecordStore):
    expected = {
        str(s): (g, y - a, d)
        for s, g, a, y, d in raw(
            "SELECT subject_id, gender, anchor_age, anchor_year, dod "
            "FROM read_csv('{hosp}/patients.csv.gz')"
        )
    }
    loaded = store_rows(demo, "SELECT patient_id, sex, birth_date, death_date FROM patients")
    assert len(loaded) == len(expected) == 100
    for patient, sex, birth, death in loaded:
        gender, birth_year, dod = expected[patient]
        assert sex == {"F": "female", "M": "male"}[gender]
        assert birth == dt.date(birth_year, 1, 1)
        assert death == dod


@needs_demo
def test_lab_counts_per_patient_equal_the_sources(demo: RecordStore):
    for prefix, table in (
        ("LAB-", "labevents"),
        ("MICRO-", "microbiologyevents"),
        ("OMR-", "omr"),
    ):
        source = dict(
            raw(
                "SELECT subject_id::VARCHAR, count(*) "
                f"FROM read_csv('{{hosp}}/{table}.csv.gz') GROUP BY 1"
            )
        )
        loaded = dict(
            store_rows(
                demo,
                f"SELECT patient_id, count(*) FROM labs WHERE lab_id LIKE '{prefix}%' GROUP BY 1",
            )
        )
        assert loaded == source, table
    assert sum(source.values()) == 2964  # omr, the last one


@needs_demo
def test_event_counts_equal_the_sources(demo: RecordStore):
    def count(table: str, where: str = "true", folder: str = "hosp") -> int:
        return raw(f"SELECT count(*) FROM read_csv('{{{folder}}}/{table}.csv.gz') WHERE {where}")[
            0
        ][0]

    expected = {
        "ADM-": count("admissions"),
        "TRF-": count("transfers"),
        "SRV-": count("services"),
        "DX-": count("diagnoses_icd"),
        "PX-": count("procedures_icd"),
        "RX-": count("prescriptions"),
        "MAR-": count("emar"),
        "ICU-": count("icustays", folder="icu"),
        "DEATH-": count("patients", "dod IS NOT NULL"),
    }
    for prefix, n in expected.items():
        got = store_rows(demo, f"SELECT count(*) FROM events WHERE event_id LIKE '{prefix}%'")
        assert got[0][0] == n, prefix
    assert expected["DX-"] == 4506 and expected["MAR-"] == 35835


@needs_demo
def test_spot_checked_lab_rows_keep_values_units_flags_and_times(demo: RecordStore):
    rows = {
        r[0]: r[1:]
        for r in store_rows(
            demo,
            "SELECT lab_id, patient_id, time, analyte_code, analyte_name, value_num, value_text, "
            "unit, ref_low, ref_high, flag, fluid, category, priority, comment FROM labs "
            "WHERE lab_id IN ('LAB-172061', 'LAB-172062', 'LAB-24', 'LAB-25', 'MICRO-7013')",
        )
    }
    source = {
        r[0]: r[1:]
        for r in raw(
            "SELECT labevent_id, subject_id, charttime, valuenum, valueuom, ref_range_lower, "
            "ref_range_upper, flag, priority FROM read_csv('{hosp}/labevents.csv.gz') "
            "WHERE labevent_id IN (172061, 172062)"
        )
    }
    for labevent_id in (172061, 172062):
        subject, time, value, unit, low, high, flag, priority = source[labevent_id]
        got = rows[f"LAB-{labevent_id}"]
        assert got[0] == str(subject) and got[1] == time
        assert (got[4], got[6], got[7], got[8], got[9]) == (value, unit, low, high, flag)
        assert got[12] == priority and got[10] == "Blood" and got[11] == "Hematology"
    # RDW (51277) has a LOINC code in the packaged map; the other item keeps MIMIC's id.
    assert rows["LAB-172061"][2] == "788-0" and rows["LAB-172061"][3] == "RDW"
    assert rows["LAB-172062"][9] == "abnormal"
    # A de-identified value whose result is in the comment; a result only in the comment.
    assert rows["LAB-24"][5] == "POSITIVE." and rows["LAB-24"][13] == "POSITIVE."
    assert rows["LAB-25"][5] == "NEGATIVE." and rows["LAB-25"][4] is None
    micro = rows["MICRO-7013"]
    assert micro[0] == "10020944" and micro[1] == dt.datetime(2131, 2, 27, 17, 41)
    assert micro[3] == "R/O VANCOMYCIN RESISTANT ENTEROCOCCUS"
    assert micro[5] == "ENTEROCOCCUS SP.; VANCOMYCIN R (MIC >256)" and micro[10] == "SWAB"


@needs_demo
def test_diagnoses_carry_their_icd_version_code_title_and_admission_dates(demo: RecordStore):
    ((code, label, start, end),) = store_rows(
        demo,
        "SELECT code, label, start_time, end_time FROM events WHERE event_id = 'DX-28998349-35'",
    )
    ((admit, discharge),) = raw(
        "SELECT admittime, dischtime FROM read_csv('{hosp}/admissions.csv.gz') "
        "WHERE hadm_id = 28998349"
    )
    assert (code, label) == ("ICD9:V140", "Personal history of allergy to penicillin")
    assert (start, end) == (admit, discharge)
    untitled = store_rows(
        demo, "SELECT count(*) FROM events WHERE kind = 'diagnosis' AND label = code"
    )
    assert untitled[0][0] == 0


@needs_demo
def test_the_loinc_map_matches_the_demo_dictionary_and_query_labs_works(demo: RecordStore):
    dictionary = {
        i: (label, fluid)
        for i, label, fluid in raw(
            "SELECT itemid, label, fluid FROM read_csv('{hosp}/d_labitems.csv.gz')"
        )
    }
    for row in packaged_labitem_loinc().iter_rows(named=True):
        assert dictionary[row["itemid"]] == (row["label"], row["fluid"]), row
    patient = "10014354"
    ((peak,),) = raw(
        "SELECT max(valuenum) FROM read_csv('{hosp}/labevents.csv.gz') "
        f"WHERE subject_id = {patient} AND itemid = 50912"
    )
    result = query_labs(demo.scope(patient), QueryLabsInput(analyte="creatinine", aggregate="max"))
    assert result.result == peak and result.unit == "mg/dL"
    platelets = query_labs(demo.scope(patient), QueryLabsInput(analyte="platelets"))
    assert platelets.total > 0 and len(platelets.groups) == 1  # K/uL is the catalogue's unit


@needs_demo
def test_timeline_shows_admissions_and_a_reload_is_a_no_op(demo: RecordStore):
    timeline = get_timeline(demo.scope("10014354"), GetTimelineInput(kinds=["admission"]))
    assert timeline.entries and all(e.kind == "admission" for e in timeline.entries)
    before = demo.data_version()
    assert load_mimic_iv(demo, DEMO).status == "unchanged"
    assert demo.data_version() == before


def test_the_note_module_becomes_searchable_documents():
    with connect() as store:
        report = load_mimic_iv(store, NOTES)
        assert report.counts == {
            "patients": 2,
            "documents": 4,
            "labs": 4,
            "events": 3,
            "chunks": 4,
        }
        docs = store_rows(store, "SELECT document_id, type, title FROM documents ORDER BY 1")
        assert docs == [
            ("19000001-DS-1", "discharge summary", "discharge summary"),
            ("19000001-RR-5", "radiology report", "CHEST (PA AND LAT)"),
            ("19000002-DS-1", "discharge summary", "discharge summary"),
            ("19000002-RR-2", "radiology report", "CT HEAD W/O CONTRAST"),
        ]
        hits = search_documents(
            store.scope("19000002"), SearchDocumentsInput(query="blood cultures E. coli")
        ).hits
        assert [h.document_id for h in hits][:1] == ["19000002-DS-1"]
        names = store_rows(store, "SELECT lab_id, analyte_name FROM labs ORDER BY 1")
        assert ("LAB-900003", "Creatinine (Urine)") in names
        urine_free = query_labs(store.scope("19000001"), QueryLabsInput(analyte="creatinine"))
        assert [p.lab_id for p in urine_free.points] == ["LAB-900001", "LAB-900002"]
        deaths = store_rows(store, "SELECT event_id, start_time FROM events WHERE kind = 'death'")
        assert deaths == [("DEATH-19000002", dt.datetime(2186, 2, 11))]


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "mimic"
    shutil.copytree(NOTES, folder)
    return folder


def test_a_malformed_value_names_file_row_and_column_and_writes_nothing(tmp_path: Path):
    folder = _copy(tmp_path)
    with (folder / "hosp" / "labevents.csv").open("a", encoding="utf-8") as labs:
        labs.write(
            "900005,19000001,29000011,7000005,50912,,2180-03-05 06:00:00,,x,high,mg/dL,,,,,\n"
        )
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_mimic_iv(store, folder)
        (problem,) = caught.value.problems
        assert problem.file == "hosp/labevents.csv"
        assert (problem.row, problem.column) == (5, "valuenum")
        assert "high" not in str(caught.value)  # record values stay out of messages
        for table in ("sources", "patients", "events", "labs", "documents", "chunks"):
            assert store_rows(store, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_patients_held_by_another_source_are_refused(tmp_path: Path):
    folder = _copy(tmp_path)  # other files (so not "already loaded"), the same patients
    (folder / "note" / "radiology.csv").unlink()
    with connect() as store:
        load_mimic_iv(store, NOTES)
        with pytest.raises(DataLoadError, match="already in the store from source"):
            load_mimic_iv(store, folder, source="second copy")
        assert store_rows(store, "SELECT name FROM sources") == [("mimic_iv_notes",)]


def test_a_changed_folder_needs_replace_and_then_swaps_the_rows(tmp_path: Path):
    folder = _copy(tmp_path)
    with connect() as store:
        load_mimic_iv(store, folder)
        (folder / "note" / "radiology.csv").unlink()
        with pytest.raises(UserError, match="already loaded from different files"):
            load_mimic_iv(store, folder)
        report = load_mimic_iv(store, folder, replace=True)
        assert report.status == "replaced" and report.counts["documents"] == 2
        assert store_rows(store, "SELECT count(*) FROM documents") == [(2,)]


def test_a_folder_without_hosp_patients_is_a_clear_error(tmp_path: Path):
    (tmp_path / "hosp").mkdir()
    with connect() as store, pytest.raises(UserError, match="does not look like MIMIC-IV"):
        load_mimic_iv(store, tmp_path)


def test_the_command_line_loads_mimic_iv_and_refuses_unknown_kinds(tmp_path: Path):
    db = tmp_path / "store.duckdb"
    result = recordagent("load", "mimic-iv", str(NOTES), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "source 'mimic_iv_notes': loaded" in result.stdout
    bad = recordagent("load", "fhir-ish", str(NOTES), "--db", str(tmp_path / "x.duckdb"))
    assert bad.returncode != 0
    assert " ".join(bad.stderr.split()) == (  # one message (rich wraps it at 100 columns)
        "error: unknown source kind 'fhir-ish'; use one of bundle, mimic-iv, fhir, omop before the "
        "path, "
        "or give a bundle folder alone"
    )
    assert not (tmp_path / "x.duckdb").exists()


@needs_demo
def test_the_demo_runs_end_to_end_on_the_mimic_iv_demo(tmp_path: Path):
    out = tmp_path / "demo"
    result = recordagent(
        "demo",
        "--source",
        "mimic-iv-demo",
        "--mimic-path",
        str(DEMO),
        "--items",
        "8",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "source 'mimic-iv-demo': loaded" in flat
    assert "8 questions sampled from" in flat and "silver labels" in flat
    assert flat.count("MOCK MODEL") >= 2 and "audited" in flat
    for runner in ("agent", "single_pass_rag", "iterative_rag", "full_context"):
        assert (out / f"{runner}.jsonl").is_file()
    assert (out / "report.html").is_file() and (out / "labels.csv").is_file()


def test_the_demo_names_a_missing_mimic_folder(tmp_path: Path):
    result = recordagent(
        "demo",
        "--source",
        "mimic-iv-demo",
        "--mimic-path",
        str(tmp_path / "absent"),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode != 0
    assert "no MIMIC-IV demo at" in " ".join(result.stderr.split())


@needs_demo
def test_an_item_mapped_to_loinc_is_still_found_by_its_itemid(demo: RecordStore):
    (patient,) = demo.connection.execute(
        "SELECT patient_id FROM labs WHERE local_code = 'MIMIC:50912' "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    ).fetchone()
    scope = demo.scope(patient)
    by_item = query_labs(scope, QueryLabsInput(analyte="50912", aggregate="count"))
    by_name = query_labs(scope, QueryLabsInput(analyte="creatinine", aggregate="count"))
    assert by_item.resolved_by == "record code" and by_item.result == by_name.result > 0
