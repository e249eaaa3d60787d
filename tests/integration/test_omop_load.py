"""Loading OMOP CDM: the real Synthea27Nj export (28 persons), the note fixture, bad input."""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from recordagent.errors import DataLoadError, UserError
from recordagent.records.db import RecordStore, connect
from recordagent.sources.omop import load_omop
from recordagent.tools.labs import QueryLabsInput, query_labs
from recordagent.tools.search import SearchDocumentsInput, search_documents
from recordagent.tools.timeline import GetTimelineInput, get_timeline
from tests.helpers import FIXTURES, SHARED_DATA

SYNTHEA = SHARED_DATA / "omop-synthea27nj" / "Synthea27Nj_5.4.zip"
NOTES = FIXTURES / "omop" / "notes"
needs_synthea = pytest.mark.skipif(
    not SYNTHEA.is_file(),
    reason=f"the OMOP Synthea27Nj export is not at {SYNTHEA} (../shared/data/omop-synthea27nj)",
)


def store_rows(store: RecordStore, sql: str) -> list[tuple]:
    return store.connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def synthea_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export's CSVs, extracted once for independent counting (never into the repo)."""
    if not SYNTHEA.is_file():
        pytest.skip(f"the OMOP Synthea27Nj export is not at {SYNTHEA}")
    folder = tmp_path_factory.mktemp("synthea27nj")
    with zipfile.ZipFile(SYNTHEA) as archive:
        for member in archive.namelist():
            if member.endswith(".csv") and not member.startswith("__MACOSX"):
                archive.extract(member, folder)
    return folder


def raw(folder: Path, sql: str) -> list[tuple]:
    """An independent query over the export's own CSVs (``{dir}`` is their folder)."""
    with duckdb.connect() as con:
        return con.execute(sql.format(dir=folder)).fetchall()


@pytest.fixture(scope="module")
def synthea() -> Iterator[RecordStore]:
    if not SYNTHEA.is_file():
        pytest.skip(f"the OMOP Synthea27Nj export is not at {SYNTHEA}")
    with connect() as store:
        load_omop(store, SYNTHEA)
        yield store


@needs_synthea
def test_all_28_persons_load_with_sex_birth_and_death(synthea: RecordStore, synthea_csv: Path):
    expected = {
        str(p): (g, b)
        for p, g, b in raw(
            synthea_csv,
            "SELECT person_id, gender_concept_id, CAST(birth_datetime AS DATE) "
            "FROM read_csv('{dir}/PERSON.csv')",
        )
    }
    deaths = dict(
        raw(synthea_csv, "SELECT person_id::VARCHAR, death_date FROM read_csv('{dir}/DEATH.csv')")
    )
    loaded = store_rows(synthea, "SELECT patient_id, sex, birth_date, death_date FROM patients")
    assert len(loaded) == len(expected) == 28
    for patient, sex, birth, death in loaded:
        gender, born = expected[patient]
        assert sex == {8532: "female", 8507: "male"}[gender]
        assert birth == born
        assert death == deaths.get(patient)
    events = store_rows(synthea, "SELECT count(*) FROM events WHERE kind = 'death'")
    assert events == [(len(deaths),)]


@needs_synthea
@pytest.mark.parametrize(
    ("table", "prefix", "store_table"),
    [
        ("MEASUREMENT", "M-", "labs"),
        ("VISIT_OCCURRENCE", "V-", "events"),
        ("CONDITION_OCCURRENCE", "C-", "events"),
        ("DRUG_EXPOSURE", "DE-", "events"),
        ("PROCEDURE_OCCURRENCE", "P-", "events"),
        ("OBSERVATION", "O-", "events"),
    ],
)
def test_counts_per_person_equal_the_csvs(
    synthea: RecordStore, synthea_csv: Path, table: str, prefix: str, store_table: str
):
    source = dict(
        raw(
            synthea_csv,
            f"SELECT person_id::VARCHAR, count(*) FROM read_csv('{{dir}}/{table}.csv') GROUP BY 1",
        )
    )
    id_column = "lab_id" if store_table == "labs" else "event_id"
    loaded = dict(
        store_rows(
            synthea,
            f"SELECT patient_id, count(*) FROM {store_table} "
            f"WHERE {id_column} LIKE '{prefix}%' GROUP BY 1",
        )
    )
    assert loaded == source
    assert sum(loaded.values()) > 0


@needs_synthea
def test_visits_and_measurements_carry_concept_names(synthea: RecordStore, synthea_csv: Path):
    names = dict(
        raw(synthea_csv, "SELECT concept_id, concept_name FROM read_csv('{dir}/CONCEPT.csv')")
    )
    visits = {
        f"V-{v}": names[c]
        for v, c in raw(
            synthea_csv,
            "SELECT visit_occurrence_id, visit_concept_id "
            "FROM read_csv('{dir}/VISIT_OCCURRENCE.csv')",
        )
    }
    loaded = dict(
        store_rows(synthea, "SELECT event_id, label FROM events WHERE event_id LIKE 'V-%'")
    )
    assert loaded == visits
    kinds = dict(
        store_rows(
            synthea,
            "SELECT label, any_value(kind) FROM events WHERE event_id LIKE 'V-%' GROUP BY 1",
        )
    )
    assert kinds["Inpatient Visit"] == "admission"
    assert kinds["Outpatient Visit"] == kinds["Emergency Room Visit"] == "encounter"
    unnamed = store_rows(
        synthea,
        "SELECT count(*) FROM labs WHERE analyte_name LIKE 'OMOP:%' OR analyte_name IS NULL",
    )
    assert unnamed == [(0,)]


