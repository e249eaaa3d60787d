"""Gold derivations over lab values: windowed statistics, trends and IMWG responses.

Lab values come cleaned from :class:`~recordagent.questions.gold_data.GoldData` (corrections
applied, duplicates dropped, "not detected" as 0) and are converted to the unit a derivation
asks for. ``imwg_best_response`` reads the paraprotein assessments with the synthetic cohort's
own IMWG rules, so that with no cut-off it reproduces the ``line_best_response`` gold fact.
"""

from __future__ import annotations

from collections.abc import Callable

from recordagent.questions.gold_data import GoldValue, LabPoint, convert_unit, convertible
from recordagent.questions.gold_expr import (
    DATE,
    Args,
    Checker,
    Derivation,
    Evaluator,
    ExprInfo,
    names,
)
from recordagent.sources.synthetic.imwg import RESPONSES, classify_line
from recordagent.sources.synthetic.vocabulary import ANALYTES

__all__ = ["LAB_DERIVATIONS"]

_ANALYTE_UNITS = {a.name: a.unit for a in ANALYTES.values()}
_TRENDS = frozenset({"rising", "falling", "stable"})
_E, _O = True, False  # required, optional
# The arguments of every windowed derivation: the window is [from, to], both inclusive.
_WINDOW = {
    "analyte": ("str", _E),
    "unit": ("str", _E),
    "from": ("expr", _O),
    "to": ("expr", _O),
}


def _check_lab(a: Args, chk: Checker, path: str) -> bool:
    analyte, unit = a["analyte"], a["unit"]
    ok = True
    if analyte not in _ANALYTE_UNITS:
        chk.problem(f"{path}.analyte", f"unknown analyte {analyte!r} ({names(_ANALYTE_UNITS)})")
        ok = False
    elif not convertible(_ANALYTE_UNITS[analyte], unit):
        chk.problem(f"{path}.unit", f"{analyte} is reported in {_ANALYTE_UNITS[analyte]}")
        ok = False
    for bound in ("from", "to", "date"):
        if bound in a:
            chk.typed(a[bound], DATE, f"{path}.{bound}")
    return ok


def _lab_number(a: Args, chk: Checker, path: str) -> ExprInfo:
    _check_lab(a, chk, path)
    return ExprInfo("number", unit=a["unit"])


def _window(a: Args, ev: Evaluator) -> list[tuple[LabPoint, float]] | None:
    """Points of the analyte in the window [from, to] (inclusive), in the requested unit."""
    low = ev.expr(a["from"]) if "from" in a else None
    high = ev.expr(a["to"]) if "to" in a else None
    if ("from" in a and low is None) or ("to" in a and high is None):
        return None
    return [
        (p, round(convert_unit(p.value, p.unit, a["unit"]), 6))
        for p in ev.data.labs(ev.patient, a["analyte"])
        if (low is None or p.day >= low.value) and (high is None or p.day <= high.value)
    ]


def _lab_pick(pick: str) -> Callable[[Args, Evaluator], GoldValue | None]:
    def compute(a: Args, ev: Evaluator) -> GoldValue | None:
        points = _window(a, ev)
        if not points:
            return None
        if pick == "min":  # ties: the earliest
            point, value = min(points, key=lambda pv: pv[1])
        elif pick == "max":
            point, value = max(points, key=lambda pv: (pv[1], -pv[0].time.timestamp()))
        else:
            point, value = points[0] if pick == "first" else points[-1]
        return GoldValue(value, (point.lab_id,))

    return compute


def _lab_nearest(a: Args, ev: Evaluator) -> GoldValue | None:
    day = ev.expr(a["date"])
    points = ev.data.labs(ev.patient, a["analyte"])
    if day is None or not points:
        return None
    point = min(points, key=lambda p: (abs((p.day - day.value).days), p.time))
    if "within_days" in a and abs((point.day - day.value).days) > a["within_days"]:
        return None
    return GoldValue(round(convert_unit(point.value, point.unit, a["unit"]), 6), (point.lab_id,))


def _check_lab_count(a: Args, chk: Checker, path: str) -> ExprInfo:
    _check_lab(a, chk, path)
    if "above" not in a and "below" not in a:
        chk.problem(path, "give above or below (or both)")
    return ExprInfo("count")


