"""Lab units: the UCUM code of a reported spelling, unit equality and conversion factors.

Built on `ucumvert <https://github.com/dalito/ucumvert>`_: its grammar (generated from the
official ``ucum-essence.xml``, which it ships) decides what is UCUM, and its pint registry
gives the factors. Nothing here is a hand-written factor table; the tables below only map
clinical spellings that are *not* UCUM, or that are UCUM with another meaning, onto UCUM.

How a reported spelling becomes a UCUM code (:func:`ucum_code`):

1. Clean: Unicode NFKC (µ and μ become ``u``, ``m²`` becomes ``m2``), trim, single spaces.
   Placeholders (``N/A``, ``units``, ``+/-``) are not units.
2. Clinical idioms that are valid UCUM with another meaning are rewritten *before* trying the
   spelling as UCUM: ``K/uL`` (kelvin per µL), ``G/L`` (gauss), ``T/L`` (tesla), ``m/uL``
   (metre), ``pH`` (picohenry), ``mg/24.h`` (mg·h/24), ``mL/min/1.73.m2`` (1·73 m²), ``ft``
   (femtotonne). Counts per volume (``thou/uL``, ``x10E3/uL``, ``#/hpf``, ``cells/uL``) go
   the same way.
3. The spelling as reported, if it is UCUM.
4. Word by word aliases for non-UCUM symbols (``mEq``, ``IU``, ``mcg``, ``hrs``, ``sec``,
   ``mmHg``, ``lb``…) outside ``{annotations}`` and ``[bracketed atoms]``.
5. A spelling in capitals only (``MG/DL``, ``MMOL/L``, ``MIU/ML``, ``K/UL``), as some
   laboratory systems write every unit, is read word by word from a table of clinical unit
   words (as UCUM's own case-insensitive codes are); a word outside the table leaves it unread.
6. Otherwise case is folded only for a whole one-word spelling (``RATIO``, ``Sec``, ``HRS``)
   and for the count word of a count per volume (``THOU/uL``): within a mixed-case compound
   every letter keeps its case, because UCUM letters change meaning with it (M mega / m milli,
   G giga / g gram, K kelvin / k kilo, U unit / u micro).

Codes are then normalised without changing meaning: ``10^`` → ``10*``, litre ``l`` → ``L``,
and a ``{cells}`` label on a count is dropped (``10*3{cells}/uL`` is ``10*3/uL``, as
``cells/uL`` is ``/uL``).

Conversion (:func:`unit_factor`) follows UCUM except where UCUM is clinically wrong:
annotations and arbitrary units (``[IU]``, ``[arb'U]``…) must match on both sides, since
UCUM reads ``{1.73_m2}`` and ``{score}`` as 1 and ucumvert reads ``[IU]`` as 1; equivalents
are their own dimension unless a valence is given (UCUM's ``eq = mol`` is wrong for Mg²⁺ and
Ca²⁺), as are osmoles; units on an interval scale with an offset or a logarithm (``Cel``,
``[degF]``, ``[pH]``) only convert to themselves, since no factor is right for them; mass and
amount of substance meet only through a given molar mass.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["display_unit", "same_unit", "ucum_code", "unit_factor"]

# Units are short; a long string is free text, and Earley parsing of it would be slow.
_MAX_LENGTH = 64

# Placeholders exports write in the unit column (case-folded). 'N/A' must be here: it is valid
# UCUM (newton per ampere). MIMIC writes 'units' both for urine pH and for antibody titres.
_NOT_UNITS = frozenset(
    {
        *("n/a", "na", "nan", "none", "null", "nil", "-", "--", "?", "unknown", "unk", "+/-"),
        *("units", "unit", "see comment", "see note", "text", "no unit", "no units"),
    }
)

# Whole spellings that are valid UCUM with another meaning, or need a whole-string reading.
_WHOLE_ALIASES: dict[str, str] = {
    "pH": "[pH]", "ft": "[ft_i]", "U/g/Hb": "U/g{Hb}", "U/gHb": "U/g{Hb}", "U/g Hb": "U/g{Hb}",
    "mm Hg": "mm[Hg]", "cm H2O": "cm[H2O]", "°C": "Cel", "°F": "[degF]",
}  # fmt: skip

# Whole one-word spellings whose case carries no meaning (keys case-folded).
_FOLDED_WORDS: dict[str, str] = {
    "ratio": "{ratio}", "index": "{index}", "score": "{score}", "inr": "{INR}",
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "mins": "min", "minute": "min", "minutes": "min", "day": "d", "days": "d",
    "week": "wk", "weeks": "wk", "yr": "a", "yrs": "a", "year": "a", "years": "a",
    "percent": "%", "mmhg": "mm[Hg]", "cmh2o": "cm[H2O]", "degc": "Cel", "degf": "[degF]",
    "lb": "[lb_av]", "lbs": "[lb_av]", "in": "[in_i]", "inch": "[in_i]", "inches": "[in_i]",
}  # fmt: skip

# Non-UCUM symbols inside a compound spelling, in exact case (module docstring, step 5); the
# lower-case words of _FOLDED_WORDS count too.
_TOKEN_ALIASES: dict[str, str] = {
    "Ratio": "{ratio}", "Sec": "s", "Hr": "h",
    "mcg": "ug", "mcL": "uL", "mcmol": "umol", "gm": "g", "cc": "mL", "cumm": "mm3",
    "Eq": "eq", "mEq": "meq", "uEq": "ueq", "Osm": "osm", "mOsm": "mosm",
    "IU": "[IU]", "iu": "[IU]", "kIU": "k[IU]", "mIU": "m[IU]", "miu": "m[IU]",
    "uIU": "u[IU]", "uiu": "u[IU]", "nIU": "n[IU]",
    "hpf": "[HPF]", "HPF": "[HPF]", "lpf": "[LPF]", "LPF": "[LPF]",
    "mmHg": "mm[Hg]", "ft": "[ft_i]", "oz": "[oz_av]",
    "degC": "Cel", "°C": "Cel", "degF": "[degF]", "°F": "[degF]",
}  # fmt: skip

# Words of all-capitals spellings (module docstring, step 5) and what they mean.
_UPPER_CASE_WORDS: dict[str, str] = {
    "G": "g", "KG": "kg", "MG": "mg", "UG": "ug", "MCG": "ug", "NG": "ng", "PG": "pg",
    "L": "L", "DL": "dL", "ML": "mL", "UL": "uL", "MCL": "uL", "NL": "nL", "FL": "fL",
    "MOL": "mol", "MMOL": "mmol", "UMOL": "umol", "NMOL": "nmol", "PMOL": "pmol",
    "EQ": "eq", "MEQ": "meq", "OSM": "osm", "MOSM": "mosm",
    "U": "U", "KU": "kU", "MU": "mU", "IU": "[IU]", "KIU": "k[IU]", "MIU": "m[IU]",
    "UIU": "u[IU]", "K": "K", "M": "M", "T": "T", "THOU": "thou", "MIL": "mil",
    "S": "s", "SEC": "s", "MIN": "min", "H": "h", "HR": "h", "HRS": "h", "D": "d",
    "MM": "mm", "CM": "cm", "M2": "m2", "HPF": "[HPF]", "LPF": "[LPF]", "MMHG": "mm[Hg]",
    "PH": "[pH]",
}  # fmt: skip

# Litre is both 'l' and 'L' in UCUM; codes are given with 'L' so equal units read equal.
_LITRE_TOKENS: dict[str, str] = {
    "l": "L", "dl": "dL", "cl": "cL", "ml": "mL", "ul": "uL", "nl": "nL", "pl": "pL", "fl": "fL",
}  # fmt: skip

# The count word before '/volume': power of ten it stands for. K, m, G and T are count words
# only before a volume or a microscope field, never in general (m/s is metre per second).
_COUNT_WORDS: dict[str, int] = {
    "": 0, "#": 0, "{#}": 0, "{cells}": 0, "{cell}": 0,
    "K": 3, "k": 3, "m": 6, "M": 6, "G": 9, "T": 12,
}  # fmt: skip
_FOLDED_COUNT_WORDS: dict[str, int] = {
    "cells": 0, "cell": 0, "count": 0, "thou": 3, "thousand": 3, "th": 3,
    "mil": 6, "mill": 6, "million": 6, "millions": 6,
}  # fmt: skip
_COUNT_DENOMINATORS = frozenset({"L", "dL", "mL", "uL", "nL", "pL", "mm3", "[HPF]", "[LPF]", "kg"})
# 'x10E3', '10^3', '10E9', '×10*9', '10**9', 'x10(9)': a power of ten written by a LIS.
_POWER_OF_TEN = r"[xX×*]?\s*10\s*(?:\^|\*\*|\*|[eE])\s*\(?([+-]?\d{1,2})\)?"
_PER_1_73_M2 = r"/\(?1[.,]73\s*[._]?\s*(?:m2|m\^2|m\*\*2|sq\.?\s*m|m\.m)\)?$"
_PER_24_H = r"/\(?24\s*\.?\s*(?:h|hr|hrs|hours?)\)?(?=$|[/.])"
_SUPERSCRIPTS = ("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_ANNOTATION_OR_ATOM = r"(\{[^{}]*\}|\[[^\[\]]*\])"
_WORD = r"[A-Za-z°#]+"
# 'm^2' and 'm**2' are m2 in UCUM; '10^3' is a UCUM atom and keeps its caret.
_EXPONENT = r"(?<=[A-Za-z\]])(?:\^|\*\*)(?=[+-]?\d)"

# The parser and pint's registry keep caches that are not made for concurrent first use
# (runners build passages in worker threads); every call into them holds this lock. Answers
# are cached above it, so the lock is taken once per distinct unit.
_LIBRARY = threading.RLock()

# pint quantities come from ucumvert's registry, which has no type information.
_Quantity = Any


# --- spelling → UCUM code ------------------------------------------------------------------


def ucum_code(unit: str | None) -> str | None:
    """The UCUM expression of a reported unit spelling (aliases applied).

    Args:
        unit: A unit as an export wrote it, e.g. ``'K/uL'``, ``'mEq/L'``, ``'mL/min/1.73m2'``.

    Returns:
        A valid UCUM code (``'10*3/uL'``, ``'meq/L'``, ``'mL/min/{1.73_m2}'``), or None when
        the spelling is not a unit this module can read; ``''``, whitespace and None give None.
    """
    if not isinstance(unit, str):
        return None
    return _ucum_code(unit)


@lru_cache(maxsize=4096)
def _ucum_code(unit: str) -> str | None:
    text = _clean(unit)
    if not text or len(text) > _MAX_LENGTH or text.casefold() in _NOT_UNITS:
        return None
    for candidate in _candidates(text):
        if candidate is not None and _is_ucum(candidate):
            return _normalise_code(candidate)
    return None


def _clean(unit: str) -> str:
    # '10⁹' must become '10^9', not NFKC's '109'.
    text = re.sub(
        r"10([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)",
        lambda m: "10^" + m[1].translate(str.maketrans(*_SUPERSCRIPTS)),
        unit,
    )
    text = unicodedata.normalize("NFKC", text).replace("μ", "u")
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s*([/.*^()])\s*", r"\1", text)


def _candidates(text: str) -> list[str | None]:
    """Readings of a cleaned spelling, most trusted first (steps 2-6 of the module doc)."""
    idiom = _rewrite_idioms(text)
    upper = _from_upper_case(idiom)
    return [
        _WHOLE_ALIASES.get(text),
        _count_per_volume(text),
        None if upper is None else _count_per_volume(upper),
        upper,
        idiom if idiom != text else None,
        text,
        _rewrite_tokens(idiom),
        _FOLDED_WORDS.get(text.casefold()),
    ]


def _from_upper_case(text: str) -> str | None:
    """An all-capitals spelling ('MG/DL', 'MMOL/L', 'MIU/ML') read word by word, or None.

    Laboratory systems that write only capitals mean the clinical units, as UCUM's own
    case-insensitive codes do; a word outside the table leaves the spelling unread.
    """
    if any(c.islower() for c in text) or sum(c.isalpha() for c in text) < 2:
        return None
    parts = re.split(_ANNOTATION_OR_ATOM, text)
    words = [re.findall(_WORD, part) for i, part in enumerate(parts) if not i % 2]
    if any(w not in _UPPER_CASE_WORDS for found in words for w in found):
        return None
    return "".join(
        part if i % 2 else re.sub(_WORD, lambda m: _UPPER_CASE_WORDS[m[0]], part)
        for i, part in enumerate(parts)
    )


def _rewrite_idioms(text: str) -> str:
    text = re.sub(_PER_1_73_M2, "/{1.73_m2}", text, flags=re.IGNORECASE)
    return re.sub(_PER_24_H, "/(24.h)", text, flags=re.IGNORECASE)


def _count_per_volume(text: str) -> str | None:
    """``'K/uL'`` → ``'10*3/uL'``, ``'#/hpf'`` → ``'/[HPF]'``; None when not a count."""
    match = re.fullmatch(r"([^/]*)/([^/]+)", text)
    if match is None:
        return None
    numerator = match[1].strip()
    denominator = _from_upper_case(match[2]) or _rewrite_tokens(match[2])
    if denominator not in _COUNT_DENOMINATORS:
        return None
    if numerator in ("G", "T") and denominator != "L":
        return None  # giga and tera counts are SI, per litre; 'G/DL' is grams per decilitre
    power = _COUNT_WORDS.get(numerator, _FOLDED_COUNT_WORDS.get(numerator.casefold()))
    if power is None:
        ten = re.fullmatch(_POWER_OF_TEN, numerator)
        power = int(ten[1]) if ten else None
    if power is None:
        return None
    return f"10*{power}/{denominator}" if power else f"/{denominator}"


def _rewrite_tokens(text: str) -> str:
    """Replace non-UCUM symbols word by word, leaving annotations and [atoms] alone."""
    parts = re.split(_ANNOTATION_OR_ATOM, text)
    return "".join(
        part if i % 2 else re.sub(_EXPONENT, "", re.sub(_WORD, _token_alias, part))
        for i, part in enumerate(parts)
    )


def _token_alias(word: re.Match[str]) -> str:
    return _TOKEN_ALIASES.get(word[0]) or _FOLDED_WORDS.get(word[0], word[0])


def _normalise_code(code: str) -> str:
    """Same unit, one spelling: ``10^`` → ``10*``, ``l`` → ``L``, ``{cells}`` dropped."""
    parts = re.split(_ANNOTATION_OR_ATOM, code.replace("10^", "10*"))
    normal = "".join(
        part if i % 2 else re.sub(_WORD, lambda m: _LITRE_TOKENS.get(m[0], m[0]), part)
        for i, part in enumerate(parts)
    )
    normal = re.sub(
        r"^\{cells?\}(?=/)|(?<=[0-9A-Za-z\]])\{cells?\}", "", normal, flags=re.IGNORECASE
    )
    return normal if _is_ucum(normal) else code


# --- the UCUM library, loaded on first use --------------------------------------------------


@lru_cache(maxsize=1)
def _parser() -> Any:
    # ucumvert parses ucum-essence.xml on import (~0.3 s): only import when first needed.
    from ucumvert import get_ucum_parser

    return get_ucum_parser()


@lru_cache(maxsize=1)
def _registry() -> Any:
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


@lru_cache(maxsize=1)
def _atom_classes() -> tuple[frozenset[str], frozenset[str]]:
    """UCUM atoms that are arbitrary, and that are special (offset or logarithmic scale)."""
    from ucumvert.xml_util import get_units_with_full_definition

    units = get_units_with_full_definition()
    arbitrary = frozenset(u.code_cs for u in units if u.is_arbitrary)
    special = frozenset(u.code_cs for u in units if u.is_special)
    return arbitrary, special


@lru_cache(maxsize=4096)
def _tree(code: str) -> Any | None:
    with _LIBRARY:
        try:
            return _parser().parse(code)
        except Exception:  # lark raises several error types; any of them means "not UCUM"
            return None


def _is_ucum(code: str) -> bool:
    return len(code) <= _MAX_LENGTH and _tree(code) is not None


@dataclass(frozen=True)
class _Unit:
    """What conversion needs to know about one UCUM code."""

    quantity: _Quantity | None  # one of the unit in pint; None when ucumvert cannot build it
    kinds: tuple[tuple[str, int], ...]  # annotations, arbitrary atoms, osm: must match
    eq: int  # exponent of equivalents, bridged to mol only by a valence
    special: bool  # offset or logarithmic scale: converts to itself only


@lru_cache(maxsize=4096)
def _unit(code: str) -> _Unit:
    arbitrary, special = _atom_classes()
    atoms: Counter[str] = Counter()
    _collect(_tree(code), 1, atoms)
    kinds = tuple(
        sorted(
            (atom, n)
            for atom, n in atoms.items()
            if n and (atom.startswith("{") or atom in arbitrary or atom == "osm")
        )
    )
    return _Unit(
        quantity=_quantity(code),
        kinds=kinds,
        eq=atoms["eq"],
        special=any(atom in special for atom in atoms),
    )


def _collect(node: Any, sign: int, atoms: Counter[str]) -> None:
    """Add each unit atom and annotation of a parse tree with its net exponent."""
    from lark import Token, Tree

    if isinstance(node, Token):
        if node.type == "ANNOTATION":
            atoms[str(node).casefold()] += sign  # a label: its case means nothing
        elif node.type.startswith("UNIT_"):
            atoms[str(node)] += sign
        return
    if not isinstance(node, Tree):
        return
    children = node.children
    if node.data == "term" and len(children) == 3:  # left, operator, right
        _collect(children[0], sign, atoms)
        _collect(children[2], -sign if children[1] == "/" else sign, atoms)
    elif node.data == "main_term" and len(children) == 2:  # '/' term
        _collect(children[1], -sign, atoms)
    elif node.data == "annotatable" and getattr(children[-1], "type", "") == "EXPONENT":
        _collect(children[0], sign * int(str(children[-1])), atoms)
    else:
        for child in children:
            _collect(child, sign, atoms)


def _quantity(code: str) -> _Quantity | None:
    from ucumvert import UcumToPintTransformer

    tree = _tree(code)
    with _LIBRARY:
        registry = _registry()
        try:
            quantity = UcumToPintTransformer(ureg=registry).transform(tree)
        except Exception:  # ucumvert lacks a few atoms ([pH]); such units convert to themselves
            return None
    # A code of annotations only ('{score}') comes back as the bare token: it is the number 1.
    return quantity if isinstance(quantity, registry.Quantity) else registry.Quantity(1)


# --- conversion -----------------------------------------------------------------------------


def unit_factor(
    from_unit: str | None,
    to_unit: str | None,
    *,
    molar_mass: float | None = None,
    valence: int | None = None,
) -> float | None:
    """Factor ``f`` with ``value_in_to = value_in_from * f``, or None when not convertible.

    Two spellings of the same unit give 1.0 even when neither is UCUM (``'furlongs'`` to
    ``'furlongs'``); two missing units (None, ``''``) are the same too.

    Args:
        from_unit: The unit a value is in.
        to_unit: The unit wanted.
        molar_mass: g/mol of the analyte; without it mass and molar concentrations do not
            convert (creatinine 113.12: ``mg/dL`` → ``umol/L`` is 88.4).
        valence: Charge of the ion (its sign is ignored); without it equivalents do not convert
            to moles (Mg²⁺, valence 2: 1 mEq/L is 0.5 mmol/L).

    Returns:
        A positive, finite factor rounded to 13 significant digits, or None.
    """
    if not (_is_text_or_none(from_unit) and _is_text_or_none(to_unit)):
        return None
    if molar_mass is not None and not (isinstance(molar_mass, int | float) and molar_mass > 0):
        molar_mass = None
    if valence is not None and not (isinstance(valence, int) and valence):
        valence = None
    return _unit_factor(from_unit, to_unit, molar_mass, valence)


def same_unit(a: str | None, b: str | None) -> bool:
    """True when ``a`` and ``b`` are the same unit: ``'K/uL'``, ``'10*3/uL'``, ``'10^9/L'``."""
    return unit_factor(a, b) == 1.0


def _is_text_or_none(unit: object) -> bool:
    return unit is None or isinstance(unit, str)


@lru_cache(maxsize=8192)
def _unit_factor(
    from_unit: str | None, to_unit: str | None, molar_mass: float | None, valence: int | None
) -> float | None:
    from_code, to_code = ucum_code(from_unit), ucum_code(to_unit)
    if from_code is None or to_code is None:
        both_unread = from_code is None and to_code is None
        return 1.0 if both_unread and _clean(from_unit or "") == _clean(to_unit or "") else None
    if from_code == to_code:
        return 1.0
    try:
        factor = _ucum_factor(_unit(from_code), _unit(to_code), molar_mass, valence)
    except Exception:  # pint raises for dimension and offset errors; not convertible
        return None
    if factor is None or not (math.isfinite(factor) and factor > 0):
        return None
    return float(f"{factor:.13g}")  # drops float noise: 10*3/uL → /nL is 1.0, not 1.0000000002


def _ucum_factor(
    source: _Unit, target: _Unit, molar_mass: float | None, valence: int | None
) -> float | None:
    if source.special or target.special or source.kinds != target.kinds:
        return None
    if source.quantity is None or target.quantity is None:
        return None
    scale = 1.0
    if source.eq != target.eq:
        if valence is None:
            return None
        # 1 eq is 1/valence mol; the registry (like UCUM) counts it as 1 mol.
        scale = float(abs(valence)) ** (target.eq - source.eq)
    with _LIBRARY:
        ratio = source.quantity / target.quantity
        if not ratio.dimensionless and molar_mass is not None:
            per_mole = _registry().Quantity(molar_mass, "gram / mole")
            ratio = next(
                (r for r in (ratio / per_mole, ratio * per_mole) if r.dimensionless), ratio
            )
        if not ratio.dimensionless:
            return None
        return float(ratio.to("dimensionless").magnitude) * scale


# --- display --------------------------------------------------------------------------------

_DISPLAY: tuple[tuple[str, str], ...] = (
    (r"\{1\.73_m2\}", "1.73m²"),
    (r"\(24\.h\)", "24h"),
    (r"10\*([+-]?\d+)", r"10^\1"),
    (r"mm\[Hg\]", "mmHg"),
    (r"cm\[H2O\]", "cmH2O"),
    (r"\[degF\]", "°F"),
    (r"^Cel$", "°C"),
    (r"\[(lb|oz)_av\]", r"\1"),
    (r"\[(in|ft)_i\]", r"\1"),
    (r"(?<![A-Za-z])u(?=[A-Za-z\[])", "µ"),
    (r"(?<=[a-zµ])eq\b|^eq\b", "Eq"),
    (r"(?<=[a-zµ])osm\b|^osm\b", "Osm"),
    (r"\[([^\[\]]+)\]", r"\1"),
    (r"(?<=[A-Za-z0-9\]])\{([^{}]+)\}", r" \1"),
    (r"\{([^{}]+)\}", r"\1"),
)


@lru_cache(maxsize=1024)
def display_unit(unit: str) -> str:
    """A readable spelling of a unit, for a model or a person.

    A unit that reads as UCUM is shown as clinicians write it, one spelling per unit whatever
    the source wrote: ``'10*3/uL'``, ``'K/uL'`` and ``'x10E3/uL'`` all show as ``'10^3/µL'``;
    ``'mm[Hg]'`` as ``'mmHg'``, ``'meq/L'`` as ``'mEq/L'``, ``'Cel'`` as ``'°C'``,
    ``'{ratio}'`` as ``'ratio'``, ``'mL/min/{1.73_m2}'`` as ``'mL/min/1.73m²'``. Any other
    text is kept as reported, trimmed with single spaces.

    Args:
        unit: The unit as reported or as a UCUM code.

    Returns:
        The spelling to show; ``''`` for blank input.
    """
    if not isinstance(unit, str):
        return ""
    code = ucum_code(unit)
    if code is None:
        return re.sub(r"\s+", " ", unit).strip()
    for pattern, replacement in _DISPLAY:
        code = re.sub(pattern, replacement, code)
    return code
