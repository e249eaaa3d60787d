"""Specialist reports: bone marrow, FISH, imaging, tumour boards, therapy plans, ASCT, CAR-T.

Each function writes one or more documents through a :class:`PatientWriter` and records the gold
facts they state.
"""

from __future__ import annotations

import datetime as dt

from recordagent.sources.synthetic import boilerplate as bp
from recordagent.sources.synthetic import phrases as ph
from recordagent.sources.synthetic.letters import admission_pair
from recordagent.sources.synthetic.outcomes import LineOutcome
from recordagent.sources.synthetic.regimens import DRUGS
from recordagent.sources.synthetic.writing import PatientWriter

__all__ = [
    "car_t",
    "crs_sentences",
    "diagnosis_documents",
    "step_up_dosing",
    "therapy_plan",
    "transplant",
]


def diagnosis_documents(w: PatientWriter) -> None:
    """The work-up at diagnosis: marrow, FISH, imaging, tumour board, perhaps an admission."""
    c = w.course
    dx = c.diagnosis_date
    style = w.style()
    bm_day = dx
    w.add(
        bm_day,
        "bone marrow report",
        "Bone marrow aspirate and trephine biopsy",
        [
            "BONE MARROW ASPIRATE AND TREPHINE BIOPSY",
            f"Date of procedure: {w.d(bm_day, style)}",
            "Clinical details: suspected plasma cell neoplasm; "
            f"{w.choice(('paraprotein', 'abnormal FLC ratio', 'anaemia and bone pain'))}.",
            "",
            "MICROSCOPY",
            f"Hypercellular marrow with {c.bm_plasma_cells}% clonal plasma cells of all "
            "nucleated cells"
            + w.choice((".", ", in sheets.", ", interstitial and nodular infiltration.")),
            "",
            *bp.marrow_details(w.rng),
            "",
            "IMMUNOHISTOCHEMISTRY",
            f"CD138 positive, {c.light_chain}-restricted "
            f"({'κ' if c.light_chain == 'kappa' else 'λ'} light chain restriction).",
            "",
            "CONCLUSION",
            f"Plasma cell myeloma, {c.bm_plasma_cells}% plasma cells. "
            f"Diagnosis established {w.d(dx, style)}.",
        ],
        [
            ("bm_plasma_cells_at_diagnosis", None),
            ("diagnosis_date", None),
            ("light_chain", None),
        ],
    )
    cytogenetics_reports(w, dx + dt.timedelta(days=int(w.rng.integers(7, 21))))
    img_day = dx + dt.timedelta(days=int(w.rng.integers(1, 10)))
    modality = w.choice(
        ("whole-body low-dose CT", "MRI of the spine and pelvis", "PET-CT")
        if dx.year >= 2010
        else ("skeletal survey", "CT of the spine", "MRI of the spine")
    )
    lesions = c.crab["bone lesions"]
    finding = (
        f"Multiple {w.choice(ph.CRAB_FORMS['bone lesions'])} in the "
        f"{w.choice(('spine', 'pelvis and femora', 'skull and ribs', 'humeri'))}, largest "
        f"{int(w.rng.integers(8, 40))} mm."
        if lesions
        else "No lytic bone lesions. No evidence of osteolysis or fracture."
    )
    technique, other_findings = bp.imaging_details(w.rng, modality)
    w.add(
        img_day,
        "imaging report",
        f"{modality} - staging",
        [
            f"IMAGING REPORT: {modality.upper()}",
            f"Examination date: {w.d(img_day, w.style())}",
            "Indication: staging of newly diagnosed multiple myeloma.",
            *technique,
            "",
            "FINDINGS",
            finding,
            *other_findings,
            "",
            "IMPRESSION",
            "Osteolytic disease consistent with myeloma bone disease."
            if lesions
            else "No myeloma bone disease.",
        ],
        [("crab_bone_lesions", None)],
    )
    tumour_board_at_diagnosis(w, dx + dt.timedelta(days=int(w.rng.integers(3, 12))))
    if c.crab["hypercalcaemia"] or c.crab["renal impairment"]:
        admission_pair(
            w,
            dx - dt.timedelta(days=int(w.rng.integers(1, 4))),
            int(w.rng.integers(5, 14)),
            "hypercalcaemia and acute kidney injury"
            if c.crab["renal impairment"] and c.crab["hypercalcaemia"]
            else "hypercalcaemia"
            if c.crab["hypercalcaemia"]
            else "acute kidney injury",
            diagnosis=True,
        )


