"""full_context: the whole record in one prompt, cut from the middle when it does not fit.

The record is the patient's documents in date order, then the events (one line each, as the
timeline tool shows them) and a compact lab table (one line per analyte) — the same rows the
other runners can reach. Everything is counted in tokens against the window less
``reserve_tokens``.

The window (:func:`packing_window`) is ``window_tokens`` when set; else the model's own window
(``model.context_window()``, or ``model.context_window`` in the settings) divided by
``model.window_margin``, since a server's tokenizer may count more than the local one; else
128,000. When the model's window is known, a prompt whose local count times the margin exceeds
it fails the item (failure 'context_overflow') before anything is sent.

Truncation policy, when the record does not fit:

1. The event list gets ``event_share`` and the lab table ``lab_share`` of the window, or what
   all the documents leave if that is more; past that the oldest events / lab values are
   dropped first, and each table says how many.
2. Of what remains for documents, ``head_share`` goes to the oldest documents in date order —
   the diagnosis work-up, which many questions ask about — and the rest to the most recent
   documents, newest first. The documents in between are dropped and replaced by one line
   saying how many, from when to when, and how many tokens.

The answer's ``details`` record what was kept and dropped (documents, tokens, lab values), and
the window packed to with where it came from (``window_tokens``, ``window_source``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from recordagent.errors import ModelError
from recordagent.llm.client import ChatModel
from recordagent.llm.tokens import count_request_tokens
from recordagent.llm.types import Message
from recordagent.questions.items import EvalItem
from recordagent.records.schema import Document
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners import full_context_prompts as prompts
from recordagent.runners.answering import failed_answer, question_block
from recordagent.runners.base import Answer
from recordagent.runners.common import TracedRunner
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.passages import (
    LabSeries,
    entry_tokens,
    event_lines,
    lab_series,
)
from recordagent.runners.trace import Tracer
from recordagent.settings import FullContextSettings, ModelSettings
from recordagent.tools.base import SourceRef
from recordagent.tools.catalogue import LabCatalogue, lab_catalogue

__all__ = [
    "DEFAULT_WINDOW_TOKENS",
    "FullContext",
    "PackedRecord",
    "WindowSource",
    "pack_record",
    "packing_window",
]

DEFAULT_WINDOW_TOKENS = 128_000
"""The window packed to when neither the settings nor the model say."""

WindowSource = Literal["setting", "model", "default"]
"""Where the packing window came from: ``runners.full_context.window_tokens``, the model's
window over ``model.window_margin``, or :data:`DEFAULT_WINDOW_TOKENS`."""


def packing_window(
    config: FullContextSettings, model: ModelSettings, model_window: int | None
) -> tuple[int, WindowSource]:
    """The window to pack the record into, in local tokens, and where it came from.

    Args:
        config: The full-context settings (``window_tokens`` wins when set).
        model: The model settings (``window_margin``).
        model_window: The model's window in its server's tokens, if known.
    """
    if config.window_tokens is not None:
        return config.window_tokens, "setting"
    if model_window is not None:
        return round(model_window / model.window_margin), "model"
    return DEFAULT_WINDOW_TOKENS, "default"


class PackedRecord(BaseModel):
    """The record text that fits, and what had to be left out."""

    text: str
    tokens: int
    documents_total: int
    documents_kept: int
    document_tokens_total: int
    document_tokens_dropped: int
    lab_values_total: int
    lab_values_dropped: int
    events_total: int
    events_dropped: int
    citable: dict[str, list[SourceRef]]
    whole_from: int | None = Field(
        default=None,
        description="When nothing was dropped: a budget from which packing gives this same "
        "record (so a larger budget need not pack again).",
    )

    @property
    def truncated(self) -> bool:
        """True when anything was dropped."""
        return (
            self.documents_kept < self.documents_total
            or self.lab_values_dropped > 0
            or self.events_dropped > 0
        )

    def details(self) -> dict[str, Any]:
        """The figures for an answer's details."""
        return self.model_dump(exclude={"text", "citable", "whole_from"}) | {
            "truncated": self.truncated
        }


