"""An endpoint budget over real HTTP: requests arrive at the server paced, and pause together."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from recordagent.llm import Message
from recordagent.llm.openai_compat import OpenAICompatModel
from tests.fake_openai import Action, FakeOpenAI, bounded, fake_model, ok, status

ASK = [Message(role="user", content="hello")]
# At most 4 connections at once: the fake server's listen backlog is 5 (socketserver's
# default), and a connection beyond it waits a second for the SYN to be sent again.
CONNECTIONS = 4


class TimedServer(FakeOpenAI):
    """The fake server, noting when each completion request arrives (time.monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def _next(self, body: dict[str, Any]) -> Action:
        self.times.append(time.monotonic())
        return super()._next(body)


async def call_all(model: OpenAICompatModel, n: int) -> None:
    async with model:
        await bounded(asyncio.gather(*(model.complete(ASK) for _ in range(n))))


async def test_concurrent_calls_arrive_at_the_server_at_the_requests_per_minute_pace() -> None:
    with TimedServer() as server:
        # 10 a second, one second of which may go at once.
        model = fake_model(
            server,
            requests_per_minute=600,
            rate_burst_s=1.0,
            max_concurrency=CONNECTIONS,
            timeout_s=5,
        )
        await call_all(model, 20)
    times = sorted(server.times)
    assert len(times) == 20
    assert times[9] - times[0] < 0.3  # the burst
    steady = (times[19] - times[10]) / 9
    assert 0.09 <= steady <= 0.13
    assert times[19] - times[0] >= 1.0 - 0.02  # never faster than the budget


async def test_without_a_budget_concurrent_calls_are_not_paced() -> None:
    with TimedServer() as server:
        await call_all(fake_model(server, max_concurrency=CONNECTIONS, timeout_s=5), 20)
    assert max(server.times) - min(server.times) < 0.5


async def test_a_429_with_retry_after_pauses_every_caller() -> None:
    with TimedServer() as server:
        server.script(status(429, retry_after=1), ok())
        model = fake_model(server, requests_per_minute=600, rate_burst_s=0)  # 0.1 s apart
        await call_all(model, 4)
    first, *others = sorted(server.times)
    assert len(others) == 4  # 3 callers and the retry of the one told to wait
    # The callers that were waiting for their turn (0.1, 0.2, 0.3 s) wait out the pause too,
    # and then go one by one rather than all at once.
    assert min(others) >= first + 1.0
    assert max(others) - min(others) >= 0.3 - 0.02
    assert max(others) < first + 2.5


async def test_without_a_budget_a_retry_after_holds_back_only_the_caller_told() -> None:
    with TimedServer() as server:
        server.script(status(429, retry_after=1), ok())
        await call_all(fake_model(server), 4)
    first, *others = sorted(server.times)
    assert sorted(t - first < 0.5 for t in others) == [False, True, True, True]


async def test_the_token_budget_is_settled_with_the_usage_the_server_reports() -> None:
    with TimedServer() as server:
        # "hello" is estimated at a few tokens; the server reports 1,000.
        server.script(ok(usage=(995, 5)))
        model = fake_model(server, tokens_per_minute=60_000, rate_burst_s=0)  # 1,000 a second
        async with model:
            await bounded(model.complete(ASK))
            await bounded(model.complete(ASK))
    gap = server.times[1] - server.times[0]
    assert 1.0 - 0.02 <= gap < 2.0


async def test_max_tokens_is_booked_up_front_and_given_back_when_unused() -> None:
    with TimedServer() as server:
        model = fake_model(server, tokens_per_minute=60_000, rate_burst_s=0)  # 1,000 a second
        async with model:
            # Two callers at once: the second waits for the first's 3,000 booked tokens...
            await bounded(asyncio.gather(*(model.complete(ASK, max_tokens=3000) for _ in range(2))))
            # ...but a third, after both answered with a few tokens, hardly waits at all.
            started = time.monotonic()
            await bounded(model.complete(ASK, max_tokens=10))
    first, second, third = server.times
    assert second - first >= 1.5 - 0.02
    assert third - started < 0.5
