"""The Runner protocol and what a runner returns: Answer, its status, trace and usage.

The evaluator sees only this module's types: any runner — the agent graph or a baseline — takes
an :class:`EvalItem`, the patient's :class:`PatientScope` and a :class:`ChatModel`, and returns
an :class:`Answer`. Traces hold ids, sizes, timings and error kinds, never record text or the
model's own words (:mod:`recordagent.runners.trace` reduces them where events are made), and
``Answer.details`` holds ids, counts and codes only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from recordagent.errors import ModelFailure
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.tools.base import SourceRef

__all__ = [
    "Answer",
    "AnswerStatus",
    "AnswerUsage",
    "Citation",
    "EventSink",
    "Runner",
    "TraceEvent",
    "TraceKind",
]

AnswerStatus = Literal["answered", "insufficient_evidence", "truncated", "failed"]
"""answered: the model gave a value; insufficient_evidence: it found the record silent;
truncated: a budget (steps, tokens, wall time, rounds) ended the reasoning and the value is the
best answer so far; failed: no usable answer (the model could not be reached or answered
nothing valid)."""

Citation = SourceRef
"""A cited record row: chunk, document, lab value or event."""

TraceKind = Literal[
    "context",
    "retrieval",
    "plan",
    "model_call",
    "tool_call",
    "reflect",
    "citation_removed",
    "budget",
    "answer",
    "error",
]


class TraceEvent(BaseModel):
    """One step of a run: a model call, a tool call, a retrieval, a decision."""

    seq: int = Field(description="Position in the run, from 0.")
    kind: TraceKind
    name: str = Field(description="Which node, tool or step.")
    started_s: float = Field(description="Seconds from the start of the run.")
    duration_s: float = Field(default=0.0, description="How long the step took.")
    step: str | None = Field(
        default=None,
        description="Model calls and record work: the kind of step, for where the time went "
        "(plan, act, reflect, answer, decide, retrieve, pack, skeleton, ...).",
    )
    prompt_tokens: int | None = Field(default=None, description="Model calls: prompt tokens.")
    completion_tokens: int | None = Field(
        default=None, description="Model calls: completion tokens."
    )
    attempts: int | None = Field(
        default=None,
        description="Model calls: HTTP requests made, retries and repairs included.",
    )
    cost_usd: float | None = Field(default=None, description="Model calls: what it cost.")
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="Tool calls: the arguments the model sent, as names with numbers, dates, "
        "schema choices and ids kept and any other text as its length (runners.trace).",
    )
    result_tokens: int | None = Field(
        default=None, description="Tool calls and retrievals: tokens handed to the model."
    )
    refs: list[str] = Field(
        default_factory=list, description="Ids of the record rows the step returned or removed."
    )
    error: str | None = Field(
        default=None,
        description="What went wrong, if anything, as a kind: an exception class name or one "
        "of runners.trace.ERROR_KINDS — never the message, which may quote the record.",
    )
    error_chars: int | None = Field(
        default=None, description="Length of the error's message (what the model was shown)."
    )
    error_fields: list[str] = Field(
        default_factory=list,
        description="Tool calls with invalid arguments: the argument fields at fault.",
    )
    summary: str = Field(default="", description="One line for progress displays (no record text).")


class AnswerUsage(BaseModel):
    """What answering one item cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_reported: bool = Field(
        default=True, description="False if any count was made locally instead of by the server."
    )
    cost_usd: float | None = Field(default=None, description="None for unpriced models.")
    model_calls: int = Field(default=0, description="Model calls the runner made.")
    requests: int = Field(
        default=0, description="HTTP requests those calls took, retries and repairs included."
    )
    tool_calls: int = 0
    max_prompt_tokens: int = Field(default=0, description="The largest single prompt.")
    wall_s: float = Field(default=0.0, description="Wall time of the whole run.")
    model_s: float = Field(default=0.0, description="Time spent waiting on the model.")

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class Answer(BaseModel):
    """A runner's answer to one item."""

    item_id: str
    patient_id: str | None = Field(
        default=None,
        description="The patient the item asks about (None in logs written before it was kept).",
    )
    runner: str = Field(description="Registered runner name.")
    prompt_version: str = Field(description="Version of the runner family's prompts.")
    model: str = Field(description="The model that answered.")
    mock: bool = Field(description="True when a scripted mock produced it: not a model's answer.")
    status: AnswerStatus
    value: Any = Field(
        default=None, description="The typed value per the item's answer type (None if none)."
    )
    text: str = Field(default="", description="The answer in words.")
    citations: list[Citation] = Field(
        default_factory=list, description="Record rows the answer rests on (validated)."
    )
    failure: ModelFailure | None = Field(
        default=None,
        description="Why the model failed this item, as one word (errors.ModelFailure); None "
        "when it did not.",
    )
    failure_message: str | None = Field(
        default=None,
        exclude=True,
        description="The failure in words, for the terminal only: never written to run logs "
        "(a server's message may quote the request).",
    )
    trace: list[TraceEvent] = Field(default_factory=list)
    usage: AnswerUsage = Field(default_factory=AnswerUsage)
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Runner-specific facts as ids, counts and codes: passages used, rounds, "
        "what full context dropped (never record text or the model's words: run logs keep it).",
    )


EventSink = Callable[[TraceEvent], None]
"""Receives each trace event as it happens (progress displays, the interactive session)."""


@runtime_checkable
class Runner(Protocol):
    """Answers one item about one patient."""

    @property
    def name(self) -> str:
        """Registered name, recorded in run logs."""
        ...

    @property
    def prompt_version(self) -> str:
        """Version of the prompts it uses, recorded in run logs."""
        ...

    async def run(
        self,
        item: EvalItem,
        scope: PatientScope,
        model: ChatModel,
        on_event: EventSink | None = None,
    ) -> Answer:
        """Answer ``item`` from the record in ``scope``; never raises for model or tool faults."""
        ...