class _Packings:
    """One record's packings at the budgets asked so far (budgets differ by question length)."""

    _KEEP = 8

    def __init__(self) -> None:
        self._by_budget: dict[int, PackedRecord] = {}
        # Packing runs in worker threads; one at a time per record, and later callers reuse it.
        self._lock = threading.Lock()

    def get(self, budget: int, pack: Callable[[int], PackedRecord]) -> PackedRecord:
        """The packing at ``budget``: one already made if it is the same, else a new one."""
        with self._lock:
            return self._get(budget, pack)

    def _get(self, budget: int, pack: Callable[[int], PackedRecord]) -> PackedRecord:
        for made_at, packed in self._by_budget.items():
            if made_at == budget or (packed.whole_from is not None and packed.whole_from <= budget):
                return packed
        packed = pack(budget)
        if len(self._by_budget) >= self._KEEP:
            del self._by_budget[next(iter(self._by_budget))]
        self._by_budget[budget] = packed
        return packed


_HEADING = "RECORD (documents in date order):"
_OMITTED_TOKENS = 48  # room kept for the line that says what was omitted
_BUDGET_STEP = 64


def pack_record(
    scope: PatientScope,
    tokenizer: Tokenizer,
    budget: int,
    config: FullContextSettings,
    until: dt.date | None = None,
    catalogue: LabCatalogue | None = None,
    window_tokens: int | None = None,
) -> PackedRecord:
    """The patient's record (up to ``until``) packed into ``budget`` tokens by the policy above.

    Lab values are grouped and converted as ``query_labs`` does (``catalogue``: the packaged
    lab catalogue when None). The tables' shares are of ``window_tokens`` (default: the
    setting, else :data:`DEFAULT_WINDOW_TOKENS`).
    """
    window = window_tokens or config.window_tokens or DEFAULT_WINDOW_TOKENS
    # The heading, the blank lines between blocks and the line saying what was omitted are
    # counted before the tables take their share.
    frame = tokenizer.count(_HEADING) + 6
    fixed = frame + _OMITTED_TOKENS
    documents = scope.documents(end=until)
    sizes = _document_tokens(scope, documents, tokenizer)
    # First the whole record; the shares cap the tables only when it does not fit.
    citable: dict[str, list[SourceRef]] = {}
    series = lab_series(scope, until, catalogue)
    event_text, event_tokens, event_total, event_dropped = _event_table(
        scope, tokenizer, max(0, budget - fixed), citable, until
    )
    lab_lines, lab_tokens, lab_total, lab_dropped = _lab_table(
        series, tokenizer, max(0, budget - fixed - event_tokens), citable
    )
    if frame + event_tokens + lab_tokens + sum(sizes) > budget:
        # Each table gets its share of the window, or what all the documents leave if more.
        room = budget - fixed - sum(sizes)
        full_labs = lab_tokens
        citable = {}
        event_cap = max(int(config.event_share * window), room - full_labs)
        event_text, event_tokens, event_total, event_dropped = _event_table(
            scope, tokenizer, max(0, min(budget - fixed, event_cap)), citable, until
        )
        lab_cap = max(int(config.lab_share * window), room - event_tokens)
        lab_lines, lab_tokens, lab_total, lab_dropped = _lab_table(
            series, tokenizer, max(0, min(budget - fixed - event_tokens, lab_cap)), citable
        )
    doc_budget = budget - lab_tokens - event_tokens - frame
    total_tokens = sum(sizes)
    if total_tokens <= doc_budget:
        head, tail = list(range(len(documents))), list[int]()
    else:
        head, tail = _split(sizes, max(0, doc_budget - _OMITTED_TOKENS), config.head_share)
    kept = set(head) | set(tail)
    blocks = [_document_block(documents[k]) for k in head]
    dropped = [k for k in range(len(documents)) if k not in kept]
    omitted = 0
    if dropped:
        blocks.append(
            prompts.OMITTED.format(
                documents=len(dropped),
                first=f"{documents[dropped[0]].date:%Y-%m-%d}",
                last=f"{documents[dropped[-1]].date:%Y-%m-%d}",
                tokens=sum(sizes[k] for k in dropped),
            )
        )
        omitted = tokenizer.count(blocks[-1]) + 2
    blocks.extend(_document_block(documents[k]) for k in sorted(tail))
    for k in kept:
        citable[documents[k].document_id] = [
            SourceRef(kind="document", id=documents[k].document_id)
        ]
    text = "\n\n".join([_HEADING, *blocks, *event_text, *lab_lines])
    whole = not dropped and not event_dropped and not lab_dropped
    return PackedRecord(
        text=text,
        tokens=tokenizer.count(_HEADING)
        + sum(sizes[k] for k in kept)
        + omitted
        + (event_tokens + 1 if event_text else 0)
        + (lab_tokens + 1 if lab_lines else 0),
        documents_total=len(documents),
        documents_kept=len(kept),
        document_tokens_total=total_tokens,
        document_tokens_dropped=sum(sizes[k] for k in dropped),
        lab_values_total=lab_total,
        lab_values_dropped=lab_dropped,
        events_total=event_total,
        events_dropped=event_dropped,
        citable=citable,
        # Past this, the fit test passes and neither table is capped, whatever the budget.
        whole_from=fixed + event_tokens + lab_tokens + total_tokens if whole else None,
    )