def cytogenetics_reports(w: PatientWriter, day: dt.date) -> None:
    """The FISH report; sometimes a preliminary one with an error, then a corrected one."""
    c = w.course
    truth = {"del17p": c.del17p, "t4_14": c.t4_14, "t14_16": c.t14_16, "gain1q": c.gain1q}
    wrong = None
    if w.rng.random() < 0.15:  # a preliminary report later corrected
        wrong = ph.pick(w.rng, tuple(truth))

    def result_lines(shown: dict[str, bool]) -> list[str]:
        out = []
        for key, positive in shown.items():
            name = w.choice(ph.CYTOGENETICS[key])
            verdict = w.choice(ph.POSITIVE if positive else ph.NEGATIVE)
            percent = f" in {int(w.rng.integers(20, 90))}% of nuclei" if positive else ""
            out.append(f"{name}: {verdict}{percent}")
        return out

    header = [
        "CYTOGENETICS / FISH ON CD138-SELECTED PLASMA CELLS",
        *bp.fish_method(w.rng),
        "Probes: TP53/CEP17, IGH/FGFR3, IGH/MAF, CDKN2C/CKS1B.",
        "",
        "RESULTS",
    ]
    if wrong is None:
        w.add(
            day,
            "pathology report",
            "FISH report",
            [*header, *result_lines(truth), "", f"Report date: {w.d(day, w.style())}"],
            [(key, None) for key in truth],
        )
        return
    shown = dict(truth)
    shown[wrong] = not truth[wrong]
    w.add(
        day,
        "pathology report",
        "FISH report (preliminary)",
        [*header, *result_lines(shown), "", "Preliminary report; final review pending."],
        [(key, None) for key in truth if key != wrong],
    )
    later = day + dt.timedelta(days=int(w.rng.integers(5, 25)))
    name = w.choice(ph.CYTOGENETICS[wrong])
    verdict = w.choice(ph.POSITIVE if truth[wrong] else ph.NEGATIVE)
    w.add(
        later,
        "pathology report",
        "FISH report - corrected",
        [
            f"CORRECTED REPORT (supersedes the preliminary FISH report of {w.d(day, w.style())})",
            "",
            f"On review the {name} result was misreported. Corrected result: {name}: {verdict}.",
            "All other results unchanged.",
        ],
        [(wrong, None)],
    )


def tumour_board_at_diagnosis(w: PatientWriter, day: dt.date) -> None:
    """The first board: diagnosis, staging, risk, transplant eligibility, first regimen."""
    c = w.course
    first = w.outcomes.lines[0] if w.outcomes.lines else None
    crab = [w.choice(ph.CRAB_FORMS[k]) for k, v in c.crab.items() if v]
    cyto = [
        w.choice(ph.CYTOGENETICS[k])
        for k, v in (
            ("del17p", c.del17p),
            ("t4_14", c.t4_14),
            ("t14_16", c.t14_16),
            ("gain1q", c.gain1q),
        )
        if v
    ]
    body = [
        "MULTIDISCIPLINARY TUMOUR BOARD - PLASMA CELL DISORDERS",
        f"Meeting date: {w.d(day, w.style())}",
        bp.tumour_board_panel(w.rng),
        "",
        "Question: initial treatment strategy.",
        "",
        "Comorbidities: " + ", ".join(w.comorbidities) + ".",
        f"Patient with newly diagnosed {w.isotype()} multiple myeloma "
        f"(diagnosis {w.d(c.diagnosis_date, w.style())}).",
        f"Staging: {w.choice(ph.ISS_FORMS[c.iss])}, {w.choice(ph.RISS_FORMS[c.riss])}"
        f"{', LDH elevated' if c.ldh_high else ''}.",
        "Myeloma-defining events: " + (", ".join(crab) if crab else "none (SLiM criteria)") + ".",
        "Cytogenetics: "
        + (", ".join(cyto) if cyto else "standard risk, no high-risk abnormality detected")
        + ".",
        "",
        "RECOMMENDATION",
    ]
    states: list[tuple[str, int | None]] = [
        ("isotype", None),
        ("iss_stage", None),
        ("riss_stage", None),
        ("transplant_eligible", None),
    ]
    if c.transplant_eligible:
        body.append("Fit for high-dose therapy: transplant-eligible.")
    else:
        body.append(
            "Not eligible for autologous transplant (age/comorbidity): transplant-ineligible."
        )
    if first is not None:
        body.append(f"Start {w.regimen_name(first)} as first-line therapy.")
    w.add(day, "tumour board protocol", "Tumour board - initial diagnosis", body, states)


def therapy_plan(w: PatientWriter, o: LineOutcome) -> None:
    """The plan that starts a line: regimen, line number, start, dosing."""
    line = o.line
    style = w.style()
    cycles = (
        f"{line.regimen.fixed_cycles} cycles"
        if line.regimen.fixed_cycles and line.regimen.fixed_cycles > 1
        else "until progression or intolerance"
    )
    drugs = ", ".join(w.choice(DRUGS[d].names) for d in line.regimen.drugs)
    body = [
        "THERAPY PLAN",
        f"Regimen: {w.regimen_name(o)} ({drugs})",
        f"Line of therapy: {w.choice(ph.line_forms(line.number))}",
        f"Start date: {w.d(line.start, style)}",
        f"Cycle length {line.regimen.cycle_days} days; planned duration: {cycles}.",
        "",
        "DOSING",
        *(f"- {bp.DOSING[d]}" for d in line.regimen.drugs),
        "Dose adjustments per renal function and blood counts; see protocol.",
        "",
        "MONITORING",
        "Blood count, creatinine and electrolytes before each cycle; myeloma panel (SPEP, "
        "serum free light chains) every cycle.",
    ]
    if line.asct_date:
        body.append("Followed by stem cell mobilisation and high-dose melphalan with ASCT.")
    body += ["", "Supportive care: " + "; ".join(w.meds[:3]) + "."]
    w.add(
        line.start,
        "therapy plan",
        f"Therapy plan - {line.regimen.name}",
        body,
        [("line_regimen", line.number), ("line_start", line.number)],
    )


