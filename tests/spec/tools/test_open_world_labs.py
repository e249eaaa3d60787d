"""query_labs and list_analytes on a record named the way real exports name labs.

The fixture (tests/fixtures/open_world_labs) holds FHIR/LOINC-style names, UCUM unit spellings,
a urine series under a serum analyte's name, a mass/molar pair, a local code and a unit no
library converts.
"""

from __future__ import annotations

import pytest

from recordagent.errors import ToolError
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.tools import QUERY_LABS, default_registry
from recordagent.tools.analytes import ListAnalytesInput, list_analytes
from recordagent.tools.labs import QueryLabsInput, QueryLabsResult, query_labs


@pytest.fixture
def ow(open_world_store: RecordStore) -> PatientScope:
    return open_world_store.scope("OW")


def run(scope: PatientScope, **kw: object) -> QueryLabsResult:
    return query_labs(scope, QueryLabsInput(**kw))


def ids(result: QueryLabsResult) -> list[str]:
    return [p.lab_id for g in result.groups for p in g.points]


def test_the_records_own_name_reaches_an_analyte_the_catalogue_names_otherwise(ow: PatientScope):
    result = run(ow, analyte="Hemoglobin A1c/Hemoglobin.total in Blood")
    assert ids(result) == ["H1", "H2"]
    assert result.resolved_by == "record name"
    assert (
        result.groups[0].series[0].matched_by
        == "record name 'Hemoglobin A1c/Hemoglobin.total in Blood'"
    )


def test_own_names_match_whatever_their_case_punctuation_and_spacing(ow: PatientScope):
    result = run(ow, analyte="glomerular filtration rate 1.73 SQ M predicted")
    assert ids(result) == ["G1", "G2"]


def test_an_uncatalogued_analyte_is_reached_by_name_and_by_local_code(ow: PatientScope):
    by_name = run(ow, analyte="Zonulin")
    assert (by_name.resolved_by, ids(by_name)) == ("record name", ["L1", "L2"])
    local = run(ow, analyte="LAB-PLT")  # the laboratory's own code, kept beside LOINC 777-3
    assert (local.resolved_by, ids(local)) == ("record code", ["P1", "P2", "P3", "P4"])
    for code in ("MIMIC:50999", "50999", "mimic:50999"):
        by_code = run(ow, analyte=code)
        assert (by_code.resolved_by, ids(by_code)) == ("record code", ["L1", "L2"])


@pytest.mark.parametrize("spelling", ["platelets", "PLT", "777-3", "LOINC:777-3"])
def test_ucum_spellings_of_a_count_are_one_unit(ow: PatientScope, spelling: str):
    result = run(ow, analyte=spelling)
    assert len(result.groups) == 1
    assert [p.value for p in result.points] == [250, 180, 120, 90]  # 10*3/uL, 10^3/µL, K/uL, 10*9/L
    assert result.groups[0].converted == {}  # factor 1: nothing needed converting


def test_egfr_per_173_m2_spelled_two_ways_is_one_series(ow: PatientScope):
    result = run(ow, analyte="eGFR", aggregate="last")
    assert (len(result.groups), result.result, result.total) == (1, 58, 2)


def test_a_molar_value_converts_with_the_analytes_molar_mass(ow: PatientScope):
    result = run(ow, analyte="glucose")
    assert [p.lab_id for p in result.points] == ["U1", "U2"]
    assert result.unit == "mg/dL"
    assert result.points[1].value == pytest.approx(7.0 * 180.16 / 10, rel=1e-3)
    assert result.points[1].reported == "7 mmol/L"
    assert result.groups[0].converted == {"mmol/L": 1}


def test_a_concept_gathers_every_blood_series_and_keeps_urine_apart(ow: PatientScope):
    result = run(ow, analyte="creatinine")
    blood, urine = result.groups
    assert (blood.specimen, urine.specimen) == (None, "urine")
    assert [p.lab_id for p in blood.points] == ["C1", "C4", "C2"]
    assert blood.points[1].value == pytest.approx(1.5, rel=1e-3)  # 132.6 µmol/L
    matched_by = {s.matched_by for s in blood.series}
    assert matched_by >= {"catalogue code 2160-0", "catalogue code 38483-4"}
    assert [p.lab_id for p in urine.points] == ["C3"]
    text = "\n".join(result.lines())
    assert "kept apart" in text and "Creatinine [urine] (mg/dL)" in text


def test_a_specimen_can_be_asked_for(ow: PatientScope):
    result = run(ow, analyte="creatinine", specimen="Urine", aggregate="last")
    assert (len(result.groups), result.result) == (1, 80)
    with pytest.raises(ToolError, match="no Creatinine values in specimen 'CSF'"):
        run(ow, analyte="creatinine", specimen="CSF")


def test_a_unit_that_cannot_be_converted_is_its_own_group_not_dropped(ow: PatientScope):
    result = run(ow, analyte="Anti-Xa activity", aggregate="count")
    assert [(g.unit, g.result) for g in result.groups] == [("IU/mL", 2.0), ("furlongs", 1.0)]
    assert ids(result) == ["A1", "A2", "A3"]
    assert "furlongs" in "\n".join(result.lines())


