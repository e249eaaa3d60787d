"""Letters and notes: admissions and discharges, clinic visits, relapse notes, death summary."""

from __future__ import annotations

import datetime as dt

from recordagent.sources.synthetic import boilerplate as bp
from recordagent.sources.synthetic import phrases as ph
from recordagent.sources.synthetic.outcomes import LineOutcome
from recordagent.sources.synthetic.regimens import DRUGS
from recordagent.sources.synthetic.writing import PatientWriter, States

__all__ = ["admission_pair", "adverse_event_admissions", "death", "progression_note", "visit"]


def admission_pair(
    w: PatientWriter,
    day: dt.date,
    stay: int,
    reason: str,
    diagnosis: bool = False,
    states: States | None = None,
) -> None:
    """An admission letter and the discharge letter ``stay`` days later."""
    style = w.style()
    out_day = day + dt.timedelta(days=stay)
    meds = "\n".join(f"- {m}" for m in w.meds)
    w.add(
        day,
        "admission letter",
        f"Admission - {reason}",
        [
            "ADMISSION NOTE",
            f"Date of admission: {w.d(day, style)}",
            f"Reason for admission: {reason}.",
            "Known multiple myeloma."
            if not diagnosis
            else "Presentation with suspected multiple myeloma.",
            w.lab_sentence(day) if w.labs_on(day) else "",
            "History:",
            w.history(day),
            "",
            w.choice(ph.REVIEW_OF_SYSTEMS),
            "",
            "Examination: " + w.choice(ph.EXAMINATION),
            "",
            "Medication on admission:",
            meds,
            w.allergies,
            "Social history: " + w.social,
            w.family,
        ],
        [],
    )
    w.add(
        out_day,
        "discharge letter",
        f"Discharge - {reason}",
        [
            "DISCHARGE LETTER",
            f"Admission {w.d(day, style)} to {w.d(out_day, style)}.",
            f"Diagnosis: {reason}; {w.isotype()} multiple myeloma.",
            "",
            "HISTORY",
            w.history(out_day),
            "",
            "COURSE",
            _hospital_course(w, reason),
            "",
            "Comorbidities: " + ", ".join(w.comorbidities) + ".",
            "Discharge medication:",
            meds,
            "",
            *bp.discharge_advice(w.rng),
        ],
        states or [],
    )


def _hospital_course(w: PatientWriter, reason: str) -> str:
    if "calcaemia" in reason or "kidney" in reason:
        return (
            "Treated with intravenous isotonic fluids, zoledronic acid (dose-adjusted) and "
            "dexamethasone; calcium and creatinine improving, urine output adequate. "
            + w.choice(("Nephrology consulted.", "No dialysis required.", ""))
        )
    if any(word in reason for word in ("pneumonia", "infection", "neutropenia")):
        return (
            "Blood cultures taken; empirical "
            + w.choice(("piperacillin-tazobactam", "meropenem", "ceftriaxone"))
            + " started, switched to oral therapy after defervescence. Chest X-ray "
            + w.choice(("showed a right lower lobe infiltrate.", "without infiltrates."))
            + " Afebrile at discharge."
        )
    return w.choice(
        (
            "Treated as per protocol; stable at discharge.",
            "Symptomatic treatment; uneventful recovery.",
            "Monitored on the ward; no further complications.",
        )
    )


def adverse_event_admissions(w: PatientWriter) -> None:
    """Admissions for adverse events (CRS and ICANS are in the therapy's own reports)."""
    for ae in w.course.adverse_events:
        if not ae.admitted or ae.kind in ("CRS", "ICANS"):  # in the therapy's own reports
            continue
        stay = int(w.rng.integers(4, 15))
        if ae.date + dt.timedelta(days=stay) > w.course.end_date:
            continue
        label = {"CRS": "cytokine release syndrome", "ICANS": "ICANS"}.get(ae.kind, ae.kind)
        admission_pair(w, ae.date, stay, f"{label} grade {ae.grade}")


