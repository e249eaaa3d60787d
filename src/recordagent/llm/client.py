"""The ChatModel protocol every runner talks to, and the pieces all implementations share."""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from recordagent.llm.types import Completion, Message, ToolCall

__all__ = [
    "ChatModel",
    "close_model",
    "merged_roles",
    "parse_structured",
    "parse_text_tool_calls",
    "parse_tool_calls",
    "schema_instruction",
    "tools_instruction",
    "without_tool_roles",
]


@runtime_checkable
class ChatModel(Protocol):
    """An async chat model: OpenAI-compatible, mock, or a cache around either."""

    @property
    def name(self) -> str:
        """Model name as recorded in run logs."""
        ...

    @property
    def is_mock(self) -> bool:
        """True for scripted models: their output is never a model's answer."""
        ...

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        response_format: type[BaseModel] | None = None,
        **params: Any,
    ) -> Completion:
        """Answer ``messages``.

        ``tools`` are OpenAI function schemas; ``response_format`` a pydantic model the answer
        must validate against; ``params`` temperature, max_tokens, seed, reasoning_effort.
        """
        ...

    async def context_window(self) -> int | None:
        """The model's context window in its own tokens, if known (asked of a server once)."""
        ...


async def close_model(model: ChatModel) -> None:
    """Close what ``model`` holds open for the running event loop, if it holds anything.

    An HTTP client's connections belong to one event loop; a cache's close is synchronous; a
    mock has nothing to close.
    """
    close = getattr(model, "close", None)
    if close is not None:
        closing = close()
        if inspect.isawaitable(closing):
            await closing


def parse_tool_calls(
    raw: Sequence[tuple[str, str, str]], tools: Sequence[dict[str, Any]] | None
) -> tuple[ToolCall, ...]:
    """Tool calls from (id, name, arguments JSON) triples, problems kept as corrective errors."""
    known = [t["function"]["name"] for t in tools or ()]
    calls = []
    for k, (call_id, name, arguments) in enumerate(raw):
        error = None
        parsed: dict[str, Any] | None = None
        if not name:
            error = "the tool call names no tool; call one of: " + (", ".join(known) or "none")
        elif known and name not in known:
            error = f"unknown tool '{name}'; available tools: {', '.join(known)}"
        else:
            try:
                value = json.loads(arguments) if arguments.strip() else {}
                if isinstance(value, dict):
                    parsed = value
                else:
                    error = f"arguments of {name} must be a JSON object, got {type(value).__name__}"
            except json.JSONDecodeError as exc:
                error = f"arguments of {name} are not valid JSON ({exc.msg} at {exc.pos}); resend"
        calls.append(
            ToolCall(
                id=call_id or f"call_{k}",
                name=name,
                arguments=parsed,
                raw_arguments=arguments,
                error=error,
            )
        )
    return tuple(calls)


def parse_structured(text: str, schema: type[BaseModel]) -> tuple[dict[str, Any] | None, str]:
    """Validate a JSON answer; returns (value, '') or (None, what was wrong)."""
    candidate = _unfenced(text)
    try:
        return schema.model_validate_json(candidate).model_dump(mode="json"), ""
    except ValidationError as exc:
        # Field paths and messages only: the input values may quote the record, and this text
        # ends up in errors and traces.
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        return None, "; ".join(problems)


