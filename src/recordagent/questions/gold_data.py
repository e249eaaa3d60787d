"""The tables gold answers are derived from: a synthetic cohort's gold facts, lines and labs.

:class:`GoldData` reads ``gold/facts.parquet``, ``gold/lines.parquet`` and the bundle's labs
(and document dates, for where a record ends) once, and indexes them per patient so that
deriving thousands of gold answers stays cheap. Lab rows are cleaned the way a careful
abstractor reads them: a flagged correction replaces the value first reported at the same time,
duplicated rows count once, and an M-protein "not detected" counts as 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from recordagent.errors import UserError
from recordagent.sources.synthetic.imwg import Measurement
from recordagent.sources.synthetic.vocabulary import FACTS

__all__ = [
    "GoldData",
    "GoldValue",
    "LabPoint",
    "convert_unit",
    "convertible",
    "parse_fact_value",
]

# Unit changes a lab derivation may make (value in the first unit -> the second).
_CONVERSIONS: dict[tuple[str, str], tuple[str, float]] = {
    ("g/L", "g/dL"): ("divide", 10.0),
    ("g/dL", "g/L"): ("multiply", 10.0),
    ("mg/L", "mg/dL"): ("divide", 10.0),
    ("mg/dL", "mg/L"): ("multiply", 10.0),
}
# The response panel of the IMWG rules (bundle analyte names).
_MPROTEIN, _KAPPA, _LAMBDA, _RATIO = (
    "M-protein",
    "Free kappa light chains",
    "Free lambda light chains",
    "Kappa/lambda FLC ratio",
)


@dataclass(frozen=True)
class GoldValue:
    """A gold answer (typed: date, float, int, bool, str or tuple of str) and its evidence ids."""

    value: Any
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabPoint:
    """One cleaned lab value."""

    time: dt.datetime
    value: float
    unit: str
    lab_id: str

    @property
    def day(self) -> dt.date:
        """The day it was drawn."""
        return self.time.date()


def convertible(unit: str, target: str) -> bool:
    """Whether a value in ``unit`` can be given in ``target``."""
    return unit == target or (unit, target) in _CONVERSIONS


def convert_unit(value: float, unit: str, target: str) -> float:
    """``value`` (in ``unit``) in ``target``; divides exactly as the IMWG reader does.

    Raises:
        ValueError: no conversion between the two units is known.
    """
    if unit == target:
        return value
    if (unit, target) not in _CONVERSIONS:
        raise ValueError(f"no conversion from {unit} to {target}")
    how, factor = _CONVERSIONS[(unit, target)]
    return value / factor if how == "divide" else value * factor


def parse_fact_value(text: str, value_type: str) -> Any:
    """A gold fact's text value as a typed value."""
    if value_type == "date":
        return dt.date.fromisoformat(text)
    if value_type == "boolean":
        return text == "true"
    if value_type == "count":
        return int(text)
    if value_type == "number":
        return float(text)
    return text


def _read(path: Path, what: str, columns: Iterable[str] | None = None) -> pl.DataFrame:
    if not path.is_file():
        raise UserError(
            f"{path} not found: {what} (generate a cohort with `recordagent synth --out DIR`)"
        )
    try:
        return pl.read_parquet(path, columns=list(columns) if columns is not None else None)
    except Exception as exc:  # polars raises several kinds for bad files and missing columns
        raise UserError(f"{path}: cannot read {what}: {exc}") from exc


