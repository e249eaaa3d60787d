"""get_timeline: the chronological skeleton of the record, compact enough for decades of care.

Structured events (diagnoses, therapy lines with start and stop, procedures, transplants,
admissions, imaging, responses, death) and one line per document, in date order, paged.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, model_validator

from recordagent.errors import ToolError
from recordagent.records.schema import EVENT_KINDS
from recordagent.records.scope import PatientScope, as_datetime
from recordagent.tools.base import SourceRef, Tool, ToolResult

__all__ = [
    "GET_TIMELINE",
    "PAGE_SIZE",
    "GetTimelineInput",
    "GetTimelineResult",
    "TimelineEntry",
    "get_timeline",
]

PAGE_SIZE = 150


class GetTimelineInput(BaseModel):
    """Arguments of get_timeline."""

    kinds: list[str] | None = Field(
        default=None,
        description="Event kinds to include (" + ", ".join(EVENT_KINDS) + "), and 'document' "
        "for one line per document. All when omitted.",
    )
    start: dt.date | None = Field(default=None, description="From this day (inclusive).")
    end: dt.date | None = Field(default=None, description="To this day (inclusive).")
    page: int = Field(default=1, ge=1, description=f"Page of {PAGE_SIZE} entries, from 1.")

    @model_validator(mode="after")
    def _valid(self) -> GetTimelineInput:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start is after end")
        if self.kinds == []:
            raise ValueError("kinds is empty; omit it to include every kind")
        if self.kinds is not None:
            unknown = [k for k in self.kinds if k not in (*EVENT_KINDS, "document")]
            if unknown:
                raise ValueError(
                    f"unknown kind(s) {unknown}; use any of {', '.join(EVENT_KINDS)}, document"
                )
        return self


class TimelineEntry(BaseModel):
    """One event or document."""

    id: str
    kind: str = Field(description="Event kind, or 'document'.")
    start: dt.datetime
    end: dt.datetime | None
    label: str
    detail: str | None
    ongoing_on: dt.date | None = Field(
        default=None,
        description="Set when the event was still running on this day, the end of the range "
        "asked for; its end date, beyond the range, is not shown.",
    )

    @classmethod
    def until(
        cls,
        *,
        id: str,
        kind: str,
        start: dt.datetime,
        end: dt.datetime | None,
        label: str,
        detail: str | None,
        bound: dt.date | None,
    ) -> TimelineEntry:
        """An entry seen from ``bound``: an end after that day is not known yet."""
        if bound is not None and end is not None and end.date() > bound:
            return cls(
                id=id,
                kind=kind,
                start=start,
                end=None,
                label=label,
                detail=detail,
                ongoing_on=bound,
            )
        return cls(id=id, kind=kind, start=start, end=end, label=label, detail=detail)

    def line(self) -> str:
        """The entry on one line."""
        span = f"{self.start:%Y-%m-%d}"
        if self.end is not None:
            span += f" → {self.end:%Y-%m-%d}"
        elif self.ongoing_on is not None:
            span += f" → (ongoing on {self.ongoing_on:%Y-%m-%d})"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{span} {self.kind}: {self.label}{detail} [{self.id}]"


class GetTimelineResult(ToolResult):
    """A page of the timeline."""

    entries: list[TimelineEntry]
    page: int
    pages: int
    total: int

    def lines(self) -> list[str]:
        """A header with paging, then one line per entry."""
        head = f"Timeline: {self.total} entries, page {self.page} of {self.pages}"
        if self.page < self.pages:
            head += f" (ask page={self.page + 1} for more)"
        return [head + ":", *(e.line() for e in self.entries)]


def get_timeline(scope: PatientScope, args: GetTimelineInput) -> GetTimelineResult:
    """Events and documents in date order, one page at a time."""
    kinds = args.kinds
    events = kinds is None or any(k != "document" for k in kinds)
    documents = kinds is None or "document" in kinds
    params: dict[str, object] = {}
    event_where, doc_where = [], []
    if kinds is not None and events:
        event_where.append("list_contains($kinds, kind)")
        params["kinds"] = [k for k in kinds if k != "document"]
    if args.start is not None:
        params["start"] = as_datetime(args.start, end_of_day=False)
        event_where.append("coalesce(end_time, start_time) >= $start")
        doc_where.append("date >= $start")
    if args.end is not None:
        params["end"] = as_datetime(args.end, end_of_day=True)
        event_where.append("start_time <= $end")
        doc_where.append("date <= $end")
    parts = []
    if events:
        where = f" WHERE {' AND '.join(event_where)}" if event_where else ""
        parts.append(
            "SELECT event_id AS id, kind, start_time AS start, end_time AS stop, label, detail, "
            f"0 AS sort FROM events{where}"
        )
    if documents:
        where = f" WHERE {' AND '.join(doc_where)}" if doc_where else ""
        parts.append(
            "SELECT document_id AS id, 'document' AS kind, date AS start, NULL AS stop, "
            "type || ': ' || coalesce(title, '') AS label, NULL AS detail, 1 AS sort "
            f"FROM documents{where}"
        )
    total = int(scope.fetch(f"SELECT count(*) FROM ({' UNION ALL '.join(parts)})", params)[0][0])
    pages = max(1, -(-total // PAGE_SIZE))
    if args.page > pages:
        raise ToolError(f"get_timeline: page {args.page} does not exist; there are {pages}")
    rows = scope.fetch(
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY start, sort, id "
        f"LIMIT {PAGE_SIZE} OFFSET $offset",
        {**params, "offset": (args.page - 1) * PAGE_SIZE},
    )
    entries = [
        TimelineEntry.until(id=i, kind=k, start=s, end=e, label=label, detail=d, bound=args.end)
        for i, k, s, e, label, d, _ in rows
    ]
    return GetTimelineResult(
        entries=entries,
        page=args.page,
        pages=pages,
        total=total,
        citations=[
            SourceRef(kind="document" if e.kind == "document" else "event", id=e.id)
            for e in entries
        ],
    )


GET_TIMELINE: Tool[GetTimelineInput] = Tool(
    name="get_timeline",
    description="The patient's record in date order: diagnoses, therapy lines (start → stop), "
    "transplants, admissions, other events, and one line per document (date, type, title, "
    "id). Start here to see the shape of the record; filter by kind or dates; paged.",
    input_model=GetTimelineInput,
    fn=get_timeline,
)