def _therapy_section(w: PatientWriter, day: dt.date) -> list[str]:
    """Current therapy with its dosing, while a line is running."""
    current = w.outcomes.line_on(day)
    if current is None or current.line.end < day:
        return []
    line = current.line
    if line.maintenance and line.maintenance_start and day >= line.maintenance_start:
        dosing = [bp.MAINTENANCE_DOSING[line.maintenance]]
    elif line.asct_date and day >= line.asct_date:
        return []
    else:
        dosing = [bp.DOSING[d] for d in line.regimen.drugs]
    return [
        "CURRENT THERAPY",
        w.current_therapy(day),
        *(f"- {text}" for text in dosing),
        "Supportive: " + "; ".join(w.meds[:2]) + ".",
        "",
    ]


def _examination_and_labs(w: PatientWriter, day: dt.date) -> list[str]:
    """The examination, the day's values and the paraprotein trend, as clinic notes write them."""
    return [
        "EXAMINATION",
        w.choice(ph.EXAMINATION),
        "",
        "LABORATORY",
        w.lab_sentence(day),
        w.trend(day),
        "",
    ]


def visit(w: PatientWriter, day: dt.date) -> None:
    """A clinic visit note: copied-forward history, noise sections, labs, assessment."""
    c = w.course
    o = w.outcomes.line_on(day)
    style = w.style()
    states: States = []
    # Headers give the diagnosis as a month or as a full date, as different clinics do.
    if w.rng.random() < 0.5:
        diagnosed = w.d(c.diagnosis_date, style)
        states.append(("diagnosis_date", None))
    else:
        diagnosed = ph.month_year(c.diagnosis_date)
    body = [
        w.choice(
            (
                "OUTPATIENT VISIT - MYELOMA CLINIC",
                "Haematology outpatient clinic",
                "CLINIC LETTER",
                "Follow-up visit, plasma cell disorders",
            )
        ),
        f"Date of visit: {w.d(day, style)}",
        "",
        f"Diagnosis: {w.isotype()} multiple myeloma since {diagnosed}",
        "",
        "ONCOLOGICAL HISTORY",
        w.history(day),
        "",
        *_therapy_section(w, day),
        "INTERVAL HISTORY",
    ]
    complaints = []
    neuropathic = o is not None and any(
        d in ("bortezomib", "thalidomide") for d in o.line.regimen.drugs
    )
    if neuropathic and o is not None:
        neuropathy = [
            ae
            for ae in c.adverse_events
            if ae.kind == "peripheral neuropathy" and ae.line == o.number and ae.date <= day
        ]
        complaints.append(
            f"Peripheral neuropathy grade {neuropathy[-1].grade} (feet), stable."
            if neuropathy
            else "No peripheral neuropathy."
        )
    complaints.append(
        w.choice(
            (
                "Feels well, ECOG 1. No fever, no night sweats.",
                "Mild fatigue. No bone pain. No infections since last visit.",
                "Back pain improved on current analgesia. No fever.",
                "Reports good appetite, weight stable. Denies new bone pain.",
            )
        )
    )
    body += [
        " ".join(complaints),
        w.choice(ph.REVIEW_OF_SYSTEMS),
        "",
        "COMORBIDITIES",
        *(f"- {m}" for m in w.comorbidities),
        "",
        "MEDICATION",
        *(f"- {m}" for m in w.meds),
        w.allergies,
        "",
        "SOCIAL HISTORY",
        w.social,
        w.family,
        "",
        *_examination_and_labs(w, day),
        "ASSESSMENT",
    ]
    if o is None:
        body.append("Awaiting start of therapy.")
    else:
        response = o.response
        if response.progression and response.progression <= day:
            body.append(
                f"Progression on {w.regimen_name(o)} "
                f"(confirmed {w.d(response.progression, style)}); next line "
                "being planned."
            )
        elif response.best_date and response.best_date <= day and response.best != "PD":
            body.append(
                f"On {w.regimen_name(o)} ({w.choice(ph.line_forms(o.number))}); best "
                f"response {w.choice(ph.RESPONSE_FORMS[response.best])}, first documented "
                f"{w.d(response.best_date, style)}."
            )
            states.append(("line_best_response", o.number))
        else:
            body.append(f"On {w.regimen_name(o)}; response assessment ongoing.")
    body += [
        "",
        "PLAN",
        w.choice(
            (
                f"Continue current therapy. Next visit in {w.rng.integers(2, 9)} weeks.",
                "Continue. Repeat myeloma panel before next cycle.",
                "Continue; bisphosphonate every 4 weeks. Review with results.",
            )
        ),
    ]
    w.add(day, "outpatient visit note", "Outpatient visit", body, states)


