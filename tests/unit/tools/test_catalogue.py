"""The lab catalogue file: every entry parses, names are unique, conversions round-trip."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from recordagent.errors import UserError
from recordagent.sources.synthetic.vocabulary import ANALYTES as SYNTHETIC
from recordagent.tools.catalogue import lab_catalogue, load_lab_catalogue

CATALOGUE = load_lab_catalogue()


def test_every_entry_parses_with_a_unit_and_names():
    assert len(CATALOGUE.analytes) >= 15
    names = [n.lower() for a in CATALOGUE.analytes for n in a.names]
    assert len(names) == len(set(names)), "a name may belong to one analyte only"


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [(a.name, unit) for a in CATALOGUE.analytes for unit in a.convert],
)
def test_hand_factors_are_what_the_analyte_applies(analyte: str, unit: str):
    entry = CATALOGUE.find(analyte)
    assert entry is not None
    for value in (0.01, 1.0, 37.5, 1234.0):
        assert entry.to_canonical(value, unit) == pytest.approx(value * entry.convert[unit])


def test_every_canonical_unit_converts_to_itself_and_a_value_without_unit_is_canonical():
    for entry in CATALOGUE.analytes:
        assert entry.factor(entry.unit) == 1.0, entry.name
        assert entry.to_canonical(2.5, None) == 2.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hb", "Hemoglobin"),
        ("M-SPIKE", "M-protein"),
        ("2160-0", "Creatinine"),
        (" FLC ratio ", "Kappa/lambda FLC ratio"),
    ],
)
def test_lookup_by_name_synonym_or_code(text: str, expected: str):
    found = CATALOGUE.find(text)
    assert found is not None and found.name == expected


def test_known_conversions():
    creatinine = CATALOGUE.find("creatinine")
    assert creatinine is not None
    assert creatinine.to_canonical(88.4, "µmol/L") == pytest.approx(1.0, rel=1e-3)
    assert creatinine.to_canonical(1.0, "furlongs") is None
    mprotein = CATALOGUE.find("M-protein")
    assert mprotein is not None and mprotein.to_canonical(32, "g/L") == pytest.approx(3.2)
    calcium = CATALOGUE.find("calcium")
    assert calcium is not None and calcium.to_canonical(2.5, "mmol/L") == pytest.approx(10.0195)
    sodium = CATALOGUE.find("Na")
    assert sodium is not None and sodium.to_canonical(140, "mEq/L") == pytest.approx(140)
    magnesium = CATALOGUE.find("magnesium")
    assert magnesium is not None and magnesium.to_canonical(1.0, "mEq/L") == pytest.approx(
        24.305 / 2 / 10, rel=1e-3
    )


def test_names_and_codes_match_whatever_their_case_punctuation_and_code_system():
    assert CATALOGUE.find("hemoglobin a1c") is CATALOGUE.find("4548-4")
    assert CATALOGUE.find("LOINC:2160-0") is CATALOGUE.find("creatinine")
    assert CATALOGUE.find("http://loinc.org|2160-0") is CATALOGUE.find("Creatinine")
    assert CATALOGUE.find("INR (PT)") is CATALOGUE.find("inr(pt)")


def test_a_user_catalogue_replaces_by_canonical_name_and_adds_new_analytes(tmp_path: Path):
    user = tmp_path / "site.yaml"
    user.write_text(
        "analytes:\n"
        "  - names: [Creatinine, serum creatinine, creat, Cr, SCr]\n"
        "    loinc: [2160-0, LOCAL-CREA]\n"
        "    unit: umol/L\n"
        "    molar_mass: 113.12\n"
        "  - names: [Site widget index, SWI]\n"
        "    loinc: [LOCAL-SWI]\n"
        "    unit: '{index}'\n",
        encoding="utf-8",
    )
    merged = load_lab_catalogue([user])
    creatinine = merged.find("LOCAL-CREA")
    assert creatinine is not None and creatinine.unit == "umol/L"
    assert merged.find("creatinine") is creatinine and merged.find("38483-4") is None
    assert merged.find("SWI") is not None
    assert len(merged.analytes) == len(CATALOGUE.analytes) + 1
    assert lab_catalogue([user]) is lab_catalogue([str(user)])  # read once per file version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("analytes: [{names: [Foo], unit: mg/dL, group: nonsense}]", "analytes.0.group"),
        ("analytes: [{names: [Foo]}]", "analytes.0.unit: Field required"),
        ("analytes: [{names: [Foo, K], unit: mg/dL}]", "name 'K' already belongs to 'Potassium'"),
        ("analytes: [{names: [Foo], loinc: [2160-0], unit: mg/dL}]", "code '2160-0' already"),
        ("analytes: [{names: [Foo], unit: mg/dL, convert: {g/L: -1}}]", "must be positive"),
        ("analytes: {names: [Foo]}", "expected a mapping with an 'analytes' list"),
        ("analytes: [unclosed", "not valid YAML"),
    ],
)
def test_a_bad_user_catalogue_is_a_user_error_naming_file_entry_and_field(
    tmp_path: Path, text: str, message: str
):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_lab_catalogue([bad])
    assert str(bad) in str(caught.value) and message in str(caught.value)


def test_a_missing_user_catalogue_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="cannot read it"):
        lab_catalogue([tmp_path / "absent.yaml"])


# --- The YAML file itself, read without the catalogue model ----------------------------------

CATALOGUE_YAML = yaml.safe_load(
    (resources.files("recordagent.tools") / "lab_catalogue.yaml").read_text("utf-8")
)
ENTRIES: list[dict[str, Any]] = CATALOGUE_YAML["analytes"]
GROUPS = {
    *("chemistry", "haematology", "lipids", "diabetes", "renal", "liver", "coagulation"),
    *("thyroid", "cardiac", "inflammatory", "myeloma", "blood gas", "urine", "vitals", "other"),
}
CLINICAL_GROUPS = (
    *("chemistry", "haematology", "lipids", "diabetes", "renal", "liver", "coagulation"),
    *("thyroid", "cardiac", "inflammatory"),
)
FIELDS = {"names", "loinc", "unit", "molar_mass", "valence", "convert", "group"}
# Codes that look like LOINC but fail its check digit. The synthetic cohort emits the first
# two (sources/synthetic/vocabulary.py), so they stay, as local codes, next to the real ones.
NOT_LOINC = {"33358-4", "33944-1", "51435-5"}


def _code_owner() -> dict[str, str]:
    return {code: e["names"][0] for e in ENTRIES for code in e["loinc"]}


def _loinc_check_digit(number: str) -> int:
    """LOINC's mod 10 check digit of the part before the hyphen."""
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["names"][0])
def test_every_entry_has_names_a_unit_and_a_known_group(entry: dict[str, Any]):
    assert set(entry) <= FIELDS, f"unknown fields {set(entry) - FIELDS}"
    assert entry["names"] and all(isinstance(n, str) and n.strip() for n in entry["names"])
    assert isinstance(entry["unit"], str) and entry["unit"].strip()
    assert entry["group"] in GROUPS
    assert all(isinstance(c, str) and c.strip() for c in entry.get("loinc", []))


