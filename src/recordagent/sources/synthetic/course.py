"""The latent disease course of one simulated myeloma patient.

A course is drawn first — presentation, risk, therapy lines, responses as *intended*, adverse
events, death or last follow-up — and rendered into labs and documents afterwards. Observed
responses and progression dates are derived from the rendered lab values (see
:mod:`recordagent.sources.synthetic.imwg`), so the gold answers always agree with the data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from recordagent.sources.synthetic.imwg import RESPONSES
from recordagent.sources.synthetic.regimens import DRUGS, REGIMENS, DrugClass, Regimen, Setting

__all__ = [
    "REFRACTORY_WINDOW",
    "AdverseEvent",
    "Course",
    "TherapyLine",
    "simulate_course",
]

FOLLOW_UP_END = dt.date(2026, 6, 30)
REFRACTORY_WINDOW = dt.timedelta(days=60)  # IMWG: progression on therapy or within 60 days


@dataclass
class AdverseEvent:
    """An adverse event during a line of therapy."""

    kind: str  # "peripheral neuropathy", "pneumonia", "neutropenia", "CRS", "ICANS", ...
    grade: int  # CTCAE / ASTCT grade 1-4
    date: dt.date
    line: int
    admitted: bool  # grade >= 3 infections and CRS lead to an admission


@dataclass
class TherapyLine:
    """One line of therapy (IMWG: induction, transplant and maintenance form one line)."""

    number: int
    regimen: Regimen
    start: dt.date
    end: dt.date  # last dose; the follow-up end or death date while ongoing
    ongoing: bool
    intended_response: str
    progression: dt.date | None  # latent progression (observed date comes from the labs)
    end_reason: str  # "progression", "completed", "toxicity", "ongoing", "death"
    asct_date: dt.date | None = None
    maintenance: str | None = None  # drug key of maintenance after ASCT
    maintenance_start: dt.date | None = None

    def drugs(self) -> tuple[str, ...]:
        """Every drug given in the line, maintenance included."""
        extra = (self.maintenance,) if self.maintenance else ()
        melphalan = ("melphalan",) if self.asct_date else ()
        return tuple(dict.fromkeys((*self.regimen.drugs, *melphalan, *extra)))

    def classes(self) -> frozenset[DrugClass]:
        """Drug classes given in the line."""
        return frozenset(DRUGS[d].drug_class for d in self.drugs())


@dataclass
class Course:
    """Everything latent about one patient."""

    patient_id: str
    sex: str
    birth_date: dt.date
    diagnosis_date: dt.date
    isotype: str  # "IgG", "IgA", "light chain"
    light_chain: str  # "kappa", "lambda"
    iss: int
    riss: int
    ldh_high: bool
    del17p: bool
    t4_14: bool
    t14_16: bool
    gain1q: bool
    crab: dict[str, bool]  # hypercalcaemia, renal impairment, anaemia, bone lesions
    bm_plasma_cells: int  # % at diagnosis
    transplant_eligible: bool
    lines: list[TherapyLine]
    adverse_events: list[AdverseEvent]
    death_date: dt.date | None
    last_follow_up: dt.date
    intensity: float  # how much of the patient's care this centre documents (record length)
    burden: float  # diagnosis paraprotein: M-protein g/dL, or involved FLC mg/L (light chain)
    transferred_out: bool = False

    @property
    def high_risk(self) -> bool:
        """High-risk cytogenetics by IMWG: del(17p), t(4;14) or t(14;16)."""
        return self.del17p or self.t4_14 or self.t14_16

    @property
    def measurable_by(self) -> str:
        """'M-protein' (serum paraprotein) or 'FLC' (light-chain-only disease)."""
        return "FLC" if self.isotype == "light chain" else "M-protein"

    @property
    def end_date(self) -> dt.date:
        """Death or last follow-up."""
        return self.death_date or self.last_follow_up


def _days(value: float) -> dt.timedelta:
    return dt.timedelta(days=int(round(value)))


def _pick(rng: np.random.Generator, options: list[str], weights: list[float]) -> str:
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def simulate_course(
    rng: np.random.Generator, patient_id: str, first_year: int, last_year: int
) -> Course:
    """Draw one patient's latent course; diagnosis falls in ``first_year``..``last_year``."""
    # More patients in recent years: referrals grow and older records are archived.
    years = np.arange(first_year, last_year + 1)
    year = int(rng.choice(years, p=(w := np.linspace(1.0, 2.5, len(years))) / w.sum()))
    diagnosis = dt.date(year, 1, 1) + _days(rng.uniform(0, 364))
    diagnosis = min(diagnosis, FOLLOW_UP_END - dt.timedelta(days=200))
    age = float(np.clip(rng.normal(66, 10), 35, 90))
    birth = diagnosis - _days(age * 365.25 + rng.uniform(0, 300))
    sex = "male" if rng.random() < 0.56 else "female"

    isotype = _pick(rng, ["IgG", "IgA", "light chain"], [0.55, 0.23, 0.22])
    light_chain = "kappa" if rng.random() < 0.65 else "lambda"
    del17p, t4_14, t14_16 = rng.random() < 0.10, rng.random() < 0.12, rng.random() < 0.03
    gain1q = rng.random() < 0.35
    iss = int(rng.choice([1, 2, 3], p=[0.30, 0.36, 0.34]))
    ldh_high = rng.random() < 0.12
    high_risk = del17p or t4_14 or t14_16
    if iss == 1 and not high_risk and not ldh_high:
        riss = 1
    elif iss == 3 and (high_risk or ldh_high):
        riss = 3
    else:
        riss = 2
    crab = {
        "hypercalcaemia": rng.random() < 0.16,
        "renal impairment": rng.random() < 0.20,
        "anaemia": rng.random() < 0.55,
        "bone lesions": rng.random() < 0.72,
    }
    bm_plasma_cells = int(np.clip(rng.lognormal(np.log(38), 0.5), 11, 95))
    if not any(crab.values()) and bm_plasma_cells < 60:
        crab["bone lesions"] = True  # every patient meets a myeloma-defining event
    burden = (
        float(np.clip(rng.lognormal(np.log(900), 0.8), 150, 12000))
        if isotype == "light chain"
        else float(np.clip(rng.lognormal(np.log(3.2), 0.45), 1.0, 9.0))
    )
    eligible = age < 70 and rng.random() < 0.9

    # Overall survival from R-ISS, age and era; death ends the course.
    median_years = {1: 10.0, 2: 7.0, 3: 3.8}[riss] * (0.7 if year < 2008 else 1.0)
    median_years *= 0.75 if age > 75 else 1.0
    survival = dt.timedelta(days=float(rng.lognormal(np.log(median_years * 365.25), 0.7)))
    death: dt.date | None = diagnosis + survival
    last_follow_up = FOLLOW_UP_END - _days(rng.uniform(0, 60))
    transferred = rng.random() < 0.12
    if transferred:
        last_follow_up = min(last_follow_up, diagnosis + _days(rng.uniform(180, 3000)))
    if death is not None and death > last_follow_up:
        death = None
    end = death or last_follow_up
    intensity = float(np.clip(rng.lognormal(0.0, 0.75), 0.15, 8.0))

    course = Course(
        patient_id=patient_id,
        sex=sex,
        birth_date=birth,
        diagnosis_date=diagnosis,
        isotype=isotype,
        light_chain=light_chain,
        iss=iss,
        riss=riss,
        ldh_high=ldh_high,
        del17p=del17p,
        t4_14=t4_14,
        t14_16=t14_16,
        gain1q=gain1q,
        crab=crab,
        bm_plasma_cells=bm_plasma_cells,
        transplant_eligible=eligible,
        lines=[],
        adverse_events=[],
        death_date=death,
        last_follow_up=last_follow_up,
        intensity=intensity,
        burden=burden,
        transferred_out=transferred,
    )
    _simulate_lines(rng, course, end)
    return course


