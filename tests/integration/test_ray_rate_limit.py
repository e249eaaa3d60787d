"""One endpoint budget for a Ray cluster: tasks in separate worker processes share it.

A local cluster (2 CPUs) and a fake OpenAI server in the test process; each Ray task runs its
own OpenAICompatModel whose limiter is the run's actor, and the server notes when requests
arrive.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import pytest

from recordagent.errors import ModelError, UserError
from recordagent.llm import Message
from recordagent.llm.openai_compat import OpenAICompatModel
from recordagent.settings import ModelSettings
from tests.fake_openai import Action, FakeOpenAI, ok, status

pytestmark = pytest.mark.xdist_group("ray")

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install ray)")
from recordagent.extraction.ray_limiter import RayRateLimiter, start_rate_limiter  # noqa: E402

RPM = 600  # 10 a second


class TimedServer(FakeOpenAI):
    """The fake server, noting when each completion request arrives and whose it is."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[float, str]] = []

    def _next(self, body: dict[str, Any]) -> Action:
        self.arrived.append((time.monotonic(), body["messages"][0]["content"]))
        return super()._next(body)


@pytest.fixture
def cluster(ray_cluster: Any) -> None:
    """The session's local Ray cluster."""


def client_settings(url: str, **overrides: Any) -> ModelSettings:
    settings: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": url,
        "timeout_s": 5,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        # Two connections a task: the fake server's listen backlog is 5 (socketserver's
        # default), and a connection beyond it waits a second for its SYN to be sent again.
        "max_concurrency": 2,
        **overrides,
    }
    return ModelSettings(**settings)


@ray.remote
def warm() -> None:
    """Nothing: a task that leaves a worker process started, with this module imported."""


@ray.remote
def send(url: str, limiter: RayRateLimiter, who: str, requests: int, callers: int) -> float:
    """``requests`` completions from ``callers`` concurrent callers, as fast as allowed.

    Returns:
        When the task began (time.monotonic: one clock for every process of one machine).
    """
    began = time.monotonic()
    settings = client_settings(url)
    left = [requests]

    async def caller(model: OpenAICompatModel) -> None:
        while left[0] > 0:
            left[0] -= 1
            await model.complete([Message(role="user", content=who)])

    async def run() -> None:
        async with OpenAICompatModel(settings, rate_limiter=limiter) as model:
            await asyncio.gather(*(caller(model) for _ in range(callers)))

    asyncio.run(run())
    return began


def test_tasks_in_two_processes_share_one_requests_per_minute_budget(cluster: None) -> None:
    handle = start_rate_limiter(ModelSettings(requests_per_minute=RPM), "paced")
    assert handle is not None
    limiter = RayRateLimiter(handle)
    with TimedServer() as server:
        ray.get([send.remote(server.url, limiter, who, 30, 4) for who in ("a", "b")])
    arrived = sorted(server.arrived)
    assert len(arrived) == 60
    steady = arrived[10:]  # after the first second of budget, which may go at once
    rate = (len(steady) - 1) / (steady[-1][0] - steady[0][0])
    assert RPM / 60 * 0.9 <= rate <= RPM / 60 * 1.1
    # Both processes sent throughout: the budget was shared, not taken by one after the other.
    middle = {who for _, who in steady[10:-10]}
    assert middle == {"a", "b"}


def test_a_retry_after_told_to_one_process_pauses_the_others(cluster: None) -> None:
    handle = start_rate_limiter(ModelSettings(requests_per_minute=6000), "paused")
    assert handle is not None
    limiter = RayRateLimiter(handle)
    ray.get([warm.remote() for _ in range(2)])  # so that the tasks below start at once
    with TimedServer() as server:
        server.script(status(429, retry_after=2), ok())

        async def told_to_wait() -> None:
            settings = client_settings(server.url, max_retries=0)
            async with OpenAICompatModel(settings, rate_limiter=limiter) as model:
                with pytest.raises(ModelError, match="gave up"):
                    await model.complete([Message(role="user", content="driver")])

        asyncio.run(told_to_wait())
        began = ray.get([send.remote(server.url, limiter, who, 2, 1) for who in ("a", "b")])
    (first, who), *others = sorted(server.arrived)
    seen = f"tasks began {[b - first for b in began]}, requests {[t - first for t, _ in others]}"
    assert who == "driver" and len(others) == 4, seen
    assert max(began) < first + 2, seen  # the tasks asked while the pause held...
    assert min(t for t, _ in others) >= first + 2, seen  # ...and were held back until it ended


def test_the_limiter_actor_is_found_by_name_and_must_keep_its_limits(cluster: None) -> None:
    assert start_rate_limiter(ModelSettings(), "unlimited") is None
    settings = ModelSettings(requests_per_minute=60, tokens_per_minute=10_000)
    first = start_rate_limiter(settings, "shared")
    again = start_rate_limiter(settings, "shared")
    assert first is not None and again is not None
    assert first._actor_id == again._actor_id
    with pytest.raises(UserError, match="already runs with other limits"):
        start_rate_limiter(ModelSettings(requests_per_minute=120), "shared")
    # Shipped to tasks as it is: it holds only the actor's handle.
    assert isinstance(pickle.loads(pickle.dumps(RayRateLimiter(first))), RayRateLimiter)
