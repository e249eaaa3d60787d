"""Lab reach: does ``query_labs`` find every numeric lab row by the record's own name and code?

For every patient and every series of its record, ``query_labs`` is asked by the series' own
analyte name, by its own code and by the source's own codes kept beside it (``local_code``),
paging through long series by date; a numeric row counts as reached when the answer shows it —
or shows the draw's correction, or an exact duplicate of it (which the tool shows once). Used by
the test suite (a floor) and ``tools/bench.py`` (figures).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, Field

from recordagent.errors import ToolError
from recordagent.records.db import RecordStore
from recordagent.records.scope import PatientScope
from recordagent.tools.catalogue import LabCatalogue
from recordagent.tools.lab_resolution import record_series
from recordagent.tools.labs import QueryLabsInput, query_labs

__all__ = ["ReachReport", "lab_reach"]

_PAGE = 500


class ReachReport(BaseModel):
    """Numeric lab rows reached by their own name and by their own code."""

    rows: int = Field(description="Numeric lab rows in the store.")
    by_name: int = Field(description="Rows reached by query_labs(analyte=<own name>).")
    by_code: int = Field(description="Rows reached by query_labs(analyte=<own code>).")
    coded_rows: int = Field(description="Numeric rows that have a code at all.")
    by_local_code: int = Field(
        default=0, description="Rows reached by query_labs(analyte=<the source's own code>)."
    )
    local_coded_rows: int = Field(
        default=0, description="Numeric rows with a local code beside their standard code."
    )
    missed_by_name: dict[str, int] = Field(description="Unreached rows by analyte name (top 20).")
    missed_by_code: dict[str, int] = Field(
        description="Unreached rows by code or local code (top 20)."
    )

    @property
    def name_share(self) -> float:
        """Share of numeric rows reached by name."""
        return self.by_name / self.rows if self.rows else 1.0

    @property
    def code_share(self) -> float:
        """Share of coded numeric rows reached by code."""
        return self.by_code / self.coded_rows if self.coded_rows else 1.0

    @property
    def local_code_share(self) -> float:
        """Share of numeric rows with a local code reached by it."""
        return self.by_local_code / self.local_coded_rows if self.local_coded_rows else 1.0


def lab_reach(
    store: RecordStore,
    catalogue: LabCatalogue | None = None,
    patients: Iterable[str] | None = None,
    *,
    local_codes: bool = True,
) -> ReachReport:
    """Ask ``query_labs`` for every series by own name, code and local codes; count the reached.

    ``local_codes=False`` skips the third pass (by the source's own codes).
    """
    rows = by_name = by_code = coded = by_local = local_coded = 0
    missed_name: Counter[str] = Counter()
    missed_code: Counter[str] = Counter()
    for patient_id in patients if patients is not None else store.patient_ids():
        scope = store.scope(patient_id)
        numeric = scope.fetch(
            "SELECT lab_id, analyte_name, coalesce(analyte_code, ''), coalesce(fluid, ''), time, "
            "value_num, flag, local_code FROM labs WHERE value_num IS NOT NULL"
        )
        if not numeric:
            continue
        draws: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
        by_series: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
        for row in numeric:
            draws.setdefault(row[1:5], []).append(row)
            by_series.setdefault(row[1:4], []).append(row)
        for s in record_series(scope):
            own = by_series.get(s.key, [])
            if not own:
                continue
            rows += len(own)
            seen = _shown(scope, s.name, catalogue)
            hit = sum(1 for r in own if _reached(r, seen, draws))
            by_name += hit
            missed_name[s.name] += len(own) - hit
            if s.code:
                coded += len(own)
                seen = _shown(scope, s.code, catalogue)
                hit = sum(1 for r in own if _reached(r, seen, draws))
                by_code += hit
                missed_code[s.code] += len(own) - hit
            for local in s.local_codes if local_codes else ():
                tagged = [r for r in own if r[7] == local]
                local_coded += len(tagged)
                seen = _shown(scope, local, catalogue)
                hit = sum(1 for r in tagged if _reached(r, seen, draws))
                by_local += hit
                missed_code[local] += len(tagged) - hit
    return ReachReport(
        rows=rows,
        by_name=by_name,
        by_code=by_code,
        coded_rows=coded,
        by_local_code=by_local,
        local_coded_rows=local_coded,
        missed_by_name={k: v for k, v in missed_name.most_common(20) if v},
        missed_by_code={k: v for k, v in missed_code.most_common(20) if v},
    )


def _shown(scope: PatientScope, analyte: str, catalogue: LabCatalogue | None) -> set[str]:
    """Lab ids query_labs shows for ``analyte``, paging by date through long series."""
    if len(analyte) > 200:  # longer than the tool accepts: the model could not ask either
        return set()
    shown: set[str] = set()
    start: dt.date | None = None
    while True:
        try:
            result = query_labs(
                scope, QueryLabsInput(analyte=analyte, start=start, limit=_PAGE), catalogue
            )
        except ToolError:
            return shown
        truncated = None
        for group in result.groups:
            shown.update(p.lab_id for p in group.points)
            if group.total > len(group.points) and group.points:
                last = group.points[-1].time.date()
                truncated = last if truncated is None else min(truncated, last)
        if truncated is None or truncated == start:
            return shown
        start = truncated


def _reached(
    row: tuple[object, ...],
    shown: set[str],
    draws: dict[tuple[object, ...], list[tuple[object, ...]]],
) -> bool:
    if row[0] in shown:
        return True
    # Shown once for its draw: a correction that replaced it, or an exact duplicate of it.
    return any(
        other[0] in shown and (other[6] == "corrected" or other[5] == row[5])
        for other in draws[row[1:5]]
    )
