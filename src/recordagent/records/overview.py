"""One patient's record at a glance: what kinds of entries it holds, and the ones that matter.

Whatever the source — the synthetic myeloma cohort, FHIR, OMOP, MIMIC-IV, a bundle — the
overview says what the record has (event kinds with counts and date ranges, documents by type,
lab values), its diagnoses (the most recent and the most frequent distinct labels), its therapy
lines and its milestones (transplant, progression, death) where it has them. Lists are capped
and every cap comes with the total, so a reader can say how much was left out. Front ends (the
chat header) and the agent's skeleton render it; nothing here knows a disease.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recordagent.records.schema import Event
from recordagent.records.scope import PatientScope, as_datetime

__all__ = [
    "MILESTONE_KINDS",
    "DiagnosisSummary",
    "DocumentTypeSummary",
    "KindSummary",
    "LabsSummary",
    "OverviewEvent",
    "RecordOverview",
    "chronological",
    "events_by_importance",
    "kind_count",
    "record_overview",
]

MILESTONE_KINDS: tuple[str, ...] = ("transplant", "progression", "death")
"""Event kinds that mark a turn in the course of disease, listed whatever their number."""

# Nouns for counts ("3 diagnoses"); a kind not listed reads "N <kind> events".
_NOUNS: dict[str, tuple[str, str]] = {
    "admission": ("admission", "admissions"),
    "diagnosis": ("diagnosis", "diagnoses"),
    "therapy": ("therapy", "therapies"),
    "medication": ("medication", "medications"),
    "procedure": ("procedure", "procedures"),
    "transplant": ("transplant", "transplants"),
    "imaging": ("imaging study", "imaging studies"),
    "response": ("response assessment", "response assessments"),
    "progression": ("progression", "progressions"),
    "encounter": ("encounter", "encounters"),
    "death": ("death", "deaths"),
    "other": ("other event", "other events"),
}
# Which events a reader with little room sees first (lower first): the frame of the course —
# milestones, therapy lines, hospital stays; then what the patient has (each distinct
# diagnosis) and how they responded; then the routine bulk.
_TIER: dict[str, int] = {
    **dict.fromkeys(MILESTONE_KINDS, 0),
    "therapy": 0,
    "admission": 0,
    "diagnosis": 1,
    "response": 1,
}
_ROUTINE = 2
_DIGITS = re.compile(r"(\d+)")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class KindSummary(_Frozen):
    """How many events of one kind the record holds, and over which days."""

    kind: str = Field(description="Event kind, e.g. 'diagnosis' or 'medication'.")
    count: int = Field(description="Number of events of this kind.")
    first: dt.datetime = Field(description="Earliest start of an event of this kind.")
    last: dt.datetime = Field(description="Latest start of an event of this kind.")


class DiagnosisSummary(_Frozen):
    """One distinct diagnosis label and how often and when the record states it."""

    label: str = Field(description="The diagnosis as the record names it.")
    code: str | None = Field(description="Source code of its latest occurrence, if any.")
    count: int = Field(description="How many diagnosis events carry this label.")
    first: dt.datetime = Field(description="Start of its earliest occurrence.")
    last: dt.datetime = Field(description="Start of its latest occurrence.")
    event_id: str = Field(description="Id of its latest occurrence, citable as evidence.")


class OverviewEvent(_Frozen):
    """One event listed by name: a therapy line or a milestone."""

    event_id: str = Field(description="Event identifier, citable as evidence.")
    kind: str = Field(description="Event kind.")
    start: dt.datetime = Field(description="Start (or occurrence) time.")
    end: dt.datetime | None = Field(
        description="End time; None when the record has none or it lies after ``until``."
    )
    ongoing_on: dt.date | None = Field(
        default=None,
        description="Set to ``until`` when the event was still running that day (its later "
        "end is not shown).",
    )
    label: str = Field(description="Human-readable label.")
    detail: str | None = Field(default=None, description="Free-text detail, e.g. 'line 2'.")


class DocumentTypeSummary(_Frozen):
    """Documents of one type."""

    type: str = Field(description="Document type as the record names it.")
    count: int = Field(description="Number of documents of this type.")
    first: dt.datetime = Field(description="Date of the earliest one.")
    last: dt.datetime = Field(description="Date of the latest one.")


class LabsSummary(_Frozen):
    """Lab values in total."""

    value_count: int = Field(description="Number of lab values.")
    analyte_count: int = Field(description="Number of distinct analyte names.")
    first: dt.datetime | None = Field(description="Time of the earliest value, if any.")
    last: dt.datetime | None = Field(description="Time of the latest value, if any.")


class RecordOverview(_Frozen):
    """What one patient's record holds (up to ``until``), and the entries that matter first."""

    patient_id: str = Field(description="The patient.")
    until: dt.date | None = Field(description="Entries after this day were left out, if set.")
    first: dt.datetime | None = Field(
        description="Earliest dated entry (document, lab value or event start)."
    )
    last: dt.datetime | None = Field(
        description="Latest dated entry (document, lab value or event start)."
    )
    event_count: int = Field(description="Number of events of any kind.")
    event_kinds: tuple[KindSummary, ...] = Field(
        description="Every event kind present, most frequent first."
    )
    diagnosis_count: int = Field(description="Number of distinct diagnosis labels.")
    recent_diagnoses: tuple[DiagnosisSummary, ...] = Field(
        description="Distinct diagnoses, latest occurrence first (at most ``top``)."
    )
    frequent_diagnoses: tuple[DiagnosisSummary, ...] = Field(
        description="Distinct diagnoses, most often stated first (at most ``top``)."
    )
    therapy_count: int = Field(description="Number of therapy events (therapy lines).")
    therapy_lines: tuple[OverviewEvent, ...] = Field(
        description="The most recent therapy events (at most ``top``), in date order."
    )
    milestone_count: int = Field(description="Number of milestone events.")
    milestones: tuple[OverviewEvent, ...] = Field(
        description="The most recent milestone events (transplant, progression, death; at "
        "most ``top``), in date order."
    )
    document_count: int = Field(description="Number of documents.")
    document_types: tuple[DocumentTypeSummary, ...] = Field(
        description="Every document type present, most frequent first."
    )
    labs: LabsSummary = Field(description="Lab values in total.")

    @property
    def is_empty(self) -> bool:
        """Whether the record holds no document, lab value or event at all."""
        return self.document_count + self.labs.value_count + self.event_count == 0