def _available(year: int, setting: Setting) -> list[Regimen]:
    return [
        r
        for r in REGIMENS.values()
        if setting in r.settings and r.first_year <= year <= r.last_year
    ]


def _choose_regimen(
    rng: np.random.Generator, year: int, setting: Setting, refractory: set[str], used: set[str]
) -> Regimen:
    options = _available(year, setting)
    if not options:  # e.g. late relapse before the newest agents existed
        options = _available(year, Setting.RELAPSE) or [
            r for r in REGIMENS.values() if r.first_year <= year <= r.last_year
        ]
    weights = []
    for regimen in options:
        weight = 1.0 + 0.25 * (regimen.first_year - 2000) / 5  # newer regimens preferred
        if any(d in refractory for d in regimen.drugs if d not in ("dexamethasone", "prednisone")):
            weight *= 0.05  # rarely re-challenged with a drug the disease is refractory to
        if regimen.key in used:
            weight *= 0.1
        weights.append(weight)
    return options[int(rng.choice(len(options), p=np.asarray(weights) / sum(weights)))]


def _intended_response(rng: np.random.Generator, line: int, year: int, high_risk: bool) -> str:
    # Deeper responses in first line, in recent eras and in standard-risk disease.
    depth = 1.0 if line == 1 else max(0.35, 1.0 - 0.18 * (line - 1))
    depth *= 1.15 if year >= 2015 else 0.85 if year < 2008 else 1.0
    depth *= 0.8 if high_risk else 1.0
    weights = [0.10 * depth, 0.14 * depth, 0.26 * depth, 0.30, 0.08, 0.08, 0.04 / depth]
    return _pick(rng, list(RESPONSES), weights)


