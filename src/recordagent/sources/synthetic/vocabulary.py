"""The synthetic cohort's vocabulary: the kinds of gold fact, and the analytes it measures.

The generator writes these names into a cohort (``gold/facts.parquet``, the bundle's lab rows);
the question layer's gold derivations read them back. They live apart from the generation code
so that a reader of a cohort depends on what the cohort contains, not on how it was simulated.
The other shared catalogues are :mod:`.regimens` (drugs, drug classes, regimens) and
:mod:`.imwg` (response categories and the IMWG response and progression rules).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANALYTES", "FACTS", "Analyte", "FactSpec"]


@dataclass(frozen=True)
class FactSpec:
    """A kind of gold fact."""

    name: str
    value_type: str  # date, category, boolean, number, count
    per_line: bool
    description: str
    unit: str | None = None


FACTS: dict[str, FactSpec] = {
    f.name: f
    for f in (
        FactSpec("diagnosis_date", "date", False, "Date multiple myeloma was diagnosed."),
        FactSpec("isotype", "category", False, "Heavy-chain isotype: IgG, IgA or light chain."),
        FactSpec("light_chain", "category", False, "Involved light chain: kappa or lambda."),
        FactSpec("iss_stage", "category", False, "International Staging System stage (I-III)."),
        FactSpec("riss_stage", "category", False, "Revised ISS stage (I-III)."),
        FactSpec("del17p", "boolean", False, "del(17p) detected by FISH."),
        FactSpec("t4_14", "boolean", False, "t(4;14) detected by FISH."),
        FactSpec("t14_16", "boolean", False, "t(14;16) detected by FISH."),
        FactSpec("gain1q", "boolean", False, "Gain or amplification of 1q detected by FISH."),
        FactSpec("crab_hypercalcaemia", "boolean", False, "Calcium > 11 mg/dL at diagnosis."),
        FactSpec("crab_renal_impairment", "boolean", False, "Creatinine > 2 mg/dL at diagnosis."),
        FactSpec("crab_anaemia", "boolean", False, "Haemoglobin < 10 g/dL at diagnosis."),
        FactSpec("crab_bone_lesions", "boolean", False, "Lytic bone lesions at diagnosis."),
        FactSpec(
            "bm_plasma_cells_at_diagnosis",
            "number",
            False,
            "Bone-marrow clonal plasma cells at diagnosis.",
            "%",
        ),
        FactSpec("transplant_eligible", "boolean", False, "Judged eligible for ASCT."),
        FactSpec("asct_date", "date", False, "Date of autologous stem cell transplantation."),
        FactSpec("number_of_lines", "count", False, "Lines of therapy started by the end."),
        FactSpec("line_regimen", "category", True, "Regimen of the line (canonical name)."),
        FactSpec("line_start", "date", True, "Start date of the line."),
        FactSpec("line_best_response", "category", True, "Best IMWG response to the line."),
        FactSpec(
            "line_best_response_date", "date", True, "First assessment showing the best response."
        ),
        FactSpec("line_progression_date", "date", True, "IMWG progression during the line."),
        FactSpec("first_progression_date", "date", False, "First IMWG progression."),
        FactSpec(
            "lenalidomide_refractory",
            "boolean",
            False,
            "Refractory to lenalidomide, as of the last progression.",
        ),
        FactSpec(
            "pi_refractory",
            "boolean",
            False,
            "Refractory to a proteasome inhibitor, as of the last progression.",
        ),
        FactSpec(
            "anti_cd38_refractory",
            "boolean",
            False,
            "Refractory to an anti-CD38 antibody, as of the last progression.",
        ),
        FactSpec(
            "triple_class_exposed",
            "boolean",
            False,
            "Exposed to an IMiD, a PI and an anti-CD38 antibody, as of the last progression.",
        ),
        FactSpec(
            "triple_class_refractory",
            "boolean",
            False,
            "Refractory to an IMiD, a PI and an anti-CD38 antibody, as of the last progression.",
        ),
        FactSpec(
            "crs_max_grade",
            "number",
            False,
            "Highest CRS grade after CAR-T or bispecific therapy (0: none).",
        ),
        FactSpec("death_date", "date", False, "Date of death."),
        FactSpec("mprotein_at_diagnosis", "number", False, "Serum M-protein at diagnosis.", "g/dL"),
        FactSpec("flc_ratio_at_diagnosis", "number", False, "Kappa/lambda ratio at diagnosis."),
        FactSpec("creatinine_at_diagnosis", "number", False, "Creatinine at diagnosis.", "mg/dL"),
        FactSpec("calcium_at_diagnosis", "number", False, "Calcium at diagnosis.", "mg/dL"),
        FactSpec("hemoglobin_at_diagnosis", "number", False, "Haemoglobin at diagnosis.", "g/dL"),
        FactSpec("albumin_at_diagnosis", "number", False, "Albumin at diagnosis.", "g/dL"),
        FactSpec("b2m_at_diagnosis", "number", False, "Beta-2 microglobulin at diagnosis.", "mg/L"),
        FactSpec("ldh_at_diagnosis", "number", False, "LDH at diagnosis.", "U/L"),
    )
}


@dataclass(frozen=True)
class Analyte:
    """A lab analyte as the bundle carries it."""

    key: str
    code: str  # LOINC where one exists
    name: str
    unit: str
    ref_low: float | None
    ref_high: float | None
    decimals: int


ANALYTES: dict[str, Analyte] = {
    a.key: a
    for a in (
        Analyte("mprotein", "33358-4", "M-protein", "g/dL", None, None, 2),
        Analyte("kappa", "36916-5", "Free kappa light chains", "mg/L", 3.3, 19.4, 1),
        Analyte("lambda", "33944-1", "Free lambda light chains", "mg/L", 5.7, 26.3, 1),
        Analyte("ratio", "48378-4", "Kappa/lambda FLC ratio", "ratio", 0.26, 1.65, 4),
        Analyte("igg", "2465-3", "IgG", "g/L", 7.0, 16.0, 1),
        Analyte("iga", "2458-8", "IgA", "g/L", 0.7, 4.0, 2),
        Analyte("igm", "2472-9", "IgM", "g/L", 0.4, 2.3, 2),
        Analyte("creatinine", "2160-0", "Creatinine", "mg/dL", 0.6, 1.2, 2),
        Analyte("egfr", "98979-8", "eGFR (CKD-EPI 2021)", "mL/min/1.73m2", 60.0, None, 0),
        Analyte("calcium", "17861-6", "Calcium", "mg/dL", 8.5, 10.5, 1),
        Analyte("albumin", "1751-7", "Albumin", "g/dL", 3.5, 5.0, 1),
        Analyte("hemoglobin", "718-7", "Hemoglobin", "g/dL", 12.0, 17.0, 1),
        Analyte("platelets", "777-3", "Platelets", "10^9/L", 150.0, 400.0, 0),
        Analyte("neutrophils", "751-8", "Neutrophils", "10^9/L", 1.8, 7.7, 2),
        Analyte("ldh", "2532-0", "LDH", "U/L", 135.0, 225.0, 0),
        Analyte("b2m", "1952-1", "Beta-2 microglobulin", "mg/L", 0.8, 2.4, 2),
        Analyte("bmpc", "BMPC", "Bone marrow plasma cells", "%", None, 5.0, 0),
    )
}
