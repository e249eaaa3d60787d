"""The record's skeleton: what exists and when, given to the agent before any tool call.

Demographics, the size and span of the record, the event kinds with their counts and date
spans (always, so that a model whose event list was cut still knows what the record holds),
documents counted by type, the events themselves within a token budget, and lab analytes with
how many values they have and over which days. Events that matter most are chosen first —
milestones and therapy lines, then each distinct diagnosis, then admissions and response
assessments, then the most recent of the rest — and shown in date order; the events left out
are counted by kind with a pointer to ``get_timeline``. Event ids in it are citable.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from recordagent.records.overview import chronological, events_by_importance, record_overview
from recordagent.records.schema import Event
from recordagent.records.scope import PatientScope, as_datetime
from recordagent.records.tokens import Tokenizer
from recordagent.runners.passages import event_lines
from recordagent.tools.base import SourceRef, fit_lines

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
    overview = record_overview(scope, until)
    labs = scope.fetch(
        "SELECT analyte_name, count(*), min(time), max(time) FROM labs"
        + (" WHERE time <= $until" if until else "")
        + " GROUP BY analyte_name ORDER BY count(*) DESC, analyte_name",
        {"until": as_datetime(until, end_of_day=True)} if until else None,
    )
    events = scope.events(end=until)
    n_labs = sum(int(row[1]) for row in labs)
    summary = (
        f"Record: {overview.document_count} document(s), {n_labs} lab value(s) of {len(labs)} "
        f"analyte(s), {len(events)} event(s)" + (f", up to {until:%Y-%m-%d}." if until else ".")
    )
    kinds = "Event kinds: " + (
        "; ".join(f"{k.kind} ×{k.count} ({_span(k.first, k.last)})" for k in overview.event_kinds)
        or "none"
    )
    document_lines = [
        f"- {d.type} ×{d.count} ({d.first:%Y-%m-%d} … {d.last:%Y-%m-%d})"
        for d in overview.document_types
    ]
    lab_lines = [
        f"- {name} ×{count} ({first:%Y-%m-%d} … {last:%Y-%m-%d})"
        for name, count, first, last in labs
    ]
    labs_block = ["Lab analytes:", *lab_lines]
    # What exists is never cut: the patient, the record's size and its event kinds. Documents
    # share a third of the budget with them, analytes get a quarter, events the rest.
    head = "\n".join([header, summary, kinds])
    documents_text = (
        fit_lines(
            ["Documents by type:", *document_lines],
            tokenizer,
            max(0, max_tokens // 3 - tokenizer.count(head)),
        )
        if document_lines
        else "Documents: none."
    )
    labs_text = fit_lines(labs_block, tokenizer, max_tokens // 4)
    used = sum(tokenizer.count(t) + 1 for t in (head, documents_text, labs_text))
    events_text, shown = _events_block(events, until, tokenizer, max(100, max_tokens - used))
    text = "\n".join(t for t in (head, documents_text, events_text, labs_text) if t)
    return text, [SourceRef(kind="event", id=e.event_id) for e in shown]


def _events_block(
    events: list[Event], until: dt.date | None, tokenizer: Tokenizer, max_tokens: int
) -> tuple[str, list[Event]]:
    """Events in date order within ``max_tokens``: all of them, or the ones that matter most."""
    if not events:
        return "", []
    lines = dict(zip((e.event_id for e in events), event_lines(events, until), strict=True))
    every = ["Events in date order:", *lines.values()]
    room = max_tokens
    for line in every:
        room -= tokenizer.count(line) + 1
        if room < 0:
            break
    else:
        return "\n".join(every), events
    title = "Events in date order (a selection; the rest are counted below):"
    # The note for nothing shown is the longest it can get: reserve its room up front.
    room = max_tokens - tokenizer.count(title) - tokenizer.count(_left_out(events)) - 2
    chosen: list[Event] = []
    for event in events_by_importance(events):
        cost = tokenizer.count(lines[event.event_id]) + 1
        if cost > room:
            break
        chosen.append(event)
        room -= cost
    picked = {e.event_id for e in chosen}
    shown = sorted(chosen, key=chronological)
    omitted = [e for e in events if e.event_id not in picked]
    block = [title, *(lines[e.event_id] for e in shown), _left_out(omitted)]
    return "\n".join(block), shown


def _left_out(events: list[Event]) -> str:
    """How many events were not shown, by kind, and how to see them."""
    by_kind = Counter(e.kind for e in events)
    listed = ", ".join(f"{kind} ×{n}" for kind, n in by_kind.most_common())
    return f"[{len(events)} more event(s) not shown: {listed}; get_timeline lists them]"


def _span(first: dt.datetime, last: dt.datetime) -> str:
    if first.date() == last.date():
        return f"{first:%Y-%m-%d}"
    return f"{first:%Y-%m-%d} … {last:%Y-%m-%d}"