def test_names_belong_to_one_analyte_ignoring_case():
    names = [n.casefold() for e in ENTRIES for n in e["names"]]
    assert not [n for n, count in Counter(names).items() if count > 1]


def test_names_belong_to_one_analyte_ignoring_punctuation_and_spacing():
    # 'Neutrophils (%)' would read as 'neutrophils': names match without punctuation.
    owner: dict[str, str] = {}
    clashes = []
    for entry in ENTRIES:
        for name in entry["names"]:
            key = re.sub(r"[\W_]+", " ", name.casefold()).strip()
            if owner.setdefault(key, entry["names"][0]) != entry["names"][0]:
                clashes.append((name, owner[key], entry["names"][0]))
    assert not clashes


def test_codes_belong_to_one_analyte():
    codes = [c.casefold() for e in ENTRIES for c in e["loinc"]]
    assert not [c for c, count in Counter(codes).items() if count > 1]


def test_loinc_shaped_codes_have_a_valid_check_digit():
    bad = []
    for code in _code_owner():
        match = re.fullmatch(r"(\d{1,6})-(\d)", code)
        if match and code not in NOT_LOINC and _loinc_check_digit(match[1]) != int(match[2]):
            bad.append(code)
    assert not bad, f"typo in a LOINC code: {bad}"
    assert NOT_LOINC <= set(_code_owner()), "a kept local code was dropped"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["names"][0])
