"""The evidence audit: does each runner's model-free evidence-gathering step reach the evidence?

No model is called. For every item with gold evidence (ids of documents, lab rows or events):

* **single-pass RAG** — the passages :class:`~recordagent.runners.retrieval.PatientRetriever`
  retrieves for the question (``k`` and the context budget of
  ``settings.runners.single_pass_rag``, and ``k`` in ``ks`` with a budget too large to bind).
  An item is *reached* when a retrieved passage's refs include one of its evidence rows: a
  chunk of an evidence document, an evidence lab value or an evidence event. Recall@k is the
  share of items reached.
* **full context** — the window :func:`~recordagent.runners.full_context.pack_record` packs
  into: the runner's window (:func:`~recordagent.runners.full_context.packing_window`: the
  ``window_tokens`` setting, else the model's window over ``model.window_margin`` — the
  ``model.context_window`` setting, or ``model_window`` as a server gave it — else 128,000)
  less ``reserve_tokens``. The runner's instructions and the question also take a few hundred
  tokens of the reserve; they are ignored here, so the budget is the packer's own budget.
  *Coverage* is the share of the item's evidence rows inside the window (documents kept, lab
  values and events listed).

Results are given overall and by complexity level, record-length decile (patients ranked by
their document count, each patient once) and template. Items without evidence, and items
whose evidence ids name nothing in the patient's record, are counted and listed, not scored.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from recordagent.evaluation.labels import Label
from recordagent.evaluation.run import ItemProgress, record_length
from recordagent.evaluation.stats import deciles
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.schema import Chunk, Document, Event, LabValue
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners.full_context import pack_record, packing_window
from recordagent.runners.passages import Passage
from recordagent.runners.retrieval import PatientRetriever
from recordagent.settings import Settings
from recordagent.tools.base import SourceRef

__all__ = [
    "AuditRow",
    "AuditSummary",
    "EvidenceAudit",
    "LARGE_BUDGET",
    "PatientRows",
    "audit_evidence",
    "evidence_from_labels",
    "passage_rows",
    "render_audit_markdown",
    "render_audit_terminal",
]

LARGE_BUDGET = 10_000_000
"""Token budget for the recall@k sweep: large enough that only ``k`` limits retrieval."""


class AuditRow(BaseModel):
    """One item's audit."""

    item_id: str
    patient: str
    level: int | None
    template: str | None
    decile: int = Field(description="The patient's record-length decile (by document count).")
    evidence: int = Field(description="Evidence rows found in the patient's record.")
    evidence_unknown: int = Field(
        default=0, description="Evidence ids naming nothing in the patient's record (ignored)."
    )
    rag_reached: bool = Field(
        description="Reached by single-pass RAG with its configured k and context budget."
    )
    rag_reached_at_k: dict[int, bool] = Field(
        description="Reached with k passages and a budget that does not bind."
    )
    full_context_coverage: float = Field(
        description="Share of the evidence rows inside the full-context window."
    )


class AuditSummary(BaseModel):
    """The audit over a group of items."""

    group: str = Field(description="'overall', 'level', 'decile' or 'template'.")
    key: str
    items: int
    rag_recall: float = Field(description="Share reached at the configured k and budget.")
    rag_recall_at_k: dict[int, float]
    full_context_mean_coverage: float
    full_context_fully_covered: float = Field(description="Share of items with coverage 1.")


class EvidenceAudit(BaseModel):
    """The whole audit: settings used, per-item rows, summaries and skipped items."""

    rag_k: int
    rag_context_tokens: int
    ks: list[int]
    large_budget: int
    window_tokens: int = Field(description="The window the full-context runner packs to.")
    window_source: str = Field(
        default="setting",
        description="Where that window came from: setting, model or default "
        "(runners.full_context.WindowSource).",
    )
    reserve_tokens: int
    full_context_budget: int = Field(
        description="window_tokens - reserve_tokens (the instruction overhead is ignored)."
    )
    items_total: int
    skipped_no_evidence: list[str] = Field(default_factory=list)
    skipped_unresolved: list[str] = Field(
        default_factory=list, description="Items whose evidence ids name no record row."
    )
    rows: list[AuditRow]
    overall: AuditSummary
    by_level: list[AuditSummary]
    by_decile: list[AuditSummary]
    by_template: list[AuditSummary]