class GoldData:
    """A cohort's gold tables and labs, indexed per patient (read-only)."""

    def __init__(
        self,
        facts: pl.DataFrame,
        lines: pl.DataFrame,
        labs: pl.DataFrame,
        record_ends: dict[str, dt.date] | None = None,
        patient_ids: Iterable[str] | None = None,
    ) -> None:
        self._facts: dict[tuple[str, str, int | None], GoldValue] = {}
        self._facts_by_kind: dict[tuple[str, str], list[tuple[int | None, GoldValue]]] = {}
        for row in facts.iter_rows(named=True):
            spec = FACTS.get(row["fact"])
            value_type = spec.value_type if spec else row["value_type"]
            gold = GoldValue(
                parse_fact_value(row["value"], value_type),
                tuple([*(row["evidence_documents"] or []), *(row["evidence_labs"] or [])]),
            )
            key = (row["patient_id"], row["fact"], row["line"])
            self._facts[key] = gold
            self._facts_by_kind.setdefault(key[:2], []).append((row["line"], gold))
        for rows in self._facts_by_kind.values():
            rows.sort(key=lambda pair: -1 if pair[0] is None else pair[0])
        self._lines: dict[str, list[dict[str, Any]]] = {}
        for row in lines.sort("patient_id", "line").iter_rows(named=True):
            self._lines.setdefault(row["patient_id"], []).append(row)
        self._labs = _lab_series(labs)
        self._record_ends = dict(record_ends or {})
        known = patient_ids or sorted({key[0] for key in self._facts} | set(self._lines))
        self.patient_ids: tuple[str, ...] = tuple(known)
        self._assessments: dict[str, list[Measurement]] = {}

    @classmethod
    def load(cls, gold_dir: str | Path, bundle_dir: str | Path | None = None) -> GoldData:
        """Read ``gold_dir`` (facts, lines) and the bundle's labs (in ``gold_dir``'s parent).

        Raises:
            UserError: a table is missing or unreadable.
        """
        gold = Path(gold_dir)
        bundle = Path(bundle_dir) if bundle_dir is not None else gold.parent
        facts = _read(gold / "facts.parquet", "the gold facts")
        lines = _read(gold / "lines.parquet", "the gold therapy lines")
        labs = _read(
            bundle / "labs.parquet",
            "the bundle's labs",
            ["lab_id", "patient_id", "time", "analyte_name", "value_num", "value_text", "unit"]
            + ["flag"],
        )
        ends = labs.group_by("patient_id").agg(pl.col("time").max().dt.date().alias("end"))
        record_ends = dict(ends.iter_rows())
        documents = bundle / "documents.parquet"
        if documents.is_file():
            docs = _read(documents, "the bundle's documents", ["patient_id", "date"])
            for pid, day in (
                docs.group_by("patient_id").agg(pl.col("date").max().cast(pl.Date)).iter_rows()
            ):
                record_ends[pid] = max(day, record_ends.get(pid, day))
        patients_file = bundle / "patients.parquet"
        patient_ids = None
        if patients_file.is_file():
            patient_ids = _read(patients_file, "the bundle's patients", ["patient_id"])[
                "patient_id"
            ].to_list()
        return cls(facts, lines, labs, record_ends, patient_ids)

    # -- facts and lines -------------------------------------------------------------------

    def fact(self, patient_id: str, name: str, line: int | None = None) -> GoldValue | None:
        """One gold fact of the patient (per-line facts need ``line``)."""
        return self._facts.get((patient_id, name, line))

    def facts_of(self, patient_id: str, name: str) -> list[tuple[int | None, GoldValue]]:
        """Every row of one fact kind for the patient, in line order."""
        return list(self._facts_by_kind.get((patient_id, name), []))

    def lines_of(self, patient_id: str) -> list[dict[str, Any]]:
        """The patient's therapy lines (rows of ``gold/lines.parquet``), in order."""
        return list(self._lines.get(patient_id, []))

    def line(self, patient_id: str, number: int) -> dict[str, Any] | None:
        """One therapy line of the patient, or None."""
        return next((row for row in self.lines_of(patient_id) if row["line"] == number), None)

    def record_end(self, patient_id: str) -> dt.date | None:
        """The last day the patient's record covers (latest lab or document)."""
        return self._record_ends.get(patient_id)

    # -- labs ------------------------------------------------------------------------------

    def labs(self, patient_id: str, analyte: str) -> list[LabPoint]:
        """The patient's cleaned values of one analyte (bundle name), in time order."""
        return list(self._labs.get((patient_id, analyte), []))

    def assessments(self, patient_id: str) -> list[Measurement]:
        """Response assessments, read as the synthetic generator's IMWG reader reads them.

        One per draw with the paraprotein panel: the serum M-protein in g/dL (0 when not
        detected), or for light-chain-only disease the difference between involved and
        uninvolved free light chain (mg/L), with the kappa/lambda ratio.
        """
        if patient_id not in self._assessments:
            self._assessments[patient_id] = self._read_assessments(patient_id)
        return self._assessments[patient_id]

    def _read_assessments(self, patient_id: str) -> list[Measurement]:
        isotype = self.fact(patient_id, "isotype")
        light = self.fact(patient_id, "light_chain")
        if isotype is None or light is None:
            return []
        by_time: dict[dt.datetime, dict[str, LabPoint]] = {}
        for analyte in (_MPROTEIN, _KAPPA, _LAMBDA, _RATIO):
            for point in self._labs.get((patient_id, analyte), []):
                by_time.setdefault(point.time, {})[analyte] = point
        out = []
        kappa_type = light.value == "kappa"
        for time in sorted(by_time):
            panel = by_time[time]
            if not all(a in panel for a in (_KAPPA, _LAMBDA, _RATIO)):
                continue
            kappa, lam, ratio = panel[_KAPPA], panel[_LAMBDA], panel[_RATIO]
            ids: tuple[str, ...]
            if isotype.value == "light chain":
                value = abs(kappa.value - lam.value) if kappa_type else abs(lam.value - kappa.value)
                ids = (kappa.lab_id, lam.lab_id, ratio.lab_id)
            else:
                mprotein = panel.get(_MPROTEIN)
                if mprotein is None:
                    continue
                value = convert_unit(mprotein.value, mprotein.unit, "g/dL")
                ids = (mprotein.lab_id, ratio.lab_id)
            out.append(Measurement(time.date(), float(value), float(ratio.value), ids))
        return out


def _lab_series(labs: pl.DataFrame) -> dict[tuple[str, str], list[LabPoint]]:
    """Cleaned lab values per (patient, analyte), in time order."""
    if labs.is_empty():
        return {}
    cleaned = (
        labs.with_columns(
            pl.when(pl.col("value_num").is_not_null())
            .then(pl.col("value_num"))
            .when(pl.col("value_text").str.to_lowercase().str.strip_chars() == "not detected")
            .then(pl.lit(0.0))
            .alias("value"),
            (pl.col("flag") == "corrected").fill_null(False).alias("_corrected"),
        )
        .filter(pl.col("value").is_not_null())
        # A flagged correction replaces the value first reported for the same draw.
        .sort(
            ["patient_id", "analyte_name", "time", "_corrected", "lab_id"],
            descending=[False, False, False, True, False],
        )
        .unique(subset=["patient_id", "analyte_name", "time"], keep="first", maintain_order=True)
    )
    series: dict[tuple[str, str], list[LabPoint]] = {}
    for pid, analyte, time, value, unit, lab_id in cleaned.select(
        "patient_id", "analyte_name", "time", "value", "unit", "lab_id"
    ).iter_rows():
        series.setdefault((pid, analyte), []).append(LabPoint(time, float(value), unit, lab_id))
    return series
