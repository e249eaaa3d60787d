"""Clinical documents of one simulated patient, rendered from the observed course.

Documents are hard the way real ones are: facts are spread over many documents and written in
varied forms (synonyms, abbreviations, five date formats, numbers in prose); visit notes copy
their history forward, so older statements reappear after they stopped being true; a FISH report
may be corrected by a later one; findings are negated ("no evidence of new lytic lesions"); and
medication lists and social history add noise. Each document records which gold facts it states
explicitly, so evidence can be audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from recordagent.sources.synthetic import phrases as ph
from recordagent.sources.synthetic.course import Course
from recordagent.sources.synthetic.labs import PatientLabs
from recordagent.sources.synthetic.outcomes import LineOutcome, Outcomes
from recordagent.sources.synthetic.regimens import DRUGS, DrugClass

__all__ = ["DOCUMENT_TYPES", "Doc", "render_documents"]

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


@dataclass
class Doc:
    """A rendered document and the facts it states."""

    date: dt.date
    type: str
    title: str
    text: str
    states: list[tuple[str, int | None]] = field(default_factory=list)


class _Writer:
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
        self._history_copy: str | None = None
        self._labs_by_day: dict[dt.date, dict[str, tuple[float | None, str | None, str]]] = {}
        for time, code, value, text, unit in labs.frame.select(
            "time", "analyte_code", "value_num", "value_text", "unit"
        ).iter_rows():
            self._labs_by_day.setdefault(time.date(), {})[code] = (value, text, unit)

    # -- helpers ---------------------------------------------------------------------------

    def style(self) -> str:
        return self.house_style if self.rng.random() < 0.6 else ph.pick(self.rng, ph.DATE_STYLES)

    def d(self, day: dt.date, style: str) -> str:
        return ph.format_date(day, style)

    def choice(self, options: tuple[str, ...] | list[str]) -> str:
        return ph.pick(self.rng, options)

    def isotype(self) -> str:
        return self.choice(ph.ISOTYPE_FORMS[(self.course.isotype, self.course.light_chain)])

    def regimen_name(self, outcome: LineOutcome) -> str:
        return self.choice(outcome.line.regimen.names)

    def add(
        self,
        day: dt.date,
        kind: str,
        title: str,
        body: list[str],
        states: list[tuple[str, int | None]],
    ) -> None:
        self.docs.append(Doc(day, kind, title, "\n".join(body).strip() + "\n", states))

    def labs_on(self, day: dt.date) -> dict[str, tuple[float | None, str | None, str]]:
        return self._labs_by_day.get(day, {})

    def lab_sentence(self, day: dt.date) -> str:
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
            parts.append(f"{label} {text}" if value is None else f"{label} {value:g} {unit}")
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

    # -- history (copied forward) ----------------------------------------------------------

    def history(self, day: dt.date) -> str:
        if self._history_copy is not None and self.rng.random() < 0.35:
            return self._history_copy  # copy-forward: may be out of date
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
        current = self.outcomes.line_on(day)
        if current is not None and current.line.end >= day:
            lines.append(f"Currently on {self.regimen_name(current)}.")
        block = "\n".join(lines)
        self._history_copy = block
        return block

    # -- document kinds --------------------------------------------------------------------

    def diagnosis_documents(self) -> None:
        c = self.course
        dx = c.diagnosis_date
        style = self.style()
        bm_day = dx
        self.add(
            bm_day,
            "bone marrow report",
            "Bone marrow aspirate and trephine biopsy",
            [
                "BONE MARROW ASPIRATE AND TREPHINE BIOPSY",
                f"Date of procedure: {self.d(bm_day, style)}",
                "Clinical details: suspected plasma cell neoplasm; "
                f"{self.choice(('paraprotein', 'abnormal FLC ratio', 'anaemia and bone pain'))}.",
                "",
                "MICROSCOPY",
                f"Hypercellular marrow with {c.bm_plasma_cells}% clonal plasma cells of all "
                "nucleated cells"
                + self.choice((".", ", in sheets.", ", interstitial and nodular infiltration.")),
                "",
                "IMMUNOHISTOCHEMISTRY",
                f"CD138 positive, {c.light_chain}-restricted "
                f"({'κ' if c.light_chain == 'kappa' else 'λ'} light chain restriction).",
                "",
                "CONCLUSION",
                f"Plasma cell myeloma, {c.bm_plasma_cells}% plasma cells. "
                f"Diagnosis established {self.d(dx, style)}.",
            ],
            [
                ("bm_plasma_cells_at_diagnosis", None),
                ("diagnosis_date", None),
                ("light_chain", None),
            ],
        )
        self.cytogenetics_reports(dx + dt.timedelta(days=int(self.rng.integers(7, 21))))
        img_day = dx + dt.timedelta(days=int(self.rng.integers(1, 10)))
        modality = self.choice(
            ("whole-body low-dose CT", "MRI of the spine and pelvis", "PET-CT")
            if dx.year >= 2010
            else ("skeletal survey", "CT of the spine", "MRI of the spine")
        )
        lesions = c.crab["bone lesions"]
        finding = (
            f"Multiple {self.choice(ph.CRAB_FORMS['bone lesions'])} in the "
            f"{self.choice(('spine', 'pelvis and femora', 'skull and ribs', 'humeri'))}, largest "
            f"{int(self.rng.integers(8, 40))} mm."
            if lesions
            else "No lytic bone lesions. No evidence of osteolysis or fracture."
        )
        self.add(
            img_day,
            "imaging report",
            f"{modality} - staging",
            [
                f"IMAGING REPORT: {modality.upper()}",
                f"Examination date: {self.d(img_day, self.style())}",
                "Indication: staging of newly diagnosed multiple myeloma.",
                "",
                "FINDINGS",
                finding,
                "",
                "IMPRESSION",
                "Osteolytic disease consistent with myeloma bone disease."
                if lesions
                else "No myeloma bone disease.",
            ],
            [("crab_bone_lesions", None)],
        )
        self.tumour_board_at_diagnosis(dx + dt.timedelta(days=int(self.rng.integers(3, 12))))
        if c.crab["hypercalcaemia"] or c.crab["renal impairment"]:
            self.admission_pair(
                dx - dt.timedelta(days=int(self.rng.integers(1, 4))),
                int(self.rng.integers(5, 14)),
                "hypercalcaemia and acute kidney injury"
                if c.crab["renal impairment"] and c.crab["hypercalcaemia"]
                else "hypercalcaemia"
                if c.crab["hypercalcaemia"]
                else "acute kidney injury",
                diagnosis=True,
            )

    def cytogenetics_reports(self, day: dt.date) -> None:
        c = self.course
        truth = {"del17p": c.del17p, "t4_14": c.t4_14, "t14_16": c.t14_16, "gain1q": c.gain1q}
        wrong = None
        if self.rng.random() < 0.15:  # a preliminary report later corrected
            wrong = ph.pick(self.rng, tuple(truth))

        def result_lines(shown: dict[str, bool]) -> list[str]:
            out = []
            for key, positive in shown.items():
                name = self.choice(ph.CYTOGENETICS[key])
                verdict = self.choice(ph.POSITIVE if positive else ph.NEGATIVE)
                percent = f" in {int(self.rng.integers(20, 90))}% of nuclei" if positive else ""
                out.append(f"{name}: {verdict}{percent}")
            return out

        header = [
            "CYTOGENETICS / FISH ON CD138-SELECTED PLASMA CELLS",
            "Probes: TP53/CEP17, IGH/FGFR3, IGH/MAF, CDKN2C/CKS1B.",
            "",
            "RESULTS",
        ]
        if wrong is None:
            self.add(
                day,
                "pathology report",
                "FISH report",
                [*header, *result_lines(truth), "", f"Report date: {self.d(day, self.style())}"],
                [(key, None) for key in truth],
            )
            return
        shown = dict(truth)
        shown[wrong] = not truth[wrong]
        self.add(
            day,
            "pathology report",
            "FISH report (preliminary)",
            [*header, *result_lines(shown), "", "Preliminary report; final review pending."],
            [(key, None) for key in truth if key != wrong],
        )
        later = day + dt.timedelta(days=int(self.rng.integers(5, 25)))
        name = self.choice(ph.CYTOGENETICS[wrong])
        verdict = self.choice(ph.POSITIVE if truth[wrong] else ph.NEGATIVE)
        self.add(
            later,
            "pathology report",
            "FISH report - corrected",
            [
                "CORRECTED REPORT (supersedes the preliminary FISH report of "
                f"{self.d(day, self.style())})",
                "",
                f"On review the {name} result was misreported. Corrected result: "
                f"{name}: {verdict}.",
                "All other results unchanged.",
            ],
            [(wrong, None)],
        )

    def tumour_board_at_diagnosis(self, day: dt.date) -> None:
        c = self.course
        first = self.outcomes.lines[0] if self.outcomes.lines else None
        crab = [self.choice(ph.CRAB_FORMS[k]) for k, v in c.crab.items() if v]
        cyto = [
            self.choice(ph.CYTOGENETICS[k])
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
            f"Meeting date: {self.d(day, self.style())}",
            "",
            f"Patient with newly diagnosed {self.isotype()} multiple myeloma "
            f"(diagnosis {self.d(c.diagnosis_date, self.style())}).",
            f"Staging: {self.choice(ph.ISS_FORMS[c.iss])}, {self.choice(ph.RISS_FORMS[c.riss])}"
            f"{', LDH elevated' if c.ldh_high else ''}.",
            "Myeloma-defining events: "
            + (", ".join(crab) if crab else "none (SLiM criteria)")
            + ".",
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
            body.append(f"Start {self.regimen_name(first)} as first-line therapy.")
        self.add(day, "tumour board protocol", "Tumour board - initial diagnosis", body, states)

    def therapy_plan(self, o: LineOutcome) -> None:
        line = o.line
        style = self.style()
        cycles = (
            f"{line.regimen.fixed_cycles} cycles"
            if line.regimen.fixed_cycles and line.regimen.fixed_cycles > 1
            else "until progression or intolerance"
        )
        drugs = ", ".join(self.choice(DRUGS[d].names) for d in line.regimen.drugs)
        body = [
            "THERAPY PLAN",
            f"Regimen: {self.regimen_name(o)} ({drugs})",
            f"Line of therapy: {self.choice(ph.line_forms(line.number))}",
            f"Start date: {self.d(line.start, style)}",
            f"Cycle length {line.regimen.cycle_days} days; planned duration: {cycles}.",
        ]
        if line.asct_date:
            body.append("Followed by stem cell mobilisation and high-dose melphalan with ASCT.")
        body += ["", "Supportive care: " + "; ".join(self.meds[:3]) + "."]
        self.add(
            line.start,
            "therapy plan",
            f"Therapy plan - {line.regimen.name}",
            body,
            [("line_regimen", line.number), ("line_start", line.number)],
        )

    def transplant(self, o: LineOutcome) -> None:
        line = o.line
        assert line.asct_date is not None
        day = line.asct_date
        engraft = int(self.rng.integers(10, 16))
        style = self.style()
        self.add(
            day - dt.timedelta(days=2),
            "admission letter",
            "Admission for ASCT",
            [
                "ADMISSION",
                f"Admitted {self.d(day - dt.timedelta(days=2), style)} for "
                "high-dose melphalan 200 mg/m2 and autologous stem cell transplantation.",
                "History:",
                self.history(day),
            ],
            [],
        )
        self.add(
            day + dt.timedelta(days=engraft),
            "transplant report",
            "Autologous stem cell transplantation",
            [
                "AUTOLOGOUS STEM CELL TRANSPLANTATION REPORT",
                f"Conditioning: melphalan {self.choice(('200', '140'))} mg/m2.",
                f"Stem cell reinfusion (day 0): {self.d(day, style)}; "
                f"{self.rng.uniform(2.5, 6.0):.1f} x10^6 CD34+/kg.",
                f"Neutrophil engraftment on day +{engraft}.",
                "Complications: "
                + self.choice(
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
            self.add(
                start,
                "therapy plan",
                "Maintenance therapy",
                [
                    "THERAPY PLAN - MAINTENANCE",
                    f"{self.choice(DRUGS[line.maintenance].names)} maintenance from "
                    f"{self.d(start, self.style())} "
                    f"({ph.relative(start, day, 'ASCT')}), continued until progression.",
                ],
                [],
            )

    def _crs_sentences(self, line_number: int) -> list[str]:
        events = [
            ae
            for ae in self.course.adverse_events
            if ae.line == line_number and ae.kind in ("CRS", "ICANS")
        ]
        crs = max((ae.grade for ae in events if ae.kind == "CRS"), default=0)
        icans = max((ae.grade for ae in events if ae.kind == "ICANS"), default=0)
        return [
            f"Cytokine release syndrome: CRS grade {crs} (ASTCT), treated with tocilizumab."
            if crs
            else "No cytokine release syndrome (CRS).",
            f"ICANS grade {icans}, dexamethasone given."
            if icans
            else "No ICANS / no neurotoxicity.",
        ]

    def car_t(self, o: LineOutcome) -> None:
        line = o.line
        day = line.start
        self.add(
            day + dt.timedelta(days=int(self.rng.integers(10, 21))),
            "CAR-T report",
            f"CAR-T cell therapy - {line.regimen.name}",
            [
                "CAR-T CELL THERAPY REPORT",
                f"Product: {self.regimen_name(o)}",
                f"Lymphodepletion with fludarabine/cyclophosphamide; infusion on "
                f"{self.d(day, self.style())}.",
                *self._crs_sentences(line.number),
            ],
            [("crs_grade", line.number)],
        )

    def step_up_dosing(self, o: LineOutcome) -> None:
        """Bispecific antibodies start in hospital with step-up doses."""
        stay = int(self.rng.integers(6, 11))
        style = self.style()
        day, out_day = o.line.start, o.line.start + dt.timedelta(days=stay)
        self.add(
            day,
            "admission letter",
            f"Admission - step-up dosing {o.line.regimen.name}",
            [
                "ADMISSION NOTE",
                f"Date of admission: {self.d(day, style)}",
                f"Elective admission for step-up dosing of {self.regimen_name(o)}.",
                "History:",
                self.history(day),
            ],
            [],
        )
        self.add(
            out_day,
            "discharge letter",
            f"Discharge - step-up dosing {o.line.regimen.name}",
            [
                "DISCHARGE LETTER",
                f"Admission {self.d(day, style)} to {self.d(out_day, style)} for step-up "
                f"dosing of {self.regimen_name(o)}; target dose reached.",
                *self._crs_sentences(o.line.number),
                "Continue weekly dosing as outpatient.",
            ],
            [("crs_grade", o.line.number)],
        )

    def admission_pair(
        self,
        day: dt.date,
        stay: int,
        reason: str,
        diagnosis: bool = False,
        states: list[tuple[str, int | None]] | None = None,
    ) -> None:
        style = self.style()
        out_day = day + dt.timedelta(days=stay)
        meds = "\n".join(f"- {m}" for m in self.meds)
        self.add(
            day,
            "admission letter",
            f"Admission - {reason}",
            [
                "ADMISSION NOTE",
                f"Date of admission: {self.d(day, style)}",
                f"Reason for admission: {reason}.",
                "Known multiple myeloma."
                if not diagnosis
                else "Presentation with suspected multiple myeloma.",
                self.lab_sentence(day) if self.labs_on(day) else "",
                "History:",
                self.history(day),
                "",
                self.choice(ph.REVIEW_OF_SYSTEMS),
                "",
                "Examination: " + self.choice(ph.EXAMINATION),
                "",
                "Medication on admission:",
                meds,
                self.allergies,
                "Social history: " + self.social,
                self.family,
            ],
            [],
        )
        self.add(
            out_day,
            "discharge letter",
            f"Discharge - {reason}",
            [
                "DISCHARGE LETTER",
                f"Admission {self.d(day, style)} to {self.d(out_day, style)}.",
                f"Diagnosis: {reason}; {self.isotype()} multiple myeloma.",
                "Course: "
                + self.choice(
                    (
                        "treated with iv fluids and bisphosphonate, improving.",
                        "responded to antibiotic therapy, afebrile at discharge.",
                        "uneventful recovery.",
                        "treated as per protocol; stable at discharge.",
                    )
                ),
                "Comorbidities: " + ", ".join(self.comorbidities) + ".",
                "Discharge medication:",
                meds,
            ],
            states or [],
        )

    def adverse_event_admissions(self) -> None:
        for ae in self.course.adverse_events:
            if not ae.admitted or ae.kind in ("CRS", "ICANS"):  # in the therapy's own reports
                continue
            stay = int(self.rng.integers(4, 15))
            if ae.date + dt.timedelta(days=stay) > self.course.end_date:
                continue
            label = {"CRS": "cytokine release syndrome", "ICANS": "ICANS"}.get(ae.kind, ae.kind)
            self.admission_pair(ae.date, stay, f"{label} grade {ae.grade}")

    def visit(self, day: dt.date) -> None:
        c = self.course
        o = self.outcomes.line_on(day)
        style = self.style()
        states: list[tuple[str, int | None]] = []
        body = [
            self.choice(
                (
                    "OUTPATIENT VISIT - MYELOMA CLINIC",
                    "Haematology outpatient clinic",
                    "CLINIC LETTER",
                    "Follow-up visit, plasma cell disorders",
                )
            ),
            f"Date of visit: {self.d(day, style)}",
            "",
            f"Diagnosis: {self.isotype()} multiple myeloma since {ph.month_year(c.diagnosis_date)}",
            "",
            "ONCOLOGICAL HISTORY",
            self.history(day),
            "",
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
            self.choice(
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
            self.choice(ph.REVIEW_OF_SYSTEMS),
            "",
            "COMORBIDITIES",
            *(f"- {m}" for m in self.comorbidities),
            "",
            "MEDICATION",
            *(f"- {m}" for m in self.meds),
            self.allergies,
            "",
            "SOCIAL HISTORY",
            self.social,
            self.family,
            "",
            "EXAMINATION",
            self.choice(ph.EXAMINATION),
            "",
            "LABORATORY",
            self.lab_sentence(day),
            self.trend(day),
            "",
            "ASSESSMENT",
        ]
        if o is None:
            body.append("Awaiting start of therapy.")
        else:
            response = o.response
            if response.progression and response.progression <= day:
                body.append(
                    f"Progression on {self.regimen_name(o)} "
                    f"(confirmed {self.d(response.progression, style)}); next line "
                    "being planned."
                )
            elif response.best_date and response.best_date <= day and response.best != "PD":
                body.append(
                    f"On {self.regimen_name(o)} ({self.choice(ph.line_forms(o.number))}); best "
                    f"response {self.choice(ph.RESPONSE_FORMS[response.best])}, first documented "
                    f"{self.d(response.best_date, style)}."
                )
                states.append(("line_best_response", o.number))
            else:
                body.append(f"On {self.regimen_name(o)}; response assessment ongoing.")
        body += [
            "",
            "PLAN",
            self.choice(
                (
                    f"Continue current therapy. Next visit in {self.rng.integers(2, 9)} weeks.",
                    "Continue. Repeat myeloma panel before next cycle.",
                    "Continue; bisphosphonate every 4 weeks. Review with results.",
                )
            ),
        ]
        self.add(day, "outpatient visit note", "Outpatient visit", body, states)

    def progression_note(self, o: LineOutcome) -> None:
        response = o.response
        assert response.progression is not None
        day = response.progression
        style = self.style()
        status = self.outcomes.status_on(day)
        refractory = [self.choice(DRUGS[d].names) for d in status.refractory_drugs]
        marker = "dFLC" if self.course.isotype == "light chain" else "M-protein"
        body = [
            "OUTPATIENT VISIT - RELAPSE",
            f"Date: {self.d(day, style)}",
            "",
            "ONCOLOGICAL HISTORY",
            self.history(day),
            "",
            "ASSESSMENT",
            f"Biochemical progression of myeloma on {self.regimen_name(o)}: rising {marker} "
            f"meeting IMWG criteria, progression date {self.d(day, style)} "
            f"({self.choice(ph.line_forms(o.number))}).",
            "Refractory to: " + (", ".join(refractory) if refractory else "no agent so far") + ".",
            "Triple-class exposed: " + ("yes" if status.triple_class_exposed else "no") + ". "
            "Triple-class refractory: " + ("yes" if status.triple_class_refractory else "no") + ".",
            "",
            "IMAGING",
            self.choice(
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
        states: list[tuple[str, int | None]] = [("line_progression_date", o.number)]
        if day == self.outcomes.progressions()[0]:
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
        self.add(day, "outpatient visit note", "Relapse visit", body, states)
        if o.number < len(self.outcomes.lines) and self.rng.random() < 0.6:
            nxt = self.outcomes.lines[o.number]
            board = day + dt.timedelta(days=max(1, (nxt.line.start - day).days // 2))
            self.add(
                board,
                "tumour board protocol",
                "Tumour board - relapse",
                [
                    "MULTIDISCIPLINARY TUMOUR BOARD - RELAPSE",
                    f"Meeting date: {self.d(board, self.style())}",
                    f"{self.isotype()} multiple myeloma, relapse after "
                    f"{o.number} line{'s' if o.number > 1 else ''} of therapy.",
                    "History:",
                    self.history(board),
                    "Refractory to: " + (", ".join(refractory) or "none") + ".",
                    f"Recommendation: {self.regimen_name(nxt)}.",
                ],
                [],
            )

    def death(self) -> None:
        c = self.course
        assert c.death_date is not None
        day = c.death_date
        cause = self.choice(
            (
                "progressive multiple myeloma",
                "pneumonia with sepsis",
                "cardiac failure",
                "multi-organ failure in refractory myeloma",
            )
        )
        self.add(
            day,
            "discharge letter",
            "Death summary",
            [
                "DEATH SUMMARY",
                f"The patient died on {self.d(day, self.style())}.",
                f"Cause of death: {cause}.",
                f"Underlying disease: {self.isotype()} multiple myeloma, diagnosed "
                f"{ph.month_year(c.diagnosis_date)}.",
            ],
            [("death_date", None)],
        )

    def render(self, visit_days: list[dt.date]) -> list[Doc]:
        self.diagnosis_documents()
        for o in self.outcomes.lines:
            self.therapy_plan(o)
            if o.line.asct_date:
                self.transplant(o)
            if DrugClass.CAR_T in o.line.classes():
                self.car_t(o)
            elif DrugClass.BISPECIFIC in o.line.classes():
                self.step_up_dosing(o)
            if o.response.progression:
                self.progression_note(o)
        self.adverse_event_admissions()
        for day in visit_days:
            self.visit(day)
        if self.course.death_date:
            self.death()
        end = self.course.end_date
        kept = [doc for doc in self.docs if doc.date <= end]
        kept.sort(key=lambda doc: (doc.date, DOCUMENT_TYPES.index(doc.type), doc.title))
        return kept


def render_documents(
    rng: np.random.Generator,
    course: Course,
    labs: PatientLabs,
    outcomes: Outcomes,
    visit_days: list[dt.date],
) -> list[Doc]:
    """Every document of the patient, in date order."""
    return _Writer(rng, course, labs, outcomes).render(visit_days)
