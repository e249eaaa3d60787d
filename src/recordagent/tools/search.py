"""search_documents: ranked chunks of the patient's documents for a free-text query.

Ranking is BM25 (k1 = 1.2, b = 0.75) computed in DuckDB over the store's ``chunk_terms`` index,
with document frequencies and lengths of *this patient's* chunks, so a term common in one
record and rare in another is weighted for the record at hand. Query and index share the
clinical tokenisation of :mod:`recordagent.records.terms`: notation such as "del(17p)",
"t(4;14)", "IgG-κ" and "2.3 g/dL" stays searchable, and vocabulary concepts match across
synonyms and abbreviations (VGPR ↔ very good partial response, Len ↔ Revlimid).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import NamedTuple

from pydantic import BaseModel, Field, field_validator, model_validator

from recordagent.errors import ToolError
from recordagent.records.scope import CHUNK_TEXT, PatientScope, as_datetime
from recordagent.records.terms import Vocabulary, load_vocabulary, query_terms
from recordagent.tools.base import SourceRef, Tool, ToolResult

__all__ = [
    "SEARCH_DOCUMENTS",
    "RankedChunk",
    "SearchDocumentsInput",
    "SearchDocumentsResult",
    "rank_chunks",
    "search_documents",
]

_K1, _B = 1.2, 0.75
_SNIPPET_CHARS = 240


@cache
def packaged_vocabulary() -> Vocabulary:
    """The packaged vocabulary, read once per process on first use."""
    return load_vocabulary()


MAX_QUERY_CHARS = 500


class SearchDocumentsInput(BaseModel):
    """Arguments of search_documents."""

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to look for, in words or clinical notation, e.g. 'del(17p) FISH', "
        "'best response to VRd', 'ASCT date'. Synonyms and abbreviations are matched.",
    )
    start: dt.date | None = Field(
        default=None, description="Only documents dated on or after this day (YYYY-MM-DD)."
    )
    end: dt.date | None = Field(
        default=None, description="Only documents dated on or before this day (YYYY-MM-DD)."
    )
    document_types: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only these document types, e.g. ['pathology report', 'tumour board "
        "protocol']; get_timeline lists the types a record has.",
    )
    k: int = Field(default=10, ge=1, le=50, description="How many chunks to return (1-50).")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is blank")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SearchDocumentsInput:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start is after end")
        return self


class SearchHit(BaseModel):
    """One ranked chunk."""

    chunk_id: str = Field(description="Chunk id (cite it, or read_document the document).")
    document_id: str
    date: dt.date
    type: str
    title: str | None
    section: str | None
    score: float = Field(description="BM25 score; higher is better.")
    snippet: str = Field(description="The passage of the chunk around the best match.")


class SearchDocumentsResult(ToolResult):
    """Ranked chunks for a query."""

    query: str
    terms: list[str] = Field(description="Terms the query was searched with.")
    hits: list[SearchHit]

    def lines(self) -> list[str]:
        """One header line, then one line per hit, best first."""
        if not self.hits:
            return [f"No document matches '{self.query}'. Try other words or a wider range."]
        out = [f"{len(self.hits)} passage(s) for '{self.query}', best first:"]
        for rank, hit in enumerate(self.hits, start=1):
            where = f" / {hit.section}" if hit.section else ""
            out.append(
                f"{rank}. [{hit.chunk_id}] {hit.date:%Y-%m-%d} {hit.type}"
                f" '{hit.title or ''}'{where}: {hit.snippet}"
            )
        return out


class RankedChunk(NamedTuple):
    """One chunk as ranked by :func:`rank_chunks`, with its whole text."""

    chunk_id: str
    document_id: str
    date: dt.date
    type: str
    title: str | None
    section: str | None
    score: float
    token_count: int
    text: str


def rank_chunks(
    scope: PatientScope, args: SearchDocumentsInput
) -> tuple[list[str], list[RankedChunk]]:
    """The query's terms, and the patient's best ``args.k`` chunks for them, best first.

    Raises:
        ToolError: The query has no searchable words, or names a document type the record
            does not have.
    """
    vocabulary = packaged_vocabulary()
    terms = query_terms(args.query, vocabulary)
    if not terms:
        raise ToolError(
            "search_documents: the query has no searchable words (only stop words or symbols)"
        )
    if args.document_types is not None:
        _check_types(scope, args.document_types)
    filters, params = [], {"terms": terms, "k": args.k}
    if args.start is not None:
        filters.append("d.date >= $start")
        params["start"] = as_datetime(args.start, end_of_day=False)
    if args.end is not None:
        filters.append("d.date <= $end")
        params["end"] = as_datetime(args.end, end_of_day=True)
    if args.document_types is not None:
        filters.append("list_contains($types, d.type)")
        params["types"] = args.document_types
    # One pass over the patient's term rows for document frequencies and lengths; the
    # chunks (with their text cut from the documents) are joined for the top k only.
    document_join = "JOIN documents d ON d.document_id = c.document_id " if filters else ""
    rows = scope.fetch(
        f"""
        WITH stats AS (
            SELECT count(DISTINCT chunk_id)::DOUBLE AS n,
                   greatest(sum(tf)::DOUBLE / greatest(count(DISTINCT chunk_id), 1), 1) AS avgdl
            FROM chunk_terms
        ),
        matched AS (
            SELECT chunk_id, term, tf, n_terms, count(*) OVER (PARTITION BY term) AS df
            FROM chunk_terms WHERE list_contains($terms, term)
        ),
        scored AS (
            SELECT m.chunk_id,
                   sum(ln(1 + (stats.n - m.df + 0.5) / (m.df + 0.5))
                       * m.tf * {_K1 + 1}
                       / (m.tf + {_K1} * (1 - {_B} + {_B} * m.n_terms / stats.avgdl))) AS score
            FROM matched m CROSS JOIN stats
            {"JOIN chunks c ON c.chunk_id = m.chunk_id " + document_join if filters else ""}
            {("WHERE " + " AND ".join(filters)) if filters else ""}
            GROUP BY m.chunk_id
            -- Rounded: DuckDB sums in parallel, so equal scores can differ in the last bits
            -- from run to run; ties must fall to the chunk id, not to summation order.
            ORDER BY round(score, 9) DESC, m.chunk_id
            LIMIT $k
        )
        SELECT s.chunk_id, c.document_id, d.date, d.type, d.title, c.section, s.score,
               c.token_count, {CHUNK_TEXT}
        FROM scored s
        JOIN chunks c ON c.chunk_id = s.chunk_id
        JOIN documents d ON d.document_id = c.document_id
        ORDER BY round(s.score, 9) DESC, s.chunk_id
        """,
        params,
    )
    ranked = [
        RankedChunk(
            chunk_id=chunk_id,
            document_id=document_id,
            date=date.date() if isinstance(date, dt.datetime) else date,
            type=kind,
            title=title,
            section=section,
            score=float(score),
            token_count=int(tokens),
            text=text,
        )
        for chunk_id, document_id, date, kind, title, section, score, tokens, text in rows
    ]
    return terms, ranked


def search_documents(scope: PatientScope, args: SearchDocumentsInput) -> SearchDocumentsResult:
    """Rank the patient's chunks for ``args.query`` (BM25 over the clinical term index)."""
    terms, ranked = rank_chunks(scope, args)
    vocabulary = packaged_vocabulary()
    hits = [
        SearchHit(
            chunk_id=chunk.chunk_id,
            document_id=chunk.document_id,
            date=chunk.date,
            type=chunk.type,
            title=chunk.title,
            section=chunk.section,
            score=round(chunk.score, 4),
            snippet=_snippet(chunk.text, terms, vocabulary),
        )
        for chunk in ranked
    ]
    return SearchDocumentsResult(
        query=args.query,
        terms=terms,
        hits=hits,
        citations=[SourceRef(kind="chunk", id=h.chunk_id, document_id=h.document_id) for h in hits],
    )


