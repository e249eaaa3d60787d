"""Tracer: times and records every model and tool call of one run, and streams the events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from recordagent.errors import StructuredOutputError, ToolError
from recordagent.llm.client import ChatModel
from recordagent.llm.tokens import count_request_tokens
from recordagent.llm.types import Completion, Message, ToolCall
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners._base import AnswerUsage, EventSink, TraceEvent, TraceKind
from recordagent.tools._base import SourceRef, ToolRegistry

__all__ = ["ToolOutcome", "Tracer", "WallTimeSpent", "traced_arguments"]


class WallTimeSpent(Exception):
    """A model call was cut off because the run's wall-time budget ran out."""


class ToolOutcome(BaseModel):
    """A tool call's text for the model, the rows it cites, and whether it failed."""

    text: str
    refs: list[SourceRef]
    error: str | None = None


class Tracer:
    """Records one run: events with timings, summed usage; forwards events to a sink."""

    def __init__(self, tokenizer: Tokenizer, sink: EventSink | None = None) -> None:
        self.tokenizer = tokenizer
        self.events: list[TraceEvent] = []
        self.usage = AnswerUsage()
        self._sink = sink
        self._started = time.perf_counter()
        self.mock = False
        self.model_name: str | None = None
        self._token_memo: dict[int, tuple[Message, int]] = {}

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._started

    def record(
        self,
        kind: TraceKind,
        name: str,
        *,
        started: float | None = None,
        ended: float | None = None,
        **fields: Any,
    ) -> TraceEvent:
        """Append an event (``started``/``ended``: perf_counter values; ``ended`` default now)."""
        now = time.perf_counter() if ended is None else ended
        begin = now if started is None else started
        event = TraceEvent(
            seq=len(self.events),
            kind=kind,
            name=name,
            started_s=round(begin - self._started, 6),
            duration_s=round(now - begin, 6),
            **fields,
        )
        self.events.append(event)
        if self._sink is not None:
            self._sink(event)
        return event

    async def complete(
        self,
        model: ChatModel,
        messages: Sequence[Message],
        *,
        name: str,
        tools: Sequence[dict[str, Any]] | None = None,
        response_format: type[BaseModel] | None = None,
        timeout_s: float | None = None,
        **params: Any,
    ) -> Completion:
        """Call the model, count its tokens (locally when the server does not) and record it.

        A structured answer that still does not fit its schema after the model's repair comes
        back with ``parsed=None`` (as from the mock), so that every runner handles it one way.

        Raises:
            WallTimeSpent: ``timeout_s`` passed before the model answered.
            ModelError: The model could not be reached or refused the request.
        """
        self.model_name = model.name
        self.mock = self.mock or model.is_mock
        started = time.perf_counter()
        try:
            completion = await asyncio.wait_for(
                model.complete(messages, tools=tools, response_format=response_format, **params),
                timeout=timeout_s,
            )
        except StructuredOutputError as exc:
            completion = exc.completion
            self.record("error", name, started=started, error=str(exc))
        except TimeoutError:
            self.usage.model_calls += 1
            self.usage.model_s += time.perf_counter() - started
            self.record("budget", name, started=started, summary="wall time spent mid-call")
            raise WallTimeSpent(name) from None
        except Exception as exc:
            self.usage.model_calls += 1
            self.usage.model_s += time.perf_counter() - started
            self.record("error", name, started=started, error=f"{type(exc).__name__}: {exc}")
            raise
        ended = time.perf_counter()
        prompt = completion.usage.prompt_tokens
        completion_tokens = completion.usage.completion_tokens
        if not completion.usage.reported and prompt + completion_tokens == 0:
            # Scripted models report nothing; count what a real model would have been sent.
            prompt = count_request_tokens(self.tokenizer, messages, tools, self._token_memo)
            completion_tokens = self.tokenizer.count(completion.text) + sum(
                self.tokenizer.count(c.name) + self.tokenizer.count(c.raw_arguments)
                for c in completion.tool_calls
            )
        usage = self.usage
        usage.model_calls += 1
        usage.model_s += ended - started
        usage.prompt_tokens += prompt
        usage.completion_tokens += completion_tokens
        usage.max_prompt_tokens = max(usage.max_prompt_tokens, prompt)
        usage.tokens_reported = usage.tokens_reported and completion.usage.reported
        if completion.usage.cost_usd is not None:
            usage.cost_usd = (usage.cost_usd or 0.0) + completion.usage.cost_usd
        calls = ", ".join(c.name for c in completion.tool_calls)
        self.record(
            "model_call",
            name,
            started=started,
            ended=ended,
            prompt_tokens=prompt,
            completion_tokens=completion_tokens,
            summary=f"{name}: {prompt} + {completion_tokens} tokens"
            + (f" → {calls}" if calls else ""),
        )
        return completion

    def call_tool(
        self,
        registry: ToolRegistry,
        scope: PatientScope,
        call: ToolCall,
        max_tokens: int,
    ) -> ToolOutcome:
        """Run one tool call; problems become corrective text for the model, not exceptions."""
        started = time.perf_counter()
        self.usage.tool_calls += 1
        if call.error is not None:
            outcome = ToolOutcome(text=f"Error: {call.error}", refs=[], error=call.error)
        else:
            try:
                result = registry.call(scope, call.name, call.arguments)
                text, shown = result.render_shown(self.tokenizer, max_tokens)
                outcome = ToolOutcome(text=text, refs=shown)
            except ToolError as exc:
                outcome = ToolOutcome(text=f"Error: {exc}", refs=[], error=str(exc))
        tokens = self.tokenizer.count(outcome.text)
        arguments = traced_arguments(call.arguments)
        size = "error" if outcome.error else f"{len(outcome.refs)} row(s), {tokens} tokens"
        self.record(
            "tool_call",
            call.name,
            started=started,
            arguments=arguments,
            result_tokens=tokens,
            refs=[ref.id for ref in outcome.refs],
            error=outcome.error,
            summary=f"{call.name}({_brief(arguments)}) → {size}",
        )
        return outcome

    def finish_usage(self) -> AnswerUsage:
        """Usage with the run's wall time filled in."""
        self.usage.wall_s = round(self.elapsed_s, 6)
        self.usage.model_s = round(self.usage.model_s, 6)
        return self.usage.model_copy()


