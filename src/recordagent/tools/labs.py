"""query_labs: one analyte's values for the patient, as a series or an aggregate.

The analyte is named as the model likes ("Hb", "M-spike", a LOINC code) or as the record names
it ("Hemoglobin A1c/Hemoglobin.total in Blood", a local code); how a query resolves is
:mod:`recordagent.tools.lab_resolution`. Values come grouped by specimen and unit and converted
as :mod:`recordagent.tools.lab_values` describes (the same values every runner sees). Every
value cites its lab row.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope
from recordagent.tools.base import SourceRef, Tool, ToolResult, bind
from recordagent.tools.catalogue import LabCatalogue, packaged_lab_catalogue
from recordagent.tools.lab_resolution import (
    RecordSeries,
    Resolution,
    closest_series,
    patient_series,
    resolve_analyte,
    specimen_key,
)
from recordagent.tools.lab_values import Reading, value_groups

__all__ = [
    "QUERY_LABS",
    "LabGroup",
    "LabPoint",
    "MatchedSeries",
    "QueryLabsInput",
    "QueryLabsResult",
    "query_labs",
    "query_labs_tool",
]

Aggregate = Literal[
    "series", "first", "last", "min", "max", "count", "mean", "change", "slope",
    "above", "below", "nearest",
]  # fmt: skip


class QueryLabsInput(BaseModel):
    """Arguments of query_labs."""

    analyte: str = Field(
        min_length=1,
        max_length=200,
        description="Analyte name, synonym or code: a common name ('Hb', 'creatinine', "
        "'HbA1c'), the record's own name as list_analytes shows it, or a LOINC or local code "
        "('718-7').",
    )
    specimen: str | None = Field(
        default=None,
        max_length=100,
        description="Only values of this specimen, e.g. 'urine', when the analyte is measured "
        "in more than one (blood is the default group).",
    )
    start: dt.date | None = Field(default=None, description="From this day (inclusive).")
    end: dt.date | None = Field(default=None, description="To this day (inclusive).")
    aggregate: Aggregate = Field(
        default="series",
        description="series: every value; first/last; min (nadir)/max (peak); count; mean; "
        "change (last minus first); slope (per 30 days, least squares); above/below: values "
        "beyond `threshold`; nearest: the value closest to `date`.",
    )
    threshold: float | None = Field(
        default=None,
        description="For above/below, in the unit the values are shown in (the catalogue's "
        "unit for a common analyte, e.g. mg/dL for creatinine).",
    )
    date: dt.date | None = Field(default=None, description="For nearest: the day of interest.")
    limit: int = Field(default=50, ge=1, le=500, description="At most this many values listed.")

    @model_validator(mode="after")
    def _consistent(self) -> QueryLabsInput:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start is after end")
        if self.aggregate in ("above", "below") and self.threshold is None:
            raise ValueError(f"aggregate '{self.aggregate}' needs a threshold")
        if self.aggregate == "nearest" and self.date is None:
            raise ValueError("aggregate 'nearest' needs a date")
        return self


class LabPoint(BaseModel):
    """One value, in its group's unit when it converts."""

    lab_id: str
    time: dt.datetime
    value: float | None = Field(description="Numeric value in the group's unit, if numeric.")
    text: str | None = Field(description="Text result, e.g. 'not detected'.")
    unit: str
    reported: str = Field(description="The value and unit as the source reported them.")
    flag: str | None
    ref_low: float | None
    ref_high: float | None


class MatchedSeries(BaseModel):
    """A series of the record (name, code, fluid as reported) that the query reached."""

    name: str
    code: str | None
    fluid: str | None
    values: int = Field(description="Values of the series in the whole record.")
    matched_by: str = Field(description="Why: catalogue code, catalogue name, record name, …")


class LabGroup(BaseModel):
    """Values of one analyte in one specimen and one unit, and the aggregate over them."""

    analyte: str = Field(description="Catalogue name of the analyte, else the record's name.")
    specimen: str | None = Field(description="Specimen when not blood/unspecified, e.g. urine.")
    unit: str = Field(description="Unit of every value in the group.")
    result: float | None = Field(description="The aggregate (None for series or no values).")
    points: list[LabPoint] = Field(description="Values the aggregate rests on, in time order.")
    total: int = Field(description="Values in the range before `limit`.")
    converted: dict[str, int] = Field(
        default_factory=dict, description="Values converted into `unit`, by reported unit."
    )
    series: list[MatchedSeries] = Field(description="The record's series in this group.")

    def title(self) -> str:
        """'Analyte [specimen] (unit)'."""
        specimen = f" [{self.specimen}]" if self.specimen else ""
        return f"{self.analyte}{specimen} ({self.unit or 'no unit'})"


