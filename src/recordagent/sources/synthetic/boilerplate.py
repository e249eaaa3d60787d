"""The parts of clinical documents that carry no gold fact but make up most of their length.

Letterheads, signatures, dosing schedules, techniques and normal findings: real documents are
mostly this, and a reader (or a retriever) has to get past it to the facts. Nothing here may
state or contradict a gold fact.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from recordagent.sources.synthetic.phrases import format_date, pick

__all__ = [
    "DOSING",
    "MAINTENANCE_DOSING",
    "discharge_advice",
    "fish_method",
    "imaging_details",
    "letterhead",
    "marrow_details",
    "signature",
    "transplant_details",
    "car_t_details",
    "tumour_board_panel",
]

_DEPARTMENTS = {
    "admission letter": "Department of Haematology and Oncology - Ward 7B",
    "discharge letter": "Department of Haematology and Oncology - Ward 7B",
    "outpatient visit note": "Myeloma Outpatient Clinic",
    "tumour board protocol": "Multidisciplinary Tumour Board, Haematological Malignancies",
    "bone marrow report": "Institute of Pathology - Haematopathology",
    "imaging report": "Department of Diagnostic and Interventional Radiology",
    "transplant report": "Stem Cell Transplantation Unit",
    "CAR-T report": "Cellular Therapy Unit",
    "pathology report": "Institute of Human Genetics - Tumour Cytogenetics",
    "therapy plan": "Department of Haematology and Oncology - Day Clinic",
}
_NAMES = (
    "A. Lindqvist",
    "M. Okafor",
    "S. Brenner",
    "J. Alvarez",
    "K. Nakamura",
    "P. Duval",
    "R. Haddad",
    "E. Kowalski",
    "T. Brennan",
    "L. Moreau",
    "H. Svensson",
    "D. Petrov",
)
_ROLES = ("consultant haematologist", "resident physician", "attending physician", "fellow")

DOSING: dict[str, str] = {
    "lenalidomide": "lenalidomide 25 mg po d1-21 (dose-adjusted to renal function)",
    "thalidomide": "thalidomide 100 mg po daily at night",
    "pomalidomide": "pomalidomide 4 mg po d1-21",
    "bortezomib": "bortezomib 1.3 mg/m2 sc d1, 4, 8, 11",
    "carfilzomib": "carfilzomib 20 mg/m2 iv d1 of cycle 1, then 56 mg/m2 d1, 8, 15",
    "ixazomib": "ixazomib 4 mg po d1, 8, 15",
    "daratumumab": "daratumumab 1800 mg sc weekly cycles 1-2, every 2 weeks cycles 3-6, "
    "then every 4 weeks",
    "isatuximab": "isatuximab 10 mg/kg iv weekly in cycle 1, then every 2 weeks",
    "elotuzumab": "elotuzumab 10 mg/kg iv weekly cycles 1-2, then every 2 weeks",
    "dexamethasone": "dexamethasone 40 mg po weekly (20 mg if older than 75 years)",
    "prednisone": "prednisone 60 mg/m2 po d1-4",
    "melphalan": "melphalan 9 mg/m2 po d1-4",
    "cyclophosphamide": "cyclophosphamide 300 mg/m2 po weekly",
    "doxorubicin": "doxorubicin 9 mg/m2/day continuous infusion d1-4",
    "vincristine": "vincristine 0.4 mg/day continuous infusion d1-4",
    "belantamab": "belantamab mafodotin 2.5 mg/kg iv every 3 weeks",
    "ide-cel": "idecabtagene vicleucel, target dose 450 x10^6 CAR+ T cells",
    "cilta-cel": "ciltacabtagene autoleucel, target dose 0.75 x10^6 CAR+ T cells/kg",
    "teclistamab": "teclistamab 0.06 and 0.3 mg/kg step-up, then 1.5 mg/kg sc weekly",
    "elranatamab": "elranatamab 12 and 32 mg step-up, then 76 mg sc weekly",
    "talquetamab": "talquetamab 0.01, 0.06 and 0.4 mg/kg step-up, then 0.4 mg/kg sc weekly",
}


MAINTENANCE_DOSING: dict[str, str] = {
    "lenalidomide": "lenalidomide 10 mg po d1-28 (maintenance)",
    "thalidomide": "thalidomide 100 mg po daily (maintenance)",
}


def letterhead(
    rng: np.random.Generator, kind: str, patient_id: str, birth_date: dt.date, style: str
) -> list[str]:
    """Institution, department and patient line at the top of every document."""
    case = int(rng.integers(10_000_000, 99_999_999))
    return [
        "UNIVERSITY HOSPITAL - " + _DEPARTMENTS[kind],
        f"Patient: {patient_id} | born {format_date(birth_date, style)} | case no. {case}",
        "",
    ]


def signature(rng: np.random.Generator) -> list[str]:
    """Author and validation lines at the end of a document."""
    author, senior = pick(rng, _NAMES), pick(rng, _NAMES)
    return [
        "",
        f"Dr. {author}, {pick(rng, _ROLES)}",
        f"Validated by Dr. {senior}. Electronically signed; valid without signature.",
    ]


def imaging_details(rng: np.random.Generator, modality: str) -> tuple[list[str], list[str]]:
    """Technique lines, and normal findings outside the skeleton."""
    technique = {
        "whole-body low-dose CT": "Technique: whole-body low-dose CT from vertex to knees, "
        "no contrast, 1 mm reconstructions in bone and soft-tissue kernels. CTDIvol 4.1 mGy.",
        "MRI of the spine and pelvis": "Technique: 1.5 T MRI, sagittal T1, STIR and "
        "diffusion-weighted sequences of the whole spine; coronal T1 and STIR of the pelvis.",
        "PET-CT": "Technique: 18F-FDG PET-CT, 245 MBq, acquisition 60 min p.i., blood glucose "
        "98 mg/dL; low-dose CT for attenuation correction.",
        "skeletal survey": "Technique: conventional radiographs of skull, spine, ribs, pelvis, "
        "humeri and femora (Paris series).",
        "CT of the spine": "Technique: native multislice CT of the thoracic and lumbar spine.",
        "MRI of the spine": "Technique: sagittal T1 and T2 TSE of the whole spine.",
    }.get(modality, "Technique: standard protocol.")
    others = [
        pick(
            rng,
            (
                "Lungs: no infiltrates, no effusion.",
                "Lungs clear, no nodules > 4 mm.",
                "Small bilateral pleural effusions.",
            ),
        ),
        pick(
            rng,
            (
                "Liver and spleen of normal size.",
                "Spleen at the upper limit of normal (12.5 cm).",
                "Liver cysts, known, unchanged.",
            ),
        ),
        pick(rng, ("No lymphadenopathy.", "No enlarged lymph nodes in the visualised regions.")),
        pick(
            rng,
            (
                "Degenerative changes of the lower lumbar spine.",
                "Mild spondylarthrosis L4/5.",
                "Calcified aortic plaques.",
                "No extramedullary soft-tissue mass.",
            ),
        ),
    ]
    return [
        technique,
        "Comparison: "
        + pick(
            rng,
            (
                "none available.",
                "prior external imaging not available.",
                "previous study of this department.",
            ),
        ),
    ], others


def marrow_details(rng: np.random.Generator) -> list[str]:
    """Aspirate differential, trephine and flow cytometry (without the plasma-cell count)."""
    erythro = int(rng.integers(8, 25))
    granulo = int(rng.integers(30, 55))
    return [
        "ASPIRATE",
        "Particulate, moderately cellular smears. "
        f"Erythropoiesis {erythro}%, normoblastic. Granulopoiesis {granulo}%, left-shifted, "
        "without dysplasia. Megakaryocytes present in normal numbers. Iron stores present "
        "(Perls), no ring sideroblasts.",
        "",
        "TREPHINE",
        f"Core of {rng.uniform(12, 28):.0f} mm with {int(rng.integers(8, 20))} evaluable "
        "intertrabecular spaces. Reticulin fibrosis MF-"
        f"{int(rng.integers(0, 2))} (EUMNET). Bone trabeculae unremarkable.",
        "",
        "FLOW CYTOMETRY",
        "Aberrant plasma cells CD38+ CD138+ CD19- CD45- CD56+, cytoplasmic light-chain "
        "restricted; polyclonal B cells present.",
    ]


def fish_method(rng: np.random.Generator) -> list[str]:
    """How the FISH was done."""
    nuclei = int(rng.integers(100, 200))
    return [
        "Material: bone marrow aspirate, CD138 magnetic-bead enrichment "
        f"(purity {int(rng.integers(55, 95))}%).",
        f"Method: interphase FISH, {nuclei} nuclei scored per probe; laboratory cut-offs 10% "
        "for fusions and 20% for copy-number changes.",
    ]


def transplant_details(rng: np.random.Generator) -> list[str]:
    """Mobilisation, harvest and supportive care around an autologous transplant."""
    return [
        "Mobilisation: cyclophosphamide 2 g/m2 plus G-CSF"
        + pick(rng, ("", ", plerixafor added for poor mobilisation"))
        + ".",
        f"Apheresis: {int(rng.integers(1, 3))} sessions, "
        f"{rng.uniform(5.0, 11.0):.1f} x10^6 CD34+/kg collected in total.",
        "Supportive care: aciclovir, cotrimoxazole, G-CSF from day +5, antiemetics; "
        f"{int(rng.integers(0, 3))} red cell and {int(rng.integers(0, 4))} platelet transfusions.",
        f"Platelet engraftment (> 20/nl unsupported) on day +{int(rng.integers(11, 20))}.",
    ]


def car_t_details(rng: np.random.Generator) -> list[str]:
    """Apheresis, bridging and monitoring around a CAR-T infusion."""
    return [
        f"Leukapheresis {int(rng.integers(5, 9))} weeks before infusion; bridging with "
        + pick(rng, ("Kd", "Pd", "radiotherapy to a painful lesion", "no bridging therapy"))
        + ".",
        "Monitoring: inpatient for 10 days with daily ICE score, CRP and ferritin; driving "
        "restriction for 8 weeks; REMS counselling given.",
    ]


def tumour_board_panel(rng: np.random.Generator) -> str:
    """Who attended the board."""
    return (
        "Participants: haematology (Dr. "
        + pick(rng, _NAMES)
        + "), radiology, radiotherapy, orthopaedic surgery, pathology, palliative care."
    )


def discharge_advice(rng: np.random.Generator) -> list[str]:
    """Recommendations at discharge."""
    return [
        "RECOMMENDATIONS",
        "- Blood count and electrolytes at the general practitioner in "
        f"{int(rng.integers(3, 8))} days.",
        "- Present immediately with fever > 38.0 °C, bleeding or new neurological symptoms.",
        "- "
        + pick(
            rng,
            (
                "Continue thromboprophylaxis.",
                "Continue antiviral prophylaxis.",
                "Dental review before further bisphosphonate doses.",
            ),
        ),
        "- Next appointment in the myeloma clinic as scheduled.",
    ]
