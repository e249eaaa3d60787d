"""query_labs: one analyte's values for the patient, as a series or an aggregate.

The analyte is named as the model likes ("Hb", "M-spike", a LOINC code) and resolved through
the lab catalogue; values are converted to the canonical unit (g/L M-protein becomes g/dL,
µmol/L creatinine becomes mg/dL). Rows reported again with flag ``corrected`` replace the
earlier value of the same draw, and exact duplicates count once. Every value cites its lab row.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope, as_datetime
from recordagent.tools._base import SourceRef, Tool, ToolResult
from recordagent.tools.catalogue import Analyte, packaged_lab_catalogue

__all__ = ["QUERY_LABS", "LabPoint", "QueryLabsInput", "QueryLabsResult", "query_labs"]

Aggregate = Literal[
    "series", "first", "last", "min", "max", "count", "mean", "change", "slope",
    "above", "below", "nearest",
]  # fmt: skip


class QueryLabsInput(BaseModel):
    """Arguments of query_labs."""

    analyte: str = Field(
        min_length=1,
        max_length=100,
        description="Analyte name, synonym or LOINC code, e.g. 'M-protein', 'Hb', "
        "'creatinine', 'FLC ratio', '718-7'.",
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
        default=None, description="For above/below, in the canonical unit of the analyte."
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
    """One value, in the canonical unit."""

    lab_id: str
    time: dt.datetime
    value: float | None = Field(description="Numeric value in the canonical unit, if numeric.")
    text: str | None = Field(description="Text result, e.g. 'not detected'.")
    unit: str
    reported: str = Field(description="The value and unit as the source reported them.")
    flag: str | None
    ref_low: float | None
    ref_high: float | None


class QueryLabsResult(ToolResult):
    """Values of one analyte and the requested aggregate."""

    analyte: str = Field(description="Canonical analyte name.")
    unit: str
    aggregate: str
    result: float | None = Field(description="The aggregate (None for series or no values).")
    points: list[LabPoint] = Field(description="Values the aggregate rests on, in time order.")
    total: int = Field(description="Values in the range before `limit`.")
    excluded_units: dict[str, int] = Field(
        default_factory=dict,
        description="Values left out because their unit cannot be converted, by unit.",
    )

    def lines(self) -> list[str]:
        """Header with the aggregate, then one line per value."""
        head = f"{self.analyte} ({self.unit}), {self.total} value(s)"
        if self.aggregate != "series":
            shown = "none" if self.result is None else f"{self.result:g}"
            head += f"; {self.aggregate} = {shown}"
        out = [head + ":"]
        for p in self.points:
            value = p.text if p.value is None else f"{p.value:g}"
            extras = []
            if p.reported != f"{value} {self.unit}":
                extras.append(f"reported {p.reported}")
            if p.flag:
                extras.append(p.flag)
            note = f" ({', '.join(extras)})" if extras else ""
            out.append(f"{p.time:%Y-%m-%d %H:%M} {value}{note} [{p.lab_id}]")
        if self.excluded_units:
            listed = ", ".join(f"{n} in {u}" for u, n in self.excluded_units.items())
            out.append(f"Left out (unit cannot be converted to {self.unit}): {listed}")
        return out


def query_labs(scope: PatientScope, args: QueryLabsInput) -> QueryLabsResult:
    """Values of one analyte, converted to its canonical unit, with the aggregate asked for."""
    catalogue = packaged_lab_catalogue()
    analyte = catalogue.find(args.analyte)
    if analyte is None:
        own_names = [r[0] for r in scope.fetch("SELECT DISTINCT analyte_name FROM labs ORDER BY 1")]
        matches = catalogue.close_matches(args.analyte, own_names)
        hint = f"did you mean {', '.join(repr(m) for m in matches)}? " if matches else ""
        raise ToolError(
            f"query_labs: unknown analyte '{args.analyte}'; {hint}this record has: "
            + ", ".join(own_names[:30])
        )
    points, excluded = _points(scope, analyte, args)
    numeric = [p for p in points if p.value is not None]
    result, shown = _aggregate(args, numeric, points)
    return QueryLabsResult(
        analyte=analyte.name,
        unit=analyte.unit,
        aggregate=args.aggregate,
        result=result,
        points=shown[: args.limit],
        total=len(points),
        excluded_units=excluded,
        citations=[SourceRef(kind="lab", id=p.lab_id) for p in shown[: args.limit]],
    )


def _points(
    scope: PatientScope, analyte: Analyte, args: QueryLabsInput
) -> tuple[list[LabPoint], dict[str, int]]:
    names = [n.lower() for n in analyte.names]
    filters = [
        "(list_contains($codes, analyte_code) OR list_contains($names, lower(analyte_name)))"
    ]
    params: dict[str, object] = {"codes": analyte.loinc, "names": names}
    if args.start is not None:
        filters.append("time >= $start")
        params["start"] = as_datetime(args.start, end_of_day=False)
    if args.end is not None:
        filters.append("time <= $end")
        params["end"] = as_datetime(args.end, end_of_day=True)
    rows = scope.fetch(
        "SELECT lab_id, time, value_num, value_text, unit, flag, ref_low, ref_high FROM labs "
        f"WHERE {' AND '.join(filters)} ORDER BY time, flag = 'corrected', lab_id",
        params,
    )
    draws: dict[dt.datetime, list[LabPoint]] = {}
    excluded: dict[str, int] = {}
    for lab_id, time, value, text, unit, flag, low, high in rows:
        converted = None if value is None else analyte.to_canonical(float(value), unit)
        if value is not None and converted is None:
            # A unit the catalogue cannot convert: left out (and reported) rather than mixed.
            excluded[str(unit)] = excluded.get(str(unit), 0) + 1
            continue
        reported = f"{value:g} {unit or ''}".strip() if value is not None else (text or "")
        draws.setdefault(time, []).append(
            LabPoint(
                lab_id=lab_id,
                time=time,
                value=None if converted is None else round(converted, 6),
                text=text,
                unit=analyte.unit,
                reported=reported,
                flag=flag,
                ref_low=None if low is None else analyte.to_canonical(float(low), unit),
                ref_high=None if high is None else analyte.to_canonical(float(high), unit),
            )
        )
    out: list[LabPoint] = []
    for group in draws.values():
        corrected = [p for p in group if p.flag == "corrected"]
        if corrected:  # a correction replaces every earlier report of the draw
            out.append(corrected[-1])
            continue
        seen: set[tuple[float | None, str | None]] = set()
        for p in group:  # exact duplicates count once; different values are all kept
            if (p.value, p.text) not in seen:
                seen.add((p.value, p.text))
                out.append(p)
    return out, excluded


def _aggregate(
    args: QueryLabsInput, numeric: list[LabPoint], points: list[LabPoint]
) -> tuple[float | None, list[LabPoint]]:
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
        return round(float(values.mean()), 6), numeric
    if kind == "change":
        return round(float(values[-1] - values[0]), 6), [numeric[0], numeric[-1]]
    if kind == "slope":
        if len(numeric) < 2:
            return None, numeric
        days = np.asarray([(p.time - numeric[0].time).total_seconds() / 86400 for p in numeric])
        if np.ptp(days) == 0:
            return None, numeric
        slope = np.polyfit(days, values, 1)[0] * 30
        return round(float(slope), 6), numeric
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


QUERY_LABS: Tool[QueryLabsInput] = Tool(
    name="query_labs",
    description="Lab values of one analyte for this patient (converted to one unit), as a "
    "time series or an aggregate: first, last, min/nadir, max/peak, count, mean, change, "
    "slope, values above/below a threshold, or the value nearest a date. Each value cites its "
    "lab row id.",
    input_model=QueryLabsInput,
    fn=query_labs,
)
