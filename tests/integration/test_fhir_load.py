"""Loading FHIR R4: the Synthea New York bundles, small bundle/NDJSON fixtures, and bad input."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import gzip
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recordagent.errors import DataLoadError, ToolError
from recordagent.records.db import RecordStore, connect
from recordagent.sources.fhir import load_fhir
from recordagent.tools.labs import QUERY_LABS, QueryLabsInput, query_labs
from recordagent.tools.timeline import GetTimelineInput, get_timeline
from tests.helpers import FIXTURES, SHARED_DATA

SYNTHEA = SHARED_DATA / "synthea-fhir-ny" / "fhir"
BUNDLE = FIXTURES / "fhir" / "bundle" / "two_patients.json"
NDJSON = FIXTURES / "fhir" / "ndjson"
needs_synthea = pytest.mark.skipif(
    not SYNTHEA.is_dir(),
    reason=f"the Synthea FHIR bundles are not at {SYNTHEA} (../shared/data/synthea-fhir-ny)",
)


def rows(store: RecordStore, sql: str) -> list[tuple]:
    return store.connection.execute(sql).fetchall()


def is_lab(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "Observation" and any(
        c.get("code") == "laboratory"
        for cat in resource.get("category", [])
        for c in cat.get("coding", [])
    )


def patient_bundles() -> list[Path]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json")):
        with path.open() as handle:
            bundle = json.load(handle)
        if any(e["resource"]["resourceType"] == "Patient" for e in bundle.get("entry", [])):
            out.append(path)
    return out


@pytest.fixture(scope="module")
def synthea() -> Iterator[tuple[RecordStore, dict[str, Any]]]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"the Synthea FHIR bundles are not at {SYNTHEA}")
    with connect() as store:
        report = load_fhir(store, SYNTHEA)
        yield store, report.counts


@pytest.fixture(scope="module")
def raw_synthea() -> dict[str, dict[str, Any]]:
    """Per patient, counted with plain json: labs, notes (decoded) and sample lab values."""
    if not SYNTHEA.is_dir():
        pytest.skip(f"the Synthea FHIR bundles are not at {SYNTHEA}")
    out: dict[str, dict[str, Any]] = {}
    for path in patient_bundles():
        with path.open() as handle:
            entries = [e["resource"] for e in json.load(handle)["entry"]]
        (patient,) = [r["id"] for r in entries if r["resourceType"] == "Patient"]
        labs = [r for r in entries if is_lab(r)]
        notes = {
            f"DocumentReference/{r['id']}": base64.b64decode(
                r["content"][0]["attachment"]["data"]
            ).decode("utf-8")
            for r in entries
            if r["resourceType"] == "DocumentReference"
        }
        out[patient] = {"labs": labs, "notes": notes}
    return out


@needs_synthea
def test_every_patient_bundle_loads(synthea, raw_synthea):
    store, counts = synthea
    loaded = {r[0] for r in rows(store, "SELECT patient_id FROM patients")}
    assert loaded == set(raw_synthea) and len(loaded) == 91
    assert counts["patients"] == 91
    # Billing and directory resources are counted, not loaded.
    assert counts["skipped: resource Claim"] > 0 and counts["skipped: resource Organization"] > 0


@needs_synthea
def test_lab_and_note_counts_per_patient_equal_the_bundles(synthea, raw_synthea):
    store, _ = synthea
    labs = dict(
        rows(
            store, "SELECT patient_id, count(*) FROM labs WHERE category = 'laboratory' GROUP BY 1"
        )
    )
    notes = dict(rows(store, "SELECT patient_id, count(*) FROM documents GROUP BY 1"))
    for patient, raw in raw_synthea.items():
        assert labs.get(patient, 0) == len(raw["labs"]), patient
        assert notes.get(patient, 0) == len(raw["notes"]), patient


@needs_synthea
def test_decoded_notes_match_the_attachments(synthea, raw_synthea):
    store, _ = synthea
    texts = dict(rows(store, "SELECT document_id, text FROM documents"))
    expected = {k: v for raw in raw_synthea.values() for k, v in raw["notes"].items()}
    assert texts == expected


@needs_synthea
def test_spot_checked_lab_values_units_and_dates(synthea, raw_synthea):
    store, _ = synthea
    checked = 0
    sample = [o for raw in raw_synthea.values() for o in raw["labs"][:3] if "valueQuantity" in o]
    for obs in sample[:15]:
        quantity = obs["valueQuantity"]
        ((value, unit, time, code),) = rows(
            store,
            "SELECT value_num, unit, time, analyte_code FROM labs "
            f"WHERE lab_id = 'Observation/{obs['id']}'",
        )
        assert value == pytest.approx(quantity["value"])
        assert unit == quantity["unit"]
        assert time == dt.datetime.fromisoformat(obs["effectiveDateTime"]).replace(tzinfo=None)
        assert code == obs["code"]["coding"][0]["code"]
        checked += 1
    assert checked == 15


@needs_synthea
def test_timeline_and_query_labs_on_a_synthea_patient(synthea, raw_synthea):
    store, _ = synthea
    candidates = []
    for loinc, analyte in (("2160-0", "creatinine"), ("718-7", "hemoglobin")):
        for p, raw in raw_synthea.items():
            found = [o for o in raw["labs"] if o["code"]["coding"][0]["code"] == loinc]
            if found:
                candidates.append((analyte, p, found))
    if not candidates:
        pytest.skip("no Synthea patient has a creatinine or hemoglobin result")
    analyte, patient, observations = max(candidates, key=lambda c: len(c[2]))
    result = query_labs(store.scope(patient), QueryLabsInput(analyte=analyte, aggregate="max"))
    assert result.total == len(observations)
    assert result.result == pytest.approx(max(o["valueQuantity"]["value"] for o in observations))
    timeline = get_timeline(store.scope(patient), GetTimelineInput())
    assert timeline.total > 0
    kinds = {e.kind for e in timeline.entries}
    assert kinds <= {
        "admission",
        "encounter",
        "diagnosis",
        "procedure",
        "medication",
        "other",
        "document",
    }
    assert all(e.start.year > 1900 for e in timeline.entries)


def fixture_contents(store: RecordStore) -> dict[str, list[tuple]]:
    return {
        "patients": rows(store, "SELECT * EXCLUDE (source_id) FROM patients ORDER BY 1"),
        "labs": rows(store, "SELECT * EXCLUDE (source_id) FROM labs ORDER BY 1"),
        "events": rows(store, "SELECT * EXCLUDE (source_id) FROM events ORDER BY 1"),
        "documents": rows(store, "SELECT * EXCLUDE (source_id) FROM documents ORDER BY 1"),
        "chunks": rows(store, "SELECT * EXCLUDE (source_id) FROM chunks ORDER BY 1"),
    }


def test_the_fixture_bundle_maps_every_resource_kind():
    with connect() as store:
        report = load_fhir(store, BUNDLE)
        got = fixture_contents(store)
    assert report.counts["patients"] == 2 and report.counts["skipped: resource Claim"] == 1
    assert report.counts["skipped: attachment without data (url only)"] == 1
    assert got["patients"] == [
        ("pat-1", "female", dt.date(1950, 3, 4), dt.date(2021, 6, 1)),
        ("pat-2", "male", dt.date(1980, 1, 1), None),
    ]
    labs = {r[0]: r for r in got["labs"]}
    hb = labs["Observation/obs-hb"]
    assert hb[1:11] == (
        "pat-1",
        dt.datetime(2020, 1, 2, 8, 30),
        "718-7",
        "Hemoglobin",
        10.5,
        None,
        "g/dL",
        12.0,
        16.0,
        "L",
    )
    assert labs["Observation/obs-cult"][6] == "No growth"
    assert labs["Observation/obs-str"][6] == "yellow"
    assert labs["Observation/obs-bp/0"][3:6] == ("8480-6", "Systolic blood pressure", 120.0)
    assert labs["Observation/obs-bp/1"][12] == "vital-signs"
    events = {r[0]: r for r in got["events"]}
    assert events["Condition/cond-1"][4:7] == ("diagnosis", "44054006", "Diabetes mellitus type 2")
    assert events["Procedure/proc-1"][3] == dt.datetime(2019, 1, 1, 11)
    assert events["MedicationRequest/mr-1"][6:] == ("Metformin 500 MG Oral Tablet", "twice daily")
    assert events["Immunization/imm-1"][4] == "medication"
    assert events["DiagnosticReport/dr-1"][4] == "imaging"
    assert events["Encounter/enc-1"][6] == "General examination"
    documents = {r[0]: r for r in got["documents"]}
    assert set(documents) == {
        "DocumentReference/doc-1",
        "DocumentReference/doc-2",
        "DiagnosticReport/dr-1/presentedForm/0",
    }
    assert documents["DocumentReference/doc-2"][5] == "Discharge\n\nHome & well."
    assert documents["DocumentReference/doc-1"][5].startswith("Patient seen for anaemia.")
    assert got["chunks"]


def test_an_inpatient_encounter_is_an_admission_whatever_its_local_type(tmp_path: Path):
    def encounter(rid: str, klass: str, type_text: str) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": rid,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
            "type": [{"text": type_text}],
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2021-02-03T08:45:00", "end": "2021-02-09T10:00:00"},
        }

    lines = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-01"},
        encounter("stay", "IMP", "Encounter for problem"),
        encounter("icu", "ACUTE", "Transfer to intensive care unit"),
        encounter("visit", "AMB", "General examination"),
        # R5 writes the class as a list of CodeableConcepts.
        {
            **encounter("r5", "x", "Hospital admission"),
            "class": [{"coding": [{"code": "imp"}]}],
        },
        encounter("v2", "I", "Inpatient stay"),  # HL7 v2 table 0004
        # A segment of the stay (the ICU part of it) is not a second admission.
        {
            **encounter("segment", "IMP", "Patient transfer to ICU"),
            "partOf": {"reference": "Encounter/stay"},
        },
    ]
    (tmp_path / "export.ndjson").write_text("\n".join(json.dumps(line) for line in lines))
    with connect() as store:
        load_fhir(store, tmp_path)
        rows = store.connection.execute(
            "SELECT event_id, kind, label, detail FROM events ORDER BY event_id"
        ).fetchall()
    assert rows == [
        ("Encounter/icu", "admission", "Transfer to intensive care unit", "class ACUTE"),
        ("Encounter/r5", "admission", "Hospital admission", "class IMP"),
        ("Encounter/segment", "encounter", "Patient transfer to ICU", "class IMP"),
        ("Encounter/stay", "admission", "Encounter for problem", "class IMP"),
        ("Encounter/v2", "admission", "Inpatient stay", "class I"),
        ("Encounter/visit", "encounter", "General examination", "class AMB"),
    ]


def test_ndjson_loads_the_same_as_the_equivalent_bundle():
    with connect() as store:
        load_fhir(store, BUNDLE)
        from_bundle = fixture_contents(store)
    with connect() as store:
        report = load_fhir(store, NDJSON, batch_rows=2)  # many small batches
        from_ndjson = fixture_contents(store)
    assert any(p.name.endswith(".ndjson.gz") for p in NDJSON.iterdir())
    assert report.counts["labs"] == len(from_bundle["labs"])
    assert from_ndjson == from_bundle


def test_a_reload_is_a_no_op():
    with connect() as store:
        load_fhir(store, BUNDLE)
        assert load_fhir(store, BUNDLE).status == "unchanged"


def broken_bundle(tmp_path: Path, change) -> Path:
    bundle = json.loads(BUNDLE.read_text())
    change(bundle)
    out = tmp_path / "broken.json"
    out.write_text(json.dumps(bundle))
    return out


def entry(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == rid)


def entry_index(rid: str) -> int:
    bundle = json.loads(BUNDLE.read_text())
    return next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["id"] == rid)


def assert_not_loaded(store: RecordStore) -> None:
    for table in ("sources", "patients", "labs", "events", "documents", "chunks", "chunk_terms"):
        assert rows(store, f"SELECT count(*) FROM {table}") == [(0,)], table


@pytest.mark.parametrize(
    ("rid", "change", "message"),
    [
        ("obs-hb", lambda r: r.pop("subject"), "has no subject"),
        (
            "cond-1",
            lambda r: r.update(subject={"reference": "Patient/nobody"}),
            "refers to 'Patient/nobody'",
        ),
        (
            "mr-1",
            lambda r: r.update(medicationReference={"reference": "Medication/none"}),
            "refers to 'Medication/none'",
        ),
        (
            "doc-1",
            lambda r: r["content"][0]["attachment"].update(data="not base64!"),
            "not valid base64",
        ),
        ("proc-1", lambda r: r.update(performedDateTime="yesterday"), "not a FHIR date"),
    ],
)
def test_a_malformed_bundle_entry_is_named_and_nothing_is_loaded(tmp_path, rid, change, message):
    path = broken_bundle(tmp_path, lambda b: change(entry(b, rid)))
    kind = entry(json.loads(path.read_text()), rid)["resourceType"]
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_fhir(store, path)
        assert_not_loaded(store)
    (problem,) = caught.value.problems
    assert problem.file == "broken.json"
    assert f"entry {entry_index(rid)} ({kind}/{rid})" in problem.message
    assert message in problem.message


def test_broken_json_is_named_and_nothing_is_loaded(tmp_path):
    good = tmp_path / "a_good.json"
    shutil.copy(BUNDLE, good)
    (tmp_path / "b_bad.json").write_text('{"resourceType": "Bundle",\n "entry": [}')
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_fhir(store, tmp_path)
        assert_not_loaded(store)
    (problem,) = caught.value.problems
    assert problem.file == "b_bad.json" and problem.row == 2


@pytest.mark.parametrize("gz", [False, True])
def test_a_broken_ndjson_line_is_named_and_nothing_is_loaded(tmp_path, gz):
    folder = tmp_path / "export"
    shutil.copytree(NDJSON, folder)
    lines = gzip.decompress((folder / "Observation.ndjson.gz").read_bytes()).decode().splitlines()
    lines[2] = lines[2][:40]  # a truncated line 3
    text = "\n".join(lines) + "\n"
    (folder / "Observation.ndjson.gz").unlink()
    if gz:
        (folder / "Observation.ndjson.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (folder / "Observation.ndjson").write_text(text)
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_fhir(store, folder)
        assert_not_loaded(store)
    (problem,) = caught.value.problems
    assert problem.file == ("Observation.ndjson.gz" if gz else "Observation.ndjson")
    assert problem.row == 3 and "line 3" in problem.message


def test_an_ndjson_resource_without_subject_is_named(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(NDJSON, folder)
    resources = [json.loads(x) for x in (folder / "Condition.ndjson").read_text().splitlines()]
    broken = copy.deepcopy(resources[0])
    broken.pop("subject")
    broken["id"] = "cond-2"
    lines = [json.dumps(r) for r in [*resources, broken]]
    (folder / "Condition.ndjson").write_text("\n".join(lines) + "\n")
    with connect() as store:
        with pytest.raises(DataLoadError) as caught:
            load_fhir(store, folder)
        assert_not_loaded(store)
    (problem,) = caught.value.problems
    assert problem.file == "Condition.ndjson" and problem.row == len(lines)
    assert "Condition/cond-2" in problem.message and "no subject" in problem.message


def test_patients_already_loaded_by_another_source_roll_back(tmp_path):
    with connect() as store:
        load_fhir(store, BUNDLE, source="first")
        before = Counter(r[0] for r in rows(store, "SELECT source_id FROM labs"))
        with pytest.raises(DataLoadError):
            load_fhir(store, NDJSON, source="second")
        assert rows(store, "SELECT name FROM sources") == [("first",)]
        assert Counter(r[0] for r in rows(store, "SELECT source_id FROM labs")) == before


@needs_synthea
def test_an_unknown_analyte_on_a_fhir_record_lists_its_own_neighbours_first(synthea):
    store, _ = synthea
    (patient,) = rows(
        store,
        "SELECT patient_id FROM labs WHERE analyte_code = '4548-4' "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    )[0:1]
    scope = store.scope(patient[0])
    with pytest.raises(ToolError) as caught:
        QUERY_LABS.run(scope, {"analyte": "glycohemoglobin percentage"})
    message = str(caught.value)
    closest = message.split("closest in this record: ")[1]
    assert closest.startswith("'Hemoglobin A1c/Hemoglobin.total in Blood'")
    assert "Address" not in message and "list_analytes" in message
    own = query_labs(scope, QueryLabsInput(analyte="Hemoglobin A1c/Hemoglobin.total in Blood"))
    assert own.unit == "%" and own.total > 0


def test_a_laboratorys_own_coding_beside_loinc_is_kept_and_found(tmp_path: Path):
    bundle = json.loads(BUNDLE.read_text())
    (hb,) = [e["resource"] for e in bundle["entry"] if e["resource"].get("id") == "obs-hb"]
    hb["code"]["coding"].insert(0, {"system": "http://lab.example.org/tests", "code": "HGB-01"})
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    with connect() as store:
        load_fhir(store, path)
        assert rows(
            store, "SELECT analyte_code, local_code FROM labs WHERE lab_id LIKE '%obs-hb'"
        ) == [("718-7", "HGB-01")]
        result = query_labs(store.scope("pat-1"), QueryLabsInput(analyte="HGB-01"))
    assert result.resolved_by == "record code" and result.analyte == "Hemoglobin"
    assert [p.lab_id for p in result.points] == ["Observation/obs-hb"]
