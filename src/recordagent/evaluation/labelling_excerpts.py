"""The record excerpts a labelling view shows for an item: flagged rows first, then search hits.

What an annotator needs beside the question is the part of the patient's record that answers
it, with ids to cite. Two sources, read through the patient's :class:`PatientScope` only:

* **flagged** — the record rows a labels file cites as the item's evidence (a silver query's
  rows, say): whole documents (or the chunk cited), lab values and events, shown first. Only
  the ids are used: the labelled value is never read here (blind labelling).
* **related** — the rest of the lab series (the passage of about 160 tokens around it) or
  event kind a flagged row belongs to, so that "the most recent" or "the lowest" can be judged.
* **search** — what the runners' retrieval (:class:`~recordagent.runners.retrieval.
  PatientRetriever`: BM25 over chunks and over lab and event passages, fused by rank) finds for
  the question, nothing dated after the item's ``as_of``. Lab and event passages are shown as
  their rows, each with its own id, so that an annotator cites rows rather than passages.

Excerpts are added in that order until the character budget is spent; a document longer than
what is left is cut (and says so). Rows already shown are not shown twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from recordagent.records.ids import normalise_id
from recordagent.records.schema import Document, Event, LabValue
from recordagent.records.scope import PatientScope
from recordagent.runners.passages import Passage
from recordagent.runners.retrieval import PatientRetriever

__all__ = ["Excerpt", "ExcerptRow", "ItemExcerpts", "PatientRows", "item_excerpts"]

_MIN_CUT = 400  # a document cut shorter than this is left out rather than shown as a stub


class ExcerptRow(BaseModel):
    """One lab value or event of an excerpt, with its id."""

    id: str = Field(description="The row's record id (cite it in the evidence column).")
    when: str = Field(description="Its time (labs) or span (events).")
    text: str = Field(description="The row in one line.")


class Excerpt(BaseModel):
    """A block of the record shown to the annotator."""

    kind: Literal["document", "labs", "events"] = Field(description="What the block holds.")
    source: Literal["flagged", "related", "search"] = Field(
        description="flagged: cited by the labels file given at export; related: the lab "
        "series or event kind a flagged row belongs to; search: found for the question."
    )
    id: str | None = Field(default=None, description="Documents: the chunk or document id.")
    date: dt.date | None = Field(default=None, description="Documents: the document's day.")
    title: str = Field(description="A heading: document type and title, or the analyte/kind.")
    text: str = Field(default="", description="Documents: the text shown.")
    rows: list[ExcerptRow] = Field(default_factory=list, description="Labs and events.")
    cut: int = Field(default=0, description="Characters of the text left out for the budget.")

    @property
    def chars(self) -> int:
        """Characters the excerpt shows (what the budget counts)."""
        return len(self.title) + len(self.text) + sum(len(r.text) + 30 for r in self.rows)


class ItemExcerpts(BaseModel):
    """The excerpts of one item's view, and what did not fit."""

    item_id: str = Field(description="The item.")
    excerpts: list[Excerpt] = Field(description="Flagged excerpts first, then search hits.")
    chars: int = Field(description="Characters shown.")
    budget: int = Field(description="The character budget.")
    left_out: int = Field(description="Search hits not shown for lack of budget.")
    unknown_evidence: list[str] = Field(
        default_factory=list, description="Flagged ids that name nothing in the patient's record."
    )


class PatientRows:
    """One patient's documents, lab values and events by id (read once, shared by its items)."""

    def __init__(self, scope: PatientScope) -> None:
        self.scope = scope
        self.labs: dict[str, LabValue] = {lab.lab_id: lab for lab in scope.labs()}
        self.events: dict[str, Event] = {e.event_id: e for e in scope.events()}
        self._documents: dict[str, Document | None] = {}

    def document(self, document_id: str) -> Document | None:
        """A document of the patient, or None."""
        if document_id not in self._documents:
            self._documents[document_id] = self.scope.document(document_id)
        return self._documents[document_id]


def item_excerpts(
    item_id: str,
    question: str,
    rows: PatientRows,
    retriever: PatientRetriever,
    flagged: Sequence[str] = (),
    *,
    budget: int = 16_000,
    k: int = 12,
) -> ItemExcerpts:
    """The excerpts of one item's labelling view.

    Args:
        item_id: The item.
        question: Its question (the search query).
        rows: The patient's rows by id.
        retriever: The patient's retriever (built with the item's ``as_of``).
        flagged: Record ids to show first (documents, chunks ``<document>:<n>``, labs, events).
        budget: Characters the excerpts may show in all.
        k: Search hits asked for.
    """
    state = _Budget(budget)
    shown: set[str] = set()
    unknown: list[str] = []
    excerpts: list[Excerpt] = []
    lab_rows: list[ExcerptRow] = []
    event_rows: list[ExcerptRow] = []
    for raw in dict.fromkeys(flagged):
        rid = normalise_id(raw)
        if rid in rows.labs:
            lab_rows.append(_lab_row(rows.labs[rid]))
        elif rid in rows.events:
            event_rows.append(_event_row(rows.events[rid]))
        else:
            found, excerpt = _flagged_document(rid, rows, state)
            if not found:
                unknown.append(raw)
            elif excerpt is not None:
                excerpts.append(excerpt)
                shown.add(excerpt.id or "")
        shown.add(rid)
    for kind, table in (("labs", lab_rows), ("events", event_rows)):
        if table:
            excerpt = Excerpt(kind=kind, source="flagged", title=f"Flagged {kind}", rows=table)
            state.spend(excerpt.chars)
            excerpts.append(excerpt)
    # The lab series and event kinds around flagged rows come next: a flagged value makes
    # sense next to the values before and after it ("the most recent", "the lowest").
    flagged_rows = {r.id for e in excerpts for r in e.rows}
    related = [p for p in retriever.structured if any(r.id in flagged_rows for r in p.refs)]
    searched = retriever.retrieve(question, k=k, max_tokens=10_000_000, exclude=shown)
    left_out = 0
    for passage in [*related, *searched]:
        excerpt = _searched(passage, rows, shown)
        if excerpt is not None and passage in related:
            excerpt = excerpt.model_copy(update={"source": "related"})
        if excerpt is None:
            continue
        if excerpt.kind == "document":
            excerpt = _fit_text(excerpt, state.left)
        if excerpt is None or excerpt.chars > state.left:
            left_out += 1
            continue
        state.spend(excerpt.chars)
        excerpts.append(excerpt)
        shown.update([excerpt.id or "", *(r.id for r in excerpt.rows)])
    return ItemExcerpts(
        item_id=item_id,
        excerpts=excerpts,
        chars=state.used,
        budget=budget,
        left_out=left_out,
        unknown_evidence=unknown,
    )


