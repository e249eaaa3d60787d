"""Search terms of clinical text: tokens that keep clinical notation, plus vocabulary concepts.

Text is lower-cased with κ/λ spelled out. Terms are plain words and numbers ("myeloma", "17p",
"2"), compounds that keep their notation ("del(17p)", "t(4;14)", "igg-kappa", "2.3", "g/dl"),
and one concept term (``~vgpr``) for every vocabulary form found, so "VGPR" and "very good
partial response" meet. The same rules tokenise indexed chunks (vectorised, with polars) and
queries (with Python's ``re``); both engines read the patterns identically.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

__all__ = ["CONCEPT_PREFIX", "Vocabulary", "load_vocabulary", "query_terms", "text_terms"]

CONCEPT_PREFIX = "~"
_WORD = r"[a-z0-9]+"
# Notation worth keeping whole: del(17p), t(4;14), gain(1q), igg-kappa, 2.3, g/dl, r-iss.
_COMPOUND = r"[a-z0-9+]*[a-z0-9]\([^)\s]{1,12}\)|[a-z0-9+]+(?:[-/.][a-z0-9]+)+"
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or "
    "that the their this to was were what when which who with".split()
)


def normalise(text: str) -> str:
    """Lower case with Greek light-chain letters spelled out (IgG-κ -> igg-kappa)."""
    return text.lower().replace("κ", "kappa").replace("λ", "lambda")


@dataclass(frozen=True)
class Vocabulary:
    """Concepts and their surface forms (already normalised)."""

    forms: dict[str, str]  # surface form -> concept
    digest: str  # identifies the vocabulary a search index was built with

    @cached_property
    def pattern(self) -> str:
        """One alternation of every form, longest first, bounded where a form is a word."""
        parts = []
        for form in sorted(self.forms, key=len, reverse=True):
            head = r"\b" if form[0].isalnum() else ""
            tail = r"\b" if form[-1].isalnum() else ""
            parts.append(head + re.escape(form) + tail)
        return "|".join(parts)

    @cached_property
    def rust_pattern(self) -> str:
        """The pattern for polars: ASCII word boundaries (Unicode ones are 100x slower there)."""
        return self.pattern.replace(r"\b", r"(?-u:\b)")

    @cached_property
    def compiled(self) -> re.Pattern[str]:
        """The pattern compiled for Python."""
        return re.compile(self.pattern)

    def concepts_in(self, text: str) -> list[str]:
        """Concept terms of every form in normalised ``text`` (one per occurrence)."""
        return [CONCEPT_PREFIX + self.forms[m.group(0)] for m in self.compiled.finditer(text)]


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """The packaged clinical vocabulary, or one from ``path`` (same YAML layout)."""
    if path is None:
        raw = (resources.files("recordagent.records") / "vocabulary.yaml").read_text("utf-8")
    else:
        raw = path.read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    forms: dict[str, str] = {}
    for concept, surface in data["concepts"].items():
        for form in surface:
            forms.setdefault(normalise(str(form)), str(concept))
    return Vocabulary(forms, hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16])


def query_terms(text: str, vocabulary: Vocabulary) -> list[str]:
    """Distinct terms of a query, in first-seen order (stop words dropped)."""
    lowered = normalise(text)
    words = [w for w in re.findall(_WORD, lowered) if w not in _STOPWORDS]
    terms = [*words, *re.findall(_COMPOUND, lowered), *vocabulary.concepts_in(lowered)]
    return list(dict.fromkeys(terms))


def text_terms(texts: pl.Series, vocabulary: Vocabulary) -> pl.DataFrame:
    """Term frequencies of many texts: columns ``row`` (position in ``texts``), ``term``, ``tf``."""
    lowered = texts.str.to_lowercase().str.replace_all("κ", "kappa").str.replace_all("λ", "lambda")
    frame = pl.DataFrame({"row": pl.int_range(0, len(texts), eager=True), "text": lowered})
    words = frame.select("row", pl.col("text").str.extract_all(_WORD).alias("term")).explode("term")
    words = words.filter(pl.col("term").is_not_null() & ~pl.col("term").is_in(_STOPWORDS))
    compounds = frame.select(
        "row", pl.col("text").str.extract_all(_COMPOUND).alias("term")
    ).explode("term")
    concepts = (
        frame.select("row", pl.col("text").str.extract_all(vocabulary.rust_pattern).alias("term"))
        .explode("term")
        .drop_nulls("term")
        .with_columns(
            (CONCEPT_PREFIX + pl.col("term").replace_strict(vocabulary.forms, default="")).alias(
                "term"
            )
        )
    )
    terms = pl.concat([words, compounds.drop_nulls("term"), concepts], how="vertical")
    return terms.lazy().group_by("row", "term").agg(pl.len().cast(pl.Int32).alias("tf")).collect()
