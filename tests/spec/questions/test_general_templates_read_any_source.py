"""The general templates find rows however a source writes them, and never mix units.

A tiny bundle holds, per patient, the spellings real exports use — LOINC codes or only names,
IFCC HbA1c in mmol/mol, creatinine in µmol/L, haemoglobin in g/L or mmol/L, weight in pounds,
blood pressure as separate values or as one '150/95' text, diagnoses as ICD-10 with and
without dots and system prefixes, ICD-9, SNOMED CT or only a label — beside look-alikes that
must not count (urine creatinine, estimated average glucose, prediabetes, pulmonary
hypertension, an emergency-room visit, an ambulatory encounter typed 'Hospital admission',
gestational diabetes and hypertension), censored values ('<0.3', '>90') that must not be
read as numbers, and a value in a unit the templates do not know.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from recordagent.questions.silver import SilverRun, silver_instances
from recordagent.questions.silver_templates import load_silver_templates
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from tests.helpers import REPO, write_csv

TEMPLATES = REPO / "question_templates" / "general"
_LAB_IDS = itertools.count(1)
_EVENT_IDS = itertools.count(1)


def lab(patient: str, time: str, name: str, value: float | None, unit: str | None,
        code: str | None = None, **more: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "lab_id": f"L{next(_LAB_IDS)}",
        "patient_id": patient,
        "time": time,
        "analyte_code": code,
        "analyte_name": name,
        "value_num": value,
        "unit": unit,
        "value_text": more.get("text"),
        "fluid": more.get("fluid"),
        "flag": more.get("flag"),
        "local_code": more.get("local_code"),
    }



def event(patient: str, time: str, kind: str, label: str, code: str | None = None,
          end: str | None = None, detail: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": f"E{next(_EVENT_IDS)}",
        "patient_id": patient,
        "start_time": time,
        "end_time": end,
        "kind": kind,
        "code": code,
        "label": label,
        "detail": detail,
    }


PATIENTS = [
    {"patient_id": "P1", "sex": "male", "birth_date": "1950-01-01"},
    {"patient_id": "P2", "sex": "female", "birth_date": "1960-06-15"},
    {"patient_id": "P3", "sex": "female", "birth_date": "2015-03-01"},
    {"patient_id": "P4", "sex": "male", "birth_date": "1945-01-01"},
    {"patient_id": "P5", "sex": "female", "birth_date": "1948-01-01"},
    {"patient_id": "P6", "sex": "male", "birth_date": "1952-01-01"},
    {"patient_id": "P7", "sex": "male", "birth_date": "1970-01-01"},
    {"patient_id": "P8", "sex": "female", "birth_date": "1985-01-01"},
    {"patient_id": "P9", "sex": "male", "birth_date": "1950-01-01"},
    {"patient_id": "P10", "sex": "female", "birth_date": "1950-01-01"},
]
# P4: censored values ('<0.3', '>90') carry their bound in value_num, as FHIR writes them; read
# as numbers they would make a false AKI (0.3 → 0.62) and a false eGFR change. Its eGFR is
# below 60 twice, 151 days apart, but a normal 75 lies between.
CENSORED = [
    lab("P4", "2023-01-01 08:00", "eGFR", 50, "mL/min/1.73m2", "33914-3"),
    lab("P4", "2023-03-01 08:00", "eGFR", 75, "mL/min/1.73m2", "33914-3"),
    lab("P4", "2023-06-01 08:00", "eGFR", 55, "mL/min/1.73m2", "33914-3"),
    lab("P4", "2023-08-01 08:00", "eGFR", 90, "mL/min/1.73m2", "33914-3", text=">90"),
    lab("P4", "2023-08-01 08:00", "Creatinine", 0.6, "mg/dL", "2160-0"),
    lab("P4", "2023-08-01 20:00", "Creatinine", 0.3, "mg/dL", "2160-0", text="<0.3"),
    lab("P4", "2023-08-02 08:00", "Creatinine", 0.62, "mg/dL", "2160-0"),
]
# P5: below 60 on 2023-01-01 and 105 days later (two values that time: the 52 row holds the
# maximum); P6: below 60 exactly 90 days apart — not more than 90 days.
P5_LOW = lab("P5", "2023-04-16 08:00", "eGFR", 50, "mL/min/1.73m2", "62238-1")
P5_HIGH = lab("P5", "2023-04-16 08:00", "eGFR", 52, "mL/min/1.73m2", "62238-1")
PERSISTENCE = [
    lab("P5", "2023-01-01 08:00", "eGFR", 45, "mL/min/1.73m2", "62238-1"),
    P5_LOW,
    P5_HIGH,
    lab("P6", "2023-01-01 08:00", "eGFR", 45, "mL/min/1.73m2", "62238-1"),
    lab("P6", "2023-04-01 08:00", "eGFR", 50, "mL/min/1.73m2", "62238-1"),
    lab("P6", "2023-06-01 08:00", "eGFR", 70, "mL/min/1.73m2", "62238-1"),
    # P9: a censored '>90' between two lows still breaks the persistence; P10: a censored
    # '<15' (value_num empty, as MIMIC-IV writes it) is a low value.
    lab("P9", "2023-01-01 08:00", "eGFR", 45, "mL/min/1.73m2", "62238-1"),
    lab("P9", "2023-03-01 08:00", "eGFR", 90, "mL/min/1.73m2", "62238-1", text=">90"),
    lab("P9", "2023-06-01 08:00", "eGFR", 55, "mL/min/1.73m2", "62238-1"),
    lab("P10", "2023-01-01 08:00", "eGFR", None, "mL/min/1.73m2", "62238-1", text="<15"),
    lab("P10", "2023-06-01 08:00", "eGFR", 20, "mL/min/1.73m2", "62238-1"),
]
# P7: spellings — 'A1C', a specimen 'SER/PLAS' beside a LOINC code, 'Creatinine, Whole Blood'
# in mg/100mL, 'gm/dL' haemoglobin from 'BLD', 'kgs', 'SBP'/'DBP', a '138 / 85 mmHg' text.
# P8: an OMOP export without its vocabulary: the LOINC code only in local_code (and as name).
SPELLINGS = [
    lab("P7", "2024-05-01 08:00", "A1C", 6.8, "%"),
    lab("P7", "2024-05-01 08:00", "Creatinine", 1.1, "mg/dL", "2160-0", fluid="SER/PLAS"),
    lab("P7", "2024-05-02 08:00", "Creatinine, Whole Blood", 1.3, "mg/100mL", fluid="Blood"),
    lab("P7", "2024-05-01 08:00", "Hemoglobin", 12.5, "gm/dL", fluid="BLD"),
    lab("P7", "2024-05-01 08:00", "Weight", 80, "kgs"),
    lab("P7", "2024-05-01 10:00", "SBP", 150, "mmHg"),
    lab("P7", "2024-05-01 10:00", "DBP", 95, "mmHg"),
    lab("P7", "2024-05-03 10:00", "Blood pressure", None, None, text="138 / 85 mmHg"),
    lab("P8", "2024-02-01 08:00", "4548-4", 7.0, "%", "OMOP:3004410", local_code="4548-4"),
]
LABS = [
    # P1: IFCC HbA1c in mmol/mol, creatinine in µmol/L (and urine creatinine, clearance),
    # haemoglobin in g/L, weight in pounds, blood pressure as one text.
    lab("P1", "2024-01-10 08:00", "HbA1c (IFCC)", 53, "mmol/mol", "59261-8"),
    lab("P1", "2024-01-10 08:00", "Estimated average glucose", 154, "mg/dL"),
    lab("P1", "2024-01-10 08:00", "Creatinine", 97, "µmol/L", fluid="Serum"),
    lab("P1", "2024-01-11 08:00", "Creatinine", 150, "umol/L", fluid="Serum"),
    lab("P1", "2024-01-12 08:00", "Creatinine (urine)", 9000, "umol/L", fluid="Urine"),
    lab("P1", "2024-01-12 09:00", "Creatinine clearance", 60, "mL/min"),
    lab("P1", "2024-01-10 08:00", "Hb", 95, "g/L"),
    lab("P1", "2024-01-10 08:00", "Weight", 150, "lb"),
    lab("P1", "2024-01-10 09:00", "Blood pressure", None, "mmHg", text="150/95"),
    lab("P1", "2024-03-10 09:00", "BP", None, "mm Hg", text="142/88"),
    # P2: HbA1c in % under a name only, creatinine in mg/dL by LOINC, then a value in a unit
    # the templates do not know (latest, but not used); haemoglobin in mmol/L; separate BP.
    lab("P2", "2023-05-01 08:00", "Hemoglobin A1c", 6.1, "%"),
    lab("P2", "2023-09-01 08:00", "Haemoglobin A1c", 7.2, "%"),
    lab("P2", "2023-09-01 08:00", "Serum creatinine", 0.9, "mg/dL", "2160-0"),
    lab("P2", "2023-10-01 08:00", "Creatinine", 12, "mg/L"),
    lab("P2", "2023-09-01 08:00", "Hemoglobin", 6.2, "mmol/L"),
    lab("P2", "2023-09-01 08:00", "Hemoglobin A1c/Hemoglobin.total", 7.2, "%", "4548-4"),
    lab("P2", "2023-09-02 10:00", "Systolic blood pressure", 128, "mm[Hg]", "8480-6"),
    lab("P2", "2023-09-02 10:00", "Diastolic blood pressure", 79, "mm[Hg]", "8462-4"),
    lab("P2", "2023-09-02 10:00", "Body weight", 64000, "g", "29463-7"),
    # P3: a child; a corrected haemoglobin replaces its draw's first report.
    lab("P3", "2024-02-01 08:00", "Hemoglobin", 1.1, "g/dL", "718-7"),
    lab("P3", "2024-02-01 08:00", "Hemoglobin", 11.0, "g/dL", "718-7", flag="corrected"),
    # eGFR: the value for non-Black patients counts, the one for Black patients does not.
    lab("P3", "2024-02-01 08:00", "eGFR non-African American", 95, "mL/min/1.73m2"),
    lab("P3", "2024-02-01 08:00", "eGFR African American", 110, "mL/min/1.73m2"),
    lab("P3", "2024-06-01 08:00", "GFR, estimated", 101, "mL/min/{1.73_m2}", "33914-3"),
    *CENSORED,
    *PERSISTENCE,
    *SPELLINGS,
]
EVENTS = [
    event("P1", "2024-01-20", "diagnosis", "Type 2 diabetes mellitus", "ICD-10-CM:E11.9"),
    event("P1", "2019-05-01", "diagnosis", "Prediabetes", "R73.03"),
    event("P1", "2020-02-01", "diagnosis", "Pulmonary hypertension", "I27.20"),
    event("P1", "2024-01-09", "admission", "Inpatient stay", end="2024-01-14"),
    event("P1", "2024-03-01", "encounter", "Hospital admission (procedure)", "32485007"),
    event("P1", "2024-04-01", "encounter", "Emergency room admission (procedure)", "50849002"),
    # A FHIR encounter of class AMB typed 'Hospital admission' is no inpatient stay.
    event("P1", "2024-05-01", "encounter", "Hospital admission (procedure)", "32485007",
          detail="class AMB"),  # fmt: skip
    event("P2", "2021-07-01", "diagnosis", "Diabetes mellitus type 2 (disorder)", "44054006"),
    event("P2", "2010-03-01", "diagnosis", "Unspecified essential hypertension", "ICD9:401.9"),
    event("P2", "2009-01-01", "diagnosis", "Diabetes, type II", "250.00"),
    event("P3", "2024-01-01", "diagnosis", "Asthma", "J45.909"),
    event("P3", "2024-01-02", "diagnosis",
          "Elevated blood-pressure reading, without diagnosis of hypertension", "R03.0"),
    # Pre-existing diabetes recorded in pregnancy counts; a hypertensive crisis (ICD-10 I16)
    # counts by its code alone.
    event("P7", "2024-01-01", "diagnosis", "Pre-existing type 2 diabetes mellitus in pregnancy",
          "O24.113"),  # fmt: skip
    event("P7", "2024-01-02", "diagnosis", "Urgency, unspecified", "ICD10:I16.0"),
    # Gestational diabetes and hypertension do not count; pre-existing hypertension does.
    event("P8", "2023-05-01", "diagnosis", "Gestational diabetes mellitus", "O24.419"),
    event("P8", "2023-05-01", "diagnosis", "Gestational hypertension", "O13.9"),
    event("P8", "2023-05-02", "diagnosis",
          "Pre-existing essential hypertension complicating pregnancy", "O10.019"),  # fmt: skip
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SilverRun]:
    bundle = tmp_path_factory.mktemp("general") / "bundle"
    write_csv(bundle, "patients", PATIENTS)
    write_csv(bundle, "labs", LABS)
    write_csv(bundle, "events", EVENTS)
    with connect() as store:
        load_bundle(store, bundle)
        yield silver_instances(load_silver_templates(TEMPLATES), store)


def answers(run: SilverRun, template_id: str) -> dict[str, Any]:
    return {i.item.patient_id: i.value for i in run.instances if i.item.template_id == template_id}


def evidence(run: SilverRun, template_id: str, patient: str) -> tuple[str, ...]:
    return next(
        i.evidence for i in run.instances if i.item.id == f"{template_id}/{patient}"
    )


def test_hba1c_in_mmol_per_mol_is_converted_to_percent_and_names_alone_are_found(run):
    # 0.09148 × 53 + 2.152 = 7.00 %; P2's values are found by name, then by code.
    # P7: the name 'A1C'; P8: the LOINC code only in local_code.
    assert answers(run, "latest-hba1c") == {
        "P1": round(0.09148 * 53 + 2.152, 2),
        "P2": 7.2,
        "P7": 6.8,
        "P8": 7.0,
    }


def test_creatinine_in_micromoles_is_converted_and_other_units_and_urine_are_left_out(run):
    # 150 µmol/L ÷ 88.42; P2's later 12 mg/L is in a unit the template does not know.
    # P4: its '<0.3' is left out; P7: whole-blood creatinine in mg/100mL.
    assert answers(run, "latest-creatinine") == {
        "P1": round(150 / 88.42, 3),
        "P2": 0.9,
        "P4": 0.62,
        "P7": 1.3,
    }
    serum = next(r for r in LABS if r["analyte_name"] == "Serum creatinine")
    assert evidence(run, "latest-creatinine", "P2") == (serum["lab_id"],)


def test_haemoglobin_in_g_per_l_and_mmol_per_l_and_a_corrected_value(run):
    assert answers(run, "hemoglobin-nadir") == {
        "P1": 9.5,
        "P2": round(6.2 * 1.611, 2),
        "P3": 11.0,
        "P7": 12.5,  # gm/dL, from a specimen written 'BLD'
    }


def test_anaemia_uses_the_threshold_of_the_sex_and_asks_adults_only(run):
    # P1 male 9.5 < 13; P2 female 9.99 < 12; P3 is nine years old; P7 male 12.5 < 13.
    assert answers(run, "anaemia-who-latest-hemoglobin") == {"P1": True, "P2": True, "P7": True}


def test_weight_in_pounds_and_grams_becomes_kilograms(run):
    assert answers(run, "latest-weight") == {
        "P1": round(150 * 0.45359237, 2),
        "P2": 64.0,
        "P7": 80.0,  # 'kgs'
    }


def test_blood_pressure_as_one_text_or_as_two_coded_values(run):
    # P7: 'SBP'/'DBP' 150/95, then a '138 / 85 mmHg' text.
    assert answers(run, "latest-systolic-blood-pressure") == {"P1": 142, "P2": 128, "P7": 138}
    assert answers(run, "elevated-blood-pressure-two-days") == {
        "P1": True,
        "P2": False,
        "P7": False,
    }
    as_of = {i.item.patient_id: i.item for i in run.instances
             if i.item.template_id == "highest-systolic-12-months"}  # fmt: skip
    assert as_of["P1"].as_of is not None and as_of["P1"].as_of.isoformat() == "2024-03-10"
    assert as_of["P1"].question.startswith("As of 2024-03-10, ")
    assert answers(run, "highest-systolic-12-months") == {"P1": 150, "P2": 128, "P7": 150}


def test_diagnoses_in_every_code_system_and_by_label_but_not_their_look_alikes(run):
    # P1: ICD-10-CM with prefix and dot (prediabetes R73.03 does not count);
    # P2: ICD-9 '250.00' (bare, with dot) before SNOMED CT 44054006.
    # P7: pre-existing diabetes recorded in pregnancy; P8's gestational diabetes does not count.
    assert answers(run, "first-diabetes-diagnosis-date") == {
        "P1": "2024-01-20",
        "P2": "2009-01-01",
        "P7": "2024-01-01",
    }
    # ICD-9 401.9 and ICD-10 I16.0 count; pulmonary hypertension (ICD-10 I27.20), an elevated
    # reading "without diagnosis of hypertension" (R03.0) and gestational hypertension do not.
    assert answers(run, "hypertension-diagnosed") == {
        "P1": False,
        "P2": True,
        "P3": False,
        "P7": True,
        "P8": True,
    }
    pre_existing = next(e for e in EVENTS if e["label"].startswith("Pre-existing essential"))
    assert evidence(run, "hypertension-diagnosed", "P8") == (pre_existing["event_id"],)


def test_hba1c_in_the_diabetic_range_before_any_diagnosis(run):
    # P1: 7.00 % on 2024-01-10, diabetes coded on 2024-01-20; P2: coded in 2009 already.
    # P7: 6.8 % after its diagnosis; P8: 7.0 % and only gestational diabetes.
    assert answers(run, "diabetic-hba1c-before-diagnosis") == {
        "P1": True,
        "P2": False,
        "P7": False,
        "P8": True,
    }


def test_admissions_count_inpatient_encounters_not_emergency_or_classed_ambulatory_ones(run):
    assert answers(run, "hospital-admission-count") == {"P1": 2}


def test_a_kdigo_rise_within_48_hours(run):
    # 97 → 150 µmol/L in 24 h: 1.097 → 1.696 mg/dL, a rise of 0.6.
    # P4: 0.6 → 0.62 mg/dL, its '<0.3' between is no value of 0.3; P7: 1.1 → 1.3.
    assert answers(run, "aki-kdigo-creatinine-rise") == {"P1": True, "P4": False, "P7": False}


def test_egfr_keeps_the_non_black_value_and_leaves_the_race_specific_one_out(run):
    assert answers(run, "egfr-change")["P3"] == 101 - 95


def test_egfr_change_leaves_censored_values_out_and_cites_the_rows_it_used(run):
    # P4: 55 − 50 (its latest '>90' is a bound); P5: 52 − 45, the 52 row cited.
    # P10 is not asked: its first value is the bound "<15", only the 20 is a measurement.
    assert answers(run, "egfr-change") == {"P3": 6, "P4": 5, "P5": 7, "P6": 25, "P9": 10}
    assert evidence(run, "egfr-change", "P5") == (PERSISTENCE[0]["lab_id"], P5_HIGH["lab_id"])
    assert P5_LOW["lab_id"] < P5_HIGH["lab_id"]  # so the lowest id would cite the wrong row


def test_ckd_needs_egfr_below_60_for_more_than_90_days_without_a_normal_value_between(run):
    # P4: a 75 between its two lows; P5: 105 days; P6: exactly 90 days; P3: never below 60;
    # P9: a censored '>90' between its lows; P10: '<15', then 20 five months later.
    assert answers(run, "ckd-egfr-below-60-over-90-days") == {
        "P3": False,
        "P4": False,
        "P5": True,
        "P6": False,
        "P9": False,
        "P10": True,
    }
    assert evidence(run, "ckd-egfr-below-60-over-90-days", "P5") == (
        PERSISTENCE[0]["lab_id"],
        P5_LOW["lab_id"],
    )

