"""The lab catalogue file: every entry parses, names are unique, conversions round-trip."""

from __future__ import annotations

import pytest

from recordagent.tools.catalogue import load_lab_catalogue

CATALOGUE = load_lab_catalogue()


def test_every_entry_parses_with_a_unit_and_names():
    assert len(CATALOGUE.analytes) >= 15
    names = [n.lower() for a in CATALOGUE.analytes for n in a.names]
    assert len(names) == len(set(names)), "a name may belong to one analyte only"


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [(a.name, unit) for a in CATALOGUE.analytes for unit in a.convert],
)
def test_conversions_round_trip(analyte: str, unit: str):
    entry = CATALOGUE.find(analyte)
    assert entry is not None
    for value in (0.01, 1.0, 37.5, 1234.0):
        canonical = entry.to_canonical(value, unit)
        assert canonical is not None and canonical > 0
        assert entry.from_canonical(canonical, unit) == pytest.approx(value, rel=1e-12)


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
