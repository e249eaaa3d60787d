"""The lab catalogue: analyte names, synonyms, LOINC codes, canonical units and conversions."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator

__all__ = ["Analyte", "LabCatalogue", "load_lab_catalogue", "packaged_lab_catalogue"]


class Analyte(BaseModel):
    """One analyte of the catalogue."""

    names: list[str] = Field(min_length=1, description="Canonical name first, then synonyms.")
    loinc: list[str] = Field(default_factory=list, description="Codes sources may use.")
    unit: str = Field(description="Canonical unit values are reported in.")
    convert: dict[str, float] = Field(
        default_factory=dict, description="Factor from another unit: canonical = value * factor."
    )

    @field_validator("convert")
    @classmethod
    def _positive(cls, factors: dict[str, float]) -> dict[str, float]:
        for unit, factor in factors.items():
            if not factor > 0:
                raise ValueError(f"conversion factor for {unit} must be positive")
        return factors

    @property
    def name(self) -> str:
        """The canonical name."""
        return self.names[0]

    def to_canonical(self, value: float, unit: str | None) -> float | None:
        """``value`` in the canonical unit, or None when ``unit`` is not convertible.

        Units match regardless of case, spaces and the micro sign's spelling (µ, μ, u).
        """
        if unit is None or _unit_key(unit) == _unit_key(self.unit):
            return value
        factors = {_unit_key(u): f for u, f in self.convert.items()}
        factor = factors.get(_unit_key(unit))
        return None if factor is None else value * factor

    def from_canonical(self, value: float, unit: str) -> float:
        """``value`` (canonical) expressed in ``unit``."""
        return value if unit == self.unit else value / self.convert[unit]


def _unit_key(unit: str) -> str:
    return unit.strip().lower().replace("μ", "u").replace("µ", "u").replace(" ", "")


class LabCatalogue(BaseModel):
    """Every analyte, with lookups by name, synonym or code (case-insensitive)."""

    analytes: list[Analyte]

    def find(self, text: str) -> Analyte | None:
        """The analyte ``text`` names (a name, synonym or LOINC code), if any."""
        key = text.strip().lower()
        for analyte in self.analytes:
            if key in (n.lower() for n in analyte.names) or key in (
                c.lower() for c in analyte.loinc
            ):
                return analyte
        return None

    def close_matches(self, text: str, extra: Sequence[str] = ()) -> list[str]:
        """Names that look like ``text`` (for corrective errors)."""
        names = [n for a in self.analytes for n in a.names] + list(extra)
        lowered = {n.lower(): n for n in names}
        found = difflib.get_close_matches(text.lower(), list(lowered), n=4, cutoff=0.5)
        return list(dict.fromkeys(lowered[f] for f in found))


def load_lab_catalogue(path: Path | None = None) -> LabCatalogue:
    """The packaged catalogue, or one from ``path`` (same YAML layout)."""
    if path is None:
        raw = (resources.files("recordagent.tools") / "lab_catalogue.yaml").read_text("utf-8")
    else:
        raw = path.read_text(encoding="utf-8")
    return LabCatalogue.model_validate(yaml.safe_load(raw))


@cache
def packaged_lab_catalogue() -> LabCatalogue:
    """The packaged catalogue, read once per process on first use."""
    return load_lab_catalogue()
