"""Record/replay cache around any ChatModel, kept in a local SQLite file.

The key is a SHA-256 of the model name, messages, tools, response schema and parameters. In
``read`` mode a miss is an error, so a replayed run is byte-for-byte the recorded one and makes
no call; ``write`` records without reading; ``read-write`` reads and fills gaps; ``off`` passes
through.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from recordagent.errors import ModelError, UserError
from recordagent.llm.client import ChatModel, json_schema
from recordagent.llm.types import Completion, Message

__all__ = ["CacheMiss", "CachedModel", "CacheMode", "request_key"]

CacheMode = Literal["off", "read", "write", "read-write"]


class CacheMiss(ModelError):
    """Replay (``read`` mode) met a request that was never recorded."""


def request_key(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None,
    response_format: type[BaseModel] | None,
    params: dict[str, Any],
) -> str:
    """A stable hash of everything that determines a completion."""
    payload = {
        "model": model,
        "messages": [m.model_dump(mode="json") for m in messages],
        "tools": list(tools) if tools is not None else None,
        "schema": json_schema(response_format) if response_format else None,
        "params": params,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedModel:
    """Wraps ``inner``; completions are stored in (and replayed from) ``path``."""

    def __init__(self, inner: ChatModel, path: str | Path, mode: CacheMode = "read-write") -> None:
        if mode not in ("off", "read", "write", "read-write"):
            raise UserError(f"cache mode must be off, read, write or read-write, not {mode!r}")
        self.inner = inner
        self.mode: CacheMode = mode
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "completion TEXT NOT NULL)"
        )
        self._db.commit()
        self._in_flight: dict[str, asyncio.Lock] = {}
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.inner.name

    @property
    def is_mock(self) -> bool:
        """Whether the wrapped model is a mock."""
        return self.inner.is_mock

    async def context_window(self) -> int | None:
        """The wrapped model's context window."""
        return await self.inner.context_window()

    def close(self) -> None:
        """Close the cache file."""
        self._db.close()

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        response_format: type[BaseModel] | None = None,
        **params: Any,
    ) -> Completion:
        """The recorded completion, or the wrapped model's (recorded if the mode writes).

        Raises:
            CacheMiss: ``read`` mode and the request was never recorded.
        """
        if self.mode == "off":
            return await self.inner.complete(messages, tools, response_format, **params)
        key = request_key(self.name, messages, tools, response_format, params)
        # Identical requests in flight at once wait for the first: one call, one recording.
        lock = self._in_flight.setdefault(key, asyncio.Lock())
        async with lock:
            if self.mode in ("read", "read-write"):
                row = self._db.execute(
                    "SELECT completion FROM completions WHERE key = ?", (key,)
                ).fetchone()
                if row is not None:
                    self.hits += 1
                    stored = Completion.model_validate_json(row[0])
                    return stored.model_copy(update={"cached": True})
                if self.mode == "read":
                    raise CacheMiss(
                        f"replay cache {self.path} has no recording of this request to "
                        f"{self.name} (key {key[:12]}); record it with mode 'write' or "
                        "'read-write'"
                    )
            self.misses += 1
            completion = await self.inner.complete(messages, tools, response_format, **params)
            self._db.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?)",
                (key, self.name, completion.model_dump_json()),
            )
            self._db.commit()
            return completion
