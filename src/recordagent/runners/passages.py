"""Passages: record text as the baselines put it in a prompt — chunks, labs and events as text.

Lab values are rendered one analyte at a time, grouped and converted as ``query_labs`` does
("M-protein: 2020-01-04 3.2 g/dL; 2020-03-01 1.5 H; ...") and events one kind at a time, one
line each with its id (as the timeline tool shows them), so that retrieval finds them like any
passage and full context can show them as compact tables. A passage id stands for the rows it lists.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recordagent.records.schema import Event
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners.evidence import EvidenceBook
from recordagent.tools.base import SourceRef
from recordagent.tools.catalogue import LabCatalogue, packaged_lab_catalogue
from recordagent.tools.lab_values import record_value_groups
from recordagent.tools.search import RankedChunk
from recordagent.tools.timeline import TimelineEntry

__all__ = [
    "LabSeries",
    "Passage",
    "cite_passages",
    "chunk_passage",
    "event_lines",
    "event_passages",
    "lab_passages",
    "lab_series",
    "render",
]


class Passage(BaseModel):
    """A block of record text with the id the model cites it by."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Citable id: a chunk id, 'LABS-…' or 'EVENTS-…'.")
    kind: Literal["chunk", "labs", "events"]
    date: dt.date = Field(description="The document's day, or the first lab value's day.")
    title: str
    text: str
    refs: tuple[SourceRef, ...] = Field(description="Record rows behind the passage.")
    tokens: int = Field(
        description="Tokens of the rendered passage (lab passages: estimated; retrieval counts "
        "the passages it chooses exactly)."
    )


@dataclass(frozen=True, slots=True)
class LabSeries:
    """One analyte's values in time order, in one unit (as ``query_labs`` reports them).

    Rendered, a value is "2020-03-01 1.5 g/dL H": day, value, unit, flag. The unit is written on
    the first value of every rendered stretch and wherever it changes, so that no passage or
    cut table shows a bare number.
    """

    name: str
    code: str | None
    slug: str  # the analyte's part of passage and table ids, unique within the patient
    lab_ids: list[str]
    times: list[dt.datetime]
    values: list[str]
    units: list[str]
    flags: list[str]
    unit: str = ""  # the unit of every numeric value
    record_names: tuple[str, ...] = ()  # the record's own names, where they differ from `name`
    synonyms: tuple[str, ...] = ()  # the catalogue's other names for the analyte

    def render(self, start: int = 0, end: int | None = None) -> list[str]:
        """Entries ``start:end``, the unit on the first and wherever it changes."""
        stop = len(self.values) if end is None else end
        out = []
        for i in range(start, stop):
            entry = self.values[i]
            if self.units[i] and (i == start or self.units[i] != self.units[i - 1]):
                entry += f" {self.units[i]}"
            if self.flags[i]:
                entry += f" {self.flags[i]}"
            out.append(entry)
        return out

    def full_entries(self) -> list[str]:
        """Every entry with its unit (for estimating what any stretch costs)."""
        return [
            " ".join(part for part in (v, u, f) if part)
            for v, u, f in zip(self.values, self.units, self.flags, strict=True)
        ]


_SAMPLE = 32  # entries whose exact count calibrates the estimate for the rest


def cite_passages(book: EvidenceBook, passages: Iterable[Passage]) -> None:
    """Make the passages citable: by passage id, and by the row ids their text shows.

    Lab passages do not print their rows' ids, so only the passage id cites them.
    """
    for passage in passages:
        book.add_group(passage.id, passage.refs)
        if passage.kind != "labs":
            book.add(passage.refs)


def render(passage: Passage) -> str:
    """A passage as the model reads it: id, day, title, then the text."""
    return f"[{passage.id}] {passage.date:%Y-%m-%d} {passage.title}\n{passage.text}"


def chunk_passage(chunk: RankedChunk, tokenizer: Tokenizer) -> Passage:
    """A document chunk as a passage (its token count from the index, plus the heading's)."""
    heading = f"{chunk.type} '{chunk.title or ''}'" + (
        f" / {chunk.section}" if chunk.section else ""
    )
    return Passage(
        id=chunk.chunk_id,
        kind="chunk",
        date=chunk.date,
        title=heading,
        text=chunk.text,
        refs=(SourceRef(kind="chunk", id=chunk.chunk_id, document_id=chunk.document_id),),
        tokens=chunk.token_count + tokenizer.count(heading) + 8,
    )


