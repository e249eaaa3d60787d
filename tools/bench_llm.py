"""Benchmarks of the model client against the fake OpenAI-compatible server (tests/fake_openai).

a. concurrency: 32 concurrent requests with the server answering in 200 ms, against one request;
b. overhead: sequential calls with the server answering at once; the median call time bounds
   what the client adds (it includes the fake server's own handling and localhost HTTP).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fake_openai

from tests.fake_openai import FakeOpenAI, ok  # noqa: E402

from recordagent.llm import Message, OpenAICompatModel  # noqa: E402
from recordagent.settings import ModelSettings  # noqa: E402

__all__ = ["bench_llm", "llm_summary"]

Json = dict[str, Any]
HELLO = [Message(role="user", content="hello")]


async def _measure(server: FakeOpenAI, repeats: int, calls: int) -> Json:
    settings = ModelSettings(
        provider="openai", model="gpt-4o-mini", base_url=server.url, max_concurrency=64
    )
    model = OpenAICompatModel(settings)
    try:
        server.script(ok(delay_s=0.2))
        await model.complete(HELLO)  # warm the connection pool
        singles, batches = [], []
        for _ in range(repeats):
            clock = time.perf_counter()
            await model.complete(HELLO)
            singles.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            await asyncio.gather(*(model.complete(HELLO) for _ in range(32)))
            batches.append(time.perf_counter() - clock)
        server.script(ok())
        await model.complete(HELLO)
        overhead = []
        for _ in range(calls):
            clock = time.perf_counter()
            await model.complete(HELLO)
            overhead.append(time.perf_counter() - clock)
    finally:
        await model.close()
    single, batch = statistics.median(singles), statistics.median(batches)
    return {
        "one_request_s": round(single, 4),
        "thirty_two_concurrent_s": round(batch, 4),
        "ratio": round(batch / single, 3),
        "ratio_target_at_most": 1.5,
        "overhead_median_ms": round(statistics.median(overhead) * 1000, 3),
        "overhead_p95_ms": round(sorted(overhead)[int(0.95 * len(overhead))] * 1000, 3),
        "overhead_target_median_ms": 5.0,
        "repeats": repeats,
        "overhead_calls": calls,
    }


def bench_llm(repeats: int = 5, calls: int = 300) -> Json:
    """Run both measurements on a fresh fake server."""
    with FakeOpenAI() as server:
        return asyncio.run(_measure(server, repeats, calls))


def llm_summary(result: Json) -> list[str]:
    """Lines for humans."""
    return [
        "model client: 32 concurrent requests at 200 ms take "
        f"{result['thirty_two_concurrent_s']:.3f} s vs {result['one_request_s']:.3f} s for one "
        f"({result['ratio']:.2f}x, target <= 1.5)",
        f"  per-call time with an instant server: median {result['overhead_median_ms']:.2f} ms, "
        f"p95 {result['overhead_p95_ms']:.2f} ms (target median <= 5)",
    ]
