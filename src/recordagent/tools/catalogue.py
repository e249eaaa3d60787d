"""The lab catalogue: a lens over the record's own lab names, codes and units.

Each analyte (a *concept*) has names and synonyms a model may type, the codes sources use for it,
a canonical unit, and what unit conversion needs beyond UCUM: the molar mass (mass ↔ molar
concentration), the valence (equivalents ↔ moles) and hand factors for what UCUM cannot express
(``IU/L`` is ``U/L`` for enzymes by laboratory convention). Everything else about units is
:mod:`recordagent.tools.units`.

The catalogue never gates: an analyte it lacks is still reached by the record's own name and
code (:mod:`recordagent.tools.lab_resolution`). A user catalogue file (settings
``tools.lab_catalogue_paths``) merges over the packaged one: an entry whose canonical name is a
packaged analyte's replaces it, any other entry is added.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from recordagent.errors import UserError, validation_problems
from recordagent.tools.units import unit_factor

__all__ = [
    "GROUPS",
    "Analyte",
    "Group",
    "LabCatalogue",
    "code_keys",
    "lab_catalogue",
    "load_lab_catalogue",
    "name_key",
    "packaged_lab_catalogue",
]

Group = Literal[
    "chemistry", "haematology", "lipids", "diabetes", "renal", "liver", "coagulation",
    "thyroid", "cardiac", "inflammatory", "myeloma", "blood gas", "urine", "vitals", "other",
]  # fmt: skip
GROUPS: tuple[str, ...] = get_args(Group)

_NON_WORD = re.compile(r"[\W_]+")
# Code systems written before a code: 'LOINC:2160-0', 'http://loinc.org|2160-0', 'LN 2160-0'.
_CODE_SYSTEM = re.compile(r"^(?:https?://loinc\.org\||loinc[:\s|]+|ln[:\s]+)", re.IGNORECASE)


def name_key(name: str) -> str:
    """A name for matching: case, width, punctuation and spacing do not count."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()


def code_keys(code: str) -> tuple[str, str]:
    """A code for matching, whole and without its namespace ('MIMIC:50912' → '50912')."""
    key = _CODE_SYSTEM.sub("", code.strip()).casefold().replace(" ", "")
    tail = re.split(r"[:|]", key)[-1]
    return key, tail