# Arguments whose values are ids, dates, codes or choices, kept in traces as sent. Any other
# text (a search query, a reason, a section heading) may quote the record: only its length is
# kept.
_STRUCTURAL_ARGUMENTS = frozenset(
    {
        "document_id",
        "analyte",
        "start",
        "end",
        "date",
        "kinds",
        "document_types",
        "aggregate",
        "threshold",
        "k",
        "page",
        "limit",
    }
)


def traced_arguments(arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """Tool arguments as a trace keeps them: structure and sizes, never free text."""
    if arguments is None:
        return None
    kept: dict[str, Any] = {}
    for key, value in arguments.items():
        structural = key in _STRUCTURAL_ARGUMENTS
        if value is None or isinstance(value, bool | int | float):
            kept[key] = value
        elif isinstance(value, str) and structural and len(value) <= 64:
            kept[key] = value
        elif (
            isinstance(value, list)
            and structural
            and all(isinstance(v, str) and len(v) <= 64 for v in value)
        ):
            kept[key] = value
        elif isinstance(value, str):
            kept[key] = f"<{len(value)} characters>"
        else:
            kept[key] = f"<{type(value).__name__}>"
    return kept


def _brief(arguments: dict[str, Any] | None) -> str:
    """Arguments on one short line for progress displays."""
    if not arguments:
        return ""
    parts = [f"{k}={v!r}" for k, v in arguments.items()]
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."
