"""The general (source-agnostic) SQL templates on a store from every loader, checked independently.

Each source in ../shared/data (Synthea FHIR, OMOP Synthea27Nj, the MIMIC-IV demo) and the
packaged bundles (the example bundle, a synthetic cohort) is loaded into a store, the templates
of question_templates/general are asked of its patients, and:

* every source yields items from several templates at each level (the example bundle, three
  hand-written myeloma patients, from some);
* values are clinically plausible (ranges per template);
* per source, a few templates' labels — and which patients get an item — are recomputed here
  by plain Python over the store's raw rows, selected by the codes that source writes (not by
  the templates' fragments), with the unit conversions restated. Every template is checked on
  at least one source.

One test per source loads, asks and checks, so the sources run in parallel and nothing is
loaded twice.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from recordagent.questions.silver import SilverRun, silver_instances
from recordagent.questions.silver_templates import SilverTemplateSet, load_silver_templates
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.resources import example_bundle_path
from recordagent.sources.fhir import load_fhir
from recordagent.sources.mimic_iv import load_mimic_iv
from recordagent.sources.omop import load_omop
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.helpers import REPO, SHARED_DATA

TEMPLATES = REPO / "question_templates" / "general"
FHIR = SHARED_DATA / "synthea-fhir-ny" / "fhir"
OMOP = SHARED_DATA / "omop-synthea27nj" / "Synthea27Nj_5.4.zip"
MIMIC = SHARED_DATA / "mimic-iv-demo"
# Patients asked (the first by id): every checked template applies to some of them, and the
# runs stay short (each template is one query per patient, some 20 ms).
FHIR_PATIENTS = 30  # of 91
MIMIC_PATIENTS = 20  # of 100

Values = dict[str, Any]  # patient id -> label value

# Plausible ranges of the numeric answers (wide: they catch unit mix-ups, not outliers).
PLAUSIBLE = {
    "latest-hba1c": (2.5, 20),
    "latest-creatinine": (0.1, 20),
    "latest-weight": (1, 300),
    "latest-systolic-blood-pressure": (60, 260),
    "hemoglobin-nadir": (2, 22),
    "egfr-change": (-150, 150),
    "hospital-admission-count": (1, 200),
    "highest-systolic-12-months": (60, 260),
}


def skip_unless(path: Path, what: str) -> None:
    if not path.exists():
        pytest.skip(f"{what} is not at {path} (../shared/data)")


@pytest.fixture(scope="module")
def templates() -> SilverTemplateSet:
    return load_silver_templates(TEMPLATES)


def ask(
    templates: SilverTemplateSet, load: Callable[[RecordStore], None], limit: int | None = None
) -> tuple[SilverRun, dict[str, list[dict[str, Any]]]]:
    """Load a store, ask every template, and read the raw tables the checks need."""
    with connect() as store:
        load(store)
        patients = sorted(store.patient_ids())[:limit] if limit else None
        run = silver_instances(templates, store, patient_ids=patients)
        raw = {
            table: rows(store, f"SELECT * FROM {table}")
            for table in ("patients", "labs", "events")
        }
    if patients is not None:
        keep = set(patients)
        raw = {t: [r for r in rs if r["patient_id"] in keep] for t, rs in raw.items()}
    return run, raw


def rows(store: RecordStore, sql: str) -> list[dict[str, Any]]:
    cursor = store.connection.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def labels(run: SilverRun, template_id: str) -> Values:
    return {i.item.patient_id: i.value for i in run.instances if i.item.template_id == template_id}


def templates_per_level(run: SilverRun) -> dict[int, set[str]]:
    levels: dict[int, set[str]] = defaultdict(set)
    for instance in run.instances:
        levels[instance.item.level].add(instance.item.template_id)
    return levels


def check_shape(run: SilverRun, *, per_level: int) -> None:
    """Several templates per level yield items, and every value is plausible."""
    levels = templates_per_level(run)
    for level in (1, 2, 3):
        assert len(levels[level]) >= per_level, (level, sorted(levels[level]))
    for instance in run.instances:
        low_high = PLAUSIBLE.get(instance.item.template_id)
        if low_high is not None:
            assert low_high[0] <= instance.value <= low_high[1], instance
        if instance.item.as_of is not None:
            assert instance.item.as_of.isoformat() in instance.item.question
        assert "{" not in instance.item.question, instance.item.question


def agree(run: SilverRun, template_id: str, expected: Values) -> None:
    """The template's labels equal the independent values, for the same patients."""
    got = labels(run, template_id)
    assert expected, f"{template_id}: the independent query found nothing to compare"
    assert set(got) == set(expected), (
        template_id,
        sorted(set(got) ^ set(expected))[:10],
    )
    wrong = {
        p: (got[p], expected[p])
        for p in expected
        if not (
            math.isclose(got[p], expected[p], abs_tol=1e-6)
            if isinstance(expected[p], float)
            else got[p] == expected[p]
        )
    }
    assert not wrong, (template_id, dict(list(wrong.items())[:10]))


