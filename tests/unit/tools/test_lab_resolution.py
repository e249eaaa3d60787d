"""Resolving what a model wrote to the record's own lab series, without a store."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.errors import ToolError
from recordagent.tools.catalogue import code_keys, name_key, packaged_lab_catalogue
from recordagent.tools.lab_resolution import (
    RecordSeries,
    closest_series,
    resolve_analyte,
    specimen_key,
)

DAY = dt.datetime(2021, 1, 1)


def series(name: str, code: str | None = None, fluid: str | None = None, n: int = 3):
    return RecordSeries(name, code, fluid, n, n, DAY, DAY, None)


RECORD = [
    series("Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "18262-6"),
    series("Cholesterol in HDL [Mass/volume] in Serum or Plasma", "2085-9"),
    series("Creatinine [Mass/volume] in Serum or Plasma", "2160-0"),
    series("Creatinine", "LOC-UCR", "Urine"),
    series("Neutrophils", "770-8"),
    series("Absolute Neutrophil Count", "751-8"),
    series("Widget index", "MIMIC:99999"),
    series("Address", "56799-0", n=0),
]
CATALOGUE = packaged_lab_catalogue()


def names(query: str) -> list[str]:
    return [m.series.name for m in resolve_analyte(query, RECORD, CATALOGUE).matches]


def test_name_and_code_keys_ignore_case_width_punctuation_and_namespace():
    assert name_key(" Calcium, Total ") == name_key("CALCIUM total") == "calcium total"
    assert name_key("ＨｂＡ１ｃ") == "hba1c"
    assert code_keys("LOINC:2160-0")[0] == code_keys("http://loinc.org|2160-0")[0] == "2160-0"
    assert code_keys("MIMIC:50912") == ("mimic:50912", "50912")


@pytest.mark.parametrize(
    ("fluid", "key"),
    [(None, None), ("", None), ("Blood", None), ("Serum or Plasma", None), ("URINE", "urine")],
)
def test_blood_serum_plasma_and_unspecified_are_one_specimen(fluid, key):
    assert specimen_key(fluid) == key


def test_a_catalogue_name_gathers_the_series_its_codes_and_names_decide():
    # The urine series is named 'Creatinine' but belongs with its own specimen; it is gathered
    # by name (its local code is unknown) and kept apart later, by specimen.
    assert names("creatinine") == [
        "Creatinine [Mass/volume] in Serum or Plasma",
        "Creatinine",
    ]


def test_a_catalogue_name_also_brings_the_records_series_of_that_exact_name():
    assert names("Neutrophils") == ["Absolute Neutrophil Count", "Neutrophils"]


def test_the_records_own_name_and_own_code_come_after_the_catalogue():
    assert resolve_analyte("widget INDEX", RECORD, CATALOGUE).step == "record name"
    assert resolve_analyte("99999", RECORD, CATALOGUE).step == "record code"
    assert resolve_analyte("MIMIC:99999", RECORD, CATALOGUE).step == "record code"


def test_a_typo_resolves_but_a_different_short_word_never_does():
    typo = resolve_analyte("Widgit index", RECORD, CATALOGUE)
    assert (typo.step, typo.label) == ("closest name", "Widget index")
    with pytest.raises(ToolError):
        resolve_analyte("Cholesterol in XDL", RECORD, CATALOGUE)  # LDL or HDL: not guessed


def test_neighbours_rank_measured_analytes_first_and_never_the_query_itself():
    survey = RecordSeries("Zinc intake", None, None, 4, 0, DAY, DAY, None)  # answers, no numbers
    record = [survey, series("Zinc level"), series("Zinc")]
    ranked = [s.name for s, _ in closest_series("zinc", record, CATALOGUE)]
    assert ranked == ["Zinc level", "Zinc intake"]  # equally like 'zinc'; 'Zinc' is the query


def test_a_code_like_query_gets_no_name_neighbours():
    assert closest_series("4548", RECORD, CATALOGUE) == []
