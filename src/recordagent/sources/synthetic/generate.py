"""Generating a synthetic cohort: calibrate to the preset's size, simulate, render, write.

Every patient draws from its own random streams, seeded by ``(seed, patient index, purpose)``,
so a patient's record does not depend on how many others are generated alongside it, and the
same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recordagent.errors import UserError, validation_problems
from recordagent.records.load_report import LoadProgress, no_progress
from recordagent.resources import cohort_presets_file
from recordagent.settings import read_yaml_file
from recordagent.sources.synthetic.course import Course, simulate_course
from recordagent.sources.synthetic.documents import (
    Doc,
    event_document_count,
    finish_documents,
    start_documents,
)
from recordagent.sources.synthetic.gold import GOLD_SCHEMA, gold_facts
from recordagent.sources.synthetic.labs import PatientLabs, count_draws, simulate_labs
from recordagent.sources.synthetic.outcomes import Outcomes, derive_outcomes
from recordagent.sources.synthetic.regimens import REGIMENS

__all__ = ["CohortPreset", "SynthReport", "generate_cohort", "load_preset"]

# Values per draw: the myeloma panel, blood count and chemistry every time (11), immunoglobulins
# every other draw, LDH and beta-2 microglobulin every fourth (see labs.simulate_labs).
_VALUES_PER_DRAW = 11 + 3 / 2 + 2 / 4
_COURSE, _COUNT, _LABS, _DOCS = 0, 1, 2, 3
# A course needs a regimen for every line, so no diagnosis may precede the regimen catalogue.
_FIRST_THERAPY_YEAR = min(regimen.first_year for regimen in REGIMENS.values())


class CohortPreset(BaseModel):
    """Size and span of a synthetic cohort."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Preset name.")
    # The upper bounds keep a generation within one machine's memory (reference: 811 patients,
    # 44,962 documents, 1,334,677 lab values).
    patients: int = Field(ge=1, le=100_000, description="Number of patients.")
    documents: int = Field(
        ge=1, le=5_000_000, description="Target number of documents (met within ±5%)."
    )
    labs: int = Field(
        ge=1, le=100_000_000, description="Target number of lab values (met within ±5%)."
    )
    first_year: int = Field(
        default=2001,
        ge=_FIRST_THERAPY_YEAR,
        le=2100,
        description="Earliest year of diagnosis (no earlier than the first regimen simulated).",
    )
    last_year: int = Field(
        default=2025, ge=_FIRST_THERAPY_YEAR, le=2100, description="Latest year of diagnosis."
    )

    @model_validator(mode="after")
    def _years_in_order(self) -> CohortPreset:
        if self.first_year > self.last_year:
            raise ValueError(f"first_year {self.first_year} is after last_year {self.last_year}")
        return self


def load_preset(name: str) -> CohortPreset:
    """A packaged cohort preset (tiny, small, reference) or a YAML file with the same fields.

    Raises:
        UserError: Unknown preset or invalid file.
    """
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        data = _read_preset_file(path)
    else:
        presets = yaml.safe_load(cohort_presets_file().read_text(encoding="utf-8"))
        if name not in presets:
            shown = name if len(name) <= 80 else f"{name[:80]}... ({len(name):,} characters)"
            raise UserError(
                f"unknown cohort preset {shown!r}; choose one of {', '.join(presets)} "
                "or pass a YAML file"
            )
        data = {"name": name, **presets[name]}
    if not isinstance(data, dict):
        raise UserError(
            f"invalid cohort preset {name}: expected a mapping of name, patients, documents "
            f"and labs, not {type(data).__name__}"
        )
    try:
        return CohortPreset.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, whole="preset"))
        raise UserError(f"invalid cohort preset {name}: {problems}") from exc


def _read_preset_file(path: Path) -> object:
    """The YAML in a cohort preset file; a UserError for anything that is not readable YAML."""
    try:
        if path.is_dir():
            raise UserError(f"cohort preset {path} is a folder, not a YAML file")
        if not path.is_file():
            raise UserError(f"cohort preset file not found: {path}")
    except OSError as exc:
        raise UserError(f"cannot read cohort preset {path}: {exc.strerror or exc}") from None
    return read_yaml_file(path, "cohort preset")


class SynthReport(BaseModel):
    """What a generation wrote."""

    preset: str
    seed: int
    out_dir: str
    counts: dict[str, int] = Field(description="Rows per bundle table and gold facts.")
    seconds: float = Field(description="Wall time of the generation.")
    documents_per_patient_deciles: list[int] = Field(
        description="Documents per patient at the 10th, 20th, ... 90th and 100th percentile."
    )


@dataclass
class _Patient:
    course: Course
    labs: PatientLabs
    outcomes: Outcomes
    event_documents: int = 0


def _rng(seed: int, index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, purpose])


