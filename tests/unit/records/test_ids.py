"""normalise_id and id_problem: the one canonical form loaders store and lookups ask for."""

from __future__ import annotations

import polars as pl
import pytest

from recordagent.records.ids import ID_WHITESPACE, id_problem, normalise_id


def test_decomposed_and_composed_forms_normalise_alike():
    assert normalise_id("Jose\u0301") == normalise_id("Jos\u00e9") == "Jos\u00e9"


def test_surrounding_white_space_is_removed_but_not_inner_space():
    assert normalise_id("\u00a0 MM 001\t\n") == "MM 001"


def test_ascii_ids_are_returned_unchanged():
    assert normalise_id("P-0042") == "P-0042"


def test_the_white_space_set_is_what_polars_trims_from_csv_values():
    padded = [f"{c}x{c}" for c in ID_WHITESPACE]
    assert pl.Series(padded).str.strip_chars().to_list() == ["x"] * len(ID_WHITESPACE)
    # Python's str.strip also trims U+001C-U+001F, which polars keeps (and ids refuse).
    assert pl.Series(["\x1cx"]).str.strip_chars().to_list() == ["\x1cx"]


@pytest.mark.parametrize("ident", ["A\x07", "A\u200b", "\u202eA", "A\u2029B", "A\udc80"])
def test_invisible_characters_are_a_problem(ident: str):
    problem = id_problem(ident)
    assert problem is not None and "invisible character U+" in problem


@pytest.mark.parametrize("ident", ["A", "MM 001", "Jos\u00e9", "患者-7", "D-0042/1"])
def test_visible_ids_are_fine(ident: str):
    assert id_problem(ident) is None
