"""Counting the tokens of a chat request locally (when a server does not report usage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from recordagent.llm.types import Message
from recordagent.records.tokens import Tokenizer

__all__ = ["count_request_tokens", "message_tokens", "tools_tokens"]

# OpenAI's published accounting for chat models: a few tokens of framing per message, and
# three to prime the reply.
_PER_MESSAGE, _PER_NAME, _REPLY = 3, 1, 3


def count_request_tokens(
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None = None,
    memo: dict[int, tuple[Message, int]] | None = None,
) -> int:
    """Prompt tokens of ``messages`` and ``tools`` (tools counted as their compact JSON).

    ``memo`` keeps each message's count between calls of one conversation (keyed by object,
    holding the message so its id stays unique): a tool loop resends every earlier message.
    """
    total = _REPLY
    for message in messages:
        if memo is None:
            total += message_tokens(tokenizer, message)
            continue
        cached = memo.get(id(message))
        if cached is None or cached[0] is not message:
            cached = (message, message_tokens(tokenizer, message))
            memo[id(message)] = cached
        total += cached[1]
    return total + tools_tokens(tokenizer, tools)


def tools_tokens(tokenizer: Tokenizer, tools: Sequence[dict[str, Any]] | None) -> int:
    """Tokens the tool definitions add to a prompt (counted as their compact JSON)."""
    if not tools:
        return 0
    return tokenizer.count(json.dumps(list(tools), separators=(",", ":")))


def message_tokens(tokenizer: Tokenizer, message: Message) -> int:
    """Tokens one message adds to a prompt."""
    total = _PER_MESSAGE + tokenizer.count(message.role)
    if message.content:
        total += tokenizer.count(message.content)
    if message.name:
        total += _PER_NAME + tokenizer.count(message.name)
    for call in message.tool_calls:
        total += tokenizer.count(call.name) + tokenizer.count(call.raw_arguments)
    return total