def test_aggregates_never_mix_incommensurable_units(ow: PatientScope):
    result = run(ow, analyte="Anti-Xa activity", aggregate="max")
    assert [g.result for g in result.groups] == [0.6, 0.4]


def test_a_close_typo_resolves_with_a_note(ow: PatientScope):
    result = run(ow, analyte="Zonullin")
    assert result.resolved_by == "closest name"
    assert ids(result) == ["L1", "L2"]
    assert result.note is not None and "closest" in result.note


def test_the_unknown_analyte_error_lists_this_records_nearest_names(ow: PatientScope):
    with pytest.raises(ToolError) as caught:
        QUERY_LABS.run(ow, {"analyte": "glycated haemoglobin trend"})
    message = str(caught.value)
    assert "closest in this record: 'Hemoglobin A1c/Hemoglobin.total in Blood'" in message
    assert "'glycated haemoglobin trend'" in message.split("closest")[0]  # once, not suggested
    assert "This record has 13 analyte series" in message and "list_analytes" in message
    assert "Address" not in message  # questionnaire items are not neighbours of a lab name


def test_a_catalogued_analyte_the_record_lacks_says_so_with_neighbours(ow: PatientScope):
    result = run(ow, analyte="troponin T")
    assert result.groups == [] and result.total == 0
    assert result.note is not None and result.note.startswith("This record has no Troponin T")


def test_list_analytes_shows_names_codes_counts_and_concepts(ow: PatientScope):
    result = list_analytes(ow, ListAnalytesInput())
    assert result.total == 13  # creatinine in urine and in serum are two series
    text = "\n".join(result.lines())
    assert (
        "- Platelets [#/volume] in Blood by Automated count (777-3, LAB-PLT) ×4, 2021-01-05 … "
        in text
    )
    assert "= Platelets" in text
    narrowed = list_analytes(ow, ListAnalytesInput(contains="a1c"))
    assert [e.name for e in narrowed.entries] == ["Hemoglobin A1c/Hemoglobin.total in Blood"]
    lipids = list_analytes(ow, ListAnalytesInput(contains="zonul"))
    assert [e.code for e in lipids.entries] == ["MIMIC:50999"]


def test_list_analytes_by_group_and_with_no_hit_shows_the_closest(ow: PatientScope):
    renal = list_analytes(ow, ListAnalytesInput(group="renal"))
    assert {e.concept for e in renal.entries} >= {"Creatinine"}
    closest = list_analytes(ow, ListAnalytesInput(contains="platelts"))
    assert closest.note and closest.entries[0].name.startswith("Platelets")


def test_the_registry_offers_list_analytes_and_other_patients_stay_out(ow: PatientScope):
    registry = default_registry()
    assert "list_analytes" in registry.names
    result = registry.call(ow, "query_labs", {"analyte": "HbA1c"})
    assert "X1" not in ids(result)  # type: ignore[arg-type]


def test_a_catalogue_name_also_brings_the_records_own_series_of_that_name(tmp_path):
    # MIMIC names its neutrophil percentage 'Neutrophils' and codes it 770-8; the catalogue's
    # 'Neutrophils' is the absolute count. Asked for 'Neutrophils', both come, each apart.
    (tmp_path / "patients.csv").write_text("patient_id\nP\n")
    (tmp_path / "labs.csv").write_text(
        "lab_id,patient_id,time,analyte_code,analyte_name,value_num,unit\n"
        "N1,P,2021-01-01 08:00,770-8,Neutrophils,61.5,%\n"
        "N2,P,2021-01-01 08:00,751-8,Absolute Neutrophil Count,4.1,K/uL\n"
    )
    with connect() as store:
        load_bundle(store, tmp_path)
        result = run(store.scope("P"), analyte="Neutrophils")
    assert [(g.analyte, g.unit, [p.lab_id for p in g.points]) for g in result.groups] == [
        ("Neutrophils", "10^9/L", ["N2"]),
        ("Neutrophil percentage", "%", ["N1"]),
    ]


def test_a_scope_sees_a_new_analyte_after_a_reload(tmp_path):
    (tmp_path / "patients.csv").write_text("patient_id\nP\n")
    labs = "lab_id,patient_id,time,analyte_name,value_num,unit\nL1,P,2021-01-01,Zonulin,3,mg/dL\n"
    (tmp_path / "labs.csv").write_text(labs)
    with connect() as store:
        load_bundle(store, tmp_path)
        scope = store.scope("P")
        assert run(scope, analyte="Zonulin").total == 1
        with pytest.raises(ToolError):
            run(scope, analyte="Osteocalcin")
        (tmp_path / "labs.csv").write_text(labs + "L2,P,2021-02-01,Osteocalcin,20,ng/mL\n")
        load_bundle(store, tmp_path, replace=True)
        # The record's series are kept on the scope between calls, keyed by the data version.
        assert run(scope, analyte="Osteocalcin").total == 1