def progression_note(w: PatientWriter, o: LineOutcome) -> None:
    """The relapse visit (progression, refractoriness) and perhaps a relapse tumour board."""
    response = o.response
    assert response.progression is not None
    day = response.progression
    style = w.style()
    status = w.outcomes.status_on(day)
    refractory = [w.choice(DRUGS[d].names) for d in status.refractory_drugs]
    marker = "dFLC" if w.course.isotype == "light chain" else "M-protein"
    body = [
        "OUTPATIENT VISIT - RELAPSE",
        f"Date: {w.d(day, style)}",
        "",
        "ONCOLOGICAL HISTORY",
        w.history(day),
        "",
        "CURRENT COMPLAINTS",
        w.choice(ph.REVIEW_OF_SYSTEMS),
        "",
        "MEDICATION",
        *(f"- {m}" for m in w.meds),
        "",
        *_examination_and_labs(w, day),
        "ASSESSMENT",
        f"Biochemical progression of myeloma on {w.regimen_name(o)}: rising {marker} "
        f"meeting IMWG criteria, progression date {w.d(day, style)} "
        f"({w.choice(ph.line_forms(o.number))}).",
        "Refractory to: " + (", ".join(refractory) if refractory else "no agent so far") + ".",
        "Triple-class exposed: " + ("yes" if status.triple_class_exposed else "no") + ". "
        "Triple-class refractory: " + ("yes" if status.triple_class_refractory else "no") + ".",
        "",
        "IMAGING",
        w.choice(
            (
                "No evidence of new lytic lesions on low-dose CT.",
                "New lytic lesion in the left iliac bone.",
                "No new bone lesions.",
                "Imaging not repeated.",
            )
        ),
        "",
        "PLAN",
        "Discuss next line at tumour board.",
    ]
    states: States = [("line_progression_date", o.number)]
    if day == w.outcomes.progressions()[0]:
        states.append(("first_progression_date", None))
    states += [
        (k, None)
        for k in (
            "lenalidomide_refractory",
            "pi_refractory",
            "anti_cd38_refractory",
            "triple_class_exposed",
            "triple_class_refractory",
        )
    ]
    w.add(day, "outpatient visit note", "Relapse visit", body, states)
    if o.number < len(w.outcomes.lines) and w.rng.random() < 0.6:
        nxt = w.outcomes.lines[o.number]
        board = day + dt.timedelta(days=max(1, (nxt.line.start - day).days // 2))
        w.add(
            board,
            "tumour board protocol",
            "Tumour board - relapse",
            [
                "MULTIDISCIPLINARY TUMOUR BOARD - RELAPSE",
                f"Meeting date: {w.d(board, w.style())}",
                bp.tumour_board_panel(w.rng),
                "",
                f"{w.isotype()} multiple myeloma, relapse after "
                f"{o.number} line{'s' if o.number > 1 else ''} of therapy.",
                "History:",
                w.history(board),
                "Refractory to: " + (", ".join(refractory) or "none") + ".",
                f"Recommendation: {w.regimen_name(nxt)}.",
            ],
            [],
        )


def death(w: PatientWriter) -> None:
    """The death summary."""
    c = w.course
    assert c.death_date is not None
    day = c.death_date
    cause = w.choice(
        (
            "progressive multiple myeloma",
            "pneumonia with sepsis",
            "cardiac failure",
            "multi-organ failure in refractory myeloma",
        )
    )
    w.add(
        day,
        "discharge letter",
        "Death summary",
        [
            "DEATH SUMMARY",
            f"The patient died on {w.d(day, w.style())}.",
            f"Cause of death: {cause}.",
            f"Underlying disease: {w.isotype()} multiple myeloma, diagnosed "
            f"{ph.month_year(c.diagnosis_date)}.",
        ],
        [("death_date", None)],
    )
