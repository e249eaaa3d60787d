"""What the rendered data shows: observed responses, progressions and refractoriness.

The latent course says what was *meant* to happen; this module reads what the lab values
actually show (via the IMWG rules) and derives the history every document and gold fact must
agree with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from recordagent.sources.synthetic.course import REFRACTORY_WINDOW, Course, TherapyLine
from recordagent.sources.synthetic.imwg import LineResponse
from recordagent.sources.synthetic.regimens import DRUGS, DrugClass

__all__ = ["LineOutcome", "Outcomes", "derive_outcomes"]

TRIPLE_CLASS = (DrugClass.IMID, DrugClass.PI, DrugClass.ANTI_CD38)


@dataclass(frozen=True)
class LineOutcome:
    """One therapy line as the data shows it."""

    line: TherapyLine
    response: LineResponse
    refractory_drugs: tuple[str, ...]

    @property
    def number(self) -> int:
        """Line number, from 1."""
        return self.line.number


@dataclass(frozen=True)
class Status:
    """Exposure and refractoriness on a given day."""

    exposed: tuple[DrugClass, ...]
    refractory_drugs: tuple[str, ...]

    def refractory_to(self, drug_class: DrugClass) -> bool:
        """Whether any drug of the class is refractory."""
        return any(DRUGS[d].drug_class is drug_class for d in self.refractory_drugs)

    @property
    def triple_class_exposed(self) -> bool:
        """Exposed to an IMiD, a PI and an anti-CD38 antibody."""
        return all(c in self.exposed for c in TRIPLE_CLASS)

    @property
    def triple_class_refractory(self) -> bool:
        """Refractory to an IMiD, a PI and an anti-CD38 antibody."""
        return all(self.refractory_to(c) for c in TRIPLE_CLASS)


@dataclass(frozen=True)
class Outcomes:
    """The observed history of one patient."""

    course: Course
    lines: tuple[LineOutcome, ...]

    def progressions(self) -> list[dt.date]:
        """Observed progression dates, in order."""
        return [o.response.progression for o in self.lines if o.response.progression]

    def status_on(self, day: dt.date) -> Status:
        """Exposure (lines started by ``day``) and refractoriness (progressions by ``day``)."""
        exposed: list[DrugClass] = []
        refractory: list[str] = []
        for outcome in self.lines:
            if outcome.line.start <= day:
                exposed += [c for c in _classes(outcome.line) if c not in exposed]
            progression = outcome.response.progression
            if progression is not None and progression <= day:
                refractory += [d for d in outcome.refractory_drugs if d not in refractory]
        return Status(tuple(exposed), tuple(refractory))

    def line_on(self, day: dt.date) -> LineOutcome | None:
        """The line running on ``day`` (started and not yet followed by the next)."""
        current = None
        for outcome in self.lines:
            if outcome.line.start <= day:
                current = outcome
        return current


def _classes(line: TherapyLine) -> list[DrugClass]:
    return list(dict.fromkeys(DRUGS[d].drug_class for d in line.drugs()))


def derive_outcomes(course: Course, responses: list[LineResponse]) -> Outcomes:
    """Join each line with its observed response and the drugs it made refractory."""
    outcomes = []
    for line, response in zip(course.lines, responses, strict=True):
        refractory: tuple[str, ...] = ()
        progression = response.progression
        if progression is not None and progression <= line.end + REFRACTORY_WINDOW:
            on_maintenance = (
                line.maintenance is not None
                and line.maintenance_start is not None
                and progression >= line.maintenance_start
            )
            # Progression on maintenance makes the disease refractory to the maintenance drug.
            refractory = (
                (line.maintenance,)
                if on_maintenance and line.maintenance
                else (
                    tuple(d for d in line.regimen.drugs if d not in ("dexamethasone", "prednisone"))
                )
            )
        outcomes.append(LineOutcome(line, response, refractory))
    return Outcomes(course, tuple(outcomes))