def _document_block(document: Document) -> str:
    return (
        f"[{document.document_id}] {document.date:%Y-%m-%d} {document.type} "
        f"'{document.title or ''}'\n{document.text}"
    )


def _document_tokens(
    scope: PatientScope, documents: list[Document], tokenizer: Tokenizer
) -> list[int]:
    """Tokens of each document block (counted once at load: the chunks' token counts)."""
    counted = dict(
        scope.fetch("SELECT document_id, sum(token_count) FROM chunks GROUP BY document_id")
    )
    return [
        int(counted.get(d.document_id) or tokenizer.count(d.text))
        + tokenizer.count(f"[{d.document_id}] {d.date:%Y-%m-%d} {d.type} '{d.title or ''}'")
        + 2
        for d in documents
    ]


def _split(sizes: list[int], budget: int, head_share: float) -> tuple[list[int], list[int]]:
    """Indices of the oldest documents within the head budget, and of the newest in the rest."""
    head: list[int] = []
    used = 0
    head_budget = int(budget * head_share)
    for k, size in enumerate(sizes):
        if used + size > head_budget:
            break
        head.append(k)
        used += size
    tail: list[int] = []
    for k in range(len(sizes) - 1, (head[-1] if head else -1), -1):
        if used + sizes[k] > budget:
            break
        tail.append(k)
        used += sizes[k]
    return head, tail


def _event_table(
    scope: PatientScope,
    tokenizer: Tokenizer,
    budget: int,
    citable: dict[str, list[SourceRef]],
    until: dt.date | None,
) -> tuple[list[str], int, int, int]:
    """Event lines within ``budget`` (oldest dropped first), tokens, events, events dropped."""
    events = scope.events(end=until)
    if not events:
        return [], 0, 0, 0
    lines = event_lines(events, until)
    costs = [tokenizer.count(line) + 1 for line in lines]
    used = tokenizer.count(prompts.EVENTS_HEADER) + sum(costs)
    first = 0
    while used > budget and first < len(lines):
        used -= costs[first]
        first += 1
    head = [prompts.EVENTS_HEADER]
    if first:
        head.append(prompts.EVENTS_CUT.format(events=first))
    if first == len(lines):
        return [], 0, len(events), first  # no room for a single event: no table at all
    for event in events[first:]:
        citable[event.event_id] = [SourceRef(kind="event", id=event.event_id)]
    table = "\n".join([*head, *lines[first:]])
    return [table], tokenizer.count(table), len(events), first


def _lab_table(
    series: list[LabSeries],
    tokenizer: Tokenizer,
    budget: int,
    citable: dict[str, list[SourceRef]],
) -> tuple[list[str], int, int, int]:
    """Lab lines within ``budget`` (oldest values dropped first), tokens, values, values dropped."""
    if not series:
        return [], 0, 0, 0
    costs = [entry_tokens(tokenizer, s.full_entries()) for s in series]
    heads = [tokenizer.count(f"[LABS-{s.slug}] {s.name} ({s.code or ''}):") + 2 for s in series]
    total_values = sum(len(s.values) for s in series)
    used = tokenizer.count(prompts.LABS_HEADER) + sum(heads) + sum(map(sum, costs))
    keep_from = [0] * len(series)
    dropped = 0
    if used > budget:
        # Drop the oldest values across analytes until the table fits.
        order = sorted((t, j, i) for j, s in enumerate(series) for i, t in enumerate(s.times))
        for _, j, i in order:
            if used <= budget:
                break
            used -= costs[j][i]
            keep_from[j] = i + 1
            dropped += 1
            if keep_from[j] == len(series[j].values):
                used -= heads[j]  # an analyte with no value left loses its line
    lines = [prompts.LABS_HEADER]
    if dropped:
        lines.append(prompts.LABS_CUT.format(values=dropped))
    for j, s in enumerate(series):
        if keep_from[j] == len(s.values):
            continue
        shown = s.render(keep_from[j])
        lines.append(f"[LABS-{s.slug}] {s.name} ({s.code or ''}): " + "; ".join(shown))
        citable[f"LABS-{s.slug}"] = [
            SourceRef(kind="lab", id=lab_id) for lab_id in s.lab_ids[keep_from[j] :]
        ]
    if dropped == total_values:
        return [], 0, total_values, dropped  # no room for a single value: no table at all
    table = "\n".join(lines)
    # The drop loop worked on estimates; what the documents get rests on the exact count.
    return [table], tokenizer.count(table), total_values, dropped