def lab_series(
    scope: PatientScope, until: dt.date | None = None, catalogue: LabCatalogue | None = None
) -> list[LabSeries]:
    """The patient's lab values (up to ``until``) as ``query_labs`` groups and converts them.

    One series per group of :func:`~recordagent.tools.lab_values.record_value_groups`: a
    catalogue analyte (or the record's own name), one specimen, one unit, corrections applied
    and duplicates once, so every runner sees the values the lab tool returns.
    """
    groups = record_value_groups(scope, catalogue or packaged_lab_catalogue(), until)
    series: list[LabSeries] = []
    slugs: set[str] = set()
    for group in groups:
        name = group.label + (f" [{group.specimen}]" if group.specimen else "")
        slug = _slug(name)
        while slug in slugs:  # 'M protein' and 'M-protein', or one analyte in two units
            slug += "-x"
        slugs.add(slug)
        codes = list(dict.fromkeys(m.series.code for m in group.matches if m.series.code))
        own = [
            m.series.name
            for m in group.matches
            if m.series.name.casefold() != group.label.casefold()
        ]
        readings = group.readings
        series.append(
            LabSeries(
                name=name,
                code=", ".join(codes) or None,
                slug=slug,
                lab_ids=[r.lab_id for r in readings],
                times=[r.time for r in readings],
                values=[
                    f"{r.time:%Y-%m-%d} "
                    + (f"{r.value:g}" if r.value is not None else (r.text or ""))
                    for r in readings
                ],
                units=[group.unit if r.value is not None else "" for r in readings],
                flags=[r.flag or "" for r in readings],
                unit=group.unit,
                record_names=tuple(dict.fromkeys(own)),
                synonyms=tuple(group.concept.names[1:]) if group.concept else (),
            )
        )
    return series


def entry_tokens(tokenizer: Tokenizer, entries: list[str], separator: str = "; ") -> list[int]:
    """About how many tokens each entry adds to ``separator.join(entries)``.

    The tokens per character of the first entries (a sample, encoded once) are applied to all:
    entries of one analyte look alike, and counting thousands of them one by one costs more
    than the rest of a retrieval. Exact counts are made where a budget is decided.
    """
    if not entries:
        return []
    sample = separator.join(entries[:_SAMPLE])
    per_char = tokenizer.count(sample) / max(len(sample), 1)
    return [max(1, round((len(e) + len(separator)) * per_char)) for e in entries]


def lab_passages(
    scope: PatientScope,
    tokenizer: Tokenizer,
    max_tokens: int = 160,
    until: dt.date | None = None,
    catalogue: LabCatalogue | None = None,
) -> list[Passage]:
    """Each analyte's values (up to ``until``) as passages of about ``max_tokens`` tokens."""
    passages: list[Passage] = []
    for series in lab_series(scope, until, catalogue):
        title = f"Lab results: {series.name}" + (f", {series.unit}" if series.unit else "")
        title += f" ({series.code})" if series.code else ""
        # The record's own names and the catalogue's synonyms make 'Hb' and 'Hemoglobin [Mass/
        # volume] in Blood' find a passage titled 'Hemoglobin'.
        also = [*series.record_names, *series.synonyms]
        title += f"; also: {', '.join(also)}" if also else ""
        costs = entry_tokens(tokenizer, series.full_entries())
        head = tokenizer.count(title) + 8
        start, part = 0, 1
        while start < len(costs):
            used, end = head, start
            while end < len(costs):
                if used + costs[end] > max_tokens and end > start:
                    break
                used += costs[end]
                end += 1
            passages.append(
                Passage(
                    id=f"LABS-{series.slug}-{part}",
                    kind="labs",
                    date=series.times[start].date(),
                    title=title,
                    text="; ".join(series.render(start, end)),
                    refs=tuple(SourceRef(kind="lab", id=i) for i in series.lab_ids[start:end]),
                    tokens=used,
                )
            )
            start, part = end, part + 1
    return passages


def event_lines(events: Iterable[Event], until: dt.date | None = None) -> list[str]:
    """Events as the timeline tool shows them: span, kind, label, detail, [id].

    Seen from ``until``, an event still running that day shows no end date.
    """
    return [
        TimelineEntry.until(
            id=e.event_id,
            kind=e.kind,
            start=e.start_time,
            end=e.end_time,
            label=e.label,
            detail=e.detail,
            bound=until,
        ).line()
        for e in events
    ]


def event_passages(
    scope: PatientScope,
    tokenizer: Tokenizer,
    max_tokens: int = 160,
    until: dt.date | None = None,
) -> list[Passage]:
    """Events (starting up to ``until``) by kind, as passages of about ``max_tokens`` tokens."""
    by_kind: dict[str, list[Event]] = defaultdict(list)
    for event in scope.events(end=until):
        by_kind[event.kind].append(event)
    passages = []
    for kind, events in sorted(by_kind.items()):
        title = f"Events: {kind}"
        lines = event_lines(events, until)
        start, part = 0, 1
        while start < len(events):
            used, end = tokenizer.count(title) + 8, start
            while end < len(lines):
                cost = tokenizer.count(lines[end]) + 1
                if used + cost > max_tokens and end > start:
                    break
                used += cost
                end += 1
            chosen = events[start:end]
            passages.append(
                Passage(
                    id=f"EVENTS-{_slug(kind)}-{part}",
                    kind="events",
                    date=chosen[0].start_time.date(),
                    title=title,
                    text="\n".join(lines[start:end]),
                    refs=tuple(SourceRef(kind="event", id=e.event_id) for e in chosen),
                    tokens=used,
                )
            )
            start, part = end, part + 1
    return passages


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "analyte"
