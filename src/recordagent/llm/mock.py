"""A scripted ChatModel for tests and dry runs. Its output is never a model's answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from recordagent.errors import ModelError
from recordagent.llm.client import parse_structured, parse_tool_calls
from recordagent.llm.types import Completion, Message, ToolCall, Usage

__all__ = ["MockModel", "MockRequest", "MockScriptExhausted", "ScriptedReply"]

ScriptedReply = str | dict[str, Any] | Completion
"""A reply: text; ``{"tool_calls": [(name, arguments), ...]}`` or ``{"json": {...}}``; or a
ready Completion."""


class MockScriptExhausted(ModelError):
    """The mock model was asked more often than its script has replies."""


class MockRequest(BaseModel):
    """What a scripted callable receives."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None
    schema_class: type[BaseModel] | None = Field(
        default=None, exclude=True, description="The response-format class, if any."
    )
    params: dict[str, Any]

    @property
    def schema_name(self) -> str | None:
        """The response format's class name, if any."""
        return self.schema_class.__name__ if self.schema_class is not None else None


class MockModel:
    """Replies from a script: a list consumed in order, or a callable of the request.

    Every completion is marked ``mock=True``; runs on it must say so loudly.
    """

    def __init__(
        self,
        script: Iterable[ScriptedReply] | Callable[[MockRequest], ScriptedReply],
        name: str = "mock",
        *,
        window: int | None = None,
    ) -> None:
        self._name = name
        self._window = window
        self._replies = None if callable(script) else list(script)
        self._function = script if callable(script) else None
        self.requests: list[MockRequest] = []

    @property
    def name(self) -> str:
        """The mock's name (runs record it as the model)."""
        return self._name

    @property
    def is_mock(self) -> bool:
        """Always."""
        return True

    async def context_window(self) -> int | None:
        """The scripted context window (None unless given)."""
        return self._window

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        response_format: type[BaseModel] | None = None,
        **params: Any,
    ) -> Completion:
        """The next scripted reply.

        Raises:
            MockScriptExhausted: No reply left (says how many were scripted and used).
        """
        request = MockRequest(
            messages=list(messages),
            tools=list(tools) if tools is not None else None,
            schema_class=response_format,
            params=params,
        )
        self.requests.append(request)
        if self._function is not None:
            reply = self._function(request)
        else:
            assert self._replies is not None
            used = len(self.requests)
            if used > len(self._replies):
                raise MockScriptExhausted(
                    f"mock model '{self._name}' has {len(self._replies)} scripted replies and was "
                    f"asked for reply {used}; script more replies for this test"
                )
            reply = self._replies[used - 1]
        return _completion(reply, self._name, tools, response_format)


def _completion(
    reply: ScriptedReply,
    name: str,
    tools: Sequence[dict[str, Any]] | None,
    response_format: type[BaseModel] | None,
) -> Completion:
    if isinstance(reply, Completion):
        return reply.model_copy(update={"mock": True})
    content: str | None
    calls: tuple[ToolCall, ...] = ()
    if isinstance(reply, str):
        content = reply
    elif "tool_calls" in reply:
        content = reply.get("content")
        calls = parse_tool_calls(
            [
                (f"call_{k}", tool, args if isinstance(args, str) else json.dumps(args))
                for k, (tool, args) in enumerate(reply["tool_calls"])
            ],
            tools,
        )
    elif "json" in reply:
        content = json.dumps(reply["json"])
    else:
        raise ValueError(f"a scripted reply is text, tool_calls or json, not {sorted(reply)}")
    parsed = None
    if response_format is not None and content is not None:
        parsed, _ = parse_structured(content, response_format)
    return Completion(
        message=Message(role="assistant", content=content, tool_calls=calls),
        parsed=parsed,
        finish_reason="tool_calls" if calls else "stop",
        usage=Usage(reported=False),
        model=name,
        mock=True,
    )
