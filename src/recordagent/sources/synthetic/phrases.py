"""Surface forms: the many ways documents write the same fact.

The renderer draws from these banks, and the cohort's consistency tests use them to check that a
document cited as evidence really states its fact. Variety is the point: no single pattern finds
every mention.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

__all__ = [
    "DATE_STYLES",
    "ISS_FORMS",
    "RESPONSE_FORMS",
    "format_date",
    "date_forms",
    "pick",
]

_MONTHS = (
    "January February March April May June July August September October November December"
).split()

DATE_STYLES = ("iso", "dotted", "us", "long", "short")


def format_date(day: dt.date, style: str) -> str:
    """One of the date formats found across hospital systems."""
    if style == "iso":
        return day.isoformat()
    if style == "dotted":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    if style == "us":
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    if style == "long":
        return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
    return f"{day.day} {_MONTHS[day.month - 1][:3]} {day.year}"


def date_forms(day: dt.date) -> tuple[str, ...]:
    """Every way a document may write ``day``."""
    return tuple(format_date(day, style) for style in DATE_STYLES)


def pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    """A uniformly drawn option (deterministic under the patient's generator)."""
    return options[int(rng.integers(len(options)))]


RESPONSE_FORMS: dict[str, tuple[str, ...]] = {
    "sCR": ("sCR", "stringent complete response", "stringent CR"),
    "CR": ("CR", "complete response", "complete remission"),
    "VGPR": ("VGPR", "very good partial response", "very good partial remission"),
    "PR": ("PR", "partial response", "partial remission"),
    "MR": ("MR", "minimal response", "minor response"),
    "SD": ("SD", "stable disease"),
    "PD": ("PD", "progressive disease", "primary refractory disease"),
}

ISS_FORMS: dict[int, tuple[str, ...]] = {
    1: ("ISS I", "ISS stage I", "ISS 1", "ISS-I"),
    2: ("ISS II", "ISS stage II", "ISS 2", "ISS-II"),
    3: ("ISS III", "ISS stage III", "ISS 3", "ISS-III"),
}
RISS_FORMS: dict[int, tuple[str, ...]] = {
    1: ("R-ISS I", "R-ISS stage I", "R-ISS 1", "R-ISS-I"),
    2: ("R-ISS II", "R-ISS stage II", "R-ISS 2", "R-ISS-II"),
    3: ("R-ISS III", "R-ISS stage III", "R-ISS 3", "R-ISS-III"),
}

ISOTYPE_FORMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("IgG", "kappa"): ("IgG kappa", "IgG-kappa", "IgG-κ", "IgG κ"),
    ("IgG", "lambda"): ("IgG lambda", "IgG-lambda", "IgG-λ", "IgG λ"),
    ("IgA", "kappa"): ("IgA kappa", "IgA-kappa", "IgA-κ", "IgA κ"),
    ("IgA", "lambda"): ("IgA lambda", "IgA-lambda", "IgA-λ", "IgA λ"),
    ("light chain", "kappa"): (
        "light-chain myeloma (kappa)",
        "kappa light chain myeloma",
        "Bence Jones kappa myeloma",
        "LCMM kappa",
    ),
    ("light chain", "lambda"): (
        "light-chain myeloma (lambda)",
        "lambda light chain myeloma",
        "Bence Jones lambda myeloma",
        "LCMM lambda",
    ),
}

CYTOGENETICS: dict[str, tuple[str, ...]] = {
    "del17p": ("del(17p)", "17p deletion", "TP53 deletion (del17p)"),
    "t4_14": ("t(4;14)", "translocation t(4;14)", "FGFR3/IGH fusion t(4;14)"),
    "t14_16": ("t(14;16)", "translocation t(14;16)", "IGH/MAF fusion t(14;16)"),
    "gain1q": ("gain(1q)", "1q gain", "+1q", "1q21 gain/amplification"),
}
POSITIVE = ("detected", "positive", "present")
NEGATIVE = ("not detected", "negative", "absent")

CRAB_FORMS: dict[str, tuple[str, ...]] = {
    "hypercalcaemia": ("hypercalcaemia", "hypercalcemia", "elevated calcium"),
    "renal impairment": ("renal impairment", "renal insufficiency", "cast nephropathy"),
    "anaemia": ("anaemia", "anemia"),
    "bone lesions": ("lytic bone lesions", "osteolytic lesions", "lytic lesions"),
}

LINE_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
)


def line_forms(number: int) -> tuple[str, ...]:
    """Ways to name the n-th line of therapy."""
    ordinal = LINE_ORDINALS[number - 1]
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number, "th")
    return (
        f"line {number}",
        f"{number}{suffix} line",
        f"{ordinal}-line",
        f"{ordinal} line",
        f"L{number}",
    )


def month_year(day: dt.date) -> str:
    """'03/2019' — how history lists often date things."""
    return f"{day.month:02d}/{day.year}"


