"""Where the time went: a runner's answers' traces summed by kind of step.

Every unit of work in a trace — a model call (answered, failed or cut off by the wall-time
budget), a tool call, a retrieval, a packing, the agent's skeleton — is one event with a
``step`` and a duration (:mod:`recordagent.runners.trace`). :func:`time_by_step` sums them over
answers: calls, HTTP requests, tokens, seconds, and each step's share of the answers' wall
time; what no step accounts for (graph bookkeeping, scoring the citations, waiting for a
concurrency slot) is the :data:`OTHER_STEP` row. A pure function of the answers: the evaluation
report shows it per runner, and run logs hold everything it needs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from recordagent.runners.base import Answer, TraceEvent
from recordagent.runners.trace import TOOL_STEP, step_kind

__all__ = ["OTHER_STEP", "StepTime", "event_step", "time_by_step"]

OTHER_STEP = "other"
"""The row for wall time no step accounts for."""


class StepTime(BaseModel):
    """One kind of step over a runner's answers."""

    step: str = Field(description="plan, act, tool, reflect, answer, judge, retrieve, pack, ...")
    model: bool = Field(description="True for model calls (requests and tokens apply).")
    items: int = Field(description="Answers with at least one such step.")
    calls: int = Field(description="Steps of this kind over all answers.")
    requests: int = Field(
        default=0, description="Model calls: HTTP requests, retries and repairs included."
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = Field(default=None, description="None when nothing was priced.")
    seconds: float = Field(description="Time spent in it over all answers.")
    median_item_s: float = Field(
        description="Median over the answers with this step of the time each spent in it."
    )
    wall_share: float = Field(description="Its share of the answers' summed wall time.")


def event_step(event: TraceEvent) -> str | None:
    """The step an event is a unit of work of, or None (plans, answers, budget stops, ...).

    Events logged before steps were recorded get theirs from their kind and name.
    """
    if event.step is not None:
        return event.step
    if event.kind == "model_call":
        return step_kind(event.name)
    if event.kind == "retrieval":
        return "retrieve"
    if event.kind == "context":
        return event.name
    if event.kind == "tool_call" and event.name != "finish":
        return TOOL_STEP
    return None


@dataclass
class _Sums:
    model: bool = False
    calls: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    per_item: list[float] = field(default_factory=list)

    def add(self, event: TraceEvent) -> None:
        model = event.kind == "model_call" or event.attempts is not None
        self.model = self.model or model
        self.calls += 1
        if model:
            self.requests += event.attempts if event.attempts is not None else 1
        self.prompt_tokens += event.prompt_tokens or 0
        self.completion_tokens += event.completion_tokens or 0
        if event.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + event.cost_usd


def time_by_step(answers: Iterable[Answer]) -> list[StepTime]:
    """Calls, requests, tokens and seconds per kind of step over ``answers``.

    Steps come in the order they first appear (the pipeline's order), then :data:`OTHER_STEP`
    — the answers' wall time no step accounts for — when there is any. Answers whose traces
    hold no step at all give no rows.
    """
    sums: dict[str, _Sums] = {}
    wall = 0.0
    other: list[float] = []
    for answer in answers:
        wall += answer.usage.wall_s
        spent: dict[str, float] = {}
        for event in answer.trace:
            step = event_step(event)
            if step is None:
                continue
            sums.setdefault(step, _Sums()).add(event)
            spent[step] = spent.get(step, 0.0) + event.duration_s
        for step, seconds in spent.items():
            sums[step].per_item.append(seconds)
        rest = answer.usage.wall_s - sum(spent.values())
        if rest > 0:
            other.append(rest)
    if not sums:
        return []  # traces without steps (or no answers): nothing to say
    rows = [_row(step, s.per_item, wall, s) for step, s in sums.items()]
    if other:
        rows.append(_row(OTHER_STEP, other, wall, _Sums()))
    return rows


def _row(step: str, per_item: list[float], wall: float, sums: _Sums) -> StepTime:
    seconds = sum(per_item)
    return StepTime(
        step=step,
        model=sums.model,
        items=len(per_item),
        calls=sums.calls,
        requests=sums.requests,
        prompt_tokens=sums.prompt_tokens,
        completion_tokens=sums.completion_tokens,
        cost_usd=sums.cost_usd,
        seconds=round(seconds, 6),
        median_item_s=round(statistics.median(per_item), 6) if per_item else 0.0,
        wall_share=seconds / wall if wall > 0 else 0.0,
    )