# --- independent readings of the raw rows -------------------------------------------------------


def series(
    labs: Iterable[dict[str, Any]],
    keep: Callable[[dict[str, Any]], bool],
    convert: Callable[[dict[str, Any]], float] = lambda r: float(r["value_num"]),
) -> dict[str, list[tuple[dt.datetime, float, str]]]:
    """(time, value, id) per patient, time order; a 'corrected' value replaces its time's.

    A censored value ('>90': a number with a comparator in value_text) is not a measurement.
    """
    grouped: dict[tuple[str, dt.datetime], list[dict[str, Any]]] = defaultdict(list)
    for row in labs:
        censored = (row["value_text"] or "").lstrip().startswith(("<", ">", "≤", "≥"))
        if row["value_num"] is not None and not censored and keep(row):
            grouped[(row["patient_id"], row["time"])].append(row)
    out: dict[str, list[tuple[dt.datetime, float, str]]] = defaultdict(list)
    for (patient, time), group in sorted(grouped.items()):
        corrected = [r for r in group if (r["flag"] or "").lower() == "corrected"]
        for row in corrected or group:
            out[patient].append((time, convert(row), row["lab_id"]))
    return out


def latest_highest(values: dict[str, list[tuple[dt.datetime, float, str]]]) -> Values:
    out = {}
    for patient, points in values.items():
        last = max(t for t, _, _ in points)
        out[patient] = max(v for t, v, _ in points if t == last)
    return out