def _check_types(scope: PatientScope, types: list[str]) -> None:
    known = [row[0] for row in scope.fetch("SELECT DISTINCT type FROM documents ORDER BY 1")]
    unknown = [t for t in types if t not in known]
    if unknown:
        raise ToolError(
            f"search_documents: no document of type {', '.join(repr(t) for t in unknown)} in "
            f"this record; its types are: {', '.join(known)}"
        )


def _snippet(text: str, terms: list[str], vocabulary: Vocabulary) -> str:
    """About 240 characters of ``text`` where the most query words and synonyms meet."""
    lowered = text.lower()  # same length as the text, so positions carry over
    concepts = {t[1:] for t in terms if t.startswith("~")}
    needles = [t for t in terms if not t.startswith("~") and len(t) > 2]
    needles += [form for form, concept in vocabulary.forms.items() if concept in concepts]
    hits = sorted(
        (m.start(), needle) for needle in needles for m in re.finditer(re.escape(needle), lowered)
    )
    best, best_count = 0, 0
    for position, _ in hits:
        window = {n for p, n in hits if position <= p < position + _SNIPPET_CHARS * 2 // 3}
        if len(window) > best_count:
            best, best_count = position, len(window)
    start = max(0, best - _SNIPPET_CHARS // 3)
    piece = " ".join(text[start : start + _SNIPPET_CHARS].split())
    return ("…" if start > 0 else "") + piece + ("…" if start + _SNIPPET_CHARS < len(text) else "")


SEARCH_DOCUMENTS: Tool[SearchDocumentsInput] = Tool(
    name="search_documents",
    description="Search the patient's documents and return the best-matching passages (chunk "
    "id, date, type, title, snippet). Use it to find where a fact is written; then "
    "read_document for the full text. Clinical notation and synonyms are understood.",
    input_model=SearchDocumentsInput,
    fn=search_documents,
)
