"""Lab units: UCUM codes of reported spellings, equality and conversion factors."""

from __future__ import annotations

import math
import subprocess
import sys
import timeit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordagent.tools.units import display_unit, same_unit, ucum_code, unit_factor

THOUSAND_PER_UL = [
    "10*3/uL", "10^3/µL", "10^3/uL", "K/uL", "10*9/L", "10^9/L", "G/L", "/nL", "x10E3/uL",
    "thou/uL", "x10^9/L", "10E9/L", "10^3/μL", "THOU/uL", "k/uL", "10*3{cells}/uL", "×10⁹/L",
]  # fmt: skip
MILLION_PER_UL = ["10*6/uL", "m/uL", "M/uL", "10^12/L", "T/L", "x10E6/uL", "10^6/µL"]
PER_UL = ["/uL", "#/uL", "cells/uL", "cells/µL", "{cells}/uL", "/µL"]
EGFR = ["mL/min/{1.73_m2}", "mL/min/1.73m2", "mL/min/1.73 m2", "mL/min/1.73m^2", "mL/min/1.73 m²"]


def _pairs(spellings: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in spellings for b in spellings if a != b]


@pytest.mark.parametrize(
    ("a", "b"), _pairs(THOUSAND_PER_UL) + _pairs(MILLION_PER_UL) + _pairs(PER_UL) + _pairs(EGFR)
)
def test_spellings_of_one_unit_are_the_same_unit(a: str, b: str):
    assert unit_factor(a, b) == 1.0
    assert same_unit(a, b)


@pytest.mark.parametrize("count", PER_UL)
def test_a_count_per_microlitre_is_a_thousandth_of_a_count_per_nanolitre(count: str):
    assert unit_factor(count, "10*9/L") == pytest.approx(1e-3)
    assert unit_factor("10*9/L", count) == pytest.approx(1e3)
    assert not same_unit(count, "10*9/L")


def test_thousands_and_millions_per_microlitre_differ_by_a_thousand():
    assert unit_factor("K/uL", "m/uL") == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("K/uL", "10*3/uL"),  # UCUM would read kelvin per µL
        ("G/L", "10*9/L"),  # gauss per litre
        ("T/L", "10*12/L"),  # tesla per litre
        ("m/uL", "10*6/uL"),  # metre per µL: MIMIC's million per µL
        ("pH", "[pH]"),  # picohenry
        ("mg/24hr", "mg/(24.h)"),
        ("mg/24.h", "mg/(24.h)"),  # UCUM reads mg·h/24
        ("mL/min/1.73.m2", "mL/min/{1.73_m2}"),  # UCUM reads 1·73 m²
        ("mL/min/1,73m2", "mL/min/{1.73_m2}"),
        ("g/L", "g/L"),  # gram, not giga
        ("mg/dl", "mg/dL"),
        ("mmol/l", "mmol/L"),
        ("umol/l", "umol/L"),
        ("U/l", "U/L"),
        ("g/dl", "g/dL"),
        ("µmol/L", "umol/L"),  # micro sign
        ("μmol/L", "umol/L"),  # Greek mu
        ("µg/L", "ug/L"),
        ("mcg/dL", "ug/dL"),
        ("mcg/mL", "ug/mL"),
        ("nmol/L", "nmol/L"),
        ("pmol/L", "pmol/L"),
        ("mEq/L", "meq/L"),
        ("meq/L", "meq/L"),
        ("IU/L", "[IU]/L"),
        ("IU/l", "[IU]/L"),
        ("IU/mL", "[IU]/mL"),
        ("mIU/mL", "m[IU]/mL"),
        ("mIU/L", "m[IU]/L"),
        ("uIU/mL", "u[IU]/mL"),
        ("µIU/mL", "u[IU]/mL"),
        ("kU/L", "kU/L"),
        ("mU/L", "mU/L"),
        ("ng/dL", "ng/dL"),
        ("mm Hg", "mm[Hg]"),
        ("mmHg", "mm[Hg]"),
        ("mm[Hg]", "mm[Hg]"),
        ("°C", "Cel"),
        ("degC", "Cel"),
        ("Cel", "Cel"),
        ("sec", "s"),
        ("hrs", "h"),
        ("HRS", "h"),
        ("/min", "/min"),
        ("kg/m2", "kg/m2"),
        ("kg/m^2", "kg/m2"),
        ("kg/m²", "kg/m2"),
        ("%", "%"),
        ("fL", "fL"),
        ("fl", "fL"),
        ("pg", "pg"),
        ("lb", "[lb_av]"),
        ("in", "[in_i]"),
        ("mm/hr", "mm/h"),
        ("Ratio", "{ratio}"),
        ("ratio", "{ratio}"),
        ("RATIO", "{ratio}"),
        ("INR", "{INR}"),
        ("mOsm/kg", "mosm/kg"),
        ("#/hpf", "/[HPF]"),
        ("/hpf", "/[HPF]"),
        ("#/lpf", "/[LPF]"),
        ("U/g/Hb", "U/g{Hb}"),
        ("{copies}/mL", "{copies}/mL"),
        ("/a", "/a"),
        ("  mg/dL  ", "mg/dL"),
    ],
)
def test_ucum_code_of_clinical_spellings(text: str, code: str):
    assert ucum_code(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("MG/DL", "mg/dL"), ("MMOL/L", "mmol/L"), ("MIU/ML", "m[IU]/mL"), ("ML/MIN", "mL/min"),
        ("K/UL", "10*3/uL"), ("G/L", "10*9/L"), ("G/DL", "g/dL"), ("MEQ/L", "meq/L"),
        ("UMOL/L", "umol/L"), ("PH", "[pH]"), ("X10E3/UL", "10*3/uL"),
    ],
)  # fmt: skip
def test_an_all_capitals_spelling_is_read_as_the_clinical_unit(text: str, code: str):
    assert ucum_code(text) == code