def _calibrate_density(courses: list[Course], seed: int, target_draws: float) -> float:
    """Draw density that gives the cohort ``target_draws`` draws (secant steps on the count)."""

    def total(density: float) -> int:
        return sum(
            count_draws(_rng(seed, i, _COUNT), course, density) for i, course in enumerate(courses)
        )

    low, high = 0.2, 1.0
    f_low, f_high = total(low) - target_draws, total(high) - target_draws
    density = high
    for _ in range(6):
        if f_high == f_low:
            break
        density = float(np.clip(high - f_high * (high - low) / (f_high - f_low), 0.02, 20.0))
        f_new = total(density) - target_draws
        if abs(f_new) <= 0.01 * target_draws:
            break
        low, f_low, high, f_high = high, f_high, density, f_new
    return density


def generate_cohort(
    preset: CohortPreset,
    seed: int,
    out_dir: str | Path,
    progress: LoadProgress | None = None,
) -> SynthReport:
    """Write a record bundle and its ``gold/`` tables for ``preset`` to ``out_dir``.

    Raises:
        UserError: ``seed`` is not a non-negative integer, or ``out_dir`` is not a new or empty
            folder that can be created.
    """
    report = progress or no_progress
    clock = time.perf_counter()
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, not {seed!r}")
    out = Path(out_dir)
    _prepare_output_folder(out)
    width = max(3, len(str(preset.patients)))
    courses = [
        simulate_course(
            _rng(seed, i, _COURSE), f"MM-{i + 1:0{width}d}", preset.first_year, preset.last_year
        )
        for i in range(preset.patients)
    ]
    density = _calibrate_density(courses, seed, preset.labs / _VALUES_PER_DRAW)

    patients: list[_Patient] = []
    for i, course in enumerate(courses):
        labs = simulate_labs(_rng(seed, i, _LABS), course, density)
        patients.append(_Patient(course, labs, derive_outcomes(course, labs.responses)))
        report("labs", i + 1, len(courses))
    # Event documents first (their number sets how many clinic visits fit the target), then
    # the visits, on the same writer: each patient's text is rendered once.
    writers = [
        start_documents(_rng(seed, i, _DOCS), p.course, p.labs, p.outcomes)
        for i, p in enumerate(patients)
    ]
    for patient, writer in zip(patients, writers, strict=True):
        patient.event_documents = event_document_count(writer)
    visits = _visit_days(patients, preset.documents)

    documents: list[pl.DataFrame] = []
    facts: list[dict[str, object]] = []
    for i, (patient, writer, days) in enumerate(zip(patients, writers, visits, strict=True)):
        docs = finish_documents(writer, days)
        ids = [f"{patient.course.patient_id}-D{k:04d}" for k in range(1, len(docs) + 1)]
        documents.append(_documents_frame(patient.course.patient_id, docs, ids))
        facts += gold_facts(patient.course, patient.labs, patient.outcomes, docs, ids)
        report("documents", i + 1, len(patients))

    out.mkdir(parents=True, exist_ok=True)
    (out / "gold").mkdir(exist_ok=True)
    tables = {
        "patients": _patients_frame(courses),
        "documents": pl.concat(documents, how="vertical"),
        "labs": pl.concat([p.labs.frame for p in patients], how="vertical").select(
            "lab_id",
            "patient_id",
            "time",
            "analyte_code",
            "analyte_name",
            "value_num",
            "value_text",
            "unit",
            "ref_low",
            "ref_high",
            "flag",
        ),
        "events": _events_frame(patients),
    }
    for name, frame in tables.items():
        _write(frame, out / f"{name}.parquet")
    gold = pl.DataFrame(facts, schema=GOLD_SCHEMA)
    _write(gold, out / "gold" / "facts.parquet")
    _write(_lines_frame(patients), out / "gold" / "lines.parquet")
    per_patient = tables["documents"].group_by("patient_id").len()["len"].to_numpy()
    deciles = [int(np.percentile(per_patient, q)) for q in range(10, 101, 10)]
    return SynthReport(
        preset=preset.name,
        seed=seed,
        out_dir=str(out.resolve()),
        counts={**{k: v.height for k, v in tables.items()}, "gold facts": gold.height},
        seconds=round(time.perf_counter() - clock, 2),
        documents_per_patient_deciles=deciles,
    )


def _prepare_output_folder(out: Path) -> None:
    """Create ``out`` before any work, so that a folder that cannot be written fails fast."""
    try:
        if out.exists() and not out.is_dir():
            raise UserError(f"output folder {out} is a file; choose a new or empty folder")
        if out.is_dir() and any(out.iterdir()):
            raise UserError(f"output folder {out} is not empty; choose a new or empty folder")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out}: {exc.strerror or exc}") from None