@needs_synthea
def test_measurement_values_units_and_dates(synthea: RecordStore):
    rows = store_rows(
        synthea,
        "SELECT lab_id, patient_id, time, analyte_code, analyte_name, value_num, unit "
        "FROM labs WHERE lab_id IN ('M-1', 'M-933', 'M-2') ORDER BY lab_id",
    )
    assert rows == [
        ("M-1", "1", dt.datetime(2013, 5, 17), "29463-7", "Body weight", 48.1, "kg"),
        (
            "M-2",
            "1",
            dt.datetime(2015, 5, 29),
            "72514-3",
            "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            1.0,
            "{score}",
        ),
        (
            "M-933",
            "5",
            dt.datetime(2019, 12, 5),
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            192.5,
            "mg/dL",
        ),
    ]


@needs_synthea
def test_query_labs_and_timeline_on_a_loaded_person(synthea: RecordStore):
    ((patient, count, peak),) = store_rows(
        synthea,
        # Creatinine [Mass/volume] in Blood: the catalogue's creatinine by its LOINC code.
        "SELECT patient_id, count(*), max(value_num) FROM labs WHERE analyte_code = '38483-4' "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
    )
    result = query_labs(
        synthea.scope(patient), QueryLabsInput(analyte="creatinine", aggregate="max")
    )
    assert result.result == pytest.approx(peak)
    assert result.unit == "mg/dL" and result.total == count and len(result.groups) == 1
    timeline = get_timeline(synthea.scope(patient), GetTimelineInput(kinds=["encounter"]))
    assert timeline.entries and all(e.kind == "encounter" for e in timeline.entries)
    before = synthea.data_version()
    assert load_omop(synthea, SYNTHEA).status == "unchanged"
    assert synthea.data_version() == before


def test_the_note_fixture_becomes_searchable_documents():
    with connect() as store:
        report = load_omop(store, NOTES)
        assert report.counts == {
            "patients": 2,
            "documents": 2,
            "labs": 2,
            "events": 1,
            "chunks": 2,
        }
        docs = store_rows(store, "SELECT document_id, patient_id, date, type, title FROM documents")
        assert sorted(docs) == [
            ("N-1", "101", dt.datetime(2021, 5, 6, 15), "discharge summary", "Discharge summary"),
            ("N-2", "102", dt.datetime(2020, 1, 10), "note", "Note"),
        ]
        hits = search_documents(
            store.scope("101"), SearchDocumentsInput(query="acute kidney injury")
        ).hits
        assert [h.document_id for h in hits][:1] == ["N-1"]
        patients = store_rows(store, "SELECT patient_id, sex, birth_date FROM patients ORDER BY 1")
        assert patients == [
            ("101", "female", dt.date(1970, 3, 1)),
            ("102", "male", dt.date(1955, 6, 30)),
        ]
        creatinine = query_labs(store.scope("101"), QueryLabsInput(analyte="creatinine"))
        assert [p.lab_id for p in creatinine.points] == ["M-1", "M-2"]
        assert creatinine.unit == "mg/dL"
        admissions = get_timeline(store.scope("101"), GetTimelineInput(kinds=["admission"]))
        assert [e.kind for e in admissions.entries] == ["admission"]