class QueryLabsResult(ToolResult):
    """The values a query reached, one group per specimen and unit, with the aggregate."""

    query: str = Field(description="The analyte as asked.")
    resolved_by: str = Field(
        description="Resolution step: catalogue, record name, record code or closest name."
    )
    aggregate: str
    groups: list[LabGroup] = Field(
        description="The analyte asked for first, blood/unspecified before other specimens."
    )
    note: str | None = Field(default=None, description="What the model should know first.")

    @property
    def analyte(self) -> str:
        """The first group's analyte (the query's when nothing matched)."""
        return self.groups[0].analyte if self.groups else self.query

    @property
    def unit(self) -> str:
        """The first group's unit."""
        return self.groups[0].unit if self.groups else ""

    @property
    def result(self) -> float | None:
        """The first group's aggregate."""
        return self.groups[0].result if self.groups else None

    @property
    def points(self) -> list[LabPoint]:
        """The first group's points."""
        return self.groups[0].points if self.groups else []

    @property
    def total(self) -> int:
        """The first group's values in range."""
        return self.groups[0].total if self.groups else 0

    def lines(self) -> list[str]:
        """A note if any, then per group: a header with the aggregate and one line per value."""
        out = [self.note] if self.note else []
        if not self.groups:
            out.append(f"{self.query}: no values.")
        if len(self.groups) > 1:
            out.append(
                f"{len(self.groups)} groups, kept apart (analyte, specimen or unit differs): "
                + "; ".join(g.title() for g in self.groups)
            )
        # Which series a group rests on is said whenever it is not plainly the analyte asked for.
        plain = len(self.groups) == 1 and self.resolved_by == "catalogue"
        for group in self.groups:
            out.extend(_group_lines(group, self.aggregate, not plain or len(group.series) > 1))
        return out


def _group_lines(group: LabGroup, aggregate: str, show_series: bool) -> list[str]:
    head = f"{group.title()}, {group.total} value(s)"
    if aggregate != "series":
        shown = "none" if group.result is None else f"{group.result:g}"
        head += f"; {aggregate} = {shown}"
    out = [head + ":"]
    if show_series:
        out.append(
            "  series: "
            + "; ".join(
                f"{s.name!r}"
                + (f" {s.code}" if s.code else "")
                + (f" in {s.fluid}" if s.fluid else "")
                + f" ({s.matched_by})"
                for s in group.series
            )
        )
    for p in group.points:
        value = p.text if p.value is None else f"{p.value:g}"
        extras = []
        if p.reported != f"{value} {group.unit}".strip():
            extras.append(f"reported {p.reported}")
        if p.flag:
            extras.append(p.flag)
        note = f" ({', '.join(extras)})" if extras else ""
        out.append(f"{p.time:%Y-%m-%d %H:%M} {value}{note} [{p.lab_id}]")
    return out


def query_labs(
    scope: PatientScope, args: QueryLabsInput, catalogue: LabCatalogue | None = None
) -> QueryLabsResult:
    """Values of one analyte, by group of specimen and unit, with the aggregate asked for."""
    catalogue = catalogue or packaged_lab_catalogue()
    series = patient_series(scope)
    resolution = resolve_analyte(args.analyte, series, catalogue)
    groups = value_groups(scope, resolution, catalogue, args.start, args.end)
    if args.specimen is not None:
        wanted = specimen_key(args.specimen)
        groups = [g for g in groups if g.specimen == wanted]
        if not groups:
            raise ToolError(
                f"query_labs: no {resolution.label} values in specimen '{args.specimen}'; "
                "this record has it in: "
                + ", ".join(
                    sorted({m.series.fluid or "blood/unspecified" for m in resolution.matches})
                )
            )
    note = resolution.note
    if not resolution.matches:
        note = _absent_note(args.analyte, resolution, series, catalogue)
    out: list[LabGroup] = []
    citations: list[SourceRef] = []
    if not groups and resolution.matches:  # values exist, none in the range asked
        concept = resolution.concept
        out.append(
            LabGroup(
                analyte=resolution.label,
                specimen=None,
                unit=concept.unit if concept else "",
                result=None,
                points=[],
                total=0,
                series=[],
            )
        )
    for group in groups:
        numeric = [r for r in group.readings if r.value is not None]
        result, chosen = _aggregate(args, numeric, group.readings)
        shown = [_point(r, group.unit) for r in chosen[: args.limit]]
        citations.extend(SourceRef(kind="lab", id=p.lab_id) for p in shown)
        out.append(
            LabGroup(
                analyte=group.label,
                specimen=group.specimen,
                unit=group.unit,
                result=result,
                points=shown,
                total=len(group.readings),
                converted=dict(group.converted_from),
                series=[
                    MatchedSeries(
                        name=m.series.name,
                        code=m.series.code,
                        fluid=m.series.fluid,
                        values=m.series.values,
                        matched_by=m.why,
                    )
                    for m in group.matches
                    if any(r.series == m.series.key for r in group.readings)
                ],
            )
        )
    return QueryLabsResult(
        query=args.analyte,
        resolved_by=resolution.step,
        aggregate=args.aggregate,
        groups=out,
        note=note,
        citations=citations,
    )