@pytest.mark.parametrize(
    "text",
    [
        None, "", " ", "\t", "furlongs", "MPL", "GPL", "log10 copies/mL", "log10 IU/mL",
        "ng/mL FEU", "N/A", "n/a", "units", "+/-",
        "MG/FOO", "XYZ/DL",  # all capitals with a word outside the clinical table
        "x" * 200,
    ],
)  # fmt: skip
def test_not_a_unit_we_can_read(text: str | None):
    assert ucum_code(text) is None


@pytest.mark.parametrize(
    ("a", "b", "factor"),
    [
        ("g/L", "g/dL", 0.1),
        ("mg/dL", "g/L", 0.01),
        ("mg/L", "mg/dL", 0.1),
        ("ug/mL", "mg/L", 1.0),
        ("ng/mL", "ug/L", 1.0),
        ("pg/mL", "ng/L", 1.0),
        ("µmol/L", "mmol/L", 0.001),
        ("umol/L", "mmol/L", 0.001),
        ("μmol/L", "mmol/L", 0.001),
        ("kU/L", "U/L", 1000.0),
        ("lb", "kg", 0.45359237),
        ("in", "cm", 2.54),
        ("mm[Hg]", "kPa", 0.133322387415),
        ("hrs", "min", 60.0),
        ("mg/24hr", "mg/d", 1.0),
        ("mL/min/1.73m2", "L/h/{1.73_m2}", 0.06),
        ("%", "1", 0.01),
    ],
)
def test_factors(a: str, b: str, factor: float):
    assert unit_factor(a, b) == pytest.approx(factor, rel=1e-11)
    assert unit_factor(b, a) == pytest.approx(1 / factor, rel=1e-11)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("mL/min/{1.73_m2}", "mL/min"),  # eGFR is not creatinine clearance
        ("mL/min/1.73m2", "mL/min"),
        ("{score}", "%"),
        ("{score}", "1"),
        ("{#}", "{INR}"),
        ("{ratio}", "{score}"),
        ("{ratio}", "1"),
        ("{ratio}", "mg/mg"),
        ("{nominal}", "%"),
        ("{copies}/mL", "/mL"),
        ("IU/L", "U/L"),  # [IU] is arbitrary: not commensurable with enzyme units
        ("[IU]/L", "/L"),
        ("mOsm/kg", "mmol/kg"),  # osmoles are not moles
        ("ng/mL FEU", "ng/mL"),
        ("furlongs", "m"),
        ("mg/dL", "mmol/L"),  # needs a molar mass
        ("mEq/L", "mmol/L"),  # needs a valence
        ("g/L", "G/L"),  # gram vs giga
        ("mg/dL", "mL"),
        ("pH", "[pH]/L"),
        (None, "mg/dL"),
        ("", "mg/dL"),
    ],
)
def test_not_convertible(a: str | None, b: str | None):
    assert unit_factor(a, b) is None
    assert unit_factor(b, a) is None
    assert not same_unit(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("IU/L", "[IU]/L"),
        ("IU/L", "IU/l"),
        ("mIU/mL", "IU/L"),
        ("mIU/mL", "[IU]/L"),
        ("m[IU]/mL", "IU/L"),
        ("uIU/mL", "mIU/L"),
        ("µIU/mL", "m[IU]/L"),
        ("mEq/L", "meq/L"),
        ("mm Hg", "mmHg"),
        ("mmHg", "mm[Hg]"),
        ("Cel", "°C"),
        ("Cel", "degC"),
        ("sec", "s"),
        ("hrs", "h"),
        ("mm/hr", "mm/h"),
        ("mg/24hr", "mg/(24.h)"),
        ("Ratio", "ratio"),
        ("Ratio", "{ratio}"),
        ("{score}", "{score}"),
        ("furlongs", "furlongs"),
        ("ng/mL FEU", "ng/mL FEU"),
        ("MPL", "MPL"),
        ("log10 copies/mL", "log10 copies/mL"),
        ("[pH]", "pH"),
        (None, None),
        ("", " "),
    ],
)
def test_same_unit(a: str | None, b: str | None):
    assert unit_factor(a, b) == 1.0
    assert unit_factor(b, a) == 1.0
    assert same_unit(a, b)