def _simulate_lines(rng: np.random.Generator, course: Course, end: dt.date) -> None:
    start = course.diagnosis_date + _days(rng.uniform(7, 24))
    refractory: set[str] = set()
    used: set[str] = set()
    number = 1
    while start < end - dt.timedelta(days=14) and number <= 9:
        year = start.year
        exposed = set().union(*(line.classes() for line in course.lines)) if course.lines else set()
        triple_exposed = {DrugClass.IMID, DrugClass.PI, DrugClass.ANTI_CD38} <= exposed
        if number == 1:
            setting = (
                Setting.INDUCTION_ELIGIBLE
                if course.transplant_eligible
                else Setting.INDUCTION_INELIGIBLE
            )
        elif triple_exposed and year >= 2020 and rng.random() < 0.7:
            setting = Setting.LATE_RELAPSE
        else:
            setting = Setting.RELAPSE
        regimen = _choose_regimen(rng, year, setting, refractory, used)
        used.add(regimen.key)
        response = _intended_response(rng, number, year, course.high_risk)
        if regimen.key in ("ide-cel", "cilta-cel"):
            response = _pick(rng, ["sCR", "CR", "VGPR", "PR"], [0.35, 0.2, 0.25, 0.2])

        # Progression-free interval by line, response depth and risk.
        median_months = [30.0, 16.0, 11.0, 8.0, 6.0, 5.0][min(number, 6) - 1]
        median_months *= {"sCR": 1.8, "CR": 1.5, "VGPR": 1.2, "PR": 1.0, "MR": 0.6}.get(
            response, 0.4
        )
        median_months *= 0.55 if course.high_risk else 1.0
        if number == 1 and course.transplant_eligible:
            median_months *= 1.4
        pfs = _days(max(45.0, rng.lognormal(np.log(median_months * 30.4), 0.6)))
        if response == "PD":
            pfs = _days(rng.uniform(21, 35))  # primary refractory: progressing at once
        progression: dt.date | None = start + pfs

        line = TherapyLine(
            number=number,
            regimen=regimen,
            start=start,
            end=start,
            ongoing=False,
            intended_response=response,
            progression=progression,
            end_reason="progression",
        )
        cycles_end = (
            start + _days(regimen.cycle_days * regimen.fixed_cycles)
            if regimen.fixed_cycles
            else None
        )
        if number == 1 and course.transplant_eligible and cycles_end is not None:
            line.asct_date = cycles_end + _days(rng.uniform(35, 70))
            if year >= 2010 or rng.random() < 0.3:
                line.maintenance = "lenalidomide" if year >= 2010 else "thalidomide"
                line.maintenance_start = line.asct_date + _days(rng.uniform(75, 110))
            cycles_end = None if line.maintenance else line.asct_date
        toxicity_stop = rng.random() < 0.08 and response not in ("PD",)

        assert progression is not None
        if cycles_end is not None and cycles_end < progression:
            line.end, line.end_reason = cycles_end, "completed"
        elif toxicity_stop:
            line.end = start + _days(min((progression - start).days * 0.5, rng.uniform(60, 200)))
            line.end_reason = "toxicity"
        else:
            line.end = progression
        if line.asct_date and line.asct_date >= progression:
            line.asct_date = None  # progressed before the transplant could happen
            line.maintenance = line.maintenance_start = None
        if line.maintenance_start and line.maintenance_start >= progression:
            line.maintenance = line.maintenance_start = None
            line.end = min(line.end, progression)
        if line.asct_date and line.asct_date >= end - dt.timedelta(days=30):
            # Follow-up ends around the transplant: it is not part of the record.
            line.asct_date = line.maintenance = line.maintenance_start = None

        if progression >= end:
            progression = None
            line.progression = None
            if line.end >= end or line.end_reason == "progression":
                line.end, line.ongoing = end, True
                line.end_reason = "death" if course.death_date else "ongoing"
        course.lines.append(line)
        _adverse_events(rng, course, line)

        if line.end_reason == "toxicity":
            # Switched after a short break, before progression.
            start = line.end + _days(rng.uniform(14, 35))
            line.progression = None
        elif progression is None:
            break
        else:
            if progression <= line.end + REFRACTORY_WINDOW:
                refractory.update(line.regimen.drugs)
            start = progression + _days(rng.uniform(10, 40))
        number += 1


