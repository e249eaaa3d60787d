"""Silver labels of the MIMIC-IV templates on the real demo, checked against the raw files.

The demo (100 patients) is loaded once; every template is asked of every patient; and every
label is recomputed here by an independent query over the demo's own CSV files (DuckDB's
read_csv of hosp/ and icu/, plus plain Python for the criteria), never over the store. The
templates' applicability (which patients get an item) must agree too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recordagent.evaluation.labels import read_labels
from recordagent.evaluation.silver_labels import silver_labels
from recordagent.evaluation.suite import load_suite
from recordagent.questions.silver import (
    SILVER_ANNOTATOR,
    SilverRun,
    silver_instances,
    silver_sample,
)
from recordagent.questions.silver_templates import SilverTemplateSet, load_silver_templates
from recordagent.records.db import RecordStore, connect
from recordagent.sources.mimic_iv import load_mimic_iv
from tests.helpers import FIXTURES, REPO, SHARED_DATA, recordagent

DEMO = SHARED_DATA / "mimic-iv-demo"
TEMPLATES = REPO / "question_templates" / "mimic_iv"
NOTE_TEMPLATES = {"chief-complaint-last-discharge", "allergies-last-discharge"}

pytestmark = [
    pytest.mark.mimic,
    pytest.mark.skipif(
        not (DEMO / "hosp" / "patients.csv.gz").is_file(),
        reason=f"the MIMIC-IV demo is not at {DEMO} (../shared/data/mimic-iv-demo)",
    ),
]


# --- fixtures: the store (loaded once), the silver run, the raw files -------------------------


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo loaded into a store file (closed again, so other processes can read it)."""
    path = tmp_path_factory.mktemp("mimic_silver") / "store.duckdb"
    with connect(path) as store:
        load_mimic_iv(store, DEMO)
    return path


@pytest.fixture(scope="module")
def store(store_file: Path) -> Iterator[RecordStore]:
    with connect(store_file, read_only=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def templates() -> SilverTemplateSet:
    return load_silver_templates(TEMPLATES)


@pytest.fixture(scope="module")
def run(templates: SilverTemplateSet, store: RecordStore) -> SilverRun:
    return silver_instances(templates, store)


@pytest.fixture(scope="module")
def raw() -> Iterator[duckdb.DuckDBPyConnection]:
    """The demo's CSV files as tables (only what the expectations read)."""
    con = duckdb.connect()
    hosp, icu = DEMO / "hosp", DEMO / "icu"

    def table(name: str, path: Path, types: dict[str, str] | None = None) -> None:
        typed = f", types = {json.dumps(types)}".replace('"', "'") if types else ""
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}'{typed})")

    table("patients", hosp / "patients.csv.gz")
    table("admissions", hosp / "admissions.csv.gz")
    table("diagnoses", hosp / "diagnoses_icd.csv.gz", {"icd_code": "VARCHAR"})
    table("prescriptions", hosp / "prescriptions.csv.gz", {"ndc": "VARCHAR"})
    table("micro", hosp / "microbiologyevents.csv.gz")
    table("omr", hosp / "omr.csv.gz")
    table("icustays", icu / "icustays.csv.gz")
    con.execute(
        f"""CREATE TABLE lab AS
        SELECT l.subject_id, l.labevent_id, l.charttime, l.valuenum, d.label
        FROM read_csv('{hosp / "labevents.csv.gz"}') l
        JOIN read_csv('{hosp / "d_labitems.csv.gz"}') d USING (itemid)
        WHERE d.fluid = 'Blood' AND l.valuenum IS NOT NULL
          AND d.label IN ('Potassium', 'Sodium', 'Creatinine', 'Hemoglobin', '% Hemoglobin A1c')
        """
    )
    yield con
    con.close()