class Analyte(BaseModel):
    """One analyte of the catalogue."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] = Field(min_length=1, description="Canonical name first, then synonyms.")
    loinc: list[str] = Field(
        default_factory=list, description="Codes sources use for it (LOINC, or local codes)."
    )
    unit: str = Field(min_length=1, description="Canonical unit values are reported in.")
    molar_mass: float | None = Field(
        default=None, gt=0, description="g/mol; allows mass ↔ molar concentration conversion."
    )
    valence: int | None = Field(
        default=None, ge=1, le=3, description="Charge of the ion; allows mEq ↔ mmol conversion."
    )
    convert: dict[str, float] = Field(
        default_factory=dict,
        description="Factors UCUM cannot express, from another unit: canonical = value * factor.",
    )
    group: Group = Field(default="other", description="Clinical group, for listing.")
    _factors: dict[str | None, float | None] = PrivateAttr(default_factory=dict)

    @field_validator("names")
    @classmethod
    def _names_have_words(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name_key(name):
                raise ValueError(f"name {name!r} has no letters or digits")
        return names

    @field_validator("convert")
    @classmethod
    def _positive(cls, factors: dict[str, float]) -> dict[str, float]:
        for unit, factor in factors.items():
            if not factor > 0:
                raise ValueError(f"conversion factor for {unit!r} must be positive")
        return factors

    @property
    def name(self) -> str:
        """The canonical name."""
        return self.names[0]

    def factor(self, unit: str | None) -> float | None:
        """Factor from ``unit`` to the canonical unit, or None when not convertible.

        A value without a unit is taken to be in the canonical unit. Hand factors come first,
        then UCUM with this analyte's molar mass and valence.
        """
        if unit in self._factors:
            return self._factors[unit]
        factor: float | None
        if unit is None or not unit.strip():
            factor = 1.0
        else:
            hand = {_spelling(u): f for u, f in self.convert.items()}
            factor = hand.get(_spelling(unit))
            if factor is None:
                factor = unit_factor(
                    unit, self.unit, molar_mass=self.molar_mass, valence=self.valence
                )
        self._factors[unit] = factor
        return factor

    def to_canonical(self, value: float, unit: str | None) -> float | None:
        """``value`` in the canonical unit, or None when ``unit`` is not convertible."""
        factor = self.factor(unit)
        return None if factor is None else value * factor


def _spelling(unit: str) -> str:
    return unit.strip().lower().replace("μ", "u").replace("µ", "u").replace(" ", "")


class LabCatalogue(BaseModel):
    """Every analyte, with lookups by name, synonym or code.

    Names match whatever their case, punctuation and spacing; codes match whatever their case
    and code-system prefix. No name and no code belongs to two analytes.
    """

    model_config = ConfigDict(extra="forbid")

    analytes: list[Analyte]
    _by_name: dict[str, Analyte] = PrivateAttr(default_factory=dict)
    _by_code: dict[str, Analyte] = PrivateAttr(default_factory=dict)
    _concepts: dict[tuple[str, str | None], Analyte | None] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Index names and codes; a name or code claimed twice is an error."""
        for i, analyte in enumerate(self.analytes):
            for name in analyte.names:
                other = self._by_name.setdefault(name_key(name), analyte)
                if other is not analyte:
                    raise ValueError(
                        f"analytes.{i} ({analyte.name!r}): name {name!r} already belongs to "
                        f"{other.name!r}"
                    )
            for code in analyte.loinc:
                other = self._by_code.setdefault(code_keys(code)[0], analyte)
                if other is not analyte:
                    raise ValueError(
                        f"analytes.{i} ({analyte.name!r}): code {code!r} already belongs to "
                        f"{other.name!r}"
                    )

    def by_name(self, name: str) -> Analyte | None:
        """The analyte with this name or synonym."""
        return self._by_name.get(name_key(name))

    def by_code(self, code: str | None) -> Analyte | None:
        """The analyte with this code ('LOINC:' and similar prefixes allowed)."""
        return None if not code else self._by_code.get(code_keys(code)[0])

    def find(self, text: str) -> Analyte | None:
        """The analyte ``text`` names: a name, a synonym or a code."""
        return self.by_name(text) or self.by_code(text)

    def concept_of(self, name: str, code: str | None) -> Analyte | None:
        """The analyte a record's series is: by its code, else (code unknown here) by its name.

        A catalogued code decides: a series named 'Creatinine' coded as urine creatinine is not
        serum creatinine. Answers are remembered: a record has few series, asked about often.
        """
        memo = self._concepts
        key = (name, code)
        if key not in memo:
            by_code = self.by_code(code)
            memo[key] = by_code if by_code is not None else self.by_name(name)
        return memo[key]

    def names(self) -> list[str]:
        """Every name and synonym."""
        return [n for a in self.analytes for n in a.names]

    def merged(self, entries: Iterable[Analyte]) -> LabCatalogue:
        """This catalogue with ``entries`` over it: same canonical name replaces, else added."""
        merged = {name_key(a.name): a for a in self.analytes}
        for entry in entries:
            merged[name_key(entry.name)] = entry
        return LabCatalogue(analytes=list(merged.values()))


def _read(raw: str, where: str) -> list[Analyte]:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UserError(f"lab catalogue {where}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("analytes"), list):
        raise UserError(f"lab catalogue {where}: expected a mapping with an 'analytes' list")
    try:
        return LabCatalogue.model_validate(data).analytes
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, whole="(catalogue)"))
        raise UserError(f"lab catalogue {where}: {problems}") from exc


def load_lab_catalogue(paths: Sequence[str | Path] = ()) -> LabCatalogue:
    """The packaged catalogue with the files at ``paths`` merged over it, in order.

    Raises:
        UserError: A file is missing, is not YAML, or has a bad entry (named by its position
            and field), or two analytes claim one name or code.
    """
    packaged = (resources.files("recordagent.tools") / "lab_catalogue.yaml").read_text("utf-8")
    catalogue = LabCatalogue(analytes=_read(packaged, "(packaged)"))
    for path in map(Path, paths):
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"lab catalogue {path}: cannot read it ({exc})") from exc
        try:
            catalogue = catalogue.merged(_read(raw, str(path)))
        except ValidationError as exc:
            problems = "; ".join(validation_problems(exc, located=False))
            raise UserError(f"lab catalogue {path}: {problems}") from exc
    return catalogue


@cache
def packaged_lab_catalogue() -> LabCatalogue:
    """The packaged catalogue, read once per process on first use."""
    return load_lab_catalogue()


def lab_catalogue(paths: Sequence[str | Path] = ()) -> LabCatalogue:
    """The catalogue for these settings' paths, read once per set of files and their mtimes."""
    if not paths:
        return packaged_lab_catalogue()
    stamps = []
    for path in map(Path, paths):
        try:
            stamps.append((str(path), path.stat().st_mtime_ns))
        except OSError as exc:
            raise UserError(f"lab catalogue {path}: cannot read it ({exc})") from exc
    return _cached_catalogue(tuple(stamps))


@cache
def _cached_catalogue(stamps: tuple[tuple[str, int], ...]) -> LabCatalogue:
    return load_lab_catalogue([p for p, _ in stamps])