def evidence_from_labels(labels: Iterable[Label]) -> dict[str, list[str]]:
    """Item id → evidence ids, from labels.

    The adjudicated label's evidence where there is one, else the union over the item's labels
    (first-seen order).
    """
    adjudicated: dict[str, list[str]] = {}
    union: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        if label.adjudicated and label.item_id not in adjudicated:
            adjudicated[label.item_id] = list(dict.fromkeys(label.evidence))
        for eid in label.evidence:
            if eid not in union[label.item_id]:
                union[label.item_id].append(eid)
    return {item_id: adjudicated.get(item_id, ids) for item_id, ids in union.items()}


def passage_rows(passage: Passage) -> set[str]:
    """Ids of the record rows behind a passage: documents of its chunks, labs, events."""
    return {_ref_row(ref) for ref in passage.refs}


def _ref_row(ref: SourceRef) -> str:
    if ref.kind == "chunk":
        return ref.document_id or ref.id
    return ref.id


class PatientRows:
    """One patient's lab values and events by id, documents on demand (the whole record).

    Read once per patient and shared by its items (the evidence audit, the labelling views and
    the check of labelling evidence ids).
    """

    def __init__(self, scope: PatientScope) -> None:
        self.scope = scope
        self.labs: dict[str, LabValue] = {lab.lab_id: lab for lab in scope.labs()}
        self.events: dict[str, Event] = {e.event_id: e for e in scope.events()}
        self._documents: dict[str, Document | None] = {}
        self._ids: set[str] | None = None

    @property
    def ids(self) -> set[str]:
        """Every document, lab and event id of the patient."""
        if self._ids is None:
            documents = {d.document_id for d in self.scope.documents()}
            self._ids = documents | self.labs.keys() | self.events.keys()
        return self._ids

    def document(self, document_id: str) -> Document | None:
        """A document of the patient, or None."""
        if document_id not in self._documents:
            self._documents[document_id] = self.scope.document(document_id)
        return self._documents[document_id]

    def chunk(self, chunk_id: str) -> Chunk | None:
        """A chunk (``<document id>:<n>``) of one of the patient's documents, or None."""
        document_id, colon, _ = chunk_id.rpartition(":")
        if not colon or self.document(document_id) is None:
            return None
        found = [c for c in self.scope.chunks(document_ids=[document_id]) if c.chunk_id == chunk_id]
        return found[0] if found else None

    def knows(self, row_id: str) -> bool:
        """Whether the id names a document, chunk, lab value or event of the patient."""
        return (
            row_id in self.labs
            or row_id in self.events
            or self.document(row_id) is not None
            or self.chunk(row_id) is not None
        )


