"""The shared state and helpers of one patient's document writer.

A :class:`PatientWriter` holds the patient's course, labs and observed outcomes, the patient's
random generator (all text variety comes from it, so output is deterministic) and the
documents written so far. Report and letter functions (:mod:`.reports`, :mod:`.letters`) take it
as their first argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from recordagent.sources.synthetic import boilerplate as bp
from recordagent.sources.synthetic import phrases as ph
from recordagent.sources.synthetic.course import Course
from recordagent.sources.synthetic.labs import PatientLabs
from recordagent.sources.synthetic.outcomes import LineOutcome, Outcomes
from recordagent.sources.synthetic.regimens import DRUGS

__all__ = ["DOCUMENT_TYPES", "Doc", "PatientWriter", "States"]

DOCUMENT_TYPES = (
    "admission letter",
    "discharge letter",
    "outpatient visit note",
    "tumour board protocol",
    "bone marrow report",
    "imaging report",
    "transplant report",
    "CAR-T report",
    "pathology report",
    "therapy plan",
)
States = list[tuple[str, int | None]]
"""Gold facts a document states explicitly: (fact name, therapy line or None)."""


@dataclass
class Doc:
    """A rendered document and the facts it states."""

    date: dt.date
    type: str
    title: str
    text: str
    states: States = field(default_factory=list)


class PatientWriter:
    """Renders one patient's documents; all randomness comes from the patient's generator."""

    def __init__(
        self, rng: np.random.Generator, course: Course, labs: PatientLabs, outcomes: Outcomes
    ) -> None:
        self.rng = rng
        self.course = course
        self.labs = labs
        self.outcomes = outcomes
        self.house_style = ph.pick(rng, ph.DATE_STYLES)
        self.meds = list(
            dict.fromkeys(ph.pick(rng, ph.MEDICATIONS) for _ in range(int(rng.integers(4, 11))))
        )
        self.family = ph.pick(rng, ph.FAMILY)
        self.allergies = ph.pick(rng, ph.ALLERGIES)
        self.social = ph.pick(rng, ph.SOCIAL)
        self.comorbidities = list(
            dict.fromkeys(ph.pick(rng, ph.COMORBIDITIES) for _ in range(int(rng.integers(1, 4))))
        )
        self.docs: list[Doc] = []
        # Histories written so far, by day: documents are rendered out of date order, and a
        # copied-forward history must come from an earlier document, never a later one.
        self._histories: list[tuple[dt.date, str]] = []
        self._labs_by_day: dict[dt.date, dict[str, tuple[float | None, str | None, str]]] = {}
        for time, code, value, text, unit in labs.frame.select(
            "time", "analyte_code", "value_num", "value_text", "unit"
        ).iter_rows():
            self._labs_by_day.setdefault(time.date(), {})[code] = (value, text, unit)

    def style(self) -> str:
        """A date style: the house style mostly, sometimes another system's."""
        return self.house_style if self.rng.random() < 0.6 else ph.pick(self.rng, ph.DATE_STYLES)

    def d(self, day: dt.date, style: str) -> str:
        """``day`` in ``style``."""
        return ph.format_date(day, style)

    def choice(self, options: tuple[str, ...] | list[str]) -> str:
        """One of ``options``."""
        return ph.pick(self.rng, options)

    def isotype(self) -> str:
        """The isotype as some document writes it."""
        return self.choice(ph.ISOTYPE_FORMS[(self.course.isotype, self.course.light_chain)])

    def regimen_name(self, outcome: LineOutcome) -> str:
        """A name of the line's regimen."""
        return self.choice(outcome.line.regimen.names)

    def add(self, day: dt.date, kind: str, title: str, body: list[str], states: States) -> None:
        """Add a document: letterhead, ``body`` lines, signature."""
        head = bp.letterhead(
            self.rng, kind, self.course.patient_id, self.course.birth_date, self.house_style
        )
        text = "\n".join([*head, *body, *bp.signature(self.rng)]).strip() + "\n"
        if self._history_marker() in text:
            # An oncological history names the isotype and the ISS stage, which never change.
            states = [*states, ("isotype", None), ("iss_stage", None)]
        self.docs.append(Doc(day, kind, title, text, states))

    def _history_marker(self) -> str:
        return f"- {ph.month_year(self.course.diagnosis_date)}: diagnosis of"

    def labs_on(self, day: dt.date) -> dict[str, tuple[float | None, str | None, str]]:
        """Lab values drawn on ``day``, by analyte code: (value, text, unit)."""
        return self._labs_by_day.get(day, {})

    def lab_sentence(self, day: dt.date) -> str:
        """The day's key values in one sentence."""
        found = self.labs_on(day)
        if not found:
            return "No new laboratory results."
        parts = []
        names = {
            "718-7": "Hb",
            "2160-0": "creatinine",
            "17861-6": "calcium",
            "33358-4": "M-protein",
            "48378-4": "FLC ratio",
            "36916-5": "free kappa",
            "33944-1": "free lambda",
            "777-3": "platelets",
        }
        for code, label in names.items():
            if code not in found:
                continue
            value, text, unit = found[code]
            if value is None:
                parts.append(f"{label} {text}")
            else:
                parts.append(f"{label} {value:g}" + ("" if unit == "ratio" else f" {unit}"))
        lead = self.choice(("Labs today: ", "Laboratory: ", "Current values: ", "Lab results - "))
        return lead + ", ".join(parts) + "."

    def trend(self, day: dt.date) -> str:
        """The last few paraprotein values in prose: numbers embedded in text."""
        code = "36916-5" if self.course.light_chain == "kappa" else "33944-1"
        if self.course.isotype != "light chain":
            code = "33358-4"
        earlier = [
            (d, found[code]) for d, found in self._labs_by_day.items() if d < day and code in found
        ][-3:]
        if not earlier:
            return ""
        parts = []
        for d, (value, text, unit) in earlier:
            shown = text if value is None else f"{value:g} {unit}"
            parts.append(f"{shown} on {self.d(d, self.house_style)}")
        marker = "M-protein" if code == "33358-4" else f"free {self.course.light_chain}"
        return f"Previous {marker} values: " + "; ".join(parts) + "."

    def current_therapy(self, day: dt.date) -> str:
        """What the patient is on: the line's regimen, maintenance, or nothing."""
        current = self.outcomes.line_on(day)
        if current is None:
            return "Currently untreated."
        line = current.line
        if line.maintenance and line.maintenance_start and day >= line.maintenance_start:
            return f"Currently on {self.choice(DRUGS[line.maintenance].names)} maintenance."
        if line.asct_date and day >= line.asct_date:
            return "Currently recovering after ASCT."
        if line.end >= day:
            cycle = (day - line.start).days // line.regimen.cycle_days + 1
            return f"Currently on {self.regimen_name(current)}, cycle {cycle}."
        return "Currently off therapy (treatment-free interval)."

    def history(self, day: dt.date) -> str:
        """The oncological history as of ``day``; sometimes copied from an earlier document."""
        if day < self.course.diagnosis_date:
            return "No known haematological disease before this presentation."
        earlier = [(when, block) for when, block in self._histories if when < day]
        if earlier and self.rng.random() < 0.35:
            return max(earlier, key=lambda item: item[0])[1]  # copy-forward: may be out of date
        c = self.course
        lines = [
            f"- {ph.month_year(c.diagnosis_date)}: diagnosis of {self.isotype()} multiple "
            f"myeloma, {self.choice(ph.ISS_FORMS[c.iss])}"
        ]
        for o in self.outcomes.lines:
            if o.line.start > day:
                break
            text = f"- {ph.month_year(o.line.start)}: {self.regimen_name(o)}"
            if o.line.asct_date and o.line.asct_date <= day:
                text += f", ASCT {ph.month_year(o.line.asct_date)}"
            if o.line.maintenance and o.line.maintenance_start and o.line.maintenance_start <= day:
                text += f", {self.choice(DRUGS[o.line.maintenance].names)} maintenance"
            best = o.response.best_date
            if best and best <= day:
                text += f"; best response {self.choice(ph.RESPONSE_FORMS[o.response.best])}"
            if o.response.progression and o.response.progression <= day:
                text += f"; progression {ph.month_year(o.response.progression)}"
            lines.append(text)
        lines.append(self.current_therapy(day))
        block = "\n".join(lines)
        self._histories.append((day, block))
        return block
