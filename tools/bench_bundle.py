"""A synthetic record bundle at the reference study's scale, for benchmarks.

``write_bench_bundle`` writes ``patients``, ``documents``, ``labs`` and ``events`` as Parquet in
the generic bundle format. Record length is heavy-tailed: per-patient weights are drawn from a
lognormal and documents and lab values are allocated multinomially, so most patients have dozens
of documents and the top decile hundreds. Document texts are clinical in length and shape
(sections under headings, paragraphs, bullet lists). When the ACI-BENCH notes are present in
``../shared/data/aci-bench`` (relative to the repository root) the texts recombine real note
sections from them, read at run time; otherwise they are built from generated clinical sentences.
Either way each document also carries myeloma-specific sections (oncologic history, laboratory
data). Output is deterministic for a seed.

Usage::

    python tools/bench_bundle.py OUT_DIR [--scale 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["FULL_SCALE", "scaled_counts", "write_bench_bundle"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ACI_DIR = REPO_ROOT.parent / "shared" / "data" / "aci-bench"

FULL_SCALE: dict[str, int] = {"patients": 811, "documents": 44_962, "labs": 1_334_677}

_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")
_DAY_US = 86_400_000_000
_STUDY_END = dt.date(2025, 6, 30)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# -- analytes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Analyte:
    """A lab analyte and how its synthetic values are drawn.

    Numeric values are lognormal around ``median`` with log-sd ``sigma``, capped at ``cap``;
    ``disease`` analytes are further scaled by a per-patient burden factor, and tumour
    ``marker`` analytes also fall with time on therapy (and creep up again years later).
    Analytes without a unit are textual (``value_text`` only).
    """

    name: str
    code: str
    unit: str | None
    median: float
    sigma: float
    decimals: int
    ref_low: float | None
    ref_high: float | None
    weight: float
    disease: bool = False
    marker: bool = False
    cap: float | None = None


# LOINC codes where well known; the myeloma-specific analytes carry local codes.
ANALYTES: tuple[Analyte, ...] = (
    Analyte("Hemoglobin", "718-7", "g/dL", 11.2, 0.15, 1, 12.0, 16.0, 8),
    Analyte("Hematocrit", "4544-3", "%", 34.0, 0.15, 1, 36.0, 46.0, 5, cap=60.0),
    Analyte("WBC", "6690-2", "10*3/uL", 5.5, 0.35, 1, 4.0, 10.5, 8),
    Analyte("Platelets", "777-3", "10*3/uL", 190.0, 0.35, 0, 150.0, 400.0, 8),
    Analyte("Absolute neutrophil count", "751-8", "10*3/uL", 3.2, 0.45, 2, 1.8, 7.7, 6),
    Analyte("Absolute lymphocyte count", "731-0", "10*3/uL", 1.2, 0.4, 2, 1.0, 4.8, 5),
    Analyte("MCV", "787-2", "fL", 92.0, 0.06, 0, 80.0, 100.0, 4),
    Analyte("Sodium", "2951-2", "mmol/L", 139.0, 0.02, 0, 135.0, 145.0, 6),
    Analyte("Potassium", "2823-3", "mmol/L", 4.2, 0.1, 1, 3.5, 5.1, 6),
    Analyte("Creatinine", "2160-0", "mg/dL", 1.1, 0.4, 2, 0.6, 1.2, 8, disease=True),
    Analyte("Urea nitrogen", "3094-0", "mg/dL", 20.0, 0.4, 0, 7.0, 20.0, 6),
    Analyte("eGFR", "33914-3", "mL/min/1.73m2", 62.0, 0.35, 0, 60.0, None, 5),
    Analyte("Calcium", "17861-6", "mg/dL", 9.4, 0.08, 1, 8.6, 10.2, 6),
    Analyte("Albumin", "1751-7", "g/dL", 3.8, 0.12, 1, 3.5, 5.0, 6),
    Analyte("Total protein", "2885-2", "g/dL", 7.4, 0.15, 1, 6.0, 8.3, 5),
    Analyte("Glucose", "2345-7", "mg/dL", 105.0, 0.2, 0, 70.0, 99.0, 4),
    Analyte("ALT", "1742-6", "U/L", 24.0, 0.45, 0, 7.0, 56.0, 4),
    Analyte("AST", "1920-8", "U/L", 26.0, 0.4, 0, 10.0, 40.0, 4),
    Analyte("Alkaline phosphatase", "6768-6", "U/L", 85.0, 0.3, 0, 44.0, 147.0, 3),
    Analyte("Total bilirubin", "1975-2", "mg/dL", 0.6, 0.4, 1, 0.1, 1.2, 3),
    Analyte("LDH", "2532-0", "U/L", 210.0, 0.3, 0, 135.0, 225.0, 4),
    Analyte("Uric acid", "3084-1", "mg/dL", 5.8, 0.3, 1, 3.5, 7.2, 2),
    Analyte("C-reactive protein", "1988-5", "mg/L", 4.0, 0.9, 1, 0.0, 5.0, 2),
    Analyte("Beta-2 microglobulin", "1952-1", "mg/L", 3.2, 0.5, 2, 0.8, 2.2, 2, disease=True),
    Analyte("M-protein (SPEP)", "LOCAL:MSPIKE", "g/dL", 0.9, 1.0, 2, None, None, 4, True, True),
    Analyte("Kappa free light chain", "LOCAL:KFLC", "mg/L", 45.0, 1.2, 1, 3.3, 19.4, 4, True, True),
    Analyte("Lambda free light chain", "LOCAL:LFLC", "mg/L", 14.0, 0.7, 1, 5.7, 26.3, 4),
    Analyte(
        "Kappa/lambda FLC ratio", "LOCAL:FLCR", "ratio", 2.5, 1.3, 2, 0.26, 1.65, 4, True, True
    ),
    Analyte("IgG", "2465-3", "mg/dL", 1800.0, 0.6, 0, 700.0, 1600.0, 3, True, True),
    Analyte("IgA", "2458-8", "mg/dL", 120.0, 0.6, 0, 70.0, 400.0, 2),
    Analyte("IgM", "2472-9", "mg/dL", 45.0, 0.6, 0, 40.0, 230.0, 2),
    Analyte(
        "Plasma cells, bone marrow",
        "LOCAL:BMPC",
        "%",
        20.0,
        0.8,
        0,
        0.0,
        5.0,
        0.3,
        True,
        True,
        95.0,
    ),
    Analyte("Immunofixation, serum", "LOCAL:SIFE", None, 0, 0, 0, None, None, 1.5),
    Analyte("Bence Jones protein, urine", "LOCAL:UBJP", None, 0, 0, 0, None, None, 0.7),
)
_TEXT_RESULTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "Immunofixation, serum": (
        ("IgG kappa monoclonal protein detected", "abnormal"),
        ("Faint IgG kappa band, not quantifiable", "abnormal"),
        ("No monoclonal protein detected", None),
    ),
    "Bence Jones protein, urine": (
        ("positive", "abnormal"),
        ("trace", "abnormal"),
        ("negative", None),
    ),
}
_M_PROTEIN_LIMIT = 0.1  # g/dL; below it the result is reported as text


# -- patients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFrame:
    """Per-patient arrays shared by every table (index = patient number)."""

    ids: list[str]
    sex: list[str]
    birth_us: IntArray
    diagnosis_us: IntArray
    start_us: IntArray
    end_us: IntArray
    died: npt.NDArray[np.bool_]
    weight: FloatArray
    burden: FloatArray


def _patients(n: int, rng: np.random.Generator) -> PatientFrame:
    """Patients with a diagnosis date, a follow-up window and a heavy-tailed record weight."""
    first = (np.datetime64("2010-01-01") - np.datetime64("1970-01-01")).astype(np.int64)
    last = (np.datetime64("2023-06-30") - np.datetime64("1970-01-01")).astype(np.int64)
    end_day = (np.datetime64(_STUDY_END) - np.datetime64("1970-01-01")).astype(np.int64)
    diagnosis_day = rng.integers(first, last, size=n)
    age_years = np.clip(rng.normal(66.0, 9.5, size=n), 32.0, 91.0)
    birth_day = diagnosis_day - np.round(age_years * 365.25).astype(np.int64)
    died = rng.random(n) < 0.28
    survival_days = np.round(rng.gamma(2.2, 900.0, size=n)).astype(np.int64) + 90
    death_day = np.minimum(diagnosis_day + survival_days, end_day)
    died &= death_day < end_day
    end = np.where(died, death_day, end_day)
    start = diagnosis_day - rng.integers(20, 120, size=n)
    sex = rng.choice(np.array(["male", "female", "unknown"]), size=n, p=[0.56, 0.435, 0.005])
    return PatientFrame(
        ids=[f"P{i + 1:06d}" for i in range(n)],
        sex=sex.tolist(),
        birth_us=birth_day * _DAY_US,
        diagnosis_us=diagnosis_day * _DAY_US,
        start_us=start * _DAY_US,
        end_us=end * _DAY_US + _DAY_US // 2,
        died=died,
        weight=rng.lognormal(0.0, 1.15, size=n),
        burden=rng.lognormal(0.0, 0.6, size=n),
    )


def _allocate(total: int, weight: FloatArray, rng: np.random.Generator) -> IntArray:
    """Split ``total`` rows over patients: one each, the rest multinomially by ``weight``."""
    n = len(weight)
    base = min(1, total // max(n, 1))
    rest = total - base * n
    counts = rng.multinomial(rest, weight / weight.sum()).astype(np.int64)
    return counts + base


def _times_in_window(
    counts: IntArray, p: PatientFrame, rng: np.random.Generator, *, hours: tuple[int, int]
) -> tuple[IntArray, IntArray]:
    """Per row (patient-major, time-sorted within patient): patient index and time in us."""
    patient = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    span = (p.end_us - p.start_us)[patient]
    day = p.start_us[patient] + (rng.random(len(patient)) * span).astype(np.int64)
    day -= day % _DAY_US
    minute = rng.integers(hours[0] * 60, hours[1] * 60, size=len(patient)).astype(np.int64)
    times = day + minute * 60_000_000
    order = np.lexsort((times, patient))
    return patient[order], times[order]


def _us_series(name: str, values: IntArray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Int64).cast(pl.Datetime("us"))


def _ids(prefix: str, n: int, width: int) -> pl.Series:
    """``n`` ids ``<prefix>00..01`` upwards, zero-padded to ``width`` digits."""
    numbers = pl.DataFrame({"n": np.arange(1, n + 1, dtype=np.int64)})
    return numbers.select(
        (pl.lit(prefix) + pl.col("n").cast(pl.String).str.zfill(width)).alias("id")
    ).to_series()


def _patients_table(p: PatientFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_id": p.ids,
            "sex": p.sex,
            "birth_date": _us_series("birth_date", p.birth_us).dt.date(),
            "death_date": _us_series("death_date", p.end_us).dt.date(),
            "_died": p.died,
        }
    ).select(
        "patient_id",
        "sex",
        "birth_date",
        pl.when(pl.col("_died")).then(pl.col("death_date")).alias("death_date"),
    )


# -- labs ---------------------------------------------------------------------------------------


def _labs_table(n: int, p: PatientFrame, rng: np.random.Generator, id_width: int) -> pl.DataFrame:
    """Lab rows in blood draws: each patient's rows fall into draws of 6-24 values."""
    counts = _allocate(n, p.weight * rng.lognormal(0.0, 0.35, size=len(p.ids)), rng)
    n = int(counts.sum())
    patient = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    within = np.arange(n, dtype=np.int64) - offsets[patient]
    draw_size = rng.integers(6, 25, size=len(counts))
    draws_per_patient = -(-counts // draw_size)
    draw_patient, draw_time = _times_in_window(draws_per_patient, p, rng, hours=(6, 11))
    draw_offsets = np.concatenate([[0], np.cumsum(draws_per_patient)[:-1]])
    time_us = draw_time[draw_offsets[patient] + within // draw_size[patient]]

    weights = np.array([a.weight for a in ANALYTES])
    analyte = rng.choice(len(ANALYTES), size=n, p=weights / weights.sum())
    median = np.array([a.median for a in ANALYTES])[analyte]
    sigma = np.array([a.sigma for a in ANALYTES])[analyte]
    disease = np.array([a.disease for a in ANALYTES])[analyte]
    marker = np.array([a.marker for a in ANALYTES])[analyte]
    cap = np.array([np.inf if a.cap is None else a.cap for a in ANALYTES])[analyte]
    years_on = np.maximum(time_us - p.diagnosis_us[patient], 0) / (365.25 * _DAY_US)
    response = np.exp(-0.9 * np.minimum(years_on, 1.5)) * (1.0 + 0.25 * np.maximum(years_on - 3, 0))
    factor = np.where(disease, p.burden[patient], 1.0) * np.where(marker, response, 1.0)
    value = np.minimum(median * factor * np.exp(sigma * rng.standard_normal(n)), cap)
    scale = 10.0 ** np.array([a.decimals for a in ANALYTES])[analyte]
    value = np.round(value * scale) / scale

    ref_low = np.array([np.nan if a.ref_low is None else a.ref_low for a in ANALYTES])[analyte]
    ref_high = np.array([np.nan if a.ref_high is None else a.ref_high for a in ANALYTES])[analyte]
    flag_code = np.where(value > ref_high, 1, np.where(value < ref_low, 2, 0))
    textual = np.array([a.unit is None for a in ANALYTES])[analyte]
    m_index = next(i for i, a in enumerate(ANALYTES) if a.code == "LOCAL:MSPIKE")
    below = (analyte == m_index) & (value < _M_PROTEIN_LIMIT)

    value_text = np.full(n, -1, dtype=np.int64)  # index into the text vocabulary below
    vocabulary: list[str] = [f"<{_M_PROTEIN_LIMIT}"]
    text_flags: list[str | None] = [None]
    value_text[below] = 0
    for name, results in _TEXT_RESULTS.items():
        rows = textual & (analyte == next(i for i, a in enumerate(ANALYTES) if a.name == name))
        choice = rng.integers(0, len(results), size=int(rows.sum()))
        value_text[rows] = len(vocabulary) + choice
        vocabulary += [r[0] for r in results]
        text_flags += [r[1] for r in results]
    numeric = value_text < 0
    flag_vocabulary = [None, "H", "L", *sorted({f for f in text_flags if f})]
    text_flag_code = np.array([0 if f is None else flag_vocabulary.index(f) for f in text_flags])
    flag_code = np.where(numeric, flag_code, text_flag_code[np.maximum(value_text, 0)])
    return (
        pl.DataFrame(
            {
                "lab_id": _ids("L", n, id_width),
                "patient_id": pl.Series(p.ids).gather(patient),
                "time": _us_series("time", time_us),
                "analyte_code": pl.Series([a.code for a in ANALYTES]).gather(analyte),
                "analyte_name": pl.Series([a.name for a in ANALYTES]).gather(analyte),
                "value_num": pl.Series(np.where(numeric, value, np.nan)).fill_nan(None),
                "value_text": pl.Series(vocabulary).gather(np.maximum(value_text, 0)),
                "unit": pl.Series([a.unit for a in ANALYTES], dtype=pl.String).gather(analyte),
                "ref_low": pl.Series(np.where(numeric, ref_low, np.nan)).fill_nan(None),
                "ref_high": pl.Series(np.where(numeric, ref_high, np.nan)).fill_nan(None),
                "flag": pl.Series(flag_vocabulary, dtype=pl.String).gather(flag_code),
                "_numeric": numeric,
            }
        )
        .with_columns(
            pl.when(~pl.col("_numeric")).then(pl.col("value_text")).alias("value_text"),
        )
        .drop("_numeric")
    )


# -- events -------------------------------------------------------------------------------------

_SECOND_LINES = (
    ("DaraKd", "daratumumab, carfilzomib, dexamethasone"),
    ("DPd", "daratumumab, pomalidomide, dexamethasone"),
    ("Isa-Pd", "isatuximab, pomalidomide, dexamethasone"),
    ("KRd", "carfilzomib, lenalidomide, dexamethasone"),
    ("PVd", "pomalidomide, bortezomib, dexamethasone"),
)
_LATE_LINES = (
    ("Teclistamab", "BCMA x CD3 bispecific antibody, step-up dosing"),
    ("Cilta-cel", "BCMA-directed CAR T-cell therapy"),
    ("Elranatamab", "BCMA x CD3 bispecific antibody"),
    ("Selinexor-dexamethasone", "XPO1 inhibitor"),
)
_RESPONSES = ("sCR", "CR", "VGPR", "PR", "MR", "SD")
_ADMISSIONS = (
    ("J18.9", "Admission for pneumonia"),
    ("N17.9", "Admission for acute kidney injury"),
    ("E83.52", "Admission for hypercalcaemia"),
    ("D70.1", "Admission for febrile neutropenia"),
    ("M84.58", "Admission for pathological fracture"),
    ("A41.9", "Admission for sepsis"),
)
_IMAGING = (
    "PET-CT whole body",
    "MRI whole spine",
    "Low-dose whole-body CT",
    "Skeletal survey",
    "CT chest abdomen pelvis",
)


class _Events:
    """Accumulates event rows for one patient."""

    def __init__(self, patient: str, end_us: int) -> None:
        self.patient = patient
        self.end_us = end_us
        self.rows: list[tuple[str, int, int | None, str, str | None, str, str | None]] = []

    def add(
        self,
        start_us: int,
        kind: str,
        label: str,
        *,
        end_us: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an event, dropping it if it starts after the end of follow-up."""
        if start_us > self.end_us:
            return
        if end_us is not None:
            end_us = max(min(end_us, self.end_us), start_us)
        self.rows.append((self.patient, start_us, end_us, kind, code, label, detail))


def _therapy_line(
    ev: _Events, r: random.Random, t: int, name: str, drugs: str, cycles: int, line: int
) -> int:
    """Cycles of one line of therapy from ``t``; returns the time after the last cycle."""
    for c in range(1, cycles + 1):
        ev.add(
            t,
            "therapy",
            f"{name} cycle {c}",
            end_us=t + 20 * _DAY_US,
            code="L01XG" if "bortezomib" in drugs else None,
            detail=f"Line {line}: {drugs}.",
        )
        t += r.choice((21, 21, 28, 28, 35)) * _DAY_US
    return t


def _patient_events(p: PatientFrame, i: int, r: random.Random) -> list[tuple[object, ...]]:
    """A plausible myeloma course: work-up, induction, transplant, maintenance, relapses."""
    ev = _Events(p.ids[i], int(p.end_us[i]))
    dx = int(p.diagnosis_us[i]) + 10 * 3_600_000_000
    day = _DAY_US
    ev.add(int(p.start_us[i]) + 9 * 3_600_000_000, "encounter", "Haematology referral visit")
    ev.add(dx - 14 * day, "procedure", "Bone marrow aspiration and biopsy", code="38221")
    ev.add(dx - 10 * day, "imaging", r.choice(_IMAGING), detail="Staging imaging.")
    ev.add(
        dx,
        "diagnosis",
        "Multiple myeloma, IgG kappa",
        code="C90.00",
        detail=f"R-ISS stage {r.choice(('I', 'II', 'II', 'III'))}.",
    )
    for code, label in r.sample(
        [
            ("N18.3", "Chronic kidney disease stage 3"),
            ("D63.0", "Anaemia in neoplastic disease"),
            ("I10", "Essential hypertension"),
            ("E11.9", "Type 2 diabetes mellitus"),
        ],
        k=r.randint(0, 3),
    ):
        ev.add(dx + r.randint(0, 60) * day, "diagnosis", label, code=code)
    ev.add(
        dx + 2 * day,
        "medication",
        "Zoledronic acid 4 mg IV every 4 weeks",
        code="M05BA08",
        end_us=dx + r.randint(300, 720) * day,
    )
    ev.add(dx + 3 * day, "medication", "Aciclovir 400 mg twice daily (prophylaxis)", code="J05AB01")
    t = _therapy_line(
        ev, r, dx + 7 * day, "VRd", "bortezomib, lenalidomide, dexamethasone", r.randint(3, 6), 1
    )
    ev.add(
        t,
        "response",
        f"Response after induction: {r.choice(_RESPONSES[:4])}",
        detail="IMWG criteria.",
    )
    if r.random() < 0.62:
        ev.add(t + 21 * day, "procedure", "Stem cell mobilisation and apheresis")
        tx = t + r.randint(45, 80) * day
        ev.add(
            tx - day,
            "admission",
            "Admission for autologous transplant",
            code="Z51.1",
            end_us=tx + r.randint(14, 24) * day,
        )
        ev.add(
            tx,
            "transplant",
            "ASCT (melphalan 200 mg/m²)",
            code="30230G0",
            detail="Autologous stem cell transplant.",
        )
        ev.add(tx + 100 * day, "response", f"Day +100 response: {r.choice(_RESPONSES[:3])}")
        t = tx + r.randint(90, 130) * day
    maintenance_end = t + r.randint(200, 1600) * day
    ev.add(
        t, "therapy", "Lenalidomide maintenance 10 mg daily", code="L04AX04", end_us=maintenance_end
    )
    visit = int(p.start_us[i]) + r.randint(60, 120) * day
    while visit < ev.end_us:
        ev.add(visit + 10 * 3_600_000_000, "encounter", "Myeloma clinic follow-up")
        visit += r.randint(60, 150) * day
    t, line = maintenance_end, 2
    while t < ev.end_us and line <= 6:
        ev.add(
            t,
            "progression",
            "Biochemical progression (rising M-protein)",
            detail=f"Line {line - 1} failed.",
        )
        name, drugs = r.choice(_SECOND_LINES if line < 4 else _LATE_LINES)
        t = _therapy_line(ev, r, t + 10 * day, name, drugs, r.randint(3, 8), line)
        ev.add(t, "response", f"Best response line {line}: {r.choice(_RESPONSES)}")
        t += r.randint(150, 900) * day
        line += 1
    for _ in range(r.randint(0, 4)):
        start = (
            int(p.start_us[i])
            + r.randrange(ev.end_us - int(p.start_us[i])) // 60_000_000 * 60_000_000
        )
        code, label = r.choice(_ADMISSIONS)
        ev.add(start, "admission", label, code=code, end_us=start + r.randint(2, 15) * day)
    if r.random() < 0.2:
        ev.add(dx + r.randint(30, 900) * day, "other", "Goals-of-care discussion documented")
    if p.died[i]:
        ev.add(ev.end_us, "death", "Death", detail="Progressive multiple myeloma.")
    return list(ev.rows)


def _events_table(p: PatientFrame, r: random.Random, id_width: int) -> pl.DataFrame:
    rows = [row for i in range(len(p.ids)) for row in _patient_events(p, i, r)]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    frame = pl.DataFrame(
        {
            "patient_id": pl.Series(columns[0], dtype=pl.String),
            "start_time": pl.Series(columns[1], dtype=pl.Int64).cast(pl.Datetime("us")),
            "end_time": pl.Series(columns[2], dtype=pl.Int64).cast(pl.Datetime("us")),
            "kind": pl.Series(columns[3], dtype=pl.String),
            "code": pl.Series(columns[4], dtype=pl.String),
            "label": pl.Series(columns[5], dtype=pl.String),
            "detail": pl.Series(columns[6], dtype=pl.String),
        }
    ).sort("patient_id", "start_time", maintain_order=True)
    return frame.insert_column(0, _ids("E", frame.height, id_width).alias("event_id"))


# -- document text ------------------------------------------------------------------------------

_HEADING_LINE = re.compile(r"^[A-Z][A-Z /&-]{2,50}:?$")


def read_aci_sections(folder: Path) -> tuple[dict[str, list[str]], list[list[str]]]:
    """Section bodies by heading, and each note's heading sequence, from ACI-BENCH notes.

    Args:
        folder: The ``aci-bench`` folder (CSV files with a ``note`` column, at any depth).

    Returns:
        Bodies by heading (insertion-ordered) and the list of headings of each note.
    """
    pools: dict[str, list[str]] = {}
    skeletons: list[list[str]] = []
    for path in sorted(folder.rglob("*.csv")):
        frame = pl.read_csv(path, infer_schema=False)
        if "note" not in frame.columns:
            continue
        for note in frame["note"].to_list():
            if not note:
                continue
            headings: list[str] = []
            heading: str | None = None
            body: list[str] = []
            for line in [*note.replace("\r\n", "\n").split("\n"), "END OF NOTE"]:
                if _HEADING_LINE.match(line.strip()):
                    text = "\n".join(body).strip("\n")
                    if heading is not None and text.strip():
                        pools.setdefault(heading, []).append(text)
                        headings.append(heading)
                    heading, body = line.strip().rstrip(":").strip(), []
                else:
                    body.append(line.rstrip())
            if len(headings) >= 3:
                skeletons.append(headings)
    return pools, skeletons


@dataclass(frozen=True)
class PatientStory:
    """Facts repeated across one patient's documents, so they read as one record."""

    age: int
    sex_word: str
    pronoun: str
    isotype: str
    fish: str
    stage: str
    diagnosed: str
    transplant: bool


_ISOTYPES = ("IgG-κ", "IgG-κ", "IgG-λ", "IgA-κ", "IgA-λ", "κ light-chain", "λ light-chain")
_FISH = (
    "del(17p) in 32% of plasma cells",
    "t(4;14)",
    "t(11;14)",
    "gain of 1q21 (3 copies)",
    "t(14;16)",
    "no high-risk abnormalities",
    "hyperdiploidy (trisomies 3, 9, 15)",
)
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _story(p: PatientFrame, i: int, r: random.Random) -> PatientStory:
    diagnosed = dt.date(1970, 1, 1) + dt.timedelta(days=int(p.diagnosis_us[i] // _DAY_US))
    age = int((p.diagnosis_us[i] - p.birth_us[i]) // (365.25 * _DAY_US))
    female = p.sex[i] == "female"
    return PatientStory(
        age=age,
        sex_word="woman" if female else "man",
        pronoun="She" if female else "He",
        isotype=r.choice(_ISOTYPES),
        fish=r.choice(_FISH),
        stage=r.choice(("I", "II", "II", "III")),
        diagnosed=f"{_MONTHS[diagnosed.month - 1]} {diagnosed.year}",
        transplant=r.random() < 0.62,
    )


def _num(r: random.Random, low: float, high: float, digits: int = 1) -> str:
    return f"{r.uniform(low, high):.{digits}f}"


def _lab_sentences(r: random.Random, s: PatientStory) -> list[str]:
    kappa = s.isotype.endswith("κ") or s.isotype.startswith("κ")
    involved, other = (
        (_num(r, 20, 900), _num(r, 4, 20))
        if kappa
        else (
            _num(r, 5, 20),
            _num(r, 30, 700),
        )
    )
    return [
        f"M-protein {_num(r, 0.1, 3.5, 2)} g/dL (previous {_num(r, 0.2, 4.0, 2)} g/dL).",
        f"Serum free light chains: kappa {involved} mg/L, lambda {other} mg/L, "
        f"ratio {float(involved) / float(other):.2f}.",
        f"Creatinine {_num(r, 0.7, 3.1)} mg/dL, eGFR {r.randint(18, 95)} mL/min/1.73 m².",
        f"Hemoglobin {_num(r, 7.9, 14.2)} g/dL, platelets {r.randint(60, 320)} x10^9/L, "
        f"WBC {_num(r, 2.1, 9.8)} x10^9/L, ANC {_num(r, 0.8, 6.5)} x10^9/L.",
        f"Calcium {_num(r, 8.4, 11.6)} mg/dL, albumin {_num(r, 2.8, 4.6)} g/dL, "
        f"beta-2 microglobulin {_num(r, 1.8, 9.5)} mg/L, LDH {r.randint(140, 420)} U/L.",
        f"IgG {r.randint(400, 4800)} mg/dL, IgA {r.randint(20, 300)} mg/dL, "
        f"IgM {r.randint(10, 120)} mg/dL.",
        r.choice(
            (
                "Serum immunofixation shows a persistent monoclonal band.",
                "Immunofixation negative on serum and urine.",
                "24-hour urine protein 410 mg with a small Bence Jones component.",
            )
        ),
    ]


def _oncologic_history(r: random.Random, s: PatientStory) -> list[str]:
    response = r.choice(("a very good partial response", "a partial response", "complete response"))
    parts = [
        f"{s.age}-year-old {s.sex_word} with {s.isotype} multiple myeloma diagnosed in "
        f"{s.diagnosed} (R-ISS stage {s.stage}), presenting with "
        f"{r.choice(('anaemia and fatigue', 'back pain from a T11 lytic lesion', 'acute kidney injury with creatinine 2.3 mg/dL', 'hypercalcaemia', 'recurrent infections'))}.",  # noqa: E501
        f"Bone marrow biopsy showed {r.randint(15, 80)}% clonal plasma cells; FISH: {s.fish}.",
        f"Induction with VRd (bortezomib, lenalidomide, dexamethasone) for {r.randint(3, 6)} "
        f"cycles, achieving {response}.",
    ]
    if s.transplant:
        parts.append(
            "High-dose melphalan 200 mg/m² followed by ASCT, day +100 marrow MRD-"
            f"{r.choice(('negative at 10^-5', 'positive', 'negative at 10^-6'))}."
        )
    parts.append(
        r.choice(
            (
                "Lenalidomide maintenance 10 mg daily, well tolerated apart from mild diarrhoea.",
                "Maintenance lenalidomide was stopped after grade 3 neutropenia.",
                "Biochemical relapse on maintenance; switched to DaraKd with a rapid fall in "
                "the M-protein.",
                "Relapsed with rising free light chains and new lytic lesions; now on DPd.",
            )
        )
    )
    return parts


_GENERATED: dict[str, tuple[str, ...]] = {
    "CHIEF COMPLAINT": (
        "Follow-up of multiple myeloma.",
        "Scheduled review before cycle {n} of therapy.",
        "Worsening back pain and fatigue.",
        "Rising light chains on routine monitoring.",
    ),
    "HISTORY OF PRESENT ILLNESS": (
        "{P} reports {sym} over the past {n} weeks.",
        "{P} completed cycle {n} of {reg} without dose delays.",
        "There has been no fever, night sweats or weight loss.",
        "{P} describes grade {g} peripheral neuropathy in both feet, stable since the last visit.",
        "Appetite is reduced and {p} has lost {n} kg since diagnosis.",
        "{P} was admitted last month with {inf} and treated with intravenous antibiotics.",
        "Bone pain in the lower thoracic spine is controlled with paracetamol and oxycodone.",
        "{P} is tolerating dexamethasone 20 mg weekly with some insomnia on the day of dosing.",
        "The most recent M-protein was {x} g/dL, down from {y} g/dL at the start of {reg}.",
        "{P} continues aciclovir prophylaxis and monthly zoledronic acid.",
        "Performance status is ECOG {g}; {p} walks {n} blocks before resting.",
    ),
    "REVIEW OF SYSTEMS": (
        "• Constitutional: {deny} fever, chills or weight loss.",
        "• Musculoskeletal: Endorses back pain. Denies new bone pain.",
        "• Neurological: Endorses numbness in the toes. Denies weakness.",
        "• Gastrointestinal: Denies nausea, vomiting or diarrhoea.",
        "• Respiratory: Denies cough or shortness of breath.",
    ),
    "PHYSICAL EXAMINATION": (
        "• General: Alert, oriented, in no acute distress.",
        "• Cardiovascular: Regular rate and rhythm, no murmurs.",
        "• Respiratory: Clear to auscultation bilaterally.",
        "• Musculoskeletal: Tenderness over the T11 spinous process.",
        "• Neurological: Reduced vibration sense at both ankles.",
        "• Skin: No rash, no bruising.",
    ),
    "ASSESSMENT AND PLAN": (
        "{Iso} multiple myeloma with {fish}, currently on {reg}.",
        "Response assessment: {resp} by IMWG criteria.",
        "Continue {reg}; next cycle to start on schedule if ANC > 1.0 x10^9/L and "
        "platelets > 75 x10^9/L.",
        "Renal function: creatinine {x} mg/dL; avoid nephrotoxins and keep well hydrated.",
        "Repeat serum protein electrophoresis and free light chains in {n} weeks.",
        "Refer to the transplant team to discuss ASCT eligibility.",
        "Dose-reduce bortezomib to 1.0 mg/m² for neuropathy.",
        "Plan bone marrow biopsy with MRD assessment after cycle {n}.",
        "Discussed the option of a clinical trial of a BCMA-directed therapy at relapse.",
    ),
}
_FILL = {
    "sym": ("fatigue", "back pain", "shortness of breath on exertion", "poor appetite"),
    "reg": ("VRd", "DaraKd", "DPd", "lenalidomide maintenance", "Isa-Pd", "teclistamab"),
    "inf": ("pneumonia", "a urinary tract infection", "influenza", "cellulitis"),
    "resp": ("VGPR", "PR", "CR", "stable disease", "sCR"),
    "deny": ("Denies", "No"),
}


def _fill(template: str, r: random.Random, s: PatientStory) -> str:
    if "{" not in template:
        return template
    return template.format(
        P=s.pronoun,
        p=s.pronoun.lower(),
        n=r.randint(2, 12),
        g=r.randint(0, 3),
        x=_num(r, 0.2, 3.2, 2),
        y=_num(r, 1.0, 4.5, 2),
        Iso=s.isotype,
        fish=s.fish,
        **{k: r.choice(v) for k, v in _FILL.items()},
    )


def _generated_body(heading: str, r: random.Random, s: PatientStory) -> str:
    """A section body from templates: paragraphs of sentences, or bullet lines."""
    templates = _GENERATED.get(heading, _GENERATED["HISTORY OF PRESENT ILLNESS"])
    if templates[0].startswith("•"):
        return "\n".join(r.sample(templates, k=r.randint(2, len(templates))))
    paragraphs = []
    for _ in range(r.randint(1, 3) if heading != "CHIEF COMPLAINT" else 1):
        k = 1 if heading == "CHIEF COMPLAINT" else r.randint(2, 5)
        paragraphs.append(" ".join(_fill(t, r, s) for t in r.choices(templates, k=k)))
    return "\n\n".join(paragraphs)


class TextSource:
    """Section bodies: real ACI-BENCH sections when available, generated prose otherwise.

    Args:
        aci_folder: ACI-BENCH folder to read notes from, or None for generated prose only.
    """

    def __init__(self, aci_folder: Path | None) -> None:
        self.pools: dict[str, list[str]] = {}
        self.skeletons: list[list[str]] = []
        if aci_folder is not None and aci_folder.is_dir():
            self.pools, self.skeletons = read_aci_sections(aci_folder)
        self.kind = "aci-bench" if self.skeletons else "generated"
        self._hpi = self.pools.get("HISTORY OF PRESENT ILLNESS", [])
        self._plans = self.pools.get("ASSESSMENT AND PLAN", []) + self.pools.get("PLAN", [])

    def body(self, heading: str, r: random.Random, s: PatientStory) -> str:
        """A body for ``heading``: a real one from any note with that heading, if any."""
        if heading == "ONCOLOGIC HISTORY":
            return " ".join(_oncologic_history(r, s))
        if heading == "LABORATORY DATA":
            return "\n".join(_lab_sentences(r, s))
        pool = self.pools.get(heading)
        if pool:
            return r.choice(pool)
        return _generated_body(heading, r, s)

    def skeleton(self, r: random.Random) -> list[str]:
        """The heading sequence of a clinic note."""
        if self.skeletons:
            return list(r.choice(self.skeletons))
        optional = ["REVIEW OF SYSTEMS", "PHYSICAL EXAMINATION"]
        return [
            "CHIEF COMPLAINT",
            "HISTORY OF PRESENT ILLNESS",
            *[h for h in optional if r.random() < 0.8],
            "ASSESSMENT AND PLAN",
        ]

    def narrative(self, r: random.Random, s: PatientStory) -> str:
        """A free paragraph block (for letters and hospital courses)."""
        if self._hpi and r.random() < 0.5:
            return r.choice(self._hpi)
        if self._plans and r.random() < 0.5:
            return r.choice(self._plans)
        return _generated_body("HISTORY OF PRESENT ILLNESS", r, s)


@dataclass(frozen=True)
class DocType:
    """A document type: its share, median length and title."""

    name: str
    title: str
    share: float
    median_chars: float


DOC_TYPES: tuple[DocType, ...] = (
    DocType("progress note", "Haematology/Oncology Progress Note", 0.52, 3000),
    DocType("consultation", "Haematology Consultation", 0.07, 4600),
    DocType("discharge summary", "Discharge Summary", 0.10, 6000),
    DocType("clinic letter", "Clinic Letter", 0.12, 2600),
    DocType("radiology report", "Radiology Report", 0.08, 1600),
    DocType("pathology report", "Bone Marrow Pathology Report", 0.05, 1900),
    DocType("telephone note", "Telephone Encounter", 0.06, 900),
)
_MAX_CHARS = 20_000
_MIN_CHARS = 400


def _heading(name: str, style: int) -> str:
    if style == 0:
        return name
    if style == 1:
        return name + ":"
    return name.title().replace("And ", "and ").replace("Of ", "of ") + ":"


def _assemble(
    sections: list[tuple[str, str]], target: int, style: int, header: str
) -> tuple[str, int]:
    """Header plus sections until ``target`` characters; returns text and sections used."""
    parts = [header]
    size = len(header)
    used = 0
    for name, body in sections:
        block = f"{_heading(name, style)}\n\n{body}" if name else body
        parts.append(block)
        size += len(block) + 2
        used += 1
        if size >= target:
            break
    return "\n\n".join(parts) + "\n", used


_Builder = Callable[[random.Random, PatientStory, TextSource], list[tuple[str, str]]]


def _clinic_sections(r: random.Random, s: PatientStory, src: TextSource) -> list[tuple[str, str]]:
    names = src.skeleton(r)
    at = (
        names.index("HISTORY OF PRESENT ILLNESS") + 1
        if "HISTORY OF PRESENT ILLNESS" in names
        else 1
    )
    names[at:at] = ["ONCOLOGIC HISTORY"]
    names.insert(max(len(names) - 1, 1), "LABORATORY DATA")
    return [(n, src.body(n, r, s)) for n in names]


def _discharge_sections(
    r: random.Random, s: PatientStory, src: TextSource
) -> list[tuple[str, str]]:
    course = "\n\n".join(f"Day {d}: {src.narrative(r, s)}" for d in range(1, r.randint(3, 7) + 1))
    return [
        (
            "ADMISSION DIAGNOSIS",
            r.choice([a[1] for a in _ADMISSIONS]).replace("Admission for ", ""),
        ),
        ("ONCOLOGIC HISTORY", src.body("ONCOLOGIC HISTORY", r, s)),
        ("HOSPITAL COURSE", course),
        ("LABORATORY DATA", src.body("LABORATORY DATA", r, s)),
        ("DISCHARGE MEDICATIONS", _medication_list(r)),
        ("DISCHARGE PLAN", src.body("ASSESSMENT AND PLAN", r, s)),
    ]


def _letter_sections(r: random.Random, s: PatientStory, src: TextSource) -> list[tuple[str, str]]:
    return [
        ("", f"Dear Dr. {r.choice(('Meyer', 'Okafor', 'Lindqvist', 'Haddad', 'Rossi'))},"),
        ("", f"I saw your patient, a {s.age}-year-old {s.sex_word}, in the myeloma clinic today."),
        ("DIAGNOSIS", f"{s.isotype} multiple myeloma, R-ISS stage {s.stage}; FISH: {s.fish}."),
        ("", " ".join(_oncologic_history(r, s))),
        ("", src.narrative(r, s)),
        ("", "\n".join(_lab_sentences(r, s))),
        ("", src.narrative(r, s)),
    ]


def _radiology_sections(
    r: random.Random, s: PatientStory, src: TextSource
) -> list[tuple[str, str]]:
    findings = [
        "Multiple lytic lesions in the thoracic and lumbar vertebrae, the largest at T11 "
        f"measuring {r.randint(8, 35)} mm, with SUVmax {_num(r, 2.0, 9.5)}.",
        "No pathological fracture. No paraspinal soft-tissue mass.",
        f"Diffuse heterogeneous marrow signal in keeping with myeloma infiltration "
        f"({r.choice(('unchanged', 'improved', 'progressed'))} compared with the prior study).",
        "Focal lesion in the left iliac wing without cortical breach.",
        "Lungs clear. No lymphadenopathy. Kidneys of normal size.",
    ]
    return [
        ("EXAM", r.choice(_IMAGING)),
        ("CLINICAL INDICATION", f"{s.isotype} multiple myeloma; restaging."),
        ("TECHNIQUE", "Standard protocol without intravenous contrast."),
        ("COMPARISON", "Prior study from " + r.choice(_MONTHS) + "."),
        ("FINDINGS", "\n\n".join(r.sample(findings, k=r.randint(2, len(findings))))),
        ("IMPRESSION", r.choice(findings[:3])),
    ]


def _pathology_sections(
    r: random.Random, s: PatientStory, src: TextSource
) -> list[tuple[str, str]]:
    pct = r.randint(3, 85)
    return [
        ("SPECIMEN", "Bone marrow aspirate and trephine biopsy, right posterior iliac crest."),
        ("CLINICAL HISTORY", f"{s.isotype} multiple myeloma; response assessment."),
        (
            "MICROSCOPIC DESCRIPTION",
            f"The trephine shows {r.randint(30, 80)}% cellularity with interstitial and "
            f"nodular infiltrates of plasma cells comprising about {pct}% of cells. "
            "Trilineage haematopoiesis is present.\n\nThe aspirate is particulate and cellular.",
        ),
        (
            "FLOW CYTOMETRY",
            f"Clonal plasma cells CD38+ CD138+ CD19- CD56+, {pct / 10:.1f}% of events.",
        ),
        ("CYTOGENETICS / FISH", s.fish + "."),
        ("DIAGNOSIS", f"Plasma cell myeloma, {pct}% clonal plasma cells."),
    ]


def _telephone_sections(
    r: random.Random, s: PatientStory, src: TextSource
) -> list[tuple[str, str]]:
    return [
        ("REASON FOR CALL", r.choice(("Fever", "Medication question", "Results", "Rash"))),
        ("", src.narrative(r, s)),
        ("PLAN", src.body("ASSESSMENT AND PLAN", r, s)),
    ]


def _medication_list(r: random.Random) -> str:
    meds = [
        "Lenalidomide 10 mg orally daily, days 1-21",
        "Dexamethasone 20 mg orally weekly",
        "Aciclovir 400 mg orally twice daily",
        "Aspirin 100 mg orally daily",
        "Pantoprazole 40 mg orally daily",
        "Oxycodone 5 mg orally every 6 hours as needed",
        "Co-trimoxazole 960 mg three times weekly",
        "Zoledronic acid 4 mg IV every 4 weeks",
    ]
    return "\n".join("- " + m for m in r.sample(meds, k=r.randint(3, len(meds))))


_BUILDERS: dict[str, _Builder] = {
    "progress note": _clinic_sections,
    "consultation": _clinic_sections,
    "discharge summary": _discharge_sections,
    "clinic letter": _letter_sections,
    "radiology report": _radiology_sections,
    "pathology report": _pathology_sections,
    "telephone note": _telephone_sections,
}
_EXTRA = ("INTERVAL HISTORY", "ASSESSMENT AND PLAN", "LABORATORY DATA", "ADDENDUM")


def document_text(
    doc_type: DocType,
    target: int,
    when: dt.datetime,
    r: random.Random,
    s: PatientStory,
    src: TextSource,
) -> str:
    """One document of about ``target`` characters (at least its header and first section)."""
    sections = _BUILDERS[doc_type.name](r, s, src)
    style = r.choices((0, 1, 2), weights=(0.7, 0.15, 0.15))[0]
    header = f"{doc_type.title.upper()}\nDate of service: {when:%Y-%m-%d %H:%M}"
    text, used = _assemble(sections, target, style, header)
    k = 0
    while used == len(sections) and len(text) < target and k < 60:
        extra = _EXTRA[k % len(_EXTRA)]
        body = (
            src.narrative(r, s)
            if extra in ("INTERVAL HISTORY", "ADDENDUM")
            else src.body(extra, r, s)
        )
        sections.append((extra, body))
        text, used = _assemble(sections, target, style, header)
        k += 1
    return text


def _documents_table(
    n: int,
    p: PatientFrame,
    rng: np.random.Generator,
    r: random.Random,
    src: TextSource,
    id_width: int,
    flat_fraction: float,
) -> pl.DataFrame:
    counts = _allocate(n, p.weight, rng)
    patient, times = _times_in_window(counts, p, rng, hours=(7, 19))
    shares = np.array([t.share for t in DOC_TYPES])
    kind = rng.choice(len(DOC_TYPES), size=len(patient), p=shares / shares.sum())
    medians = np.array([t.median_chars for t in DOC_TYPES])[kind]
    target = np.clip(medians * rng.lognormal(0.0, 0.5, size=len(patient)), _MIN_CHARS, _MAX_CHARS)
    flat = rng.random(len(patient)) < flat_fraction
    stories = [_story(p, i, r) for i in range(len(p.ids))]
    texts: list[str] = []
    for k in range(len(patient)):
        when = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(times[k]))
        text = document_text(DOC_TYPES[kind[k]], int(target[k]), when, r, stories[patient[k]], src)
        if flat[k]:  # some exports lose their line breaks: one long line per document
            text = re.sub(r"\s*\n\s*", " ", text).strip() + "\n"
        texts.append(text)
    return pl.DataFrame(
        {
            "document_id": _ids("D", len(patient), id_width),
            "patient_id": pl.Series(p.ids).gather(patient),
            "date": _us_series("date", times),
            "type": pl.Series([t.name for t in DOC_TYPES]).gather(kind),
            "title": pl.Series([t.title for t in DOC_TYPES]).gather(kind),
            "text": pl.Series(texts, dtype=pl.String),
        }
    )


# -- entry points -------------------------------------------------------------------------------


def scaled_counts(scale: float) -> dict[str, int]:
    """Patients, documents and labs at ``scale`` times the reference study (at least 1 each)."""
    return {k: max(1, round(v * scale)) for k, v in FULL_SCALE.items()}


def write_bench_bundle(
    out_dir: Path,
    *,
    patients: int = 811,
    documents: int = 44_962,
    labs: int = 1_334_677,
    seed: int = 0,
    aci_folder: Path | None = ACI_DIR,
    flat_fraction: float = 0.005,
) -> dict[str, int]:
    """Write a synthetic bundle (four Parquet tables) into ``out_dir``.

    Args:
        out_dir: Folder to write into (created if missing; existing tables are overwritten).
        patients: Number of patients.
        documents: Number of documents (exact).
        labs: Number of lab rows (exact).
        seed: Random seed; the same seed gives the same files.
        aci_folder: ACI-BENCH folder whose note sections the texts recombine; generated prose
            is used when it is None or absent.
        flat_fraction: Share of documents whose line breaks are lost (one long line).

    Returns:
        Rows written per table.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    p = _patients(patients, rng)
    src = TextSource(aci_folder)
    tables = {
        "patients": _patients_table(p),
        "documents": _documents_table(
            documents, p, np.random.default_rng([seed, 1]), r, src, 8, flat_fraction
        ),
        "labs": _labs_table(labs, p, np.random.default_rng([seed, 2]), 9),
        "events": _events_table(p, random.Random(f"{seed}-events"), 8),
    }
    for name, frame in tables.items():
        frame.write_parquet(out_dir / f"{name}.parquet", compression="zstd", statistics=True)
    return {name: frame.height for name, frame in tables.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python tools/bench_bundle.py OUT_DIR [--scale S] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-aci", action="store_true", help="generated prose only")
    args = parser.parse_args(argv)
    clock = time.perf_counter()
    counts = write_bench_bundle(
        args.out_dir,
        **scaled_counts(args.scale),
        seed=args.seed,
        aci_folder=None if args.no_aci else ACI_DIR,
    )
    size = sum(f.stat().st_size for f in args.out_dir.glob("*.parquet")) / 1e6
    print(
        f"wrote {counts} to {args.out_dir} ({size:.1f} MB) in {time.perf_counter() - clock:.1f} s"
    )


if __name__ == "__main__":
    main()