def _lab_count(a: Args, ev: Evaluator) -> GoldValue | None:
    points = _window(a, ev)
    if points is None:
        return None
    hits = [
        p
        for p, value in points
        if ("above" not in a or value > a["above"]) and ("below" not in a or value < a["below"])
    ]
    return GoldValue(len(hits), tuple(p.lab_id for p in hits))


def _check_lab_trend(a: Args, chk: Checker, path: str) -> ExprInfo:
    _check_lab(a, chk, path)
    if "threshold" in a and not 0 < a["threshold"] < 1:
        chk.problem(f"{path}.threshold", "a relative change between 0 and 1, e.g. 0.2")
    return ExprInfo("category", _TRENDS)


def _lab_trend(a: Args, ev: Evaluator) -> GoldValue | None:
    points = _window(a, ev)
    if not points or len(points) < 2 or points[0][1] == 0:
        return None
    (first, v0), (last, v1) = points[0], points[-1]
    change = (v1 - v0) / v0
    threshold = float(a.get("threshold", 0.2))
    trend = "rising" if change >= threshold else "falling" if change <= -threshold else "stable"
    return GoldValue(trend, (first.lab_id, last.lab_id))


def _check_imwg(a: Args, chk: Checker, path: str) -> ExprInfo:
    if "until" in a:
        chk.typed(a["until"], DATE, f"{path}.until")
    return ExprInfo("category", frozenset(RESPONSES))


def _imwg_best_response(a: Args, ev: Evaluator) -> GoldValue | None:
    ok, until = ev.optional_date(a, "until")
    number = ev.line(a["line"])
    lines = ev.data.lines_of(ev.patient)
    index = next((i for i, row in enumerate(lines) if row["line"] == number), None)
    isotype = ev.data.fact(ev.patient, "isotype")
    assessments = ev.data.assessments(ev.patient)
    if not ok or index is None or isotype is None or not assessments:
        return None
    start = lines[index]["start"]
    stop = lines[index + 1]["start"] if index + 1 < len(lines) else None
    before = [m for m in assessments if m.date <= start]
    during = [
        m
        for m in assessments
        if start < m.date
        and (stop is None or m.date <= stop)
        and (until is None or m.date <= until)
    ]
    if not during:
        return None
    baseline = before[-1] if before else assessments[0]
    response = classify_line(baseline, during, isotype.value == "light chain")
    if response.best_date is None:
        return None
    return GoldValue(response.best, response.best_evidence)


LAB_DERIVATIONS: dict[str, Derivation] = {
    "lab_min": Derivation(
        "Lowest value of `analyte` in [from, to] (inclusive), in `unit`; ties: the earliest.",
        _WINDOW,
        _lab_number,
        _lab_pick("min"),
    ),
    "lab_max": Derivation(
        "Highest value of `analyte` in [from, to], in `unit`; ties: the earliest.",
        _WINDOW,
        _lab_number,
        _lab_pick("max"),
    ),
    "lab_first": Derivation(
        "First value of `analyte` in [from, to], in `unit`.",
        _WINDOW,
        _lab_number,
        _lab_pick("first"),
    ),
    "lab_last": Derivation(
        "Last value of `analyte` in [from, to], in `unit`.",
        _WINDOW,
        _lab_number,
        _lab_pick("last"),
    ),
    "lab_nearest": Derivation(
        "Value of `analyte` drawn closest to `date` (ties: the earlier), optionally only "
        "`within_days` of it.",
        {
            "analyte": ("str", _E),
            "unit": ("str", _E),
            "date": ("expr", _E),
            "within_days": ("number", _O),
        },
        _lab_number,
        _lab_nearest,
    ),
    "lab_count": Derivation(
        "How many values of `analyte` in [from, to] lie `above` and/or `below` a threshold "
        "(strictly, in `unit`).",
        {**_WINDOW, "above": ("number", _O), "below": ("number", _O)},
        _check_lab_count,
        _lab_count,
    ),
    "lab_trend": Derivation(
        "rising / falling / stable: the last value of `analyte` in [from, to] against the "
        "first, by a relative change of at least `threshold` (default 0.2).",
        {**_WINDOW, "threshold": ("number", _O)},
        _check_lab_trend,
        _lab_trend,
    ),
    "imwg_best_response": Derivation(
        "Best IMWG response to `line`, read from the paraprotein assessments up to `until` "
        "(default: the line's end) with the synthetic cohort's IMWG rules.",
        {"line": ("line", _E), "until": ("expr", _O)},
        _check_imwg,
        _imwg_best_response,
    ),
}
