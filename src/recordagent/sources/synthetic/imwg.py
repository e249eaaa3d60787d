"""IMWG response and progression, read off measured paraprotein values.

The generator renders lab values from the latent course and then *derives* every response and
progression date from those values with these rules, so gold facts agree with the data by
construction. Progression must be confirmed by the next assessment, as IMWG requires (single
noisy values do not count). Simplifications (stated in docs/synthetic-cohort.md): responses
need no confirmation, there are no urine or imaging criteria, and bone-marrow findings are not
required for CR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FLC_RATIO_NORMAL",
    "RESPONSES",
    "Measurement",
    "LineResponse",
    "classify_line",
]

RESPONSES: tuple[str, ...] = ("sCR", "CR", "VGPR", "PR", "MR", "SD", "PD")
"""The IMWG response categories, best first."""
FLC_RATIO_NORMAL = (0.26, 1.65)
_RANK = {response: rank for rank, response in enumerate(RESPONSES)}


@dataclass(frozen=True)
class Measurement:
    """One response assessment: paraprotein and FLC ratio on a date.

    ``value`` is the serum M-protein in g/dL (0 when not detected) for secretory disease, or
    the difference between involved and uninvolved free light chain (dFLC, mg/L) for
    light-chain-only disease.
    """

    date: dt.date
    value: float
    flc_ratio: float
    lab_ids: tuple[str, ...]  # the lab rows the assessment is read from


@dataclass(frozen=True)
class LineResponse:
    """Best response and progression of one line, with the assessments that show them."""

    best: str
    best_date: dt.date | None
    best_evidence: tuple[str, ...]
    progression: dt.date | None
    progression_evidence: tuple[str, ...]


def _ratio_normal(ratio: float) -> bool:
    return FLC_RATIO_NORMAL[0] <= ratio <= FLC_RATIO_NORMAL[1]


def _reduction(baseline: float, value: float) -> float:
    return round(1 - value / baseline, 9) if baseline > 0 else 0.0


def category(baseline: float, m: Measurement, light_chain_only: bool) -> str:
    """The response category one assessment shows against the line's baseline."""
    if light_chain_only:
        if _ratio_normal(m.flc_ratio):
            return "CR"
        reduction = _reduction(baseline, m.value)
        return "VGPR" if reduction >= 0.9 else "PR" if reduction >= 0.5 else "SD"
    if m.value == 0:
        return "sCR" if _ratio_normal(m.flc_ratio) else "CR"
    reduction = _reduction(baseline, m.value)
    if reduction >= 0.9:
        return "VGPR"
    if reduction >= 0.5:
        return "PR"
    return "MR" if reduction >= 0.25 else "SD"


def progressed(nadir: float, value: float, light_chain_only: bool) -> bool:
    """IMWG progression: ≥ 25 % above the nadir and ≥ 0.5 g/dL M-protein (or 100 mg/L dFLC)."""
    rise = 100.0 if light_chain_only else 0.5
    # Rounded: measured values have few decimals, and 0.7 - 0.2 must count as a 0.5 rise.
    return round(value - nadir, 9) >= rise and round(value - 1.25 * nadir, 9) >= 0


def classify_line(
    baseline: Measurement,
    assessments: Sequence[Measurement],
    light_chain_only: bool,
) -> LineResponse:
    """Best response and first progression over a line's assessments (in date order).

    ``assessments`` are those after the line's start up to the next line's start; the best
    response counts assessments before progression only.
    """
    nadir = baseline.value
    best, best_at = "SD", None
    progression_at = None
    for k, m in enumerate(assessments):
        # IMWG: progression needs two consecutive assessments; it dates from the first.
        confirmation = assessments[k + 1] if k + 1 < len(assessments) else None
        if (
            confirmation is not None
            and progressed(nadir, m.value, light_chain_only)
            and progressed(nadir, confirmation.value, light_chain_only)
        ):
            progression_at = m
            break
        cat = category(baseline.value, m, light_chain_only)
        if best_at is None or _RANK[cat] < _RANK[best]:
            best, best_at = cat, m
        nadir = min(nadir, m.value)
    if best_at is None and progression_at is not None:
        best = "PD"  # progressed at the first assessment
    shown_by = best_at or progression_at  # PD is shown by the progressing assessment
    return LineResponse(
        best=best,
        best_date=shown_by.date if shown_by else None,
        best_evidence=shown_by.lab_ids if shown_by else (),
        progression=progression_at.date if progression_at else None,
        progression_evidence=progression_at.lab_ids if progression_at else (),
    )