def audit_evidence(
    items: Sequence[EvalItem],
    evidence: Mapping[str, Sequence[str]],
    store: RecordStore,
    settings: Settings,
    *,
    ks: Sequence[int] = (5, 10, 20),
    on_progress: ItemProgress | None = None,
    model_window: int | None = None,
) -> EvidenceAudit:
    """Audit single-pass RAG retrieval and full-context packing against gold evidence.

    Args:
        items: The items to audit.
        evidence: Item id → evidence ids (documents, lab rows or events); items missing or
            with no ids are counted as without evidence (see :func:`evidence_from_labels`).
        store: The record store holding the items' patients.
        settings: Runner settings (single-pass RAG k and budget, full-context window).
        ks: The k of the recall@k sweep (run with :data:`LARGE_BUDGET` tokens).
        on_progress: Called with (items done, items to audit) after each item.
        model_window: The model's context window as its server gave it, if asked; else
            ``settings.model.context_window``. The full-context window is resolved from it as
            the runner resolves it.
    """
    rag = settings.runners.single_pass_rag
    fc = settings.runners.full_context
    window, window_source = packing_window(
        fc, settings.model, model_window or settings.model.context_window
    )
    budget = max(0, window - fc.reserve_tokens)
    sweep = sorted(set(ks))
    tokenizer = Tokenizer(settings.model.encoding)

    no_evidence = [item.id for item in items if not evidence.get(item.id)]
    todo = [item for item in items if evidence.get(item.id)]
    scopes: dict[str, PatientScope] = {}
    known: dict[str, PatientRows] = {}
    for item in todo:
        if item.patient_id not in scopes:
            scopes[item.patient_id] = store.scope(item.patient_id)
            known[item.patient_id] = PatientRows(scopes[item.patient_id])
    resolved = {
        item.id: [e for e in dict.fromkeys(evidence[item.id]) if e in known[item.patient_id].ids]
        for item in todo
    }
    unresolved = [item.id for item in todo if not resolved[item.id]]
    todo = [item for item in todo if resolved[item.id]]

    # Record-length deciles rank the audited items' patients, each once, by document count.
    patients = sorted({item.patient_id for item in todo})
    lengths = [record_length(scopes[p])[0] for p in patients]
    decile_of = dict(zip(patients, deciles(lengths), strict=True))

    retrievers: dict[tuple[str, dt.date | None], PatientRetriever] = {}
    windows: dict[tuple[str, dt.date | None], set[str]] = {}
    rows: list[AuditRow] = []
    for done, item in enumerate(todo, start=1):
        key = (item.patient_id, item.as_of)
        scope = scopes[item.patient_id]
        if key not in retrievers:
            retrievers[key] = PatientRetriever(scope, tokenizer, until=item.as_of)
            packed = pack_record(
                scope, tokenizer, budget, fc, until=item.as_of, window_tokens=window
            )
            windows[key] = {_ref_row(ref) for refs in packed.citable.values() for ref in refs}
        retriever = retrievers[key]
        gold = set(resolved[item.id])
        rows.append(
            AuditRow(
                item_id=item.id,
                patient=item.patient_id,
                level=item.level,
                template=item.template_id,
                decile=decile_of[item.patient_id],
                evidence=len(gold),
                evidence_unknown=len(set(evidence[item.id])) - len(gold),
                rag_reached=_reached(retriever, item.question, rag.k, rag.context_tokens, gold),
                rag_reached_at_k={
                    k: _reached(retriever, item.question, k, LARGE_BUDGET, gold) for k in sweep
                },
                full_context_coverage=len(gold & windows[key]) / len(gold),
            )
        )
        if on_progress is not None:
            on_progress(done, len(todo))

    return EvidenceAudit(
        rag_k=rag.k,
        rag_context_tokens=rag.context_tokens,
        ks=sweep,
        large_budget=LARGE_BUDGET,
        window_tokens=window,
        window_source=window_source,
        reserve_tokens=fc.reserve_tokens,
        full_context_budget=budget,
        items_total=len(items),
        skipped_no_evidence=no_evidence,
        skipped_unresolved=unresolved,
        rows=rows,
        overall=_summary("overall", "all", rows, sweep),
        by_level=_grouped("level", rows, sweep, lambda r: r.level),
        by_decile=_grouped("decile", rows, sweep, lambda r: r.decile),
        by_template=_grouped("template", rows, sweep, lambda r: r.template),
    )


def _reached(
    retriever: PatientRetriever, question: str, k: int, max_tokens: int, gold: set[str]
) -> bool:
    """True when a passage retrieved for ``question`` cites one of the ``gold`` rows."""
    return any(passage_rows(p) & gold for p in retriever.retrieve(question, k, max_tokens))


