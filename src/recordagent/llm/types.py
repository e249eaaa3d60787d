"""Messages, tool calls, usage and completions: what goes to a chat model and what comes back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Completion", "Message", "ToolCall", "Usage"]


class ToolCall(BaseModel):
    """A tool call the model asked for, with its arguments parsed (or why they could not be)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Call id, echoed in the tool message that answers it.")
    name: str = Field(description="Tool name as the model wrote it.")
    arguments: dict[str, Any] | None = Field(
        default=None, description="Parsed JSON arguments; None when they did not parse."
    )
    raw_arguments: str = Field(default="", description="The arguments exactly as sent.")
    error: str | None = Field(
        default=None,
        description="Why the call cannot run (bad JSON, unknown tool): a corrective message to "
        "return to the model as the tool's result.",
    )


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = Field(default=None, description="For role 'tool': the call id.")
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The message in the chat-completions wire format."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.raw_arguments},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


class Usage(BaseModel):
    """Tokens of one call (or summed over many) and what they cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reported: bool = Field(
        default=True, description="True if the server reported the counts; False if counted here."
    )
    cost_usd: float | None = Field(
        default=None, description="From the price table; None for models it does not list."
    )

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reported=self.reported and other.reported,
            cost_usd=cost,
        )


class Completion(BaseModel):
    """A model's answer to one request."""

    message: Message = Field(description="The assistant message (text and tool calls).")
    parsed: dict[str, Any] | None = Field(
        default=None, description="Structured output, validated against the requested schema."
    )
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = Field(default=0.0, description="Wall time of the call, retries included.")
    model: str = Field(description="The model that answered.")
    attempts: int = Field(default=1, description="HTTP attempts made (1 without retries).")
    mock: bool = Field(default=False, description="True when a mock model produced it.")
    cached: bool = Field(default=False, description="True when replayed from the cache.")

    @property
    def text(self) -> str:
        """The message text ('' when the model only called tools)."""
        return self.message.content or ""

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """Tool calls in the message."""
        return self.message.tool_calls
