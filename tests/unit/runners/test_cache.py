"""The record caches: LRU bounds, and builds shared, kept, retried and never cancelled."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from recordagent.runners.cache import AsyncRecordCache, RecordCache


def test_least_recently_used_entries_go_first():
    cache: RecordCache[int] = RecordCache(2)
    assert cache.get("a", lambda: 1) == 1
    assert cache.get("b", lambda: 2) == 2
    assert cache.get("a", lambda: -1) == 1  # a hit: "a" is now the most recent
    cache.put("c", 3)  # evicts "b"
    assert cache.find("b", None) is None
    assert (cache.find("a"), cache.find("c"), len(cache)) == (1, 3, 2)
    assert (cache.hits, cache.misses) == (3, 3)


def test_a_cache_of_size_zero_keeps_nothing():
    cache: RecordCache[int] = RecordCache(0)
    built = []
    for _ in range(3):
        cache.get("a", lambda: built.append(1) or len(built))
    assert len(built) == 3 and len(cache) == 0
    with pytest.raises(ValueError, match="max_entries"):
        RecordCache(-1)


def _counting_builder(value: str, delay_s: float = 0.05):
    calls: list[str] = []
    lock = threading.Lock()

    def build() -> str:
        with lock:
            calls.append(threading.current_thread().name)
        time.sleep(delay_s)
        return value

    return build, calls


async def test_concurrent_callers_share_one_build_in_a_worker_thread():
    cache: AsyncRecordCache[str] = AsyncRecordCache(4)
    build, calls = _counting_builder("index")
    values = await asyncio.gather(*(cache.get("A", build) for _ in range(8)))
    assert values == ["index"] * 8
    assert len(calls) == 1 and calls[0] != threading.current_thread().name
    assert await cache.get("A", build) == "index" and len(calls) == 1  # kept


async def test_a_failed_build_is_not_kept():
    cache: AsyncRecordCache[str] = AsyncRecordCache(4)
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("store busy")
        return "ok"

    with pytest.raises(RuntimeError, match="store busy"):
        await cache.get("A", flaky)
    assert await cache.get("A", flaky) == "ok"
    assert len(attempts) == 2


async def test_cancelling_one_caller_leaves_the_build_to_the_others():
    cache: AsyncRecordCache[str] = AsyncRecordCache(4)
    build, calls = _counting_builder("index", delay_s=0.2)
    first = asyncio.ensure_future(cache.get("A", build))
    second = asyncio.ensure_future(cache.get("A", build))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second == "index"
    assert first.cancelled() and len(calls) == 1
    assert cache.entries.find("A") == "index"
