"""Which of a record's lab series an analyte query means.

A *series* is what the record itself holds: one analyte name, code and specimen fluid as the
source reported them. A query resolves in one documented order, the first step that matches
wins:

1. **catalogue concept**: a catalogue name, synonym or code. Every series of the record whose
   concept it is (by the series' code, else by its name) is gathered, so "creatinine" finds
   ``Creatinine [Mass/volume] in Serum or Plasma`` and ``Creatinine [Mass/volume] in Blood``.
2. **the record's own names**, whatever their case, punctuation and spacing.
3. **the record's own codes**, LOINC or local, and the source's own code kept beside a LOINC
   code (a MIMIC-IV itemid, an OMOP source value); 'MIMIC:50912' is also found by '50912'.
4. **the closest spelling** (rapidfuzz edit similarity ≥ 90 of 100) among the record's names
   and the catalogue names of the concepts it has, taken only when one name is clearly closest
   (a typo such as 'hemoglobn') and their short words and words with digits agree ('LDL' is
   never a typo of 'HDL', nor 'T3' of 'T4'); otherwise a ``ToolError`` lists this record's
   nearest analytes, ranked by spelling and word overlap.

Series of different specimens are never merged: the values are grouped by specimen
(:mod:`recordagent.tools.lab_values`), so urine creatinine stays apart from serum creatinine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope, as_datetime
from recordagent.tools.catalogue import Analyte, LabCatalogue, code_keys, name_key

__all__ = [
    "RecordSeries",
    "Resolution",
    "SeriesMatch",
    "closest_series",
    "patient_series",
    "record_series",
    "resolve_analyte",
    "series_analyte",
    "specimen_key",
]

# Fluids that hold the same values as "unspecified" for blood analytes: a record that names no
# fluid reports blood (serum, plasma) values, and LOINC's "Serum or Plasma" and "Blood" codes of
# one concept are clinically interchangeable.
_BLOOD = frozenset(
    {
        "blood", "serum", "plasma", "serum or plasma", "serum plasma", "ser plas", "ser plas bld",
        "whole blood", "venous blood", "arterial blood", "capillary blood", "mixed venous blood",
        "bld", "bldv", "bld a", "bldc", "bldmv", "plas", "ser", "sera",
    }
)  # fmt: skip
_FUZZY_ACCEPT = 90.0  # a single close name is taken at this similarity (0-100) or more …
_FUZZY_MARGIN = 8.0  # … when the next candidate is at least this much further
_NEIGHBOUR_CUTOFF = 55.0
_TEXT_ONLY_PENALTY = 15.0


def specimen_key(fluid: str | None) -> str | None:
    """The specimen a series' values belong with: None for blood and unspecified."""
    if fluid is None:
        return None
    key = name_key(fluid)
    return None if not key or key in _BLOOD else key


@dataclass(frozen=True, slots=True)
class RecordSeries:
    """One analyte as the record holds it: name, code and fluid, with what it has."""

    name: str
    code: str | None
    fluid: str | None
    values: int
    numeric: int
    first: dt.datetime
    last: dt.datetime
    unit: str | None  # the most frequent unit of its numeric values, when asked for
    local_codes: tuple[str, ...] = ()  # the source's own codes beside a standard code

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity within the patient (None as '')."""
        return (self.name, self.code or "", self.fluid or "")

    @property
    def codes(self) -> tuple[str, ...]:
        """Its code and the source's own codes."""
        return ((self.code,) if self.code else ()) + self.local_codes

    @property
    def specimen(self) -> str | None:
        """:func:`specimen_key` of its fluid."""
        return specimen_key(self.fluid)

    def describe(self) -> str:
        """'Name' (code; fluid), for telling the model what matched."""
        extra = [x for x in (self.code, self.fluid) if x]
        return repr(self.name) + (f" ({'; '.join(extra)})" if extra else "")


