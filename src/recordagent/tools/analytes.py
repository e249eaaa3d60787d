"""list_analytes: the record's own lab analytes, with counts and date ranges.

What the model reads when it does not know how this record names an analyte: each series as
the record holds it (name, code, fluid, unit), how many values it has and over which days, and
the catalogue concept it belongs to, so that the next ``query_labs`` call can use the exact name.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from recordagent.records.scope import PatientScope
from recordagent.tools.base import Tool, ToolResult, bind
from recordagent.tools.catalogue import (
    Group,
    LabCatalogue,
    code_keys,
    name_key,
    packaged_lab_catalogue,
)
from recordagent.tools.lab_resolution import closest_series, patient_series

__all__ = [
    "LIST_ANALYTES",
    "AnalyteEntry",
    "ListAnalytesInput",
    "ListAnalytesResult",
    "list_analytes",
    "list_analytes_tool",
]

PAGE_SIZE = 60


class ListAnalytesInput(BaseModel):
    """Arguments of list_analytes."""

    contains: str | None = Field(
        default=None,
        max_length=100,
        description="Only analytes whose name, code or common name contains this text, e.g. "
        "'chol', 'a1c', 'urine' (the closest names when none contains it).",
    )
    group: Group | None = Field(
        default=None, description="Only analytes of this clinical group (catalogued ones)."
    )
    page: int = Field(default=1, ge=1, le=1000, description=f"{PAGE_SIZE} analytes a page.")


class AnalyteEntry(BaseModel):
    """One lab series of the record."""

    name: str = Field(description="The analyte name as the record has it (use it in query_labs).")
    code: str | None
    local_codes: list[str] = Field(
        default_factory=list, description="The source's own codes beside a standard code."
    )
    fluid: str | None
    unit: str | None = Field(description="The most frequent unit of its values.")
    values: int
    first: str = Field(description="Day of the first value.")
    last: str = Field(description="Day of the last value.")
    concept: str | None = Field(description="The catalogue analyte it is, if any.")

    def line(self) -> str:
        """'- Name (code, local codes; fluid) ×n, first … last, unit = Concept'."""
        codes = ", ".join(c for c in (self.code, *self.local_codes) if c)
        extra = [x for x in (codes, self.fluid) if x]
        text = f"- {self.name}" + (f" ({'; '.join(extra)})" if extra else "")
        text += f" ×{self.values}, {self.first} … {self.last}"
        text += f", {self.unit}" if self.unit else ""
        if self.concept and name_key(self.concept) != name_key(self.name):
            text += f" = {self.concept}"
        return text


class ListAnalytesResult(ToolResult):
    """A page of the record's analytes, most values first."""

    total: int = Field(description="Analytes that match, over all pages.")
    page: int
    pages: int
    entries: list[AnalyteEntry]
    note: str | None = None

    def lines(self) -> list[str]:
        """A header, then one line per analyte."""
        head = f"{self.total} analyte(s)"
        if self.pages > 1:
            head += f", page {self.page} of {self.pages}"
        out = [self.note] if self.note else []
        out.append(head + ":")
        out.extend(entry.line() for entry in self.entries)
        if self.page < self.pages:
            out.append(f"More: list_analytes(page={self.page + 1}).")
        return out


def list_analytes(
    scope: PatientScope, args: ListAnalytesInput, catalogue: LabCatalogue | None = None
) -> ListAnalytesResult:
    """The record's lab series matching ``contains`` and ``group``, a page at a time."""
    catalogue = catalogue or packaged_lab_catalogue()
    series = patient_series(scope, units=True)
    chosen = series
    note = None
    if args.group is not None:
        chosen = [
            s
            for s in chosen
            if (c := catalogue.concept_of(s.name, s.code)) and c.group == args.group
        ]
    if args.contains is not None and name_key(args.contains):
        key = name_key(args.contains)
        code = code_keys(args.contains)[0]

        def hit(s_name: str, s_code: str | None, s_codes: tuple[str, ...]) -> bool:
            concept = catalogue.concept_of(s_name, s_code)
            names = [s_name, *(concept.names if concept else [])]
            return any(key in name_key(n) for n in names) or any(
                code in code_keys(c)[0] for c in s_codes
            )

        matching = [s for s in chosen if hit(s.name, s.code, s.codes)]
        if not matching:
            matching = [s for s, _ in closest_series(args.contains, chosen, catalogue, limit=10)]
            note = f"No analyte contains '{args.contains}'; the closest:"
        chosen = matching
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = min(args.page, pages)
    entries = []
    for s in chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
        concept = catalogue.concept_of(s.name, s.code)
        entries.append(
            AnalyteEntry(
                name=s.name,
                code=s.code,
                local_codes=list(s.local_codes),
                fluid=s.fluid,
                unit=s.unit,
                values=s.values,
                first=f"{s.first:%Y-%m-%d}",
                last=f"{s.last:%Y-%m-%d}",
                concept=concept.name if concept else None,
            )
        )
    return ListAnalytesResult(total=len(chosen), page=page, pages=pages, entries=entries, note=note)


_DESCRIPTION = (
    "The lab analytes this record has, as it names them, with how many values each has, over "
    "which days, and the common name where known; filter with `contains` or `group`. Use it "
    "when query_labs does not know a name, then ask query_labs by the exact name or code."
)


LIST_ANALYTES: Tool[ListAnalytesInput] = Tool(
    name="list_analytes",
    description=_DESCRIPTION,
    input_model=ListAnalytesInput,
    fn=list_analytes,
)


def list_analytes_tool(catalogue: LabCatalogue | None = None) -> Tool[ListAnalytesInput]:
    """list_analytes over ``catalogue`` (the packaged one when None)."""
    return bind(LIST_ANALYTES, catalogue=catalogue)
