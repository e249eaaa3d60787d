"""Clinical documents of one simulated patient, rendered from the observed course.

Documents are hard the way real ones are: facts are spread over many documents and written in
varied forms (synonyms, abbreviations, five date formats, numbers in prose); visit notes copy
their history forward, so older statements reappear after they stopped being true; a FISH report
may be corrected by a later one; findings are negated ("no evidence of new lytic lesions"); and
letterheads, medication lists, techniques and social history make up much of the text. Each
document records which gold facts it states explicitly, so evidence can be audited.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from recordagent.sources.synthetic import letters, reports
from recordagent.sources.synthetic.course import Course
from recordagent.sources.synthetic.labs import PatientLabs
from recordagent.sources.synthetic.outcomes import Outcomes
from recordagent.sources.synthetic.regimens import DrugClass
from recordagent.sources.synthetic.writing import DOCUMENT_TYPES, Doc, PatientWriter

__all__ = [
    "DOCUMENT_TYPES",
    "Doc",
    "event_document_count",
    "finish_documents",
    "render_documents",
    "start_documents",
]


def render_documents(
    rng: np.random.Generator,
    course: Course,
    labs: PatientLabs,
    outcomes: Outcomes,
    visit_days: list[dt.date],
) -> list[Doc]:
    """Every document of the patient up to death or last follow-up, in date order."""
    return finish_documents(start_documents(rng, course, labs, outcomes), visit_days)


def start_documents(
    rng: np.random.Generator, course: Course, labs: PatientLabs, outcomes: Outcomes
) -> PatientWriter:
    """A writer holding the documents that events call for (work-up, therapies, relapses)."""
    w = PatientWriter(rng, course, labs, outcomes)
    reports.diagnosis_documents(w)
    for o in outcomes.lines:
        reports.therapy_plan(w, o)
        if o.line.asct_date:
            reports.transplant(w, o)
        if DrugClass.CAR_T in o.line.classes():
            reports.car_t(w, o)
        elif DrugClass.BISPECIFIC in o.line.classes():
            reports.step_up_dosing(w, o)
        if o.response.progression:
            letters.progression_note(w, o)
    letters.adverse_event_admissions(w)
    return w


def event_document_count(w: PatientWriter) -> int:
    """How many documents the finished record has before clinic visits are added."""
    end = w.course.end_date
    return sum(doc.date <= end for doc in w.docs) + (1 if w.course.death_date else 0)


def finish_documents(w: PatientWriter, visit_days: list[dt.date]) -> list[Doc]:
    """Add the clinic visits and the death summary; the record in date order."""
    for day in visit_days:
        letters.visit(w, day)
    if w.course.death_date:
        letters.death(w)
    kept = [doc for doc in w.docs if doc.date <= w.course.end_date]
    kept.sort(key=lambda doc: (doc.date, DOCUMENT_TYPES.index(doc.type), doc.title))
    return kept