@pytest.mark.parametrize(("a", "b"), [("Cel", "[degF]"), ("°C", "K"), ("Cel", "°F"), ("K", "Cel")])
def test_offset_units_have_no_factor(a: str, b: str):
    assert unit_factor(a, b) is None


def test_mass_and_molar_concentration_meet_through_a_molar_mass():
    creatinine = 113.12
    assert unit_factor("mg/dL", "umol/L", molar_mass=creatinine) == pytest.approx(88.4, rel=1e-3)
    assert unit_factor("umol/L", "mg/dL", molar_mass=creatinine) == pytest.approx(1 / 88.4, 1e-3)
    assert unit_factor("mmol/L", "mg/dL", molar_mass=180.16) == pytest.approx(18.016)
    assert unit_factor("mg/dL", "umol/L") is None
    # A molar mass does not bend units that need none.
    assert unit_factor("mg/dL", "g/L", molar_mass=creatinine) == pytest.approx(0.01)
    assert unit_factor("mg/dL", "mL", molar_mass=creatinine) is None


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_meaningless_molar_mass_converts_nothing(bad: float):
    assert unit_factor("mg/dL", "umol/L", molar_mass=bad) is None


def test_equivalents_meet_moles_through_a_valence():
    assert unit_factor("mEq/L", "mmol/L", valence=1) == 1.0  # sodium
    assert unit_factor("mEq/L", "mmol/L", valence=2) == 0.5  # magnesium
    assert unit_factor("mmol/L", "mEq/L", valence=2) == 2.0
    assert unit_factor("meq/L", "mmol/L", valence=-2) == 0.5  # the charge's sign is ignored
    assert unit_factor("mEq/L", "mmol/L") is None
    assert unit_factor("mEq/L", "mmol/L", valence=0) is None
    assert unit_factor("mEq/L", "ueq/mL") == 1.0  # no valence needed between equivalents
    # calcium: 1 mEq/L is 0.5 mmol/L is 2.004 mg/dL
    factor = unit_factor("mEq/L", "mg/dL", valence=2, molar_mass=40.08)
    assert factor == pytest.approx(2.004)


@pytest.mark.parametrize(
    ("unit", "shown"),
    [
        ("10*3/uL", "10^3/µL"),
        ("K/uL", "10^3/µL"),
        ("x10E3/uL", "10^3/µL"),
        ("10*9/L", "10^9/L"),
        ("m/uL", "10^6/µL"),
        ("umol/L", "µmol/L"),
        ("mEq/L", "mEq/L"),
        ("meq/L", "mEq/L"),
        ("mm[Hg]", "mmHg"),
        ("Cel", "°C"),
        ("[degF]", "°F"),
        ("{ratio}", "ratio"),
        ("mL/min/{1.73_m2}", "mL/min/1.73m²"),
        ("mg/(24.h)", "mg/24h"),
        ("m[IU]/mL", "mIU/mL"),
        ("u[IU]/mL", "µIU/mL"),
        ("mosm/kg", "mOsm/kg"),
        ("[lb_av]", "lb"),
        ("mg/dL", "mg/dL"),
        ("  ng/mL   FEU ", "ng/mL FEU"),
        ("furlongs", "furlongs"),
        ("", ""),
    ],
)
def test_display_unit(unit: str, shown: str):
    assert display_unit(unit) == shown


