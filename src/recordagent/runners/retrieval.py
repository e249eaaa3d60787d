"""Retrieval for the RAG baselines: document chunks, lab and event passages in one ranking.

Document chunks are ranked by the same BM25 search the agent's search_documents tool uses; the
structured rows (lab values and events rendered as passages) by BM25 over those passages with
the same clinical tokenizer. The two rankings come from different collections, so their scores
are not comparable; reciprocal rank fusion (Cormack et al., 2009) merges them by rank alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import polars as pl

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope
from recordagent.records.terms import query_terms, text_terms
from recordagent.records.tokens import Tokenizer
from recordagent.runners.passages import (
    Passage,
    chunk_passage,
    event_passages,
    lab_passages,
    render,
)
from recordagent.tools.catalogue import LabCatalogue
from recordagent.tools.search import (
    MAX_QUERY_CHARS,
    SearchDocumentsInput,
    packaged_vocabulary,
    rank_chunks,
)

__all__ = ["PatientRetriever", "StructuredIndex"]

_RRF_K = 60  # the constant of reciprocal rank fusion; 60 is the published default
_K1, _B = 1.2, 0.75


class StructuredIndex:
    """A record's lab and event passages and their BM25 index (nothing after ``until``).

    It reads the record once and holds no connection, so runners can cache it across the
    questions asked of one patient (see :mod:`recordagent.runners.cache`).
    """

    def __init__(
        self,
        scope: PatientScope,
        tokenizer: Tokenizer,
        until: dt.date | None = None,
        catalogue: LabCatalogue | None = None,
    ) -> None:
        self.patient_id = scope.patient_id
        self.until = until
        self.tokenizer = tokenizer
        self.vocabulary = packaged_vocabulary()
        self.passages = lab_passages(
            scope, tokenizer, until=until, catalogue=catalogue
        ) + event_passages(scope, tokenizer, until=until)
        self._terms = (
            text_terms(pl.Series([f"{p.title}\n{p.text}" for p in self.passages]), self.vocabulary)
            if self.passages
            else pl.DataFrame(schema={"row": pl.Int64, "term": pl.String, "tf": pl.Int32})
        )
        lengths = self._terms.group_by("row").agg(pl.col("tf").sum().alias("length"))
        self._lengths = lengths.cast({"row": pl.Int64})
        self._average = max(float(self._terms["tf"].sum() or 0) / max(len(self.passages), 1), 1.0)
        self._exact: dict[str, Passage] = {}

    def counted(self, passage: Passage) -> Passage:
        """The passage with its exact token count (lab passages carry an estimate)."""
        if passage.kind != "labs":
            return passage
        if passage.id not in self._exact:
            exact = self.tokenizer.count(render(passage)) + 2
            self._exact[passage.id] = (
                passage if exact == passage.tokens else passage.model_copy(update={"tokens": exact})
            )
        return self._exact[passage.id]

    def rank(self, query: str) -> list[Passage]:
        """Lab and event passages with any query term, best BM25 first."""
        terms = query_terms(query, self.vocabulary)
        if not terms or not self.passages:
            return []
        n = len(self.passages)
        matched = self._terms.filter(pl.col("term").is_in(terms))
        if matched.is_empty():
            return []
        idf = (1 + (n - pl.col("df") + 0.5) / (pl.col("df") + 0.5)).log()
        norm = pl.col("tf") + _K1 * (1 - _B + _B * pl.col("length") / self._average)
        scored = (
            matched.with_columns(pl.len().over("term").alias("df"), pl.col("row").cast(pl.Int64))
            .join(self._lengths, on="row")
            .group_by("row")
            .agg((idf * pl.col("tf") * (_K1 + 1) / norm).sum().alias("score"))
            .filter(pl.col("score") > 0)
            # Rounded so that ties fall to the passage order, not to summation order.
            .with_columns(pl.col("score").round(9))
            .sort(["score", "row"], descending=[True, False])
        )
        return [self.passages[k] for k in scored["row"].to_list()]


class PatientRetriever:
    """Ranks one patient's chunks, lab and event passages for a query (nothing after ``until``).

    Args:
        scope: The patient's record.
        tokenizer: Counts passage tokens against the budget.
        until: Nothing dated after this day is retrieved.
        index: The record's structured index, when the caller keeps one (it must be for the
            same patient and ``until``); built here otherwise.
    """

    def __init__(
        self,
        scope: PatientScope,
        tokenizer: Tokenizer,
        until: dt.date | None = None,
        index: StructuredIndex | None = None,
    ) -> None:
        if index is not None and (index.patient_id != scope.patient_id or index.until != until):
            raise ValueError(
                f"structured index of patient {index.patient_id!r} until {index.until} used for "
                f"patient {scope.patient_id!r} until {until}"
            )
        self.scope = scope
        self.tokenizer = tokenizer
        self.until = until
        self.index = index if index is not None else StructuredIndex(scope, tokenizer, until)

    @property
    def structured(self) -> list[Passage]:
        """Every lab and event passage of the record."""
        return self.index.passages

    def rank_structured(self, query: str) -> list[Passage]:
        """Lab and event passages with any query term, best BM25 first."""
        return self.index.rank(query)

    def rank_chunks(self, query: str, depth: int) -> list[Passage]:
        """Document chunks, best BM25 first (the search_documents ranking)."""
        text = _within(query.strip(), MAX_QUERY_CHARS)
        if not text:
            return []
        try:
            _, ranked = rank_chunks(
                self.scope, SearchDocumentsInput(query=text, k=min(depth, 50), end=self.until)
            )
        except ToolError:
            return []  # a query of stop words only finds nothing
        return [chunk_passage(chunk, self.tokenizer) for chunk in ranked]

    def retrieve(
        self,
        query: str,
        k: int,
        max_tokens: int,
        exclude: Collection[str] = (),
    ) -> list[Passage]:
        """Up to ``k`` passages not in ``exclude``, fused best first, within ``max_tokens``."""
        depth = k + len(exclude)
        fused: dict[str, float] = {}
        by_id: dict[str, Passage] = {}
        for ranking in (self.rank_chunks(query, depth), self.rank_structured(query)[:depth]):
            for rank, passage in enumerate(ranking, start=1):
                fused[passage.id] = fused.get(passage.id, 0.0) + 1.0 / (_RRF_K + rank)
                by_id[passage.id] = passage
        order = sorted(fused, key=lambda pid: (-fused[pid], pid))
        chosen, used = [], 0
        for pid in order:
            if pid in exclude:
                continue
            passage = self.index.counted(by_id[pid])
            if used + passage.tokens > max_tokens:
                continue  # a smaller passage further down may still fit
            chosen.append(passage)
            used += passage.tokens
            if len(chosen) == k:
                break
        return chosen


def _within(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters for the search: each word once, cut between words.

    A question can be longer than the search accepts; its words, each counted once, usually fit,
    and past that the first of them are taken.
    """
    if len(text) <= limit:
        return text
    words = " ".join(dict.fromkeys(text.split()))
    if len(words) <= limit:
        return words
    cut = words[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut
