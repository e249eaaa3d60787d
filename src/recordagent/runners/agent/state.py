"""The agent graph's state, its per-run context, and the schemas of its planning calls.

The schemas the model fills (:class:`Plan`, :class:`Reflection`) are bounded — so many items,
so many characters each — and the bounds go out with the JSON schema (``maxItems``,
``maxLength``): a server that enforces the schema by grammar (llama.cpp) stops a small model
before it fills ``max_tokens`` with an endless list.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recordagent.llm.types import Message
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners.base import Answer
from recordagent.runners.common import TracedRunner
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.trace import Tracer

__all__ = [
    "MAX_ID_CHARS",
    "MAX_NEED_CHARS",
    "MAX_NEXT_STEP_CHARS",
    "MAX_PLAN_NEEDS",
    "AgentContext",
    "AgentState",
    "CheckedNeed",
    "EvidenceNeed",
    "Plan",
    "Reflection",
    "StopReason",
]

MAX_PLAN_NEEDS = 8
"""Evidence needs a plan may list."""
MAX_NEED_CHARS = 300
"""Characters of one evidence need."""
MAX_NEXT_STEP_CHARS = 500
"""Characters of a reflection's next step."""
MAX_ID_CHARS = 128
"""Characters of one cited id (record ids are shorter)."""
_MAX_CHECKED_NEEDS = 20  # the plan's needs and a template's checklist
_MAX_EVIDENCE = 20

StopReason = Literal[
    "finished", "no_tool_calls", "budget:steps", "budget:tokens", "budget:time", "reflected"
]


class EvidenceNeed(BaseModel):
    """One piece of evidence the question needs, and whether it has been found."""

    need: str = Field(description="What must be found, e.g. 'date of the first ASCT'.")
    status: Literal["open", "met", "absent"] = Field(
        default="open",
        description="open: not yet looked for or not found; met: found, with evidence; absent: "
        "searched for and the record does not contain it.",
    )
    evidence: list[str] = Field(
        default_factory=list, description="Ids of the rows that meet the need."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        # 'Met' and 'OPEN' are clear enough; failing a run over case would be perverse.
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("evidence", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return [] if value is None else [str(v) for v in value if isinstance(v, str | int)]


class CheckedNeed(EvidenceNeed):
    """An evidence need as a reflection reports it: bounded, since the model writes it."""

    need: str = Field(max_length=MAX_NEED_CHARS, description="The need, as the plan listed it.")
    evidence: list[Annotated[str, Field(max_length=MAX_ID_CHARS)]] = Field(
        default_factory=list,
        max_length=_MAX_EVIDENCE,
        description="Ids of the rows that meet the need.",
    )


class Plan(BaseModel):
    """The evidence the question needs, decomposed before any tool is called."""

    model_config = ConfigDict(extra="forbid")

    needs: list[Annotated[str, Field(max_length=MAX_NEED_CHARS)]] = Field(
        min_length=1,
        max_length=MAX_PLAN_NEEDS,
        description="Each piece of evidence needed to answer, one short phrase each. For "
        "criteria questions, one entry per criterion.",
    )


class Reflection(BaseModel):
    """The state of each evidence need after a round of tool calls."""

    model_config = ConfigDict(extra="forbid")

    needs: list[CheckedNeed] = Field(
        max_length=_MAX_CHECKED_NEEDS, description="Every need of the plan, with its status."
    )
    next_step: str | None = Field(
        default=None,
        max_length=MAX_NEXT_STEP_CHARS,
        description="If a need is open: what to look for next, and with which tool.",
    )


class AgentState(TypedDict, total=False):
    """What flows between the graph's nodes.

    ``messages`` is the conversation the act steps continue: a node returns only the messages
    it adds, and the graph appends them. Prompts asked once (plan, reflect, answer) and the
    replies to them are not added.
    """

    messages: Annotated[list[Message], operator.add]
    needs: list[EvidenceNeed]
    steps: int
    replans: int
    stop: StopReason | None
    answer: Answer


@dataclass
class AgentContext:
    """What one run needs besides the state: the runner, the item, the scope, the bookkeeping."""

    runner: TracedRunner
    item: EvalItem
    scope: PatientScope
    tracer: Tracer
    book: EvidenceBook
    params: dict[str, Any]
    """Sampling parameters of the loop's calls (the final answer has its own)."""