@pytest.mark.parametrize(
    "unit", THOUSAND_PER_UL + MILLION_PER_UL + PER_UL + EGFR + ["mEq/L", "IU/L", "mm Hg", "°C"]
)
def test_a_displayed_unit_reads_back_as_the_same_unit(unit: str):
    assert same_unit(display_unit(unit), unit)


def test_the_ucum_library_loads_on_first_use_not_on_import():
    code = "import sys, recordagent.tools.units; print('ucumvert' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_cached_conversion_takes_about_a_microsecond():
    unit_factor("mg/dL", "umol/L", molar_mass=113.12)
    runs = 20_000
    seconds = timeit.timeit(lambda: unit_factor("mg/dL", "umol/L", molar_mass=113.12), number=runs)
    assert seconds / runs < 20e-6  # ~0.3 µs measured; generous for loaded CI machines


def test_non_text_input_is_not_a_unit():
    assert ucum_code(float("nan")) is None  # type: ignore[arg-type]  # pandas' missing value
    assert unit_factor(1.5, "mg") is None  # type: ignore[arg-type]
    assert display_unit(None) == ""  # type: ignore[arg-type]


UNITISH = st.text(
    alphabet=st.sampled_from(list("mgdLuµμkKGTU/.*^{}[]()#%0123456789 _-+'eqIhsxE°²")),
    max_size=20,
)
ANY_TEXT = st.one_of(st.none(), st.text(max_size=30), UNITISH)


@settings(max_examples=400, deadline=None)
@given(a=ANY_TEXT, b=ANY_TEXT)
def test_arbitrary_text_never_raises(a: str | None, b: str | None):
    code = ucum_code(a)
    assert code is None or isinstance(code, str)
    factor = unit_factor(a, b)
    assert factor is None or (isinstance(factor, float) and math.isfinite(factor) and factor > 0)
    back = unit_factor(b, a)
    if factor is not None and back is not None:
        assert factor * back == pytest.approx(1.0, rel=1e-9)
    assert isinstance(same_unit(a, b), bool)
    if a is not None:
        assert isinstance(display_unit(a), str)


@settings(max_examples=200, deadline=None)
@given(
    a=st.sampled_from(THOUSAND_PER_UL + PER_UL + EGFR + ["mg/dL", "g/L", "umol/L", "mEq/L", "%"]),
    b=st.sampled_from(["10*9/L", "/uL", "mL/min/{1.73_m2}", "mmol/L", "mg/L", "{ratio}", "1"]),
    molar_mass=st.one_of(st.none(), st.floats(1.0, 1000.0)),
    valence=st.one_of(st.none(), st.integers(1, 3)),
)
def test_factors_are_reciprocal(a: str, b: str, molar_mass: float | None, valence: int | None):
    there = unit_factor(a, b, molar_mass=molar_mass, valence=valence)
    back = unit_factor(b, a, molar_mass=molar_mass, valence=valence)
    assert (there is None) == (back is None)
    if there is not None and back is not None:
        assert there * back == pytest.approx(1.0, rel=1e-9)


def test_first_use_from_many_threads_gives_the_same_factors():
    from concurrent.futures import ThreadPoolExecutor

    from recordagent.tools import units

    pairs = [
        ("mg/dL", "g/L"), ("K/uL", "10*9/L"), ("umol/L", "mmol/L"), ("ng/mL", "ug/L"),
        ("mL/min/1.73m2", "mL/min/{1.73_m2}"), ("IU/L", "U/L"), ("lb", "kg"), ("mEq/L", "mmol/L"),
    ] * 8  # fmt: skip
    expected = [unit_factor(a, b, valence=1) for a, b in pairs]
    for cached in (units._unit_factor, units._unit, units._tree, units._ucum_code):
        cached.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda pair: unit_factor(*pair, valence=1), pairs))
    assert found == expected