def record_overview(
    scope: PatientScope, until: dt.date | None = None, *, top: int = 10
) -> RecordOverview:
    """The overview of ``scope``'s record, counting only entries dated up to ``until``.

    Args:
        scope: The patient.
        until: Leave out documents, lab values and events (by start) after this day.
        top: At most this many entries in each list of named entries; totals count them all.

    Raises:
        ValueError: ``top`` is below 1.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    params = {"until": as_datetime(until, end_of_day=True)} if until else None

    def where(column: str, *more: str) -> str:
        clauses = [*more, *([f"{column} <= $until"] if until else [])]
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""

    kinds = [
        KindSummary(kind=kind, count=int(n), first=first, last=last)
        for kind, n, first, last in scope.fetch(
            "SELECT kind, count(*), min(start_time), max(start_time) FROM events"
            + where("start_time")
            + " GROUP BY kind ORDER BY count(*) DESC, kind",
            params,
        )
    ]
    document_types = [
        DocumentTypeSummary(type=kind, count=int(n), first=first, last=last)
        for kind, n, first, last in scope.fetch(
            "SELECT type, count(*), min(date), max(date) FROM documents"
            + where("date")
            + " GROUP BY type ORDER BY count(*) DESC, type",
            params,
        )
    ]
    values, analytes, lab_first, lab_last = scope.fetch(
        "SELECT count(*), count(DISTINCT analyte_name), min(time), max(time) FROM labs"
        + where("time"),
        params,
    )[0]
    labs = LabsSummary(
        value_count=int(values), analyte_count=int(analytes), first=lab_first, last=lab_last
    )
    diagnosis_rows = scope.fetch(
        "SELECT event_id, label, code, start_time FROM events"
        + where("start_time", "kind = 'diagnosis'"),
        params,
    )
    recent, frequent = _diagnoses(diagnosis_rows)
    by_kind = {k.kind: k.count for k in kinds}
    starts = [
        t
        for summary in (kinds, document_types)
        for item in summary
        for t in (item.first, item.last)
    ] + [t for t in (lab_first, lab_last) if t is not None]
    return RecordOverview(
        patient_id=scope.patient_id,
        until=until,
        first=min(starts, default=None),
        last=max(starts, default=None),
        event_count=sum(by_kind.values()),
        event_kinds=tuple(kinds),
        diagnosis_count=len(recent),
        recent_diagnoses=tuple(recent[:top]),
        frequent_diagnoses=tuple(frequent[:top]),
        therapy_count=by_kind.get("therapy", 0),
        therapy_lines=tuple(_latest(scope, ["therapy"], until, top)),
        milestone_count=sum(by_kind.get(k, 0) for k in MILESTONE_KINDS),
        milestones=tuple(_latest(scope, MILESTONE_KINDS, until, top)),
        document_count=sum(d.count for d in document_types),
        document_types=tuple(document_types),
        labs=labs,
    )


def events_by_importance(events: Iterable[Event]) -> list[Event]:
    """Events in the order a reader with little room should see them.

    Milestones, therapy lines and admissions first; then the latest occurrence of each
    distinct diagnosis, and response assessments; then everything else (repeated diagnoses
    included). Most recent first within each tier; events of one moment keep the order of the
    numbers in their ids (a source's sequence numbers).
    """
    listed = list(events)
    seen: set[str] = set()
    tier: dict[str, int] = {}
    for event in sorted(listed, key=_recent_first):
        rank = _TIER.get(event.kind, _ROUTINE)
        if event.kind == "diagnosis":
            if event.label in seen:
                rank = _ROUTINE
            seen.add(event.label)
        tier[event.event_id] = rank
    return sorted(listed, key=lambda e: (tier[e.event_id], *_recent_first(e)))


def kind_count(kind: str, count: int) -> str:
    """``count`` events of ``kind`` in words: '1 diagnosis', '12 encounters'."""
    one, many = _NOUNS.get(kind, (f"{kind} event", f"{kind} events"))
    return f"{count:,} {one if count == 1 else many}"


def _diagnoses(
    rows: Sequence[tuple[Any, ...]],
) -> tuple[list[DiagnosisSummary], list[DiagnosisSummary]]:
    """Distinct diagnosis labels: latest first, and most often stated first."""
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[1], []).append(row)
    summaries = []
    for label, group in groups.items():
        latest = max(group, key=lambda r: (r[3], _natural(r[0])))
        summaries.append(
            DiagnosisSummary(
                label=label,
                code=latest[2],
                count=len(group),
                first=min(r[3] for r in group),
                last=latest[3],
                event_id=latest[0],
            )
        )
    # Diagnoses stated together (one admission's codes) keep the source's own order, which
    # ids carry as numbers: sequence 2 before sequence 10.
    recent = sorted(summaries, key=lambda d: (_age(d.last), _natural(d.event_id)))
    frequent = sorted(summaries, key=lambda d: (-d.count, _age(d.last), _natural(d.event_id)))
    return recent, frequent


def _latest(
    scope: PatientScope, kinds: Sequence[str], until: dt.date | None, top: int
) -> list[OverviewEvent]:
    """The ``top`` most recent events of ``kinds``, in date order."""
    events = scope.events(kinds=list(kinds), end=until)
    latest = sorted(events, key=_recent_first)[:top]
    return [_listed(e, until) for e in sorted(latest, key=chronological)]


def _listed(event: Event, until: dt.date | None) -> OverviewEvent:
    end, ongoing = event.end_time, None
    if until is not None and end is not None and end.date() > until:
        end, ongoing = None, until
    return OverviewEvent(
        event_id=event.event_id,
        kind=event.kind,
        start=event.start_time,
        end=end,
        ongoing_on=ongoing,
        label=event.label,
        detail=event.detail,
    )


def _recent_first(event: Event) -> tuple[float, tuple[Any, ...]]:
    return (_age(event.start_time), _natural(event.event_id))


def chronological(event: Event) -> tuple[dt.datetime, tuple[Any, ...]]:
    """A sort key for date order; events of one moment go by the numbers in their ids."""
    return (event.start_time, _natural(event.event_id))


def _age(time: dt.datetime) -> float:
    """A key that sorts later times first (ties then go by id, ascending)."""
    return (dt.datetime.min - time.replace(tzinfo=None)).total_seconds()


def _natural(text: str) -> tuple[Any, ...]:
    """A sort key that orders the numbers inside ids by value ('E2' before 'E10')."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(text)
    )