def test_molar_masses_are_positive_valences_small_and_factors_positive(entry: dict[str, Any]):
    if "molar_mass" in entry:
        assert isinstance(entry["molar_mass"], int | float) and entry["molar_mass"] > 0
    if "valence" in entry:
        assert entry["valence"] in {1, 2, 3}
    for unit, factor in entry.get("convert", {}).items():
        assert isinstance(unit, str) and isinstance(factor, int | float) and factor > 0


@pytest.mark.parametrize("group", CLINICAL_GROUPS)
def test_each_clinical_group_has_at_least_three_analytes(group: str):
    assert sum(e["group"] == group for e in ENTRIES) >= 3


@pytest.mark.parametrize(
    ("code", "analyte"),
    [
        ("2951-2", "Sodium"),
        ("2947-0", "Sodium"),
        ("6298-4", "Potassium"),
        ("2069-3", "Chloride"),
        ("20565-8", "Bicarbonate"),
        ("2028-9", "Bicarbonate"),
        ("6299-2", "Urea nitrogen"),
        ("3094-0", "Urea nitrogen"),
        ("41653-7", "Glucose"),
        ("49765-1", "Calcium"),
        ("1994-3", "Ionized calcium"),
        ("38483-4", "Creatinine"),
        ("48642-3", "eGFR (CKD-EPI 2021)"),
        ("9318-7", "Albumin/creatinine ratio (Urine)"),
        ("718-7", "Hemoglobin"),
        ("770-8", "Neutrophil percentage"),
        ("4537-7", "ESR"),
        ("2093-3", "Total cholesterol"),
        ("13457-7", "LDL cholesterol"),
        ("18262-6", "LDL cholesterol"),
        ("4548-4", "HbA1c"),
        ("59261-8", "HbA1c (IFCC)"),
        ("1743-4", "ALT"),
        ("30239-8", "AST"),
        ("42719-5", "Total bilirubin"),
        ("6301-6", "INR"),
        ("14979-9", "aPTT"),
        ("48065-7", "D-dimer"),
        ("11580-8", "TSH"),
        ("3024-7", "Free T4"),
        ("89579-7", "Troponin I"),
        ("67151-1", "Troponin T"),
        ("83107-3", "NT-proBNP"),
        ("30522-7", "hs-CRP"),
        ("33959-8", "Procalcitonin"),
        ("62292-8", "25-hydroxyvitamin D"),
        ("11558-4", "pH"),
        ("2019-8", "pCO2"),
        ("2161-8", "Creatinine (Urine)"),
    ],
)
def test_well_known_code_finds_its_analyte(code: str, analyte: str):
    assert _code_owner().get(code) == analyte


def test_synthetic_cohort_codes_find_the_analyte_it_names():
    owner = _code_owner()
    wrong = {a.code: a.name for a in SYNTHETIC.values() if owner.get(a.code) != a.name}
    assert not wrong


def test_mimic_item_codes_find_an_analyte_their_label_names():
    rows = csv.DictReader(
        io.StringIO(
            (resources.files("recordagent.sources.mimic_iv") / "labitems_loinc.csv").read_text(
                "utf-8"
            )
        )
    )
    names = {code: {n.casefold() for n in e["names"]} for e in ENTRIES for code in e["loinc"]}
    # MIMIC labels its differential percentages with the bare cell name ('Neutrophils'), which
    # the catalogue gives the absolute count; their LOINC code (…/100 leukocytes) decides.
    differential = {"770-8", "736-9", "5905-5", "713-8", "706-2"}
    wrong = [
        r
        for r in rows
        if r["loinc"] not in differential
        and r["label"].casefold() not in names.get(r["loinc"], set())
    ]
    assert not wrong