def _absent_note(
    query: str, resolution: Resolution, series: list[RecordSeries], catalogue: LabCatalogue
) -> str:
    """The note for a catalogued analyte the record lacks.

    It names what the record has of the same clinical group, else the closest names.
    """
    concept = resolution.concept
    related: list[str] = []
    if concept is not None and concept.group != "other":
        related = [
            s.name
            for s in series
            if s.numeric
            and (c := catalogue.concept_of(s.name, s.code)) is not None
            and c.group == concept.group
        ]
    if related:
        near = f"; it has these {concept.group} analytes: " if concept else "; "
        near += ", ".join(repr(n) for n in dict.fromkeys(related[:6]))
    else:
        ranked = closest_series(query, series, catalogue, limit=5)
        names = ", ".join(repr(s.name) for s, _ in ranked)
        near = f"; closest analytes of this record: {names}" if names else ""
    return f"This record has no {resolution.label} values{near}."


def _point(reading: Reading, unit: str) -> LabPoint:
    return LabPoint(
        lab_id=reading.lab_id,
        time=reading.time,
        value=reading.value,
        text=reading.text,
        unit=unit,
        reported=reading.reported,
        flag=reading.flag,
        ref_low=reading.ref_low,
        ref_high=reading.ref_high,
    )


def _aggregate(
    args: QueryLabsInput, numeric: list[Reading], points: list[Reading]
) -> tuple[float | None, list[Reading]]:
    """The aggregate value and the points that show it."""
    kind = args.aggregate
    if kind == "series":
        return None, points
    if kind == "count":
        return float(len(points)), points
    if not numeric:
        return None, []
    values = np.asarray([p.value for p in numeric], dtype=float)
    if kind == "first":
        return numeric[0].value, [numeric[0]]
    if kind == "last":
        return numeric[-1].value, [numeric[-1]]
    if kind in ("min", "max"):
        k = int(np.argmin(values) if kind == "min" else np.argmax(values))
        return numeric[k].value, [numeric[k]]
    if kind == "mean":
        return _finite(values.mean()), numeric
    if kind == "change":
        return _finite(values[-1] - values[0]), [numeric[0], numeric[-1]]
    if kind == "slope":
        if len(numeric) < 2:
            return None, numeric
        days = np.asarray([(p.time - numeric[0].time).total_seconds() / 86400 for p in numeric])
        if np.ptp(days) == 0:
            return None, numeric
        slope = np.polyfit(days, values, 1)[0] * 30
        return _finite(slope), numeric
    if kind in ("above", "below"):
        assert args.threshold is not None
        hits = [
            p
            for p in numeric
            if (p.value > args.threshold if kind == "above" else p.value < args.threshold)  # type: ignore[operator]
        ]
        return float(len(hits)), hits
    assert args.date is not None
    target = dt.datetime.combine(args.date, dt.time(12))
    k = int(np.argmin([abs((p.time - target).total_seconds()) for p in numeric]))
    return numeric[k].value, [numeric[k]]


def _finite(value: float) -> float | None:
    """A computed aggregate, or None where it overflowed (no number is better than inf)."""
    number = float(value)
    return round(number, 6) if math.isfinite(number) else None


_DESCRIPTION = (
    "Lab values of one analyte for this patient (converted to one unit per group; other "
    "specimens and unconvertible units kept apart), as a time series or an aggregate: first, "
    "last, min/nadir, max/peak, count, mean, change, slope, values above/below a threshold, or "
    "the value nearest a date. Each value cites its lab row id. Unsure of the name? Call "
    "list_analytes."
)


def query_labs_tool(catalogue: LabCatalogue | None = None) -> Tool[QueryLabsInput]:
    """query_labs over ``catalogue`` (the packaged one when None)."""
    return bind(QUERY_LABS, catalogue=catalogue)


QUERY_LABS: Tool[QueryLabsInput] = Tool(
    name="query_labs",
    description=_DESCRIPTION,
    input_model=QueryLabsInput,
    fn=query_labs,
)
