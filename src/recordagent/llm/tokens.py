"""Counting the tokens of a chat request locally (when a server does not report usage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from recordagent.llm.types import Message
from recordagent.records.tokens import Tokenizer

__all__ = ["count_request_tokens"]

# OpenAI's published accounting for chat models: a few tokens of framing per message, and
# three to prime the reply.
_PER_MESSAGE, _PER_NAME, _REPLY = 3, 1, 3


def count_request_tokens(
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None = None,
) -> int:
    """Prompt tokens of ``messages`` and ``tools`` (tools counted as their compact JSON)."""
    total = _REPLY
    for message in messages:
        total += _PER_MESSAGE + tokenizer.count(message.role)
        if message.content:
            total += tokenizer.count(message.content)
        if message.name:
            total += _PER_NAME + tokenizer.count(message.name)
        for call in message.tool_calls:
            total += tokenizer.count(call.name) + tokenizer.count(call.raw_arguments)
    if tools:
        total += tokenizer.count(json.dumps(list(tools), separators=(",", ":")))
    return total
