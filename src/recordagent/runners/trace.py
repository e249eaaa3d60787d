"""Tracer: times and records every model and tool call of one run, and streams the events.

A trace is kept in run logs, so it holds ids, sizes, timings, field paths and error kinds —
never text from the record or text the model wrote. Everything that could carry such text is
reduced here, where events are made, so no runner can put it in by accident: tool arguments
keep their names, numbers, dates, schema choices and ids, and the length of any other text
(:mod:`recordagent.runners.loggable`); errors keep their kind (an exception class, a model
failure's cause or a fixed identifier) and their message's length; composite passage ids, which
embed the record's analyte names, get an alias per run.

Every unit of work — a model call (answered or failed), a tool call, a retrieval, a packing —
is one event with a ``step`` (its kind: 'act' for 'act 3') and its duration, so that
:func:`recordagent.runners.timing.time_by_step` can say where a run's time went. Model calls
also carry their tokens, HTTP requests (``attempts``) and cost; a failed call counts what it
spent (the failure's completion) as an answered one does.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from recordagent.errors import MODEL_FAILURES, ModelError, StructuredOutputError, ToolError
from recordagent.llm.client import ChatModel
from recordagent.llm.tokens import count_request_tokens
from recordagent.llm.types import Completion, Message, ToolCall
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners.base import AnswerUsage, EventSink, TraceEvent, TraceKind
from recordagent.runners.loggable import (
    loggable_need,
    looks_like_id,
    masked_text,
    traced_arguments,
)
from recordagent.tools.base import SourceRef, ToolRegistry

__all__ = [
    "ERROR_KINDS",
    "TOOL_STEP",
    "UNKNOWN_TOOL",
    "ToolOutcome",
    "Tracer",
    "WallTimeSpent",
    "error_kind",
    "loggable_details",
    "loggable_need",
    "masked_text",
    "step_kind",
    "traced_arguments",
]

ERROR_KINDS = frozenset(
    {
        # tool calls
        "unknown_tool",  # the model named a tool that is not offered
        "invalid_json",  # its arguments did not parse as JSON
        "invalid_arguments",  # they did not fit the tool's input (field paths in error_fields)
        "call_refused",  # the call was refused before the tool ran (e.g. after the as-of day)
        "ToolError",  # the tool could not serve the arguments (unknown analyte, document, ...)
        # structured replies
        "plan_unparsed",
        "reflection_unparsed",
        "decision_unparsed",
        "answer_unparsed",
        "answer_value_invalid",
        "answered_without_value",
        # model calls that failed: why, as errors.ModelFailure says it ('unclassified' too)
        *MODEL_FAILURES,
        # anything else a caller described in words: the words are not kept
        "unclassified",
    }
)
"""The error kinds a trace holds besides exception class names."""

UNKNOWN_TOOL = "(unknown tool)"
"""The name a trace gives a call of a tool that is not offered (the model's name is text)."""

TOOL_STEP = "tool"
"""The step of every tool call (its event's name says which tool)."""

# Passage ids that group rows under a name from the record: LABS-<analyte>[-<part>].
_COMPOSITE = re.compile(r"(LABS|EVENTS)-(.+?)(-\d+)?")
# A numbered step's name: 'act 3', 'decide 2', 'round 1'.
_NUMBERED = re.compile(r"(.+?) \d+")


class WallTimeSpent(Exception):
    """A model call was cut off because the run's wall-time budget ran out."""


class ToolOutcome(BaseModel):
    """A tool call's text for the model, the rows it cites, and whether it failed.

    ``error`` is the corrective message the model reads; the trace keeps only its kind.
    """

    text: str
    refs: list[SourceRef]
    error: str | None = None
    error_kind: str | None = None
    error_fields: list[str] = []


def error_kind(error: str | BaseException) -> str:
    """What a trace keeps of an error: its kind, never its message.

    A model error gives its cause (:data:`recordagent.errors.ModelFailure`); another exception
    its class name; a string is kept when it is one of :data:`ERROR_KINDS`, else it becomes
    'unclassified'.
    """
    if isinstance(error, ModelError):
        return error.cause
    if isinstance(error, BaseException):
        return type(error).__name__
    if error in ERROR_KINDS:
        return error
    return "unclassified"


def step_kind(name: str) -> str:
    """The kind of step a model call's name stands for: 'act 3' → 'act'; 'plan' → 'plan'."""
    match = _NUMBERED.fullmatch(name)
    return match.group(1) if match else name


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
        self._aliases: dict[tuple[str, str], str] = {}
        self._schemas: dict[str, Mapping[str, Any]] = {}

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._started

    def loggable_ref(self, ref: str) -> str:
        """``ref`` as traces and details keep it.

        Row ids (chunks, documents, lab values, events) are kept. A composite passage id
        ('LABS-creatinine-1') names the record's analyte: the name becomes an alias numbered
        in this run ('LABS-#1-1'), the same wherever the run mentions it.
        """
        match = _COMPOSITE.fullmatch(ref)
        if match is None:
            return ref
        prefix, name, part = match.groups()
        alias = self._aliases.setdefault((prefix, name), f"#{len(self._aliases) + 1}")
        return f"{prefix}-{alias}{part or ''}"

    def loggable_refs(self, refs: Iterable[str]) -> list[str]:
        """:meth:`loggable_ref` of each of ``refs``."""
        return [self.loggable_ref(ref) for ref in refs]

    def record(
        self,
        kind: TraceKind,
        name: str,
        *,
        started: float | None = None,
        ended: float | None = None,
        error: str | BaseException | None = None,
        refs: Iterable[str] = (),
        **fields: Any,
    ) -> TraceEvent:
        """Append an event (``started``/``ended``: perf_counter values; ``ended`` default now).

        ``error`` is reduced to its kind (:func:`error_kind`) and the length of its message;
        ``refs`` to loggable ids (:meth:`loggable_ref`). The refs of a 'citation_removed'
        event are what the model cited without having been shown: anything that does not look
        like an id is kept as its length only.
        """
        now = time.perf_counter() if ended is None else ended
        begin = now if started is None else started
        if error is not None:
            fields["error"] = error_kind(error)
            fields.setdefault("error_chars", len(str(error)))
        ids = list(refs)
        if kind == "citation_removed":
            ids = [r if looks_like_id(r) else f"<{len(r)} characters>" for r in ids]
        event = TraceEvent(
            seq=len(self.events),
            kind=kind,
            name=name,
            started_s=round(begin - self._started, 6),
            duration_s=round(now - begin, 6),
            refs=self.loggable_refs(ids),
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
        A structured answer cut off at ``max_tokens`` (``finish_reason`` 'length') is a model
        error with cause 'output_length', whether the client raised it or returned it. A
        failed call is recorded as an 'error' event with its cause and counted with what its
        completion spent.

        Raises:
            WallTimeSpent: ``timeout_s`` passed before the model answered.
            ModelError: The model could not be reached, refused the request, or cut the
                structured answer off (``cause`` says which).
        """
        self.model_name = model.name
        self.mock = self.mock or model.is_mock
        started = time.perf_counter()
        if timeout_s is not None and timeout_s <= 0:
            self.record("budget", name, summary="no wall time left: not asked")
            raise WallTimeSpent(name)
        try:
            completion = await asyncio.wait_for(
                model.complete(messages, tools=tools, response_format=response_format, **params),
                timeout=timeout_s,
            )
        except StructuredOutputError as exc:
            if exc.completion is None:
                self._failed_call(name, started, exc, messages, tools)
                raise
            self.record("error", name, error=exc)
            completion = exc.completion.model_copy(update={"parsed": None})
        except TimeoutError:
            self._count_call(name, started, None, messages, tools)
            self.record(
                "budget",
                name,
                started=started,
                step=step_kind(name),
                attempts=1,
                summary="wall time spent mid-call",
            )
            raise WallTimeSpent(name) from None
        except Exception as exc:
            self._failed_call(name, started, exc, messages, tools)
            raise
        if completion.finish_reason == "length":
            if response_format is not None:
                cut = ModelError(
                    f"{name}: the structured answer was cut off at max_tokens",
                    cause="output_length",
                    completion=completion,
                )
                self._failed_call(name, started, cut, messages, tools)
                raise cut
            # Text or tool calls cut off: the runner reads what came (a call whose arguments
            # were cut goes back to the model as a corrective error); the trace says so.
            self.record("error", name, error="output_length")
        prompt, completion_tokens = self._count_call(name, started, completion, messages, tools)
        # Tool names are the model's words too: only names of offered tools are shown.
        offered = {t.get("function", {}).get("name") for t in tools or ()}
        calls = ", ".join(
            c.name if c.name in offered else UNKNOWN_TOOL for c in completion.tool_calls
        )
        self.record(
            "model_call",
            name,
            started=started,
            summary=f"{name}: {prompt} + {completion_tokens} tokens"
            + (f" → {calls}" if calls else ""),
            **self._call_fields(name, completion, prompt, completion_tokens),
        )
        return completion

    def _failed_call(
        self,
        name: str,
        started: float,
        exc: BaseException,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None,
    ) -> None:
        """Count and record a model call that raised ``exc``, with what its completion spent."""
        completion = exc.completion if isinstance(exc, ModelError) else None
        if not isinstance(completion, Completion):
            completion = None
        prompt, completion_tokens = self._count_call(name, started, completion, messages, tools)
        self.record(
            "error",
            name,
            started=started,
            error=exc,
            summary=f"{name}: failed ({error_kind(exc)})",
            **self._call_fields(name, completion, prompt, completion_tokens),
        )

    def _count_call(
        self,
        name: str,
        started: float,
        completion: Completion | None,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None,
    ) -> tuple[int, int]:
        """Add one model call to the usage; its (prompt, completion) tokens.

        Without a completion the call made one request and nothing is known of its tokens.
        """
        usage = self.usage
        usage.model_calls += 1
        usage.model_s += time.perf_counter() - started
        if completion is None:
            usage.requests += 1
            return 0, 0
        prompt, completion_tokens = self._tokens(completion, messages, tools)
        usage.requests += completion.attempts
        usage.prompt_tokens += prompt
        usage.completion_tokens += completion_tokens
        usage.max_prompt_tokens = max(usage.max_prompt_tokens, prompt)
        usage.tokens_reported = usage.tokens_reported and completion.usage.reported
        if completion.usage.cost_usd is not None:
            usage.cost_usd = (usage.cost_usd or 0.0) + completion.usage.cost_usd
        return prompt, completion_tokens

    def _tokens(
        self,
        completion: Completion,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None,
    ) -> tuple[int, int]:
        """The call's (prompt, completion) tokens: the server's, or counted here."""
        prompt = completion.usage.prompt_tokens
        completion_tokens = completion.usage.completion_tokens
        if completion.usage.reported or prompt + completion_tokens > 0:
            return prompt, completion_tokens
        if not completion.mock and not completion.text and not completion.tool_calls:
            return 0, 0  # a failure with no reply: nothing was generated, nothing reported
        # Scripted models report nothing; count what a real model would have been sent.
        prompt = count_request_tokens(self.tokenizer, messages, tools, self._token_memo)
        completion_tokens = self.tokenizer.count(completion.text) + sum(
            self.tokenizer.count(c.name) + self.tokenizer.count(c.raw_arguments)
            for c in completion.tool_calls
        )
        return prompt, completion_tokens

    @staticmethod
    def _call_fields(
        name: str, completion: Completion | None, prompt: int, completion_tokens: int
    ) -> dict[str, Any]:
        """The model-call fields of an event: step, tokens, requests and cost."""
        return {
            "step": step_kind(name),
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "attempts": completion.attempts if completion is not None else 1,
            "cost_usd": completion.usage.cost_usd if completion is not None else None,
        }

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
        known = call.name in registry.names
        if call.error is not None:
            kind = "unknown_tool" if not known else "invalid_json"
            if known and call.arguments is not None:
                kind = "call_refused"
            outcome = ToolOutcome(
                text=f"Error: {call.error}", refs=[], error=call.error, error_kind=kind
            )
        else:
            try:
                result = registry.call(scope, call.name, call.arguments)
                text, shown = result.render_shown(self.tokenizer, max_tokens)
                outcome = ToolOutcome(text=text, refs=shown)
            except ToolError as exc:
                outcome = _tool_error(exc, known=known)
        tokens = self.tokenizer.count(outcome.text)
        name = call.name if known else UNKNOWN_TOOL
        arguments = traced_arguments(call.arguments, self._schema(registry, call.name))
        size = (
            f"error ({outcome.error_kind})"
            if outcome.error
            else f"{len(outcome.refs)} row(s), {tokens} tokens"
        )
        self.record(
            "tool_call",
            name,
            started=started,
            step=TOOL_STEP,
            arguments=arguments,
            result_tokens=tokens,
            refs=[ref.id for ref in outcome.refs],
            error=outcome.error_kind,
            error_chars=None if outcome.error is None else len(outcome.error),
            error_fields=outcome.error_fields,
            summary=f"{name}({_brief(arguments)}) → {size}",
        )
        return outcome

    def finish_usage(self) -> AnswerUsage:
        """Usage with the run's wall time filled in."""
        self.usage.wall_s = round(self.elapsed_s, 6)
        self.usage.model_s = round(self.usage.model_s, 6)
        return self.usage.model_copy()

    def _schema(self, registry: ToolRegistry, name: str) -> Mapping[str, Any] | None:
        if name not in registry.names:
            return None
        if name not in self._schemas:
            self._schemas[name] = registry.get(name).schema()["function"]["parameters"]
        return self._schemas[name]


def _tool_error(exc: ToolError, *, known: bool) -> ToolOutcome:
    """The outcome of a refused tool call, with the kind of the refusal."""
    cause = exc.__cause__
    kind, fields = "ToolError", []
    if not known:
        kind = "unknown_tool"
    elif isinstance(cause, json.JSONDecodeError):
        kind = "invalid_json"
    elif isinstance(cause, ValidationError):
        kind = "invalid_arguments"
        # Field paths of the tool's own input model: names from the schema, never values.
        fields = sorted(
            {".".join(str(p) for p in err["loc"] if isinstance(p, str)) for err in cause.errors()}
            - {""}
        )
    message = str(exc)
    return ToolOutcome(
        text=f"Error: {message}", refs=[], error=message, error_kind=kind, error_fields=fields
    )


def loggable_details(details: dict[str, Any] | None, tracer: Tracer) -> dict[str, Any] | None:
    """An answer's details as run logs may keep them: ids, counts and codes.

    Queries a model wrote and evidence needs it listed are its own words and may quote the
    record: they are kept as their lengths. Composite passage ids name the record's analytes:
    they get the run's aliases (the same as in its trace).
    """
    if details is None:
        return None
    kept = dict(details)
    if isinstance(kept.get("passages"), list):
        kept["passages"] = tracer.loggable_refs(str(p) for p in kept["passages"])
    if isinstance(kept.get("queries"), list):
        kept["queries"] = [masked_text(q) for q in kept["queries"]]
    if isinstance(kept.get("needs"), list):
        kept["needs"] = [loggable_need(n) for n in kept["needs"]]
    return kept


def _brief(arguments: dict[str, Any] | None) -> str:
    """Arguments on one short line for progress displays."""
    if not arguments:
        return ""
    parts = [f"{k}={v!r}" for k, v in arguments.items()]
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."