def transplant(w: PatientWriter, o: LineOutcome) -> None:
    """Admission for ASCT, the transplant report, and the maintenance plan after it."""
    line = o.line
    assert line.asct_date is not None
    day = line.asct_date
    engraft = int(w.rng.integers(10, 16))
    style = w.style()
    w.add(
        day - dt.timedelta(days=2),
        "admission letter",
        "Admission for ASCT",
        [
            "ADMISSION",
            f"Admitted {w.d(day - dt.timedelta(days=2), style)} for "
            "high-dose melphalan 200 mg/m2 and autologous stem cell transplantation.",
            "History:",
            w.history(day - dt.timedelta(days=2)),
        ],
        [],
    )
    w.add(
        day + dt.timedelta(days=engraft),
        "transplant report",
        "Autologous stem cell transplantation",
        [
            "AUTOLOGOUS STEM CELL TRANSPLANTATION REPORT",
            f"Conditioning: melphalan {w.choice(('200', '140'))} mg/m2.",
            f"Stem cell reinfusion (day 0): {w.d(day, style)}; "
            f"{w.rng.uniform(2.5, 6.0):.1f} x10^6 CD34+/kg.",
            f"Neutrophil engraftment on day +{engraft}.",
            *bp.transplant_details(w.rng),
            "Complications: "
            + w.choice(
                (
                    "febrile neutropenia, treated with piperacillin-tazobactam",
                    "mucositis grade 2",
                    "none",
                )
            ),
        ],
        [("asct_date", None)],
    )
    if line.maintenance and line.maintenance_start:
        start = line.maintenance_start
        w.add(
            start,
            "therapy plan",
            "Maintenance therapy",
            [
                "THERAPY PLAN - MAINTENANCE",
                f"{w.choice(DRUGS[line.maintenance].names)} maintenance from "
                f"{w.d(start, w.style())} "
                f"({ph.relative(start, day, 'ASCT')}), continued until progression.",
            ],
            [],
        )


def crs_sentences(w: PatientWriter, line_number: int) -> list[str]:
    """CRS and ICANS after T-cell-redirecting therapy of a line (or their absence)."""
    events = [
        ae
        for ae in w.course.adverse_events
        if ae.line == line_number and ae.kind in ("CRS", "ICANS")
    ]
    crs = max((ae.grade for ae in events if ae.kind == "CRS"), default=0)
    icans = max((ae.grade for ae in events if ae.kind == "ICANS"), default=0)
    return [
        f"Cytokine release syndrome: CRS grade {crs} (ASTCT), treated with tocilizumab."
        if crs
        else "No cytokine release syndrome (CRS).",
        f"ICANS grade {icans}, dexamethasone given." if icans else "No ICANS / no neurotoxicity.",
    ]


def car_t(w: PatientWriter, o: LineOutcome) -> None:
    """The CAR-T report: product, infusion, CRS and ICANS."""
    line = o.line
    day = line.start
    w.add(
        day + dt.timedelta(days=int(w.rng.integers(10, 21))),
        "CAR-T report",
        f"CAR-T cell therapy - {line.regimen.name}",
        [
            "CAR-T CELL THERAPY REPORT",
            f"Product: {w.regimen_name(o)}",
            f"Lymphodepletion with fludarabine/cyclophosphamide; infusion on "
            f"{w.d(day, w.style())}.",
            *bp.car_t_details(w.rng),
            *crs_sentences(w, line.number),
        ],
        [("crs_grade", line.number)],
    )


def step_up_dosing(w: PatientWriter, o: LineOutcome) -> None:
    """Bispecific antibodies start in hospital with step-up doses."""
    stay = int(w.rng.integers(6, 11))
    style = w.style()
    day, out_day = o.line.start, o.line.start + dt.timedelta(days=stay)
    w.add(
        day,
        "admission letter",
        f"Admission - step-up dosing {o.line.regimen.name}",
        [
            "ADMISSION NOTE",
            f"Date of admission: {w.d(day, style)}",
            f"Elective admission for step-up dosing of {w.regimen_name(o)}.",
            "History:",
            w.history(day),
        ],
        [],
    )
    w.add(
        out_day,
        "discharge letter",
        f"Discharge - step-up dosing {o.line.regimen.name}",
        [
            "DISCHARGE LETTER",
            f"Admission {w.d(day, style)} to {w.d(out_day, style)} for step-up "
            f"dosing of {w.regimen_name(o)}; target dose reached.",
            *crs_sentences(w, o.line.number),
            "Continue weekly dosing as outpatient.",
        ],
        [("crs_grade", o.line.number)],
    )
