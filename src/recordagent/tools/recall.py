"""Evidence recall of search_documents against gold facts with evidence ids.

For each gold fact a natural question is asked through search_documents in the fact's patient
scope; a fact counts as found at k when a chunk of one of its evidence documents ranks in the
top k. Used by the test suite (a floor) and tools/bench.py (the figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl
from pydantic import BaseModel, Field

from recordagent.records.db import RecordStore
from recordagent.tools.search import SearchDocumentsInput, search_documents

__all__ = ["LEVEL1_QUESTIONS", "RecallReport", "evidence_recall"]

LEVEL1_QUESTIONS: dict[str, str] = {
    "diagnosis_date": "When was the multiple myeloma diagnosed?",
    "isotype": "What is the isotype of the myeloma (IgG, IgA or light chain)?",
    "light_chain": "Is the myeloma kappa or lambda light chain restricted?",
    "iss_stage": "What was the ISS stage at diagnosis?",
    "riss_stage": "What was the R-ISS stage at diagnosis?",
    "del17p": "Was del(17p) detected by FISH?",
    "t4_14": "Was t(4;14) detected by FISH?",
    "t14_16": "Was t(14;16) detected by FISH?",
    "gain1q": "Was gain(1q) detected by FISH?",
    "crab_bone_lesions": "Were there lytic bone lesions on imaging at diagnosis?",
    "bm_plasma_cells_at_diagnosis": "What percentage of plasma cells were in the bone marrow "
    "at diagnosis?",
    "transplant_eligible": "Was the patient considered transplant-eligible?",
    "asct_date": "When was the autologous stem cell transplantation (ASCT)?",
    "death_date": "When did the patient die?",
    "crs_max_grade": "What grade of cytokine release syndrome (CRS) occurred?",
}


class RecallReport(BaseModel):
    """Recall at several k, overall and per fact kind."""

    ks: list[int]
    facts: int = Field(description="Facts asked about.")
    overall: dict[int, float] = Field(description="Share of facts found within the top k.")
    per_fact: dict[str, dict[int, float]] = Field(description="The same, per fact kind.")
    counts: dict[str, int] = Field(description="Facts per kind.")


def evidence_recall(
    store: RecordStore,
    facts: pl.DataFrame,
    questions: Mapping[str, str] = LEVEL1_QUESTIONS,
    ks: Sequence[int] = (5, 10, 20),
) -> RecallReport:
    """Recall@k of evidence documents for the facts whose kind has a question."""
    asked = facts.filter(
        pl.col("fact").is_in(list(questions)) & (pl.col("evidence_documents").list.len() > 0)
    )
    depth = max(ks)
    ranks: dict[str, list[int | None]] = {}
    for fact, patient_id, evidence in asked.select(
        "fact", "patient_id", "evidence_documents"
    ).iter_rows():
        scope = store.scope(patient_id)
        hits = search_documents(scope, SearchDocumentsInput(query=questions[fact], k=depth)).hits
        wanted = set(evidence)
        rank = next((k for k, hit in enumerate(hits, start=1) if hit.document_id in wanted), None)
        ranks.setdefault(fact, []).append(rank)

    def share(values: list[int | None], k: int) -> float:
        return round(sum(1 for r in values if r is not None and r <= k) / len(values), 4)

    every = [r for values in ranks.values() for r in values]
    return RecallReport(
        ks=list(ks),
        facts=len(every),
        overall={k: share(every, k) for k in ks} if every else {},
        per_fact={fact: {k: share(v, k) for k in ks} for fact, v in sorted(ranks.items())},
        counts={fact: len(v) for fact, v in sorted(ranks.items())},
    )
