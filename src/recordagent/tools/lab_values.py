"""A record's lab values as every runner sees them: grouped, converted, corrected, de-duplicated.

One function turns lab rows into :class:`ValueGroup` s, and ``query_labs``, the baselines' lab
passages and the full-context lab table all use it, so that a comparison between runners
measures method, not plumbing. The rules:

- **Groups.** Values of one analyte are grouped by specimen (blood and unspecified together;
  every other fluid apart), then by unit: a value whose unit converts to the group's unit is
  converted; one that does not starts a group of its own in the unit as reported. Nothing is
  dropped and nothing incommensurable is mixed.
- **Units.** A catalogued analyte's values go to its canonical unit (hand factors, then UCUM
  with its molar mass and valence); any other analyte's to its most frequent unit (UCUM). A
  value reported without a unit is taken to be in the group's unit.
- **Corrections and duplicates.** A row flagged ``corrected`` replaces every earlier report of
  the same draw (series and time); exact duplicates of a draw count once.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recordagent.records.scope import PatientScope, as_datetime
from recordagent.tools.catalogue import Analyte, LabCatalogue
from recordagent.tools.lab_resolution import (
    RecordSeries,
    Resolution,
    SeriesMatch,
    record_series,
    series_analyte,
    specimen_key,
)
from recordagent.tools.units import display_unit, ucum_code, unit_factor

__all__ = ["Reading", "ValueGroup", "fetch_readings", "record_value_groups", "value_groups"]


@dataclass(slots=True)
class Reading:
    """One lab value as the runners see it: in the group's unit when it converts."""

    lab_id: str
    time: dt.datetime
    value: float | None  # in the group's unit
    text: str | None
    reported: str  # value and unit as the source reported them
    flag: str | None
    ref_low: float | None
    ref_high: float | None
    series: tuple[str, str, str]  # RecordSeries.key


@dataclass
class ValueGroup:
    """Values of one analyte, one specimen and one unit, in time order."""

    label: str
    specimen: str | None
    unit: str
    concept: Analyte | None
    matches: list[SeriesMatch]
    readings: list[Reading] = field(default_factory=list)
    converted_from: Counter[str] = field(default_factory=Counter)

    @property
    def title(self) -> str:
        """'Label [specimen] (unit)'."""
        specimen = f" [{self.specimen}]" if self.specimen else ""
        return f"{self.label}{specimen} ({self.unit or 'no unit'})"