@dataclass(frozen=True, slots=True)
class SeriesMatch:
    """A series a query matched, and why."""

    series: RecordSeries
    why: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a query resolved to: a label, the concept (if catalogued) and the series."""

    query: str
    label: str
    concept: Analyte | None
    matches: tuple[SeriesMatch, ...]
    step: str  # catalogue | record name | record code | closest name
    note: str | None = None


def series_analyte(
    series: RecordSeries, catalogue: LabCatalogue
) -> tuple[str, str, Analyte | None]:
    """The analyte a series' values belong to: a key, a label and the catalogue entry, if any.

    The catalogue analyte of the series (by code, else by name), else its own name. Values are
    grouped and converted by this, whichever way a query reached them, so every path shows the
    same values.
    """
    concept = catalogue.concept_of(series.name, series.code)
    if concept is not None:  # canonical names are unique in a catalogue
        return f"c:{concept.name}", concept.name, concept
    return f"n:{name_key(series.name)}", series.name, None


def patient_series(scope: PatientScope, *, units: bool = False) -> list[RecordSeries]:
    """:func:`record_series` of the whole record, kept on the scope while its data holds.

    The tool calls of one question ask for it again and again.
    """
    return scope.memo(
        "lab_series_units" if units else "lab_series", lambda: record_series(scope, units=units)
    )


def record_series(
    scope: PatientScope, until: dt.date | None = None, *, units: bool = False
) -> list[RecordSeries]:
    """The patient's lab series (values up to ``until``), most values first.

    ``units`` also finds each series' most frequent unit (it doubles the query's cost, so only
    listings ask for it).
    """
    where = " WHERE time <= $until" if until is not None else ""
    unit = "mode(unit) FILTER (WHERE value_num IS NOT NULL)" if units else "NULL"
    rows = scope.fetch(
        "SELECT analyte_name, analyte_code, fluid, count(*), count(value_num), min(time), "
        # list_distinct drops NULLs; cheaper than an ordered DISTINCT aggregate.
        f"max(time), {unit}, list_distinct(list(local_code)) "
        f"FROM labs{where} GROUP BY analyte_name, analyte_code, fluid ORDER BY 4 DESC, 1, 2, 3",
        {"until": as_datetime(until, end_of_day=True)} if until is not None else None,
    )
    return [
        RecordSeries(name, code, fluid, n, numeric, first, last, unit, tuple(sorted(local or ())))
        for name, code, fluid, n, numeric, first, last, unit, local in rows
    ]


def resolve_analyte(
    query: str, series: Sequence[RecordSeries], catalogue: LabCatalogue
) -> Resolution:
    """The series ``query`` means, by the first step of the resolution order that matches.

    Raises:
        ToolError: Nothing in the catalogue or the record is, or is clearly closest to, the
            query; the message lists this record's nearest analytes.
    """
    text = query.strip()
    key = name_key(text)
    concept = catalogue.find(text)
    if concept is not None:
        matches = _concept_matches(concept, series, catalogue)
        # The record's own series of that exact name come too, whatever analyte their code
        # makes them (MIMIC's 'Neutrophils' is a percentage; the catalogue's, a count): they
        # are grouped apart by analyte, so nothing is mixed and nothing the record calls by
        # this name is hidden.
        taken = {m.series.key for m in matches}
        matches += tuple(
            SeriesMatch(s, f"record name {s.name!r}")
            for s in series
            if key and name_key(s.name) == key and s.key not in taken
        )
        return Resolution(text, concept.name, concept, matches, "catalogue")
    by_name = [s for s in series if key and name_key(s.name) == key]
    if by_name:
        return _own(text, by_name, catalogue, "record name", f"name {by_name[0].name!r}")
    full, tail = code_keys(text)
    by_code = [
        s for s in series if any(full in code_keys(c) or tail == code_keys(c)[0] for c in s.codes)
    ]
    if by_code:
        return _own(text, by_code, catalogue, "record code", "code")
    typo = _typo_match(key, series, catalogue)
    if typo is not None:
        chosen = [s for s in series if s.name == typo]
        resolution = _own(text, chosen, catalogue, "closest name", "closest name")
        return Resolution(
            text,
            resolution.label,
            resolution.concept,
            resolution.matches,
            "closest name",
            note=f"'{text}' is not a name or code of this record or the catalogue; "
            f"showing the closest, {typo!r}",
        )
    ranked = closest_series(text, series, catalogue)
    raise ToolError(unknown_analyte_message(text, series, ranked))


def _typo_match(key: str, series: Sequence[RecordSeries], catalogue: LabCatalogue) -> str | None:
    """The record name ``key`` is a typo of, when exactly one is that close (edit similarity).

    Only spelling closeness counts here: word overlap ('creatinine urine' and 'creatinine')
    can mean another analyte, so it only ranks suggestions.
    """
    if len(key) < 4:
        return None
    markers = _markers(key)
    scores: dict[str, float] = {}
    for s in series:
        concept = catalogue.concept_of(s.name, s.code)
        for name in [s.name, *(concept.names if concept else [])]:
            candidate = name_key(name)
            # One letter apart in a short word is another analyte, not a typo: LDL and HDL,
            # IgA and IgG, troponin I and T, T3 and T4.
            if _markers(candidate) != markers:
                continue
            score = fuzz.ratio(key, candidate)
            scores[s.name] = max(scores.get(s.name, 0.0), score)
    ranked = sorted(scores.items(), key=lambda pair: -pair[1])
    if not ranked or ranked[0][1] < _FUZZY_ACCEPT:
        return None
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < _FUZZY_MARGIN:
        return None
    return ranked[0][0]


def _markers(key: str) -> frozenset[str]:
    """The short words and words with digits of a name: what tells close analytes apart."""
    return frozenset(w for w in key.split() if len(w) <= 3 or any(c.isdigit() for c in w))


def _concept_matches(
    concept: Analyte, series: Sequence[RecordSeries], catalogue: LabCatalogue
) -> tuple[SeriesMatch, ...]:
    out = []
    for s in series:
        if catalogue.concept_of(s.name, s.code) is not concept:
            continue
        by_code = catalogue.by_code(s.code) is concept
        why = f"catalogue code {s.code}" if by_code else f"catalogue name {s.name!r}"
        out.append(SeriesMatch(s, why))
    return tuple(out)


def _own(
    query: str, chosen: list[RecordSeries], catalogue: LabCatalogue, step: str, why: str
) -> Resolution:
    concepts = {id(c): c for s in chosen if (c := catalogue.concept_of(s.name, s.code))}
    concept = next(iter(concepts.values())) if len(concepts) == 1 else None
    # Every series the query reached must share the concept for its unit rules to apply.
    if concept is not None and any(catalogue.concept_of(s.name, s.code) is None for s in chosen):
        concept = None
    label = chosen[0].name
    matches = tuple(
        SeriesMatch(s, f"record {why}" if why != "code" else f"record code {', '.join(s.codes)}")
        for s in chosen
    )
    return Resolution(query, label, concept, matches, step)


def closest_series(
    query: str, series: Sequence[RecordSeries], catalogue: LabCatalogue, limit: int = 8
) -> list[tuple[RecordSeries, float]]:
    """The record's series most like ``query`` (best first, one per name), with a 0-100 score.

    A series is scored by its own name and by the catalogue names of its concept, so "A1c"
    comes near 'Hemoglobin A1c/Hemoglobin.total in Blood'. The query itself is never listed.
    """
    query_key = name_key(query)
    if not series or not any(c.isalpha() for c in query_key):
        return []  # a code-like query: names that share digits are no neighbours
    choices: list[str] = []
    owners: list[int] = []
    for i, s in enumerate(series):
        concept = catalogue.concept_of(s.name, s.code)
        for name in [s.name, *(concept.names if concept else [])]:
            choices.append(name)
            owners.append(i)
    found = process.extract(
        query_key,
        choices,
        scorer=_similarity,
        processor=utils.default_process,
        limit=None,
        score_cutoff=_NEIGHBOUR_CUTOFF,
    )
    best: dict[str, tuple[RecordSeries, float]] = {}
    for _, score, index in found:
        s = series[owners[index]]
        if name_key(s.name) == query_key:
            continue
        # A series without a single number (questionnaire answers) is rarely what a lab
        # query means: it ranks behind measured analytes of similar names.
        score = float(score) - (_TEXT_ONLY_PENALTY if s.numeric == 0 else 0.0)
        if s.name not in best or score > best[s.name][1]:
            best[s.name] = (s, score)
    ranked = sorted(best.values(), key=lambda pair: (-pair[1], -pair[0].values, pair[0].name))
    return ranked[:limit]


def _similarity(query: str, name: str, *, score_cutoff: float | None = None, **_: object) -> float:
    # ratio for typos; token_set for word order; partial for a query that is part of a name
    # ('a1c' in 'hemoglobin a1c ...'), never a short name found inside the query ('race' in
    # 'percentage'). The latter two are damped so that word overlap does not outrank a typo.
    whole = fuzz.ratio(query, name)
    tokens = fuzz.token_set_ratio(query, name) * 0.95
    partial = 0.0
    if 3 <= len(query) <= len(name):
        # Only a near-exact part counts: scattered letters in common are no resemblance.
        raw = fuzz.partial_ratio(query, name)
        partial = raw * 0.9 if raw >= 85 else 0.0
    return max(whole, tokens, partial)


def unknown_analyte_message(
    query: str, series: Sequence[RecordSeries], ranked: list[tuple[RecordSeries, float]]
) -> str:
    """The corrective error for a query that names nothing in the record or the catalogue."""
    shown_query = "".join(c if c.isprintable() else " " for c in query)
    head = f"query_labs: unknown analyte '{shown_query}'"
    if not series:
        return head + "; this record has no lab values."
    shown = ", ".join(f"{s.name!r} ({s.values} value(s))" for s, _ in ranked[:6])
    closest = f"; closest in this record: {shown}" if shown else ""
    return (
        f"{head}{closest}. This record has {len(series)} analyte series; list them with "
        "list_analytes (contains='…' narrows the list), then ask by the exact name or code."
    )