def _unfenced(text: str) -> str:
    """The text without a markdown code fence around it (models like to fence JSON)."""
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.strip("`").removeprefix("json").strip()
    return candidate


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` (a fresh copy; generated once per class)."""
    return copy.deepcopy(_json_schema(model))


@functools.lru_cache(maxsize=1024)
def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def schema_instruction(schema: type[BaseModel]) -> str:
    """The instruction used where a server cannot enforce a JSON schema itself."""
    return (
        "Answer with one JSON object only (no prose, no code fence) that validates against "
        f"this JSON schema:\n{json.dumps(json_schema(schema), separators=(',', ':'))}"
    )


def tools_instruction(tools: Sequence[dict[str, Any]]) -> str:
    """How to call tools on a server without native tool calling: a JSON object in the text."""
    listed = json.dumps([t["function"] for t in tools], separators=(",", ":"))
    return (
        "You can call these tools: " + listed + "\nTo call tools, reply with one JSON object "
        'only: {"tool_calls": [{"name": "<tool>", "arguments": {...}}]}. To answer, reply '
        "with plain text."
    )


def parse_text_tool_calls(
    text: str, tools: Sequence[dict[str, Any]]
) -> tuple[tuple[ToolCall, ...] | None, str]:
    """Tool calls written as JSON text, read leniently.

    The first JSON object in the text is taken, whatever prose or code fence surrounds it
    (small models explain themselves before or after the call): ``{"tool_calls": [...]}``, or
    one bare call ``{"name": ..., "arguments": {...}}`` naming an offered tool.

    Returns (calls, '') for calls, (None, '') for a plain answer, and (None, problem) for an
    attempted call that is not valid.
    """
    known = {t["function"]["name"] for t in tools}
    value, problem = _first_json_object(text, lambda v: "tool_calls" in v or v.get("name") in known)
    if value is None:
        attempted = "tool_calls" in text and "{" in text
        return None, (f"the tool call is not valid JSON: {problem}" if attempted else "")
    listed = value["tool_calls"] if "tool_calls" in value else [value]
    try:
        raw = [
            (f"call_{k}", str(call["name"]), _arguments_text(call.get("arguments", {})))
            for k, call in enumerate(listed)
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        return None, f"the tool call is not valid: {type(exc).__name__} {exc}"
    return parse_tool_calls(raw, tools), ""


def _arguments_text(arguments: Any) -> str:
    # Some models write the arguments as a JSON string rather than an object.
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _first_json_object(
    text: str, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[dict[str, Any] | None, str]:
    """The first JSON object in ``text`` that is ``wanted`` (prose and other objects skipped).

    Returns (None, why not) when there is none.
    """
    decoder = json.JSONDecoder()
    problem = "no JSON object"
    start = text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at {exc.pos}"
        else:
            if isinstance(value, dict) and wanted(value):
                return value, ""
            start = end - 1  # past this object: the next one may be the call
        start = text.find("{", start + 1)
    return None, problem


def merged_roles(messages: Sequence[Message], *, fold_system: bool = False) -> list[Message]:
    """The conversation as strict chat templates accept it.

    Consecutive plain messages of one role (no tool calls, not tool results) become one, their
    texts joined by a blank line: Mistral- and Gemma-family templates refuse a conversation
    whose roles do not alternate. With ``fold_system`` the system messages are put at the head
    of the first user message, for templates without a system role.
    """
    out: list[Message] = []
    folded: list[str] = []
    for message in messages:
        if fold_system and message.role == "system":
            folded.append(message.content or "")
            continue
        if fold_system and folded and message.role == "user":
            message = message.model_copy(
                update={"content": "\n\n".join([*folded, message.content or ""])}
            )
            folded = []
        previous = out[-1] if out else None
        if previous is not None and _plain(previous) and _plain(message):
            if previous.role == message.role:
                joined = "\n\n".join(part for part in (previous.content, message.content) if part)
                out[-1] = previous.model_copy(update={"content": joined})
                continue
        out.append(message)
    if folded:  # system messages with no user message after them
        rest = "\n\n".join(folded)
        last = out[-1] if out else None
        if last is not None and last.role == "user" and _plain(last):
            out[-1] = last.model_copy(update={"content": f"{last.content or ''}\n\n{rest}"})
        else:
            out.append(Message(role="user", content=rest))
    return out


def _plain(message: Message) -> bool:
    return not message.tool_calls and message.tool_call_id is None and message.name is None


def without_tool_roles(messages: Sequence[Message]) -> list[Message]:
    """The conversation for a server without tool calling: calls and results as plain text."""
    out = []
    for message in messages:
        if message.role == "tool":
            out.append(
                Message(
                    role="user",
                    content=f"Result of tool call {message.tool_call_id}:\n{message.content}",
                )
            )
        elif message.tool_calls:
            calls = [{"name": c.name, "arguments": c.arguments or {}} for c in message.tool_calls]
            out.append(Message(role="assistant", content=json.dumps({"tool_calls": calls})))
        else:
            out.append(message)
    return out