class _Budget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0

    @property
    def left(self) -> int:
        return max(0, self.total - self.used)

    def spend(self, chars: int) -> None:
        self.used += chars


def _flagged_document(rid: str, rows: PatientRows, state: _Budget) -> tuple[bool, Excerpt | None]:
    """Whether the id names a document or chunk, and its excerpt (None: no budget left)."""
    document = rows.document(rid)
    text = document.text if document is not None else ""
    if document is None and ":" in rid:  # a chunk id, '<document id>:<position>'
        document = rows.document(rid.rpartition(":")[0])
        if document is None:
            return False, None
        chunk = [
            c for c in rows.scope.chunks(document_ids=[document.document_id]) if c.chunk_id == rid
        ]
        if not chunk:
            return False, None
        text = chunk[0].text
    if document is None:
        return False, None
    excerpt = Excerpt(
        kind="document",
        source="flagged",
        id=rid,
        date=document.date.date(),
        title=_document_title(document.type, document.title, None),
        text=text,
    )
    fitted = _fit_text(excerpt, state.left)
    if fitted is None:
        return True, None
    state.spend(fitted.chars)
    return True, fitted


def _searched(passage: Passage, rows: PatientRows, shown: set[str]) -> Excerpt | None:
    """A search hit as an excerpt, without rows already shown; None when nothing is new."""
    if passage.kind == "chunk":
        document_id = passage.refs[0].document_id if passage.refs else None
        if passage.id in shown or (document_id is not None and document_id in shown):
            return None
        return Excerpt(
            kind="document",
            source="search",
            id=passage.id,
            date=passage.date,
            title=passage.title,
            text=passage.text,
        )
    ids = [ref.id for ref in passage.refs if ref.id not in shown]
    if passage.kind == "labs":
        table = [_lab_row(rows.labs[i]) for i in ids if i in rows.labs]
    else:
        table = [_event_row(rows.events[i]) for i in ids if i in rows.events]
    if not table:
        return None
    return Excerpt(kind=passage.kind, source="search", title=passage.title, rows=table)


def _fit_text(excerpt: Excerpt, left: int) -> Excerpt | None:
    """The excerpt with its text cut to what is left of the budget; None if too little is."""
    room = left - len(excerpt.title)
    if len(excerpt.text) <= room:
        return excerpt
    if room < _MIN_CUT:
        return None
    cut = excerpt.text[:room]
    space = cut.rfind(" ")
    if space > room // 2:
        cut = cut[:space]
    return excerpt.model_copy(update={"text": cut, "cut": len(excerpt.text) - len(cut)})


def _document_title(kind: str, title: str | None, section: str | None) -> str:
    return f"{kind} '{title or ''}'" + (f" / {section}" if section else "")


def _lab_row(lab: LabValue) -> ExcerptRow:
    value = f"{lab.value_num:g}" if lab.value_num is not None else (lab.value_text or "")
    parts = [lab.analyte_name + (f" ({lab.analyte_code})" if lab.analyte_code else "") + ":", value]
    if lab.unit:
        parts.append(lab.unit)
    if lab.flag:
        parts.append(lab.flag)
    if lab.ref_low is not None or lab.ref_high is not None:
        low = "" if lab.ref_low is None else f"{lab.ref_low:g}"
        high = "" if lab.ref_high is None else f"{lab.ref_high:g}"
        parts.append(f"[ref {low}–{high}]")
    # MIMIC repeats a text result as the comment: shown once.
    extra = [x for x in (lab.fluid, lab.comment) if x and x != lab.value_text]
    text = " ".join(parts) + (f" ({'; '.join(extra)})" if extra else "")
    return ExcerptRow(id=lab.lab_id, when=f"{lab.time:%Y-%m-%d %H:%M}", text=text)


def _event_row(event: Event) -> ExcerptRow:
    when = f"{event.start_time:%Y-%m-%d}"
    if event.end_time is not None:
        when += f" – {event.end_time:%Y-%m-%d}"
    parts: Iterable[str] = (
        event.kind + ":",
        event.label,
        f"[{event.code}]" if event.code else "",
        f"— {event.detail}" if event.detail else "",
    )
    return ExcerptRow(id=event.event_id, when=when, text=" ".join(p for p in parts if p))