def test_a_zip_of_the_fixture_loads_the_same(tmp_path: Path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in NOTES.iterdir():
            zipped.write(path, f"cdm/{path.name.upper()}")
    with connect() as store:
        report = load_omop(store, archive)
        assert report.source == "export"
        assert report.counts["documents"] == 2 and report.counts["labs"] == 2


def test_a_malformed_value_names_file_row_and_column_and_writes_nothing(tmp_path: Path):
    folder = tmp_path / "omop"
    shutil.copytree(NOTES, folder)
    with (folder / "MEASUREMENT.csv").open("a", encoding="utf-8") as labs:
        labs.write("3,101,3016723,2021-05-05,,high,0,8840,,,2160-0,mg/dL,high\n")
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_omop(store, folder)
        (problem,) = caught.value.problems
        assert problem.file == "MEASUREMENT.csv"
        assert (problem.row, problem.column) == (3, "value_as_number")
        assert "high" not in str(caught.value)  # record values stay out of messages
        for table in ("sources", "patients", "events", "labs", "documents", "chunks"):
            assert store_rows(store, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_a_folder_without_person_is_a_clear_error(tmp_path: Path):
    shutil.copy(NOTES / "CONCEPT.csv", tmp_path / "CONCEPT.csv")
    with connect() as store, pytest.raises(UserError, match="no PERSON.csv"):
        load_omop(store, tmp_path)


def test_a_bad_value_in_a_joined_table_names_that_file(tmp_path: Path):
    folder = tmp_path / "omop"
    shutil.copytree(NOTES, folder)
    (folder / "DEATH.csv").write_text("person_id,death_date\n101,2021-13-40\n", encoding="utf-8")
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_omop(store, folder)
        (problem,) = caught.value.problems
        assert (problem.file, problem.row, problem.column) == ("DEATH.csv", 1, "death_date")
        assert store_rows(store, "SELECT count(*) FROM patients") == [(0,)]


def test_upper_case_headers_are_read(tmp_path: Path):
    folder = tmp_path / "omop"
    shutil.copytree(NOTES, folder)
    person = folder / "person.csv"
    header, rest = person.read_text(encoding="utf-8").split("\n", 1)
    person.write_text(header.upper() + "\n" + rest, encoding="utf-8")
    with connect() as store:
        load_omop(store, folder)
        assert store_rows(store, "SELECT patient_id, sex FROM patients ORDER BY 1") == [
            ("101", "female"),
            ("102", "male"),
        ]


def _database(tmp_path: Path, *, bad_measurement: bool = False) -> Path:
    """The note fixture as tables of a DuckDB database (all text, as some exports ship)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "omop_cdm.duckdb"
    with duckdb.connect(str(target)) as con:
        con.execute("CREATE SCHEMA cdm")
        for path in NOTES.iterdir():
            con.execute(
                f"CREATE TABLE cdm.{path.stem.upper()} AS "
                f"SELECT * FROM read_csv('{path}', all_varchar = true)"
            )
        if bad_measurement:
            con.execute(
                "UPDATE cdm.MEASUREMENT SET value_as_number = 'high' WHERE measurement_id = '2'"
            )
    return target


def test_tables_in_a_duckdb_database_load_like_the_csvs(tmp_path: Path):
    database = _database(tmp_path)
    with connect() as from_csv, connect() as from_db:
        expected = load_omop(from_csv, NOTES).counts
        report = load_omop(from_db, database)
        assert report.source == "omop_cdm" and report.counts == expected
        for table, key in (
            ("patients", "patient_id"),
            ("labs", "lab_id"),
            ("events", "event_id"),
            ("documents", "document_id"),
        ):
            sql = f"SELECT * EXCLUDE (source_id) FROM {table} ORDER BY {key}"
            assert store_rows(from_db, sql) == store_rows(from_csv, sql), table
        assert load_omop(from_db, database).status == "unchanged"


def test_a_bad_value_in_a_duckdb_database_names_table_row_and_column(tmp_path: Path):
    database = _database(tmp_path, bad_measurement=True)
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_omop(store, database)
        (problem,) = caught.value.problems
        assert (problem.file, problem.row, problem.column) == (
            "omop_cdm.duckdb:cdm.MEASUREMENT",
            2,
            "value_as_number",
        )
        assert "high" not in str(caught.value)
        for table in ("sources", "patients", "labs", "documents"):
            assert store_rows(store, f"SELECT count(*) FROM {table}") == [(0,)], table
        load_omop(store, _database(tmp_path / "good"))  # the database is detached again


def test_the_command_line_loads_fhir_and_omop_fixtures(tmp_path: Path):
    from tests.helpers import FIXTURES, recordagent

    db = tmp_path / "store.duckdb"
    fhir = recordagent("load", "fhir", str(FIXTURES / "fhir" / "bundle"), "--db", str(db))
    assert fhir.returncode == 0, fhir.stderr
    assert "source 'bundle': loaded" in " ".join(fhir.stdout.split())
    omop = recordagent("load", "omop", str(FIXTURES / "omop" / "notes"), "--db", str(db))
    assert omop.returncode == 0, omop.stderr
    assert "source 'notes': loaded" in " ".join(omop.stdout.split())


def test_a_result_given_as_a_bound_keeps_its_operator_in_the_text(tmp_path: Path):
    export = tmp_path / "omop"
    shutil.copytree(NOTES, export)
    measurements = (export / "MEASUREMENT.csv").read_text().splitlines()
    header = measurements[0] + ",operator_concept_id"
    rows = [f"{row}," for row in measurements[1:]]
    rows.append("3,101,3016723,2021-05-05,,0.3,0,8840,0.6,1.2,2160-0,mg/dL,<0.3,4171756")
    (export / "MEASUREMENT.csv").write_text("\n".join([header, *rows]) + "\n")
    with (export / "CONCEPT.csv").open("a") as concepts:
        concepts.write("4171756,<,Meas Value Operator,SNOMED,Qualifier Value,S,276139006,"
                       "1970-01-01,2099-12-31,\n")  # fmt: skip
    with connect() as store:
        load_omop(store, export)
        rows_read = store.connection.execute(
            "SELECT lab_id, value_num, value_text FROM labs ORDER BY lab_id"
        ).fetchall()
    assert rows_read == [("M-1", 1.4, None), ("M-2", 1.1, None), ("M-3", 0.3, "<0.3")]
