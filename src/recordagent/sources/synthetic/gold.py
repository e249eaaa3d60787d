"""Gold facts: every latent fact a question may ask about, with the evidence that states it.

One row per fact: the patient, the fact's name, the therapy line it belongs to (if any), the
day it holds as of (if it changes over time), its value as text, the value's type and unit, and
the ids of the documents and lab rows that state or imply it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from recordagent.sources.synthetic.course import Course
from recordagent.sources.synthetic.documents import Doc
from recordagent.sources.synthetic.labs import PatientLabs
from recordagent.sources.synthetic.outcomes import Outcomes
from recordagent.sources.synthetic.regimens import DrugClass
from recordagent.sources.synthetic.vocabulary import FACTS

__all__ = ["GOLD_SCHEMA", "gold_facts"]

GOLD_SCHEMA = pl.Schema(
    {
        "patient_id": pl.String(),
        "fact": pl.String(),
        "line": pl.Int32(),
        "as_of": pl.Date(),
        "value": pl.String(),
        "value_type": pl.String(),
        "unit": pl.String(),
        "evidence_documents": pl.List(pl.String()),
        "evidence_labs": pl.List(pl.String()),
    }
)
_ROMAN = {1: "I", 2: "II", 3: "III"}
_LAB_FACTS = {
    "mprotein_at_diagnosis": "mprotein",
    "flc_ratio_at_diagnosis": "ratio",
    "creatinine_at_diagnosis": "creatinine",
    "calcium_at_diagnosis": "calcium",
    "hemoglobin_at_diagnosis": "hemoglobin",
    "albumin_at_diagnosis": "albumin",
    "b2m_at_diagnosis": "b2m",
    "ldh_at_diagnosis": "ldh",
}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def gold_facts(
    course: Course,
    labs: PatientLabs,
    outcomes: Outcomes,
    docs: list[Doc],
    doc_ids: list[str],
) -> list[dict[str, object]]:
    """Every gold fact of one patient, with evidence ids."""
    stated: dict[tuple[str, int | None], list[tuple[dt.date, str]]] = {}
    for doc, doc_id in zip(docs, doc_ids, strict=True):
        for stated_key in doc.states:
            stated.setdefault(stated_key, []).append((doc.date, doc_id))
    rows: list[dict[str, object]] = []

    def fact(
        name: str,
        value: object,
        *,
        line: int | None = None,
        as_of: dt.date | None = None,
        documents: list[str] | None = None,
        labs_ids: tuple[str, ...] | list[str] = (),
        stated_key: tuple[str, int | None] | None = None,
        stated_from: dt.date | None = None,
    ) -> None:
        spec = FACTS[name]
        found = [
            doc_id
            for day, doc_id in stated.get(stated_key or (name, line), [])
            if stated_from is None or day >= stated_from
        ]
        rows.append(
            {
                "patient_id": course.patient_id,
                "fact": name,
                "line": line,
                "as_of": as_of,
                "value": _text(value),
                "value_type": spec.value_type,
                "unit": spec.unit,
                "evidence_documents": list(dict.fromkeys([*(documents or []), *found])),
                "evidence_labs": list(dict.fromkeys(labs_ids)),
            }
        )

    dx_lab = {key: lab_id for key, (lab_id, _, _) in labs.diagnosis.items()}
    fact("diagnosis_date", course.diagnosis_date)
    fact("isotype", course.isotype, stated_key=("isotype", None))
    fact("light_chain", course.light_chain)
    fact("iss_stage", _ROMAN[course.iss], labs_ids=[dx_lab["albumin"], dx_lab["b2m"]])
    fact("riss_stage", _ROMAN[course.riss])
    for key in ("del17p", "t4_14", "t14_16", "gain1q"):
        fact(key, getattr(course, key))
    fact("crab_hypercalcaemia", course.crab["hypercalcaemia"], labs_ids=[dx_lab["calcium"]])
    fact("crab_renal_impairment", course.crab["renal impairment"], labs_ids=[dx_lab["creatinine"]])
    fact("crab_anaemia", course.crab["anaemia"], labs_ids=[dx_lab["hemoglobin"]])
    fact("crab_bone_lesions", course.crab["bone lesions"])
    bm_dx = [lab_id for day, _, lab_id in labs.bone_marrow if day == course.diagnosis_date]
    fact("bm_plasma_cells_at_diagnosis", course.bm_plasma_cells, labs_ids=bm_dx)
    fact("transplant_eligible", course.transplant_eligible)
    asct = [o.line.asct_date for o in outcomes.lines if o.line.asct_date]
    if asct:
        fact("asct_date", asct[0])
    if outcomes.lines:
        last = outcomes.lines[-1].number
        fact("number_of_lines", len(outcomes.lines), stated_key=("line_regimen", last))
    for o in outcomes.lines:
        n = o.number
        fact("line_regimen", o.line.regimen.name, line=n)
        fact("line_start", o.line.start, line=n)
        r = o.response
        if r.best_date is not None:  # no assessment yet: not evaluable, nothing to ask
            fact("line_best_response", r.best, line=n, labs_ids=r.best_evidence)
            fact("line_best_response_date", r.best_date, line=n, labs_ids=r.best_evidence)
        if r.progression is not None:
            fact("line_progression_date", r.progression, line=n, labs_ids=r.progression_evidence)
    progressed = [o for o in outcomes.lines if o.response.progression]
    if progressed:
        first = progressed[0]
        fact(
            "first_progression_date",
            first.response.progression,
            labs_ids=first.response.progression_evidence,
        )
        last_day = progressed[-1].response.progression
        assert last_day is not None
        status = outcomes.status_on(last_day)
        for name, value in (
            ("lenalidomide_refractory", "lenalidomide" in status.refractory_drugs),
            ("pi_refractory", status.refractory_to(DrugClass.PI)),
            ("anti_cd38_refractory", status.refractory_to(DrugClass.ANTI_CD38)),
            ("triple_class_exposed", status.triple_class_exposed),
            ("triple_class_refractory", status.triple_class_refractory),
        ):
            fact(name, value, as_of=last_day, stated_from=last_day)
    crs_lines = [key[1] for key in stated if key[0] == "crs_grade"]
    if crs_lines:
        grades = {
            line: max(
                (ae.grade for ae in course.adverse_events if ae.kind == "CRS" and ae.line == line),
                default=0,
            )
            for line in crs_lines
        }
        top = max(grades.values())
        evidence = [
            doc_id
            for line, grade in grades.items()
            if grade == top
            for _, doc_id in stated[("crs_grade", line)]
        ]
        fact("crs_max_grade", top, documents=evidence)
    if course.death_date:
        fact("death_date", course.death_date)
    for name, key in _LAB_FACTS.items():
        if key not in labs.diagnosis:
            continue
        lab_id, measured, unit = labs.diagnosis[key]
        if measured is None:
            continue  # not detected: no number to ask about
        unit_factor = 0.1 if key == "mprotein" and unit == "g/L" else 1.0  # gold is in g/dL
        fact(name, round(float(measured) * unit_factor, 4), labs_ids=[lab_id])
    return rows