def _summary(group: str, key: str, rows: Sequence[AuditRow], ks: Sequence[int]) -> AuditSummary:
    n = len(rows)

    def share(values: Iterable[bool | float]) -> float:
        return float(sum(values)) / n if n else 0.0

    return AuditSummary(
        group=group,
        key=key,
        items=n,
        rag_recall=share(r.rag_reached for r in rows),
        rag_recall_at_k={k: share(r.rag_reached_at_k[k] for r in rows) for k in ks},
        full_context_mean_coverage=share(r.full_context_coverage for r in rows),
        full_context_fully_covered=share(r.full_context_coverage >= 1.0 for r in rows),
    )


def _grouped(
    group: str,
    rows: Sequence[AuditRow],
    ks: Sequence[int],
    key: Callable[[AuditRow], int | str | None],
) -> list[AuditSummary]:
    buckets: dict[int | str | None, list[AuditRow]] = defaultdict(list)
    for row in rows:
        buckets[key(row)].append(row)
    # None (no level / template) last; ints numerically, strings alphabetically.
    order = sorted(buckets, key=lambda k: (k is None, str(type(k)), k if k is not None else 0))
    return [_summary(group, "none" if k is None else str(k), buckets[k], ks) for k in order]


def _columns(audit: EvidenceAudit) -> list[str]:
    return [
        "items",
        f"RAG@{audit.rag_k} ({audit.rag_context_tokens} tok)",
        *(f"RAG@{k}" for k in audit.ks),
        "FC mean coverage",
        "FC fully covered",
    ]


def _cells(summary: AuditSummary, audit: EvidenceAudit) -> list[str]:
    return [
        str(summary.items),
        f"{summary.rag_recall:.2f}",
        *(f"{summary.rag_recall_at_k[k]:.2f}" for k in audit.ks),
        f"{summary.full_context_mean_coverage:.2f}",
        f"{summary.full_context_fully_covered:.2f}",
    ]


def _sections(audit: EvidenceAudit) -> list[tuple[str, list[AuditSummary]]]:
    return [
        ("Overall", [audit.overall]),
        ("By level", audit.by_level),
        ("By record-length decile (documents)", audit.by_decile),
        ("By template", audit.by_template),
    ]


def _preamble(audit: EvidenceAudit) -> list[str]:
    return [
        f"Items: {audit.items_total}; audited {len(audit.rows)}; without evidence "
        f"{len(audit.skipped_no_evidence)}; evidence not in the record "
        f"{len(audit.skipped_unresolved)}.",
        f"RAG: reached = a retrieved passage cites an evidence row; RAG@{audit.rag_k} uses the "
        f"configured {audit.rag_context_tokens}-token budget, RAG@k the sweep with "
        f"{audit.large_budget} tokens.",
        f"Full context (FC): window {audit.window_tokens} ({audit.window_source}) - reserve "
        f"{audit.reserve_tokens} = "
        f"{audit.full_context_budget} tokens for the record (instruction overhead ignored).",
    ]


def render_audit_terminal(audit: EvidenceAudit, console: Console) -> None:
    """Print the audit's tables to a rich console."""
    for line in _preamble(audit):
        console.print(line)
    for title, summaries in _sections(audit):
        table = Table(title=title)
        table.add_column("group")
        for column in _columns(audit):
            table.add_column(column, justify="right")
        for summary in summaries:
            table.add_row(summary.key, *_cells(summary, audit))
        console.print(table)


def render_audit_markdown(audit: EvidenceAudit) -> str:
    """The audit as Markdown: a short preamble and one table per grouping."""
    lines = ["# Evidence audit", "", *(f"- {line}" for line in _preamble(audit))]
    header = ["group", *_columns(audit)]
    for title, summaries in _sections(audit):
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---", *("---:" for _ in header[1:])]) + "|")
        for summary in summaries:
            lines.append("| " + " | ".join([summary.key, *_cells(summary, audit)]) + " |")
    return "\n".join(lines) + "\n"