def by_subject(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    """``{subject_id: value}`` of a query returning (subject_id, value), NULL values dropped."""
    return {str(s): v for s, v in con.execute(sql).fetchall() if v is not None}


# --- the expectations: one independent computation per template -------------------------------


def _latest_lab(con: duckdb.DuckDBPyConnection, label: str) -> dict[str, Any]:
    return by_subject(
        con,
        f"""SELECT subject_id, max(valuenum) FROM lab
            WHERE label = '{label}' AND (subject_id, charttime) IN
                  (SELECT (subject_id, max(charttime)) FROM lab WHERE label = '{label}'
                   GROUP BY subject_id)
            GROUP BY subject_id""",
    )


def _admissions(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Per subject: (hadm_id, admittime, dischtime, discharge_location, expire flag), in order."""
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in con.execute(
        "SELECT subject_id, hadm_id, admittime, dischtime, discharge_location, "
        "hospital_expire_flag FROM admissions ORDER BY subject_id, admittime, hadm_id"
    ).fetchall():
        out[str(row[0])].append(row[1:])
    return out


def _labs(con: duckdb.DuckDBPyConnection, label: str) -> dict[str, list[tuple[Any, Decimal]]]:
    """Per subject: (charttime, exact value) of a blood lab, in time order."""
    out: dict[str, list[tuple[Any, Decimal]]] = defaultdict(list)
    for subject, time, value in con.execute(
        "SELECT subject_id, charttime, valuenum FROM lab WHERE label = $label "
        "ORDER BY subject_id, charttime, labevent_id",
        {"label": label},
    ).fetchall():
        out[str(subject)].append((time, Decimal(str(value))))
    return out


# The antibiotic catalogue, restated: (generic, every word its drug name must contain).
# Combinations come before their parts. Names and routes of non-systemic forms are excluded.
ANTIBIOTICS = [
    ("amoxicillin-clavulanate", ["amoxicillin", "clav"]),
    ("amoxicillin-clavulanate", ["augmentin"]),
    ("amoxicillin", ["amoxicillin"]),
    ("ampicillin-sulbactam", ["ampicillin", "sulbactam"]),
    ("ampicillin-sulbactam", ["unasyn"]),
    ("ampicillin", ["ampicillin"]),
    ("piperacillin-tazobactam", ["piperacillin"]),
    ("piperacillin-tazobactam", ["zosyn"]),
    ("nafcillin", ["nafcillin"]),
    ("dicloxacillin", ["dicloxacillin"]),
    ("oxacillin", ["oxacillin"]),
    ("penicillin", ["penicillin"]),
    ("cefazolin", ["cefazolin"]),
    ("cephalexin", ["cephalexin"]),
    ("cephalexin", ["keflex"]),
    ("cefadroxil", ["cefadroxil"]),
    ("cefuroxime", ["cefuroxime"]),
    ("cefoxitin", ["cefoxitin"]),
    ("cefotetan", ["cefotetan"]),
    ("cefpodoxime", ["cefpodoxime"]),
    ("cefdinir", ["cefdinir"]),
    ("ceftriaxone", ["ceftriaxone"]),
    ("cefotaxime", ["cefotaxime"]),
    ("ceftazidime-avibactam", ["ceftazidime", "avibactam"]),
    ("ceftazidime-avibactam", ["avycaz"]),
    ("ceftazidime", ["ceftazidime"]),
    ("cefepime", ["cefepime"]),
    ("ceftaroline", ["ceftaroline"]),
    ("ceftolozane-tazobactam", ["ceftolozane"]),
    ("ceftolozane-tazobactam", ["zerbaxa"]),
    ("meropenem", ["meropenem"]),
    ("ertapenem", ["ertapenem"]),
    ("imipenem-cilastatin", ["imipenem"]),
    ("aztreonam", ["aztreonam"]),
    ("vancomycin", ["vancomycin"]),
    ("linezolid", ["linezolid"]),
    ("daptomycin", ["daptomycin"]),
    ("tigecycline", ["tigecycline"]),
    ("doxycycline", ["doxycycline"]),
    ("minocycline", ["minocycline"]),
    ("tetracycline", ["tetracycline"]),
    ("ciprofloxacin", ["ciprofloxacin"]),
    ("levofloxacin", ["levofloxacin"]),
    ("moxifloxacin", ["moxifloxacin"]),
    ("azithromycin", ["azithromycin"]),
    ("clarithromycin", ["clarithromycin"]),
    ("erythromycin", ["erythromycin"]),
    ("clindamycin", ["clindamycin"]),
    ("metronidazole", ["metronidazole"]),
    ("metronidazole", ["flagyl"]),
    ("trimethoprim-sulfamethoxazole", ["sulfameth"]),
    ("trimethoprim-sulfamethoxazole", ["bactrim"]),
    ("trimethoprim", ["trimethoprim"]),
    ("nitrofurantoin", ["nitrofurantoin"]),
    ("fosfomycin", ["fosfomycin"]),
    ("gentamicin", ["gentamicin"]),
    ("tobramycin", ["tobramycin"]),
    ("amikacin", ["amikacin"]),
    ("neomycin", ["neomycin"]),
    ("rifampin", ["rifampin"]),
    ("rifampin", ["rifampicin"]),
    ("rifaximin", ["rifaximin"]),
    ("fidaxomicin", ["fidaxomicin"]),
    ("colistin", ["colistin"]),
    ("colistin", ["colistimethate"]),
    ("polymyxin B", ["polymyxin"]),
]
NOT_SYSTEMIC = re.compile(r"ophth|otic|cream|oint|\bgel\b|lotion|topical|vag|bacitracin|\bdrops?\b")
LOCAL_ROUTES = {
    "TP", "OU", "OS", "OD", "BOTH EYES", "LEFT EYE", "RIGHT EYE", "BOTH EARS", "LEFT EAR",
    "RIGHT EAR", "VG", "NU", "NAS", "IH", "NEB",
}  # fmt: skip


def antibiotic(drug: str | None, route: str | None) -> str | None:
    name = (drug or "").lower()
    if NOT_SYSTEMIC.search(name) or (route or "").strip() in LOCAL_ROUTES:
        return None
    for generic, words in ANTIBIOTICS:
        if all(word in name for word in words):
            return generic
    return None


def _orders(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, str]]]:
    """Per subject: (starttime, generic) of every antibiotic prescription."""
    out: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for subject, start, drug, route in con.execute(
        "SELECT subject_id, starttime, drug, route FROM prescriptions"
    ).fetchall():
        generic = antibiotic(drug, route)
        if generic is not None:
            out[str(subject)].append((start, generic))
    return out


def expectations(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Every template's answer per patient (absent: the template does not apply)."""
    exp: dict[str, dict[str, Any]] = {}
    admissions = _admissions(con)
    latest = {s: rows[-1] for s, rows in admissions.items()}
    exp["first-admission-date"] = {s: rows[0][1].date() for s, rows in admissions.items()}
    exp["last-discharge-location"] = {s: a[3] for s, a in latest.items() if a[3] is not None}
    exp["latest-potassium"] = _latest_lab(con, "Potassium")
    exp["latest-hba1c"] = _latest_lab(con, "% Hemoglobin A1c")
    exp["latest-weight"] = by_subject(
        con,
        """SELECT subject_id,
                  arg_max(TRY_CAST(result_value AS DOUBLE), (chartdate, seq_num, result_value))
           FROM omr
           WHERE result_name = 'Weight (Lbs)' AND TRY_CAST(result_value AS DOUBLE) IS NOT NULL
           GROUP BY subject_id""",
    )
    exp["death-date"] = by_subject(con, "SELECT subject_id, dod FROM patients")
    exp["died-in-hospital"] = {s: any(a[4] == 1 for a in rows) for s, rows in admissions.items()}
    exp["admission-count"] = {s: len(rows) for s, rows in admissions.items()}
    exp["first-ckd-admission"] = by_subject(
        con,
        """SELECT d.subject_id, CAST(min(a.admittime) AS DATE)
           FROM diagnoses d JOIN admissions a USING (hadm_id)
           WHERE (d.icd_version = 9 AND d.icd_code LIKE '585%')
              OR (d.icd_version = 10 AND d.icd_code LIKE 'N18%')
           GROUP BY d.subject_id""",
    )
    creatinine = _labs(con, "Creatinine")
    peak = {}
    for s, (_, admit, disch, *_rest) in latest.items():
        values = [v for t, v in creatinine[s] if admit <= t <= disch]
        if values:
            peak[s] = float(max(values))
    exp["peak-creatinine-latest-admission"] = peak
    hemoglobin = _labs(con, "Hemoglobin")
    exp["hemoglobin-nadir"] = {s: float(min(v for _, v in rows)) for s, rows in hemoglobin.items()}
    exp["hemoglobin-nadir-date"] = {
        s: min(rows, key=lambda r: (r[1], r[0]))[0].date() for s, rows in hemoglobin.items()
    }
    exp["days-between-last-admissions"] = {
        s: float((rows[-1][1].date() - rows[-2][2].date()).days)
        for s, rows in admissions.items()
        if len(rows) >= 2
    }
    exp["longest-stay-days"] = {
        s: max(round((a[2] - a[1]).total_seconds() / 86400, 1) for a in rows)
        for s, rows in admissions.items()
    }
    icu = by_subject(con, "SELECT subject_id, count(*) FROM icustays GROUP BY subject_id")
    exp["icu-stay-count"] = {s: icu.get(s, 0) for s in admissions}
    exp["first-sodium-below-135"] = by_subject(
        con,
        "SELECT subject_id, CAST(min(charttime) AS DATE) FROM lab "
        "WHERE label = 'Sodium' AND valuenum < 135 GROUP BY subject_id",
    )
    orders = _orders(con)
    prescribed = {str(s) for (s,) in con.execute("SELECT subject_id FROM prescriptions").fetchall()}
    exp["distinct-antibiotic-count"] = {s: len({g for _, g in orders[s]}) for s in prescribed}
    exp["aki-kdigo-creatinine"] = _aki(admissions, creatinine)
    exp["antibiotics-at-positive-blood-culture"] = _culture_antibiotics(con, orders)
    exp["readmission-within-30-days"] = {
        s: any(
            (b[1].date() - a[2].date()).days <= 30 for a, b in zip(rows[:-1], rows[1:], strict=True)
        )
        for s, rows in admissions.items()
        if len(rows) >= 2
    }
    deaths = exp["death-date"]
    exp["died-within-30-days-of-discharge"] = {
        s: s in deaths and (deaths[s] - a[2].date()).days <= 30
        for s, a in latest.items()
        if a[4] != 1
    }
    exp["hypokalemia-repletion"] = _repletion(con, admissions)
    potassium = _labs(con, "Potassium")
    exp["hyperkalemia-after-ckd"] = {
        s: any(t >= admit and v > Decimal("5.5") for t, v in potassium[s])
        for s, admit in _first_ckd_admittime(con).items()
    }
    return exp


def _aki(
    admissions: dict[str, list[tuple[Any, ...]]],
    creatinine: dict[str, list[tuple[Any, Decimal]]],
) -> dict[str, bool]:
    """KDIGO creatinine criterion in the latest admission with two or more values."""
    out = {}
    for s, rows in admissions.items():
        for _, admit, disch, *_rest in reversed(rows):
            values = [(t, v) for t, v in creatinine[s] if admit <= t <= disch]
            if len(values) < 2:
                continue
            out[s] = any(
                (b_t - a_t <= dt.timedelta(hours=48) and b - a >= Decimal("0.3"))
                or (b_t - a_t <= dt.timedelta(days=7) and b >= Decimal("1.5") * a)
                for a_t, a in values
                for b_t, b in values
                if b_t > a_t
            )
            break
    return out


def _culture_antibiotics(
    con: duckdb.DuckDBPyConnection, orders: dict[str, list[tuple[Any, str]]]
) -> dict[str, list[str]]:
    first = by_subject(
        con,
        """SELECT subject_id, min(coalesce(charttime, chartdate)) FROM micro
           WHERE spec_type_desc = 'BLOOD CULTURE' AND trim(org_name) NOT IN ('', 'CANCELLED')
           GROUP BY subject_id""",
    )
    out = {}
    for s, time in first.items():
        day = time.date()
        out[s] = sorted(
            {
                g
                for start, g in orders[s]
                if day - dt.timedelta(days=1) <= start.date() <= day + dt.timedelta(days=2)
            }
        )
    return out


def _repletion(
    con: duckdb.DuckDBPyConnection, admissions: dict[str, list[tuple[Any, ...]]]
) -> dict[str, bool]:
    potassium = _labs(con, "Potassium")  # per subject: (time, value)
    supplement = re.compile(
        r"^(potassium chl|potassium phos|potassium bicarb|potassium citrate|kcl|k-phos|"
        r"klor-con|effer-k)"
    )
    starts: dict[str, list[Any]] = defaultdict(list)
    for subject, start, drug in con.execute(
        "SELECT subject_id, starttime, drug FROM prescriptions"
    ).fetchall():
        if supplement.match((drug or "").lower()):
            starts[str(subject)].append(start)
    out = {}
    for s, rows in admissions.items():
        for _, admit, disch, *_rest in reversed(rows):
            lows = [t for t, v in potassium[s] if admit <= t <= disch and v < Decimal("3.5")]
            if lows:
                low = lows[0]
                out[s] = any(low <= t <= low + dt.timedelta(hours=24) for t in starts[s])
                break
    return out


def _first_ckd_admittime(con: duckdb.DuckDBPyConnection) -> dict[str, dt.datetime]:
    return {
        str(s): t
        for s, t in con.execute(
            """SELECT d.subject_id, min(a.admittime) FROM diagnoses d
               JOIN admissions a USING (hadm_id)
               WHERE (d.icd_version = 9 AND d.icd_code LIKE '585%')
                  OR (d.icd_version = 10 AND d.icd_code LIKE 'N18%')
               GROUP BY d.subject_id"""
        ).fetchall()
    }


def same(value: Any, expected: Any) -> bool:
    """A label's JSON value against an expectation (dates as days, numbers to 1e-9)."""
    if isinstance(expected, dt.date):
        return value == expected.isoformat()
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, int | float | Decimal):
        return isinstance(value, int | float) and math.isclose(value, float(expected), abs_tol=1e-9)
    return bool(value == expected)


# --- the tests -----------------------------------------------------------------------------------


def test_every_label_matches_an_independent_query_over_the_raw_files(
    run: SilverRun, raw: duckdb.DuckDBPyConnection, templates: SilverTemplateSet
):
    expected = expectations(raw)
    structured = {t.id for t in templates.templates} - NOTE_TEMPLATES
    assert set(expected) == structured, "every structured template has an expectation"
    got: dict[str, dict[str, Any]] = defaultdict(dict)
    for label, instance in zip(silver_labels(run.instances), run.instances, strict=True):
        assert label.annotator == SILVER_ANNOTATOR and label.item_id == instance.item.id
        got[instance.item.template_id or ""][instance.item.patient_id] = label.value
    problems = []
    for template_id in sorted(structured):
        want, have = expected[template_id], got[template_id]
        for patient in sorted(set(want) | set(have)):
            if patient not in have:
                problems.append(f"{template_id}/{patient}: no item, expected {want[patient]!r}")
            elif patient not in want:
                problems.append(f"{template_id}/{patient}: {have[patient]!r}, expected no item")
            elif not same(have[patient], want[patient]):
                problems.append(f"{template_id}/{patient}: {have[patient]!r} != {want[patient]!r}")
    assert not problems, f"{len(problems)} disagreements:\n" + "\n".join(problems[:40])


def test_every_structured_template_applies_and_note_templates_are_skipped(run: SilverRun):
    tallies = {t.template_id: t for t in run.tallies}
    for template_id, tally in tallies.items():
        assert tally.applicable + tally.not_applicable + (100 if tally.skipped else 0) == 100
        if template_id in NOTE_TEMPLATES:
            assert tally.skipped is not None and "needs notes" in tally.skipped
            assert tally.applicable == 0
        else:
            assert tally.skipped is None, template_id
            assert tally.applicable >= 1, f"{template_id} applies to no demo patient"
    assert len(run.instances) == sum(t.applicable for t in run.tallies)


def test_evidence_ids_are_the_patients_own_rows(run: SilverRun, store: RecordStore):
    own: dict[str, set[str]] = defaultdict(set)
    for patient, row_id in store.connection.execute(
        "SELECT patient_id, event_id FROM events UNION ALL SELECT patient_id, lab_id FROM labs"
    ).fetchall():
        own[patient].add(row_id)
    empty = {"icu-stay-count", "distinct-antibiotic-count"}  # a count of 0 rests on no row
    for instance in run.instances:
        item = instance.item
        assert instance.evidence or item.template_id in empty, item.id
        stray = set(instance.evidence) - own[item.patient_id]
        assert not stray, f"{item.id}: evidence {sorted(stray)} is not the patient's"


def test_items_fill_their_slots_and_carry_template_level_and_as_of(run: SilverRun):
    for instance in run.instances:
        item = instance.item
        assert "{" not in item.question and "}" not in item.question, item.question
        assert item.id == f"{item.template_id}/{item.patient_id}"
        assert item.level in (1, 2, 3)
        if item.template_id == "aki-kdigo-creatinine":
            assert item.as_of is not None and item.checklist
            start = re.search(r"\d{4}-\d{2}-\d{2}", item.question)
            assert start is not None and item.as_of >= dt.date.fromisoformat(start.group())
        else:
            assert item.as_of is None
    cultures = [i for i in run.instances if i.item.template_id.startswith("antibiotics-at")]
    assert any(i.value for i in cultures), "some positive blood culture had antibiotics"
    assert all("grew" in i.item.question and "CANCELLED" not in i.item.question for i in cultures)


def test_the_note_templates_answer_from_discharge_summaries(templates: SilverTemplateSet):
    with connect() as store:
        load_mimic_iv(store, FIXTURES / "mimic_iv_notes")
        notes = silver_instances(templates, store)
    tallies = {t.template_id: t for t in notes.tallies}
    assert all(tallies[t].skipped is None for t in NOTE_TEMPLATES)  # the fixture has notes
    assert "needs icu" in str(tallies["icu-stay-count"].skipped)  # and no icu/
    complaints = {
        i.item.patient_id: i.value
        for i in notes.instances
        if i.item.template_id == "chief-complaint-last-discharge"
    }
    assert complaints == {
        "19000001": "Shortness of breath and leg swelling.",
        "19000002": "Fever and confusion.",
    }
    assert tallies["allergies-last-discharge"].applicable == 0  # no Allergies: heading


def test_a_seeded_sample_is_balanced_and_repeatable(
    templates: SilverTemplateSet, store: RecordStore, run: SilverRun
):
    first = silver_sample(templates, store, 12, seed=3)
    again = silver_sample(templates, store, 12, seed=3)
    assert [i.item.id for i in first.instances] == [i.item.id for i in again.instances]
    assert len(first.instances) == 12
    levels = defaultdict(int)
    for instance in first.instances:
        levels[instance.item.level] += 1
    assert set(levels.values()) == {4}
    assert len({i.item.template_id for i in first.instances}) == 12  # one per template
    every = {i.item.id: i.value for i in run.instances}
    assert all(every[i.item.id] == i.value for i in first.instances)  # same labels as the full run


def test_the_cli_writes_what_the_demo_suite_reads(tmp_path: Path, store_file: Path):
    out = tmp_path / "silver"
    result = recordagent(
        "questions", "silver", "--templates", str(TEMPLATES), "--db", str(store_file),
        "--out", str(out), "--n", "6", "--seed", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "6 items from 25 silver templates" in flat
    assert "skipped: needs notes" in flat
    labels = read_labels(out / "labels.jsonl")
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [label.item_id for label in labels] == [item["id"] for item in items]

    suite = load_suite(REPO / "eval" / "suites" / "mimic_iv_demo.yaml")
    evaluated = recordagent(
        "eval", "--suite", str(REPO / "eval" / "suites" / "mimic_iv_demo.yaml"),
        "--db", str(store_file), "--items", str(out / "items.jsonl"),
        "--labels", str(out / "labels.jsonl"), "--runner", "single_pass_rag",
        "--out", str(tmp_path / "results"),
    )  # fmt: skip
    assert suite.model == "mock"
    assert evaluated.returncode == 0, evaluated.stderr
    assert (tmp_path / "results" / "single_pass_rag.jsonl").is_file()
    assert "MOCK MODEL" in evaluated.stdout
