"""The record excerpts a labelling view shows for an item: cited rows and search hits, by date.

What an annotator needs beside the question is the part of the patient's record that answers
it, with ids to cite. Read through the patient's :class:`PatientScope` only, excerpts come from:

* **cited** — the record rows a labels file cites as the item's evidence (a silver query's
  rows, say): whole documents (or the chunk cited), lab values and events. A cited lab value
  or event is shown within its **related** rows: the lab series (the passage of about 160
  tokens around it) or event list it belongs to, so that "the most recent" or "the lowest" can
  be judged and the cited row is not singled out. Only the ids are used: the labelled value is
  never read here.
* **search** — what the runners' retrieval (:class:`~recordagent.runners.retrieval.
  PatientRetriever`: BM25 over chunks and over lab and event passages, fused by rank) finds for
  the question, nothing dated after the item's ``as_of``. Lab and event passages are shown as
  their rows, each with its own id, so that an annotator cites rows rather than passages.

Cited and related excerpts are always included; search hits are added until the character
budget is spent, and a document longer than what is left is cut (and says so). Rows already
shown are not shown twice. A cited row dated after ``as_of`` is left out and counted. The
excerpts are then put in date order, and the page does not say which were cited (blind
labelling: cited rows are among the excerpts, unmarked; a reference value is never shown).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from recordagent.evaluation.audit import PatientRows
from recordagent.records.ids import normalise_id
from recordagent.records.schema import Event, LabValue
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
    source: Literal["cited", "related", "search"] = Field(
        description="Why it is there (not shown on the page): cited by the labels file given "
        "at export; related: the lab series or event list of a cited row; search: found for "
        "the question."
    )
    id: str | None = Field(default=None, description="Documents: the chunk or document id.")
    date: dt.date | None = Field(
        default=None, description="The document's day, or the first row's day (the order)."
    )
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
    excerpts: list[Excerpt] = Field(description="The excerpts, in date order.")
    chars: int = Field(description="Characters shown.")
    budget: int = Field(description="The character budget.")
    left_out: int = Field(description="Search hits not shown for lack of budget.")
    after_as_of: int = Field(
        default=0, description="Cited rows left out because they are dated after as_of."
    )
    unknown_evidence: list[str] = Field(
        default_factory=list, description="Cited ids that name nothing in the patient's record."
    )


def item_excerpts(
    item_id: str,
    question: str,
    rows: PatientRows,
    retriever: PatientRetriever,
    cited: Sequence[str] = (),
    *,
    as_of: dt.date | None = None,
    budget: int = 16_000,
    k: int = 12,
) -> ItemExcerpts:
    """The excerpts of one item's labelling view.

    Args:
        item_id: The item.
        question: Its question (the search query).
        rows: The patient's rows by id.
        retriever: The patient's retriever (built with the item's ``as_of``).
        cited: Record ids to include (documents, chunks ``<document>:<n>``, labs, events).
        as_of: The item's day: cited rows dated after it are left out (and counted).
        budget: Characters the excerpts may show in all.
        k: Search hits asked for.
    """
    state = _Budget(budget)
    shown: set[str] = set()
    unknown: list[str] = []
    after = 0
    excerpts: list[Excerpt] = []
    cited_rows: dict[str, ExcerptRow] = {}
    for raw in dict.fromkeys(cited):
        rid = normalise_id(raw)
        if rid in rows.labs or rid in rows.events:
            lab = rows.labs.get(rid)
            day = lab.time.date() if lab is not None else rows.events[rid].start_time.date()
            if as_of is not None and day > as_of:
                after += 1
            else:
                cited_rows[rid] = _lab_row(lab) if lab is not None else _event_row(rows.events[rid])
            continue
        found, written, excerpt = _cited_document(rid, rows, state)
        if not found:
            unknown.append(raw)
        elif as_of is not None and written is not None and written > as_of:
            after += 1
        elif excerpt is not None:
            state.spend(excerpt.chars)
            excerpts.append(excerpt)
            shown.update([rid, excerpt.id or ""])
    # A cited value is shown inside its lab series or event list, never on its own: next to
    # the values before and after it, and not pointed at.
    related = [p for p in retriever.structured if any(r.id in cited_rows for r in p.refs)]
    for passage in related:
        excerpt = _searched(passage, rows, shown, "related")
        if excerpt is not None:
            state.spend(excerpt.chars)
            excerpts.append(excerpt)
            shown.update(r.id for r in excerpt.rows)
    loose: list[tuple[Literal["labs", "events"], list[ExcerptRow]]] = [
        ("labs", [r for i, r in cited_rows.items() if i not in shown and i in rows.labs]),
        ("events", [r for i, r in cited_rows.items() if i not in shown and i in rows.events]),
    ]
    for kind, table in loose:
        if table:  # rows no passage holds (outside the retrieval's lab catalogue, say)
            table.sort(key=lambda r: r.when)
            title = "Lab values" if kind == "labs" else "Events"
            excerpt = _table(kind, "cited", title, table)
            state.spend(excerpt.chars)
            excerpts.append(excerpt)
            shown.update(r.id for r in table)
    searched = retriever.retrieve(question, k=k, max_tokens=10_000_000, exclude=shown)
    left_out = 0
    for passage in searched:
        excerpt = _searched(passage, rows, shown, "search")
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
    # Date order (stable: same-day excerpts keep the order they were chosen in), so that the
    # cited excerpts are not the first ones shown.
    excerpts.sort(key=lambda e: e.date or dt.date.min)
    return ItemExcerpts(
        item_id=item_id,
        excerpts=excerpts,
        chars=state.used,
        budget=budget,
        left_out=left_out,
        after_as_of=after,
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


def _cited_document(
    rid: str, rows: PatientRows, state: _Budget
) -> tuple[bool, dt.date | None, Excerpt | None]:
    """Whether the id names a document or chunk, its day, and its excerpt (None: no room)."""
    document = rows.document(rid)
    text = document.text if document is not None else ""
    if document is None:  # a chunk id, '<document id>:<position>'?
        chunk = rows.chunk(rid)
        if chunk is None:
            return False, None, None
        document = rows.document(chunk.document_id)
        if document is None:
            return False, None, None
        text = chunk.text
    excerpt = Excerpt(
        kind="document",
        source="cited",
        id=rid,
        date=document.date.date(),
        title=_document_title(document.type, document.title),
        text=text,
    )
    return True, excerpt.date, _fit_text(excerpt, state.left)


def _searched(
    passage: Passage,
    rows: PatientRows,
    shown: set[str],
    source: Literal["related", "search"],
) -> Excerpt | None:
    """A passage as an excerpt, without rows already shown; None when nothing is new."""
    if passage.kind == "chunk":
        document_id = passage.refs[0].document_id if passage.refs else None
        if passage.id in shown or (document_id is not None and document_id in shown):
            return None
        return Excerpt(
            kind="document",
            source=source,
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
    return _table(passage.kind, source, passage.title, table)


def _table(
    kind: Literal["labs", "events"],
    source: Literal["cited", "related", "search"],
    title: str,
    table: list[ExcerptRow],
) -> Excerpt:
    day = dt.date.fromisoformat(min(r.when for r in table)[:10])
    return Excerpt(kind=kind, source=source, title=title, rows=table, date=day)


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


def _document_title(kind: str, title: str | None) -> str:
    return f"{kind} '{title or ''}'"


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