class FullContext(TracedRunner):
    """The whole record (as much as fits) in one prompt, one call."""

    name = "full_context"
    prompt_version = prompts.PROMPT_VERSION

    async def answer(
        self, item: EvalItem, scope: PatientScope, model: ChatModel, tracer: Tracer
    ) -> Answer:
        """The packed record in one prompt, one model call."""
        config = self.settings.runners.full_context
        model_window = await model.context_window() or self.settings.model.context_window
        window, source = packing_window(config, self.settings.model, model_window)
        question = question_block(item)
        overhead = sum(
            self.tokenizer.count(text) for text in (prompts.SYSTEM, question, prompts.ANSWER_NOW)
        )
        # Rounded down to a multiple of _BUDGET_STEP, so that questions of slightly different
        # lengths share one packing of a record that does not fit.
        room = window - config.reserve_tokens - overhead
        if room <= 0:
            return self._no_room(item, tracer, window, source, overhead)
        budget = room - room % _BUDGET_STEP
        started = time.perf_counter()
        # The tables' shares are of the window: packings are kept per window.
        packings = await self.cached("packed", scope, item.as_of, _Packings, window)
        packed = await asyncio.to_thread(
            packings.get,
            budget,
            lambda b: pack_record(
                scope,
                self.tokenizer,
                b,
                config,
                until=item.as_of,
                catalogue=lab_catalogue(self.settings.tools.lab_catalogue_paths),
                window_tokens=window,
            ),
        )
        book = EvidenceBook()
        for citable, refs in packed.citable.items():
            book.add_group(citable, refs)
        tracer.record(
            "context",
            "pack",
            started=started,
            step="pack",
            result_tokens=packed.tokens,
            summary=f"{packed.documents_kept}/{packed.documents_total} documents, "
            f"{packed.tokens} tokens in a {window:,}-token window ({source})"
            + (f", {packed.document_tokens_dropped} dropped" if packed.truncated else ""),
        )
        messages = [
            Message(role="system", content=prompts.SYSTEM),
            Message(role="user", content=f"{packed.text}\n\n{question}\n\n{prompts.ANSWER_NOW}"),
        ]
        details = packed.details() | {"window_tokens": window, "window_source": source}
        overflow = self._overflow(messages, model_window)
        if overflow is not None:
            tracer.record("error", "answer", error=overflow)
            return failed_answer(item, tracer, runner=self, details=details, error=overflow)
        return await self.answer_now(messages, item, model, tracer, book, details=details)

    def _no_room(
        self, item: EvalItem, tracer: Tracer, window: int, source: WindowSource, overhead: int
    ) -> Answer:
        """The failed answer of a window too small to hold any of the record."""
        reserve = self.settings.runners.full_context.reserve_tokens
        error = ModelError(
            f"full_context: a window of {window:,} local tokens ({source}) leaves no room for "
            f"the record after reserve_tokens ({reserve:,}) and the instructions "
            f"({overhead:,}); nothing was sent. Lower runners.full_context.reserve_tokens, or "
            "give the model a larger window",
            cause="context_overflow",
        )
        tracer.record("error", "pack", error=error.cause)
        details = {"window_tokens": window, "window_source": source}
        return failed_answer(item, tracer, runner=self, details=details, error=error)

    def _overflow(self, messages: list[Message], model_window: int | None) -> ModelError | None:
        """The error for a prompt too long for the model's window; None when it fits.

        The prompt's local count times ``model.window_margin`` is compared with the window
        (None when the window is unknown).
        """
        if model_window is None:
            return None
        margin = self.settings.model.window_margin
        prompt = count_request_tokens(self.tokenizer, messages)
        if prompt * margin <= model_window:
            return None
        return ModelError(
            f"full_context: the prompt ({prompt:,} local tokens, {prompt * margin:,.0f} with "
            f"the {margin:g} margin) does not fit the model's context window of "
            f"{model_window:,} tokens; nothing was sent. Lower "
            "runners.full_context.window_tokens, or leave it unset to pack to the model's "
            "window",
            cause="context_overflow",
        )
