"""What the runners share: the run wrapper, model parameters, the patient check."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, TypeVar

from recordagent.errors import ModelError
from recordagent.llm.client import ChatModel
from recordagent.llm.types import Message
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners.answering import (
    answer_from_parsed,
    ask_final_answer,
    failed_answer,
    model_error_kind,
)
from recordagent.runners.base import Answer, EventSink
from recordagent.runners.cache import AsyncRecordCache
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.retrieval import PatientRetriever, StructuredIndex
from recordagent.runners.trace import Tracer, WallTimeSpent, loggable_details
from recordagent.settings import RunnerSettings, Settings
from recordagent.tools.catalogue import lab_catalogue

__all__ = [
    "RetrievingRunner",
    "TracedRunner",
    "answer_params",
    "check_patient",
    "model_error_kind",
    "step_params",
]

_T = TypeVar("_T")


def step_params(settings: RunnerSettings) -> dict[str, Any]:
    """Sampling parameters of every call but the final answer (``max_step_tokens``).

    Those are the agent's plan, tool loop and reflection, and iterative RAG's decisions.
    """
    return {"temperature": settings.temperature, "max_tokens": settings.max_step_tokens}


def answer_params(settings: RunnerSettings) -> dict[str, Any]:
    """Sampling parameters of the final answer (``max_answer_tokens``)."""
    return {"temperature": settings.temperature, "max_tokens": settings.max_answer_tokens}


def check_patient(item: EvalItem, scope: PatientScope) -> None:
    """Refuse to answer one patient's question from another patient's record.

    Raises:
        ValueError: The item and the scope name different patients (a caller's bug).
    """
    if item.patient_id != scope.patient_id:
        raise ValueError(
            f"item {item.id} is about patient {item.patient_id!r} but the scope is patient "
            f"{scope.patient_id!r}"
        )


class TracedRunner:
    """Base of the runners: a tracer per run, and model faults turned into a failed answer.

    Subclasses set ``name`` and ``prompt_version`` and implement :meth:`answer`.
    """

    name: ClassVar[str]
    prompt_version: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokenizer = Tokenizer(settings.model.encoding)
        self.record_cache: AsyncRecordCache[Any] = AsyncRecordCache(settings.runners.cache_patients)

    async def cached(
        self,
        kind: str,
        scope: PatientScope,
        until: dt.date | None,
        build: Callable[[], _T],
        *extra: Hashable,
    ) -> _T:
        """Question-independent work on ``scope``'s record, built once per data version.

        ``build`` runs in a worker thread, so it must only read (the scope, the tokenizer).
        """
        # The version query waits on DuckDB, which releases the interpreter lock: off the loop.
        version = await asyncio.to_thread(scope.data_version)
        key = (kind, version, scope.patient_id, until, *extra)
        value: _T = await self.record_cache.get(key, build)
        return value

    async def run(
        self,
        item: EvalItem,
        scope: PatientScope,
        model: ChatModel,
        on_event: EventSink | None = None,
    ) -> Answer:
        """Answer ``item`` from the record in ``scope``.

        A model that cannot be reached or answers nothing usable fails the item (status
        'failed', ``failure`` the cause); anything else that goes wrong is a bug and
        propagates.
        """
        check_patient(item, scope)
        tracer = Tracer(self.tokenizer, on_event)
        try:
            return await self.answer(item, scope, model, tracer)
        except ModelError as exc:
            return failed_answer(item, tracer, runner=self, error=exc)

    async def answer(
        self, item: EvalItem, scope: PatientScope, model: ChatModel, tracer: Tracer
    ) -> Answer:
        """The runner's own work, recorded on ``tracer``."""
        raise NotImplementedError

    async def answer_now(
        self,
        messages: list[Message],
        item: EvalItem,
        model: ChatModel,
        tracer: Tracer,
        book: EvidenceBook,
        *,
        truncated: bool = False,
        details: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        """Ask for the final answer after ``messages``; this runner's Answer from the reply.

        A model error (the answer cut off at max_tokens, say) fails the item with the run's
        ``details`` kept. ``timeout_s`` bounds the call: when it runs out the answer is
        'truncated', without a value.
        """
        try:
            completion = await ask_final_answer(
                tracer,
                model,
                messages,
                item,
                answer_params(self.settings.runners),
                timeout_s=timeout_s,
            )
        except ModelError as exc:
            return failed_answer(
                item, tracer, runner=self, details=loggable_details(details, tracer), error=exc
            )
        except WallTimeSpent:
            return failed_answer(
                item,
                tracer,
                runner=self,
                details=loggable_details({**(details or {}), "answer_timed_out": True}, tracer),
                status="truncated",
            )
        return answer_from_parsed(
            completion.parsed,
            completion.text,
            item,
            book,
            tracer,
            runner=self,
            truncated=truncated,
            details=details,
        )


class RetrievingRunner(TracedRunner):
    """A runner that retrieves passages: the patient's structured index is kept between items."""

    async def retriever(self, scope: PatientScope, until: dt.date | None) -> PatientRetriever:
        """A retriever over ``scope``'s record up to ``until``, on the kept structured index."""
        index = await self.cached(
            "structured",
            scope,
            until,
            lambda: StructuredIndex(
                scope,
                self.tokenizer,
                until,
                lab_catalogue(self.settings.tools.lab_catalogue_paths),
            ),
        )
        return PatientRetriever(scope, self.tokenizer, until=until, index=index)
