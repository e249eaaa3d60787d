"""The record's skeleton: what exists and when, given to the agent before any tool call.

Demographics, the size and span of the record, every event in date order (as the timeline
tool shows them, within a token budget), documents counted by type, and lab analytes with how
many values they have and over which days. Event ids in it are citable.
"""

from __future__ import annotations

import datetime as dt

from recordagent.records.scope import PatientScope, as_datetime
from recordagent.records.tokens import Tokenizer
from recordagent.runners.passages import event_lines
from recordagent.tools._base import SourceRef, fit_lines

__all__ = ["record_skeleton"]


def record_skeleton(
    scope: PatientScope, tokenizer: Tokenizer, max_tokens: int, until: dt.date | None = None
) -> tuple[str, list[SourceRef]]:
    """The skeleton text within ``max_tokens``, and the event rows it shows."""
    patient = scope.patient()
    facts = [f"Patient {patient.patient_id}: {patient.sex or 'sex unknown'}"]
    if patient.birth_date:
        facts.append(f"born {patient.birth_date:%Y-%m-%d}")
    if patient.death_date and (until is None or patient.death_date <= until):
        facts.append(f"died {patient.death_date:%Y-%m-%d}")
    header = ", ".join(facts) + "."
    documents = scope.fetch(
        "SELECT type, count(*), min(date), max(date) FROM documents"
        + (" WHERE date <= $until" if until else "")
        + " GROUP BY type ORDER BY count(*) DESC, type",
        {"until": as_datetime(until, end_of_day=True)} if until else None,
    )
    labs = scope.fetch(
        "SELECT analyte_name, count(*), min(time), max(time) FROM labs"
        + (" WHERE time <= $until" if until else "")
        + " GROUP BY analyte_name ORDER BY count(*) DESC, analyte_name",
        {"until": as_datetime(until, end_of_day=True)} if until else None,
    )
    events = scope.events(end=until)
    n_documents = sum(int(row[1]) for row in documents)
    n_labs = sum(int(row[1]) for row in labs)
    summary = (
        f"Record: {n_documents} document(s), {n_labs} lab value(s) of {len(labs)} analyte(s), "
        f"{len(events)} event(s)" + (f", up to {until:%Y-%m-%d}." if until else ".")
    )
    document_lines = [
        f"- {kind} ×{count} ({first:%Y-%m-%d} … {last:%Y-%m-%d})"
        for kind, count, first, last in documents
    ]
    lab_lines = [
        f"- {name} ×{count} ({first:%Y-%m-%d} … {last:%Y-%m-%d})"
        for name, count, first, last in labs
    ]
    shown_events = event_lines(events, until)
    fixed = [header, summary, "Documents by type:", *document_lines]
    labs_block = ["Lab analytes:", *lab_lines]
    # Events get what the fixed parts leave; documents and analytes are cut last.
    fixed_text = fit_lines(fixed, tokenizer, max_tokens // 3)
    labs_text = fit_lines(labs_block, tokenizer, max_tokens // 4)
    used = tokenizer.count(fixed_text) + tokenizer.count(labs_text)
    events_text = fit_lines(
        ["Events in date order:", *shown_events], tokenizer, max(100, max_tokens - used)
    )
    shown = [e for e, line in zip(events, shown_events, strict=True) if line in events_text]
    text = "\n".join([fixed_text, events_text, labs_text])
    return text, [SourceRef(kind="event", id=e.event_id) for e in shown]
