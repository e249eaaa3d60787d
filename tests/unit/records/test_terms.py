"""Clinical search terms and the vocabulary file."""

from __future__ import annotations

import polars as pl

from recordagent.records.terms import load_vocabulary, query_terms, text_terms

VOCABULARY = load_vocabulary()


def test_every_vocabulary_form_maps_to_its_concept_in_text():
    for form, concept in VOCABULARY.forms.items():
        assert f"~{concept}" in VOCABULARY.concepts_in(f"before {form} after"), form


def test_notation_is_kept_whole_and_split():
    terms = query_terms("del(17p) and t(4;14) in IgG-κ; M-protein 2.3 g/dL", VOCABULARY)
    for term in ["del(17p)", "del", "17p", "t(4;14)", "igg-kappa", "igg", "kappa", "2.3", "g/dl"]:
        assert term in terms
    assert "and" not in terms and "in" not in terms


def test_synonyms_share_a_concept():
    written = set(query_terms("very good partial response on Revlimid", VOCABULARY))
    asked = set(query_terms("VGPR with lenalidomide", VOCABULARY))
    assert {"~vgpr", "~lenalidomide"} <= written & asked


def test_longer_forms_win_over_their_parts():
    assert VOCABULARY.concepts_in("very good partial response") == ["~vgpr"]
    assert VOCABULARY.concepts_in("stringent complete response") == ["~stringent_cr"]


def test_index_and_query_tokenise_alike():
    text = "FISH: del(17p) detected; IgG-κ, very good partial response, Hb 10.2 g/dL"
    indexed = text_terms(pl.Series([text]), VOCABULARY)
    assert set(query_terms(text, VOCABULARY)) == set(indexed["term"])
    assert indexed.filter(pl.col("term") == "~vgpr")["tf"].to_list() == [1]