def _visit_days(patients: list[_Patient], target_documents: int) -> list[list[dt.date]]:
    """Clinic visits (on draw days) so that the cohort reaches its document target."""
    budget = max(0, target_documents - sum(p.event_documents for p in patients))
    draws = np.asarray([len(p.labs.draws) for p in patients], dtype=float)
    share = budget * draws / max(draws.sum(), 1.0)
    # Largest-remainder rounding: the cohort total is exact.
    counts = np.floor(share).astype(int)
    remainder = budget - counts.sum()
    if remainder > 0:
        counts[np.argsort(-(share - counts), kind="stable")[:remainder]] += 1
    out = []
    epoch = dt.date(1970, 1, 1)
    for patient, n in zip(patients, counts, strict=True):
        draw_days = patient.labs.draws
        # Visits on draw days, spread evenly; more visits than draws fall between draws.
        first, last = int(draw_days[0]), int(draw_days[-1])
        if n <= len(draw_days):
            picks = np.linspace(0, len(draw_days) - 1, int(n)).round().astype(int)
            days = [int(draw_days[k]) for k in picks]
        else:
            days = np.linspace(first, last, int(n)).round().astype(int).tolist()
        out.append([epoch + dt.timedelta(days=d) for d in days])
    return out


def _write(frame: pl.DataFrame, path: Path) -> None:
    # Fixed settings: the same frame always gives the same bytes.
    frame.write_parquet(path, compression="zstd", compression_level=3, statistics=True)


def _patients_frame(courses: list[Course]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_id": [c.patient_id for c in courses],
            "sex": [c.sex for c in courses],
            "birth_date": [c.birth_date for c in courses],
            "death_date": [c.death_date for c in courses],
        },
        schema={
            "patient_id": pl.String,
            "sex": pl.String,
            "birth_date": pl.Date,
            "death_date": pl.Date,
        },
    )


def _documents_frame(patient_id: str, docs: list[Doc], ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "document_id": ids,
            "patient_id": [patient_id] * len(docs),
            "date": [d.date for d in docs],
            "type": [d.type for d in docs],
            "title": [d.title for d in docs],
            "text": [d.text for d in docs],
        },
        schema={
            "document_id": pl.String,
            "patient_id": pl.String,
            "date": pl.Date,
            "type": pl.String,
            "title": pl.String,
            "text": pl.String,
        },
    )


def _events_frame(patients: list[_Patient]) -> pl.DataFrame:
    """Structured events a hospital system would hold: diagnosis, therapies, transplants."""
    rows: list[tuple[object, ...]] = []
    for p in patients:
        c = p.course
        pid = c.patient_id
        rows.append((pid, c.diagnosis_date, None, "diagnosis", "C90.0", "Multiple myeloma", None))
        for o in p.outcomes.lines:
            line = o.line
            rows.append(
                (
                    pid,
                    line.start,
                    None if line.ongoing else line.end,
                    "therapy",
                    None,
                    line.regimen.name,
                    f"line {line.number}",
                )
            )
            if line.asct_date:
                rows.append(
                    (
                        pid,
                        line.asct_date,
                        None,
                        "transplant",
                        None,
                        "Autologous stem cell transplantation",
                        "high-dose melphalan",
                    )
                )
        for ae in c.adverse_events:
            if ae.admitted and ae.kind not in ("CRS", "ICANS"):
                rows.append((pid, ae.date, None, "admission", None, ae.kind, None))
        if c.death_date:
            rows.append((pid, c.death_date, None, "death", None, "Death", None))
    frame = pl.DataFrame(
        rows,
        schema={
            "patient_id": pl.String,
            "start_time": pl.Date,
            "end_time": pl.Date,
            "kind": pl.String,
            "code": pl.String,
            "label": pl.String,
            "detail": pl.String,
        },
        orient="row",
    )
    return frame.with_columns(
        pl.format(
            "{}-E{}",
            pl.col("patient_id"),
            pl.int_range(1, pl.len() + 1).over("patient_id").cast(pl.String).str.zfill(4),
        ).alias("event_id")
    ).select("event_id", pl.exclude("event_id"))


def _lines_frame(patients: list[_Patient]) -> pl.DataFrame:
    """Gold therapy lines in one table: what a timeline question needs."""
    rows = []
    for p in patients:
        for o in p.outcomes.lines:
            rows.append(
                {
                    "patient_id": p.course.patient_id,
                    "line": o.number,
                    "regimen": o.line.regimen.name,
                    "drugs": list(o.line.drugs()),
                    "start": o.line.start,
                    "end": None if o.line.ongoing else o.line.end,
                    "end_reason": o.line.end_reason,
                    "asct_date": o.line.asct_date,
                    "maintenance": o.line.maintenance,
                    "maintenance_start": o.line.maintenance_start,
                    "best_response": o.response.best if o.response.best_date else None,
                    "best_response_date": o.response.best_date,
                    "progression_date": o.response.progression,
                    "refractory_drugs": list(o.refractory_drugs),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "patient_id": pl.String,
            "line": pl.Int32,
            "regimen": pl.String,
            "drugs": pl.List(pl.String),
            "start": pl.Date,
            "end": pl.Date,
            "end_reason": pl.String,
            "asct_date": pl.Date,
            "maintenance": pl.String,
            "maintenance_start": pl.Date,
            "best_response": pl.String,
            "best_response_date": pl.Date,
            "progression_date": pl.Date,
            "refractory_drugs": pl.List(pl.String),
        },
    )
