"""A bounded cache of per-patient work that does not depend on the question.

An evaluation asks many questions of each patient. The lab and event passages of a record, their
search index and the packed full-context record are the same for every question with the same
``as_of`` day, and building them costs tens of milliseconds of CPU, which on a shared event loop
caps how many items can wait on the model at once. Entries are keyed by the store's data
version (:meth:`~recordagent.records.db.RecordStore.data_version`) as well, so loading or
replacing a source makes them unreachable instead of stale.

:class:`RecordCache` is the plain LRU mapping; :class:`AsyncRecordCache` builds missing values
in a worker thread (the builders mostly wait on DuckDB and polars, which release the interpreter
lock) and lets concurrent questions about one patient share a single build.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["AsyncRecordCache", "RecordCache"]

_ValueT = TypeVar("_ValueT")
_MISSING: Any = object()


class RecordCache(Generic[_ValueT]):
    """Least-recently-used mapping from a key to a value.

    Args:
        max_entries: How many values to keep; 0 keeps none.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _ValueT] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, key: Hashable, default: Any = _MISSING) -> Any:
        """The value under ``key`` (now the most recently used), or ``default``."""
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        return default

    def put(self, key: Hashable, value: _ValueT) -> None:
        """Keep ``value`` under ``key``, forgetting the least recently used beyond the bound."""
        if not self.max_entries:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: Hashable, build: Callable[[], _ValueT]) -> _ValueT:
        """The value under ``key``, built by ``build()`` (and kept) when absent."""
        value = self.find(key)
        if value is _MISSING:
            value = build()
            self.put(key, value)
        return value  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Forget every entry (the hit and miss counts stay)."""
        self._entries.clear()


class AsyncRecordCache(Generic[_ValueT]):
    """A :class:`RecordCache` whose values are built off the event loop, once per key.

    Args:
        max_entries: How many values to keep; 0 keeps none (concurrent callers still share a
            build that is in flight).
    """

    def __init__(self, max_entries: int) -> None:
        self.entries: RecordCache[_ValueT] = RecordCache(max_entries)
        self._building: dict[Hashable, asyncio.Future[_ValueT]] = {}

    async def get(self, key: Hashable, build: Callable[[], _ValueT]) -> _ValueT:
        """The value under ``key``; a missing one is built by ``build()`` in a worker thread.

        A failed build is not kept: the next caller builds again. Cancelling one caller does
        not cancel a build that others wait for.
        """
        value = self.entries.find(key)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        pending = self._building.get(key)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(build))
            self._building[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(pending)

    def _settle(self, key: Hashable, done: asyncio.Future[_ValueT]) -> None:
        self._building.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            self.entries.put(key, done.result())