def relative(later: dt.date, earlier: dt.date, anchor: str) -> str:
    """'3 months after ASCT' — relative dates as clinicians write them."""
    months = round((later - earlier).days / 30.4)
    if months < 2:
        weeks = max(1, round((later - earlier).days / 7))
        return f"{weeks} week{'s' if weeks != 1 else ''} after {anchor}"
    return f"{months} months after {anchor}"


MEDICATIONS = (
    "aciclovir 400 mg bid",
    "cotrimoxazole 960 mg Mon/Wed/Fri",
    "pantoprazole 40 mg od",
    "aspirin 100 mg od",
    "apixaban 2.5 mg bid",
    "zoledronic acid 4 mg iv q4w",
    "denosumab 120 mg sc q4w",
    "calcium/vitamin D 500 mg/400 IU od",
    "metoprolol 47.5 mg od",
    "ramipril 5 mg od",
    "metformin 1000 mg bid",
    "atorvastatin 20 mg od",
    "allopurinol 100 mg od",
    "pregabalin 75 mg bid",
    "oxycodone 10 mg bid",
    "macrogol 13 g od",
    "levothyroxine 75 µg od",
    "immunoglobulin substitution 30 g iv q4w",
    "letermovir 480 mg od",
    "posaconazole 300 mg od",
)

SOCIAL = (
    "Lives with spouse; retired teacher. Ex-smoker (20 pack-years, stopped 2004). Alcohol"
    " occasionally.",
    "Lives alone in a second-floor flat; daughter nearby helps with shopping. Never smoker.",
    "Married, two adult children. Works part-time as an accountant. No alcohol.",
    "Widowed, lives in assisted living. Walks with a cane. Non-smoker.",
    "Lives with partner. Former construction worker. Smokes 5 cigarettes/day.",
    "Retired farmer, lives with wife on the farm. Drinks 1-2 beers at weekends.",
)

COMORBIDITIES = (
    "arterial hypertension",
    "type 2 diabetes mellitus",
    "atrial fibrillation",
    "hypothyroidism",
    "COPD GOLD II",
    "coronary artery disease, PCI 2012",
    "osteoarthritis of both knees",
    "chronic kidney disease stage 3a",
    "benign prostatic hyperplasia",
    "gastro-oesophageal reflux disease",
)

EXAMINATION = (
    "General: alert and oriented, in no acute distress. Skin: no petechiae, no rash. "
    "Lymph nodes: no cervical, axillary or inguinal lymphadenopathy. Heart: regular rhythm, "
    "no murmur. Lungs: clear to auscultation bilaterally. Abdomen: soft, non-tender, no "
    "hepatosplenomegaly. Spine: no percussion tenderness. Extremities: no oedema.",
    "Good general condition, ECOG 1. Mucous membranes moist, no oral ulcers. Cardiopulmonary "
    "examination unremarkable. Abdomen soft, liver and spleen not palpable. Mild tenderness "
    "over the lower thoracic spine. Neurology: sensation reduced to light touch over both "
    "feet, reflexes preserved. No peripheral oedema.",
    "Reduced general condition, ECOG 2, weight 71 kg. Pale conjunctivae. Vesicular breath "
    "sounds, fine crackles at the right base. Heart sounds normal. Abdomen unremarkable. "
    "Pain on palpation of the left hip. Calves soft, no signs of thrombosis.",
    "Patient looks well. Temperature 36.8 °C, BP 132/78 mmHg, HR 76/min, SpO2 97% on room "
    "air. No lymphadenopathy. Chest clear. Abdomen benign. No focal neurological deficit. "
    "Port-a-cath site clean, no erythema.",
)

REVIEW_OF_SYSTEMS = (
    "Review of systems: no fever, chills or night sweats; no weight loss; no dyspnoea; no "
    "chest pain; bowel habits normal (occasional constipation on opioids); no urinary "
    "symptoms; no new bone pain; no bleeding or bruising; appetite good.",
    "Review of systems: fatigue after each cycle for 2-3 days, otherwise unremarkable. Denies "
    "infections since the last visit. No tingling or numbness reported. Sleep reasonable.",
    "Review of systems: intermittent diarrhoea (2-3 stools/day) in the week after treatment; "
    "mild insomnia on dexamethasone days; no fever; no cough; no headache.",
    "Review of systems positive for lower back pain (NRS 3/10) and mild exertional dyspnoea; "
    "negative for fever, night sweats, haemoptysis, melaena, visual disturbance.",
)

FAMILY = (
    "Family history: mother with breast cancer at 70; father died of myocardial infarction.",
    "Family history: no haematological malignancies known.",
    "Family history: brother with MGUS, under surveillance.",
    "Family history: unremarkable.",
)

ALLERGIES = (
    "Allergies: none known.",
    "Allergies: penicillin (rash).",
    "Allergies: sulfonamides (urticaria); contrast medium (mild, premedicate).",
    "Allergies: NKDA.",
)