def fetch_readings(
    scope: PatientScope,
    series: Sequence[RecordSeries] | None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[tuple[Any, ...]]:
    """Rows of these series (None: every series), in time order.

    A correction comes after the report it corrects.
    """
    filters = ["true"]
    params: dict[str, object] = {}
    if series is not None:
        filters.append("list_contains($names, analyte_name)")
        params["names"] = sorted({s.name for s in series})
    if start is not None:
        filters.append("time >= $start")
        params["start"] = start
    if end is not None:
        filters.append("time <= $end")
        params["end"] = end
    rows = scope.fetch(
        "SELECT lab_id, time, value_num, value_text, unit, flag, ref_low, ref_high, "
        "analyte_name, coalesce(analyte_code, ''), coalesce(fluid, '') FROM labs "
        f"WHERE {' AND '.join(filters)} ORDER BY time, flag = 'corrected', lab_id",
        params,
    )
    if series is None:
        return rows
    # Filtering by name in SQL is cheap; a name may cover series of other codes or fluids.
    keys = {s.key for s in series}
    return [r for r in rows if (r[8], r[9], r[10]) in keys]


def value_groups(
    scope: PatientScope,
    resolution: Resolution,
    catalogue: LabCatalogue,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[ValueGroup]:
    """The values a resolved query reaches, grouped (blood and unspecified first)."""
    if not resolution.matches:
        return []
    rows = fetch_readings(
        scope,
        [m.series for m in resolution.matches],
        None if start is None else as_datetime(start, end_of_day=False),
        None if end is None else as_datetime(end, end_of_day=True),
    )
    groups = _by_analyte(rows, list(resolution.matches), catalogue)
    # The analyte the query named first, then the others its series belong to.
    asked = resolution.concept.name if resolution.concept else resolution.label
    return sorted(groups, key=lambda g: g.label != asked)


def record_value_groups(
    scope: PatientScope, catalogue: LabCatalogue, until: dt.date | None = None
) -> list[ValueGroup]:
    """Every lab value of the record, grouped as ``query_labs`` groups them, by label.

    A series joins its catalogue concept's group, else the group of its own name (so a query by
    either shows the same values).
    """
    series = record_series(scope, until)
    if not series:
        return []
    rows = fetch_readings(
        scope, None, end=None if until is None else as_datetime(until, end_of_day=True)
    )
    matches = [SeriesMatch(s, "record") for s in series]
    groups = _by_analyte(rows, matches, catalogue)
    groups.sort(key=lambda g: (g.label.casefold(), g.label, g.specimen or "", g.unit))
    return groups


def _by_analyte(
    rows: list[tuple[Any, ...]], matches: list[SeriesMatch], catalogue: LabCatalogue
) -> list[ValueGroup]:
    """Rows grouped by the analyte of their series (:func:`series_analyte`), then specimen, unit."""
    analytes: dict[str, tuple[str, Analyte | None, list[SeriesMatch]]] = {}
    of_series: dict[tuple[str, str, str], str] = {}
    for match in matches:
        key, label, concept = series_analyte(match.series, catalogue)
        analytes.setdefault(key, (label, concept, []))[2].append(match)
        of_series[match.series.key] = key
    rows_of: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:  # already in time order, corrections after what they correct
        rows_of[of_series[(str(row[8]), str(row[9]), str(row[10]))]].append(row)
    groups: list[ValueGroup] = []
    for key, (label, concept, own) in analytes.items():
        groups.extend(_group(rows_of[key], label, concept, own))
    return groups


def _group(
    rows: Iterable[tuple[Any, ...]],
    label: str,
    concept: Analyte | None,
    matches: list[SeriesMatch],
) -> list[ValueGroup]:
    by_specimen: dict[str | None, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_specimen[specimen_key(str(row[10]) or None)].append(row)
    groups: list[ValueGroup] = []
    for specimen in sorted(by_specimen, key=lambda s: (s is not None, s or "")):
        specimen_rows = by_specimen[specimen]
        own_matches = [m for m in matches if m.series.specimen == specimen]
        groups.extend(_unit_groups(specimen_rows, label, specimen, concept, own_matches))
    return groups


def _unit_groups(
    rows: list[tuple[Any, ...]],
    label: str,
    specimen: str | None,
    concept: Analyte | None,
    matches: list[SeriesMatch],
) -> list[ValueGroup]:
    units: Counter[str] = Counter(
        u for r in rows if r[2] is not None and (u := _unit(r[4])) is not None
    )
    targets: list[str] = []
    if concept is not None:
        targets.append(concept.unit)
    elif units:
        targets.append(units.most_common(1)[0][0])
    factors: dict[str | None, tuple[int, float]] = {}
    for unit, _ in units.most_common():
        for i, target in enumerate(targets):
            factor = _factor(unit, target, concept if i == 0 else None)
            if factor is not None:
                factors[unit] = (i, factor)
                break
        else:
            factors[unit] = (len(targets), 1.0)
            targets.append(unit)
    if not targets:
        targets.append("")
    display = [display_unit(t) if t else "" for t in targets]
    groups = [ValueGroup(label, specimen, u, concept, matches) for u in display]
    for row in rows:
        lab_id, time, value, text, unit, flag, low, high, name, code, fluid = row
        unit_s = _unit(unit)
        index, factor = factors.get(unit_s, (0, 1.0)) if unit_s else (0, 1.0)
        group = groups[index]
        # A store loaded before values were bounded may hold inf, NaN or a value whose
        # conversion overflows: no number at all rather than an infinite one.
        number = None if value is None else float(value)
        if number is not None and not math.isfinite(number * factor):
            number = None
        if number is not None and unit_s and factor != 1.0:
            group.converted_from[unit_s] += 1
        reported = f"{number:g} {unit_s or ''}".strip() if number is not None else str(text or "")
        group.readings.append(
            Reading(
                lab_id=str(lab_id),
                time=time,
                value=None if number is None else round(number * factor, 6),
                text=None if text is None else str(text),
                reported=reported,
                flag=None if flag is None else str(flag),
                ref_low=None if low is None else round(float(low) * factor, 6),
                ref_high=None if high is None else round(float(high) * factor, 6),
                series=(str(name), str(code), str(fluid)),
            )
        )
    for group in groups:
        group.readings = _corrected_once(group.readings)
    return [g for g in groups if g.readings]


def _unit(unit: object) -> str | None:
    text = None if unit is None else str(unit).strip()
    return text or None


def _factor(unit: str, target: str, concept: Analyte | None) -> float | None:
    if concept is not None:
        return concept.factor(unit)
    factor = unit_factor(unit, target)
    if factor is None and ucum_code(unit) is None and unit.casefold() == target.casefold():
        return 1.0
    return factor


def _corrected_once(readings: list[Reading]) -> list[Reading]:
    """A correction replaces the draw's earlier reports; exact duplicates count once."""
    draws: dict[tuple[tuple[str, str, str], dt.datetime], list[Reading]] = {}
    for reading in readings:
        draws.setdefault((reading.series, reading.time), []).append(reading)
    out: list[Reading] = []
    for group in draws.values():
        corrected = [r for r in group if r.flag == "corrected"]
        if corrected:
            out.append(corrected[-1])
            continue
        seen: set[tuple[float | None, str | None]] = set()
        for reading in group:
            if (reading.value, reading.text) not in seen:
                seen.add((reading.value, reading.text))
                out.append(reading)
    out.sort(key=lambda r: (r.time, r.lab_id))
    return out