_AE_RISKS: dict[str, tuple[tuple[str, float], ...]] = {
    "bortezomib": (("peripheral neuropathy", 0.30),),
    "thalidomide": (("peripheral neuropathy", 0.35), ("deep vein thrombosis", 0.08)),
    "lenalidomide": (("neutropenia", 0.20), ("deep vein thrombosis", 0.05)),
    "pomalidomide": (("neutropenia", 0.35),),
    "carfilzomib": (("heart failure", 0.06), ("hypertension", 0.12)),
    "daratumumab": (("infusion reaction", 0.30),),
    "isatuximab": (("infusion reaction", 0.30),),
    "belantamab": (("keratopathy", 0.60),),
    "ide-cel": (("CRS", 0.85), ("ICANS", 0.18), ("thrombocytopenia", 0.4)),
    "cilta-cel": (("CRS", 0.90), ("ICANS", 0.20), ("thrombocytopenia", 0.4)),
    "teclistamab": (("CRS", 0.65), ("ICANS", 0.10), ("infection", 0.45)),
    "elranatamab": (("CRS", 0.55), ("ICANS", 0.08), ("infection", 0.40)),
    "talquetamab": (("CRS", 0.60), ("ICANS", 0.10), ("dysgeusia", 0.50)),
    "melphalan": (("febrile neutropenia", 0.35), ("mucositis", 0.30)),
}
_ADMITTING = {"CRS", "ICANS", "infection", "pneumonia", "febrile neutropenia", "heart failure"}


def _adverse_events(rng: np.random.Generator, course: Course, line: TherapyLine) -> None:
    span = max(1, (line.end - line.start).days)
    for drug in line.drugs():
        for kind, risk in _AE_RISKS.get(drug, ()):
            if rng.random() >= risk:
                continue
            if kind in ("CRS", "ICANS"):
                offset = rng.uniform(1, 8)
            elif drug == "melphalan" and line.asct_date:
                offset = (line.asct_date - line.start).days + rng.uniform(3, 10)
            else:
                offset = 10 + rng.random() * max(min(span, 400) - 10, 1)
            date = line.start + _days(offset)
            if date >= course.end_date:
                continue
            grade = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.22, 0.08]))
            course.adverse_events.append(
                AdverseEvent(kind, grade, date, line.number, kind in _ADMITTING and grade >= 2)
            )
    if rng.random() < 0.18:  # infections happen on any line
        date = line.start + _days(rng.uniform(20, min(span, 500) + 20))
        if date < course.end_date:
            grade = int(rng.choice([2, 3, 4], p=[0.5, 0.4, 0.1]))
            course.adverse_events.append(AdverseEvent("pneumonia", grade, date, line.number, True))
    course.adverse_events.sort(key=lambda ae: (ae.date, ae.kind))