def code_is(*codes: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row["analyte_code"] in codes


def with_events(raw: dict[str, list[dict[str, Any]]], kind: str) -> set[str]:
    return {e["patient_id"] for e in raw["events"] if e["kind"] == kind}


def bp_readings(
    raw: dict[str, list[dict[str, Any]]],
) -> dict[str, list[tuple[dt.datetime, float, float]]]:
    """(time, systolic, diastolic) per patient from coded values or 'S/D' texts."""
    parts: dict[tuple[str, dt.datetime], dict[str, float]] = defaultdict(dict)
    for row in raw["labs"]:
        key = (row["patient_id"], row["time"])
        if row["analyte_code"] == "8480-6" and row["value_num"] is not None:
            parts[key]["s"] = max(parts[key].get("s", -1), row["value_num"])
        elif row["analyte_code"] == "8462-4" and row["value_num"] is not None:
            parts[key]["d"] = max(parts[key].get("d", -1), row["value_num"])
        elif row["analyte_name"].startswith("Blood Pressure") and row["value_text"]:
            match = re.fullmatch(r"(\d+)/(\d+)", row["value_text"].strip())
            if match:
                s, d = float(match.group(1)), float(match.group(2))
                parts[key]["s"] = max(parts[key].get("s", -1), s)
                parts[key]["d"] = max(parts[key].get("d", -1), d)
    out: dict[str, list[tuple[dt.datetime, float, float]]] = defaultdict(list)
    for (patient, time), sd in sorted(parts.items()):
        if "s" in sd and "d" in sd and sd["s"] > sd["d"]:
            out[patient].append((time, float(round(sd["s"])), float(round(sd["d"]))))
    return out


def year_window(points: list[tuple[dt.datetime, float, float]]) -> list[tuple[Any, ...]]:
    day = max(t for t, _, _ in points).date()
    start = dt.datetime.combine(day - dt.timedelta(days=365), dt.time())
    return [p for p in points if p[0] >= start]


def highest_systolic_year(raw: dict[str, list[dict[str, Any]]]) -> Values:
    return {p: max(s for _, s, _ in year_window(pts)) for p, pts in bp_readings(raw).items()}


def elevated_two_days(raw: dict[str, list[dict[str, Any]]]) -> Values:
    out = {}
    for patient, points in bp_readings(raw).items():
        days = {t.date() for t, s, d in year_window(points) if s >= 140 or d >= 90}
        out[patient] = len(days) >= 2
    return out


def egfr_change(values: dict[str, list[tuple[dt.datetime, float, str]]]) -> Values:
    out = {}
    for patient, points in values.items():
        first_t, last_t = min(t for t, _, _ in points), max(t for t, _, _ in points)
        if last_t.date() > first_t.date():
            first = max(v for t, v, _ in points if t == first_t)
            last = max(v for t, v, _ in points if t == last_t)
            out[patient] = round(last - first, 2)
    return out


def ckd_two_low(values: dict[str, list[tuple[dt.datetime, float, str]]]) -> Values:
    """Below 60 on two draws more than 90 days apart, nothing of 60 or more in between."""
    out = {}
    for patient, points in values.items():
        times = [t for t, _, _ in points]
        if max(times) - min(times) <= dt.timedelta(days=90):
            continue
        low = [t for t, v, _ in points if v < 60]
        normal = [t for t, v, _ in points if v >= 60]
        out[patient] = any(
            b - a > dt.timedelta(days=90) and not any(a <= t <= b for t in normal)
            for a in low
            for b in low
        )
    return out


def kdigo_rise(values: dict[str, list[tuple[dt.datetime, float, str]]]) -> Values:
    out = {}
    for patient, points in values.items():
        pairs = [
            (a, b)
            for a in points
            for b in points
            if a[0] < b[0] <= a[0] + dt.timedelta(days=7)
        ]
        if pairs:
            out[patient] = any(
                (round(b[1] - a[1], 3) >= 0.3 and b[0] - a[0] <= dt.timedelta(hours=48))
                or round(b[1] - 1.5 * a[1], 3) >= 0
                for a, b in pairs
            )
    return out


def anaemic(raw: dict[str, list[dict[str, Any]]], hb: dict[str, list[Any]]) -> Values:
    people = {p["patient_id"]: p for p in raw["patients"]}
    out = {}
    for patient, points in hb.items():
        last = max(t for t, _, _ in points)
        value = min(v for t, v, _ in points if t == last)
        person = people[patient]
        born = person["birth_date"]
        # the 15th birthday (29 February: the 28th, as DuckDB adds years)
        adult = born is None or last.date() >= dt.date(
            born.year + 15, born.month, min(born.day, 28 if born.month == 2 else 31)
        )
        if person["sex"] in ("male", "female") and adult:
            out[patient] = value < (13.0 if person["sex"] == "male" else 12.0)
    return out


# --- the sources --------------------------------------------------------------------------------


def test_synthea_fhir(templates: SilverTemplateSet) -> None:
    skip_unless(FHIR, "The Synthea FHIR export")
    run, raw = ask(templates, lambda store: load_fhir(store, FHIR), limit=FHIR_PATIENTS)
    check_shape(run, per_level=4)
    labs = raw["labs"]
    agree(run, "latest-hba1c", latest_highest(series(labs, code_is("4548-4"))))
    agree(
        run, "latest-creatinine", latest_highest(series(labs, code_is("2160-0", "38483-4")))
    )
    agree(
        run,
        "latest-systolic-blood-pressure",
        {p: pts[-1][1] for p, pts in bp_readings(raw).items()},
    )
    egfr = series(labs, code_is("33914-3"))
    agree(run, "egfr-change", egfr_change(egfr))
    agree(run, "ckd-egfr-below-60-over-90-days", ckd_two_low(egfr))
    # Synthea codes conditions in SNOMED CT; essential hypertension is 59621000.
    with_dx = with_events(raw, "diagnosis")
    hypertensive = {
        e["patient_id"]
        for e in raw["events"]
        if e["kind"] == "diagnosis" and e["code"] == "59621000"
    }
    agree(run, "hypertension-diagnosed", {p: p in hypertensive for p in with_dx})
    # Inpatient encounters: the loader's admissions (Encounter.class IMP, ACUTE, NONAC), and
    # encounters of the SNOMED CT types Synthea gives hospital admissions when they carry no
    # class (an ambulatory or emergency encounter typed 'Hospital admission' is not one).
    inpatient = {"32485007", "305408004", "183460006", "305432006", "305342007", "183495009",
                 "183452005"}  # fmt: skip
    admissions: dict[str, int] = defaultdict(int)
    for event in raw["events"]:
        if event["kind"] == "admission" or (
            event["kind"] == "encounter"
            and event["code"] in inpatient
            and not (event["detail"] or "").startswith("class ")
        ):
            admissions[event["patient_id"]] += 1
    agree(run, "hospital-admission-count", dict(admissions))
    creatinine = series(labs, code_is("2160-0", "38483-4"))
    agree(run, "aki-kdigo-creatinine-rise", kdigo_rise(creatinine))


def test_omop_synthea27nj(templates: SilverTemplateSet) -> None:
    skip_unless(OMOP, "The OMOP Synthea27Nj export")
    run, raw = ask(templates, lambda store: load_omop(store, OMOP))
    check_shape(run, per_level=3)
    labs = raw["labs"]
    hb = series(labs, code_is("718-7"))
    agree(run, "hemoglobin-nadir", {p: min(v for _, v, _ in pts) for p, pts in hb.items()})
    agree(run, "anaemia-who-latest-hemoglobin", anaemic(raw, hb))
    agree(run, "latest-weight", latest_highest(series(labs, code_is("29463-7"))))
    agree(run, "highest-systolic-12-months", highest_systolic_year(raw))
    agree(run, "elevated-blood-pressure-two-days", elevated_two_days(raw))
    people = {p["patient_id"]: p["death_date"] for p in raw["patients"] if p["death_date"]}
    agree(run, "death-date", {p: d.isoformat() for p, d in people.items()})
    # OMOP inpatient visits are the store's admissions.
    admissions: dict[str, int] = defaultdict(int)
    for event in raw["events"]:
        if event["kind"] == "admission":
            admissions[event["patient_id"]] += 1
    agree(run, "hospital-admission-count", dict(admissions))


@pytest.mark.mimic
def test_mimic_iv_demo(templates: SilverTemplateSet) -> None:
    skip_unless(MIMIC / "hosp" / "patients.csv.gz", "The MIMIC-IV demo")
    run, raw = ask(templates, lambda store: load_mimic_iv(store, MIMIC), limit=MIMIC_PATIENTS)
    check_shape(run, per_level=3)
    labs = raw["labs"]
    # MIMIC-IV names its items (d_labitems labels); OMR weight is in pounds.
    a1c = series(labs, lambda r: r["analyte_name"] == "% Hemoglobin A1c")
    agree(run, "latest-hba1c", latest_highest(a1c))
    pounds = series(
        labs,
        lambda r: r["analyte_name"] == "Weight (Lbs)",
        lambda r: round(r["value_num"] * 0.45359237, 2),
    )
    agree(run, "latest-weight", latest_highest(pounds))
    agree(run, "elevated-blood-pressure-two-days", elevated_two_days(raw))
    # Diabetes: ICD-10 E08-E11, E13 and ICD-9 249-250, as MIMIC writes them (no dot).
    first_dm: dict[str, dt.datetime] = {}
    for event in raw["events"]:
        code = event["code"] or ""
        if event["kind"] == "diagnosis" and (
            re.match(r"ICD10:E(0[89]|1[013])", code) or re.match(r"ICD9:(249|250)", code)
        ):
            patient = event["patient_id"]
            first_dm[patient] = min(first_dm.get(patient, event["start_time"]), event["start_time"])
    agree(
        run,
        "first-diabetes-diagnosis-date",
        {p: t.date().isoformat() for p, t in first_dm.items()},
    )
    before = {}
    for patient, points in a1c.items():
        diagnosed = first_dm.get(patient)
        before[patient] = any(
            v >= 6.5 and (diagnosed is None or t.date() < diagnosed.date()) for t, v, _ in points
        )
    agree(run, "diabetic-hba1c-before-diagnosis", before)
    # Serum creatinine (itemid 50912) and the blood-gas whole-blood creatinine (52024).
    creatinine = series(
        labs,
        lambda r: r["analyte_name"] in ("Creatinine", "Creatinine, Whole Blood")
        and r["fluid"] == "Blood",
    )
    agree(run, "aki-kdigo-creatinine-rise", kdigo_rise(creatinine))


def test_synthetic_cohort(templates: SilverTemplateSet, tmp_path: Path) -> None:
    cohort = tmp_path / "tiny"
    generate_cohort(load_preset("tiny"), 0, cohort)
    run, raw = ask(templates, lambda store: load_bundle(store, cohort))
    check_shape(run, per_level=2)
    labs = raw["labs"]
    # The generator writes corrections ('corrected' values replacing a draw's first report).
    egfr = series(labs, code_is("98979-8"))
    agree(run, "egfr-change", egfr_change(egfr))
    agree(run, "ckd-egfr-below-60-over-90-days", ckd_two_low(egfr))
    creatinine = series(labs, code_is("2160-0"))
    agree(run, "latest-creatinine", latest_highest(creatinine))
    agree(run, "aki-kdigo-creatinine-rise", kdigo_rise(creatinine))


def test_example_bundle(templates: SilverTemplateSet) -> None:
    run, _ = ask(templates, lambda store: load_bundle(store, Path(str(example_bundle_path()))))
    levels = templates_per_level(run)
    assert all(levels[level] for level in (1, 2, 3)), levels
    # Three hand-written myeloma patients: values read off the bundle's CSV files.
    assert labels(run, "latest-creatinine") == {"MM-001": 1.1, "MM-002": 1.3}
    assert labels(run, "hemoglobin-nadir") == {"MM-001": 9.1}
    assert labels(run, "anaemia-who-latest-hemoglobin") == {"MM-001": False}
    assert labels(run, "hospital-admission-count") == {"MM-002": 1, "MM-003": 1}
    assert labels(run, "death-date") == {"MM-003": "2024-02-17"}
    assert labels(run, "hypertension-diagnosed") == dict.fromkeys(
        ("MM-001", "MM-002", "MM-003"), False
    )
