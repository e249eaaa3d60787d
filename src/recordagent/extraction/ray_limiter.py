"""One endpoint budget for a whole Ray cluster: a small actor holding the run's Pacer.

The driver starts the actor (:func:`start_rate_limiter`) and ships a :class:`RayRateLimiter`
to every task; the tasks' models call it before each HTTP attempt. The actor only does the
arithmetic: it answers how long to wait, and each caller sleeps on its own machine, so the
actor never blocks and the clocks of different machines never meet (delays are relative).

Ray is an optional extra: only the Ray engine imports this module.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import ray
from ray.actor import ActorHandle

from recordagent.errors import UserError
from recordagent.llm.rate_limit import Pacer
from recordagent.settings import ModelSettings

__all__ = ["RayRateLimiter", "start_rate_limiter"]

Limits = tuple[float | None, float | None, float]


class _PacerActor:
    """The cluster's pacer, on the actor's clock.

    A synchronous actor runs one method at a time (Ray's default max_concurrency of 1), so the
    pacer needs no lock; each method is microseconds of arithmetic.
    """

    def __init__(self, limits: Limits) -> None:
        self._pacer = Pacer(*limits)

    def limits(self) -> Limits:
        return self._pacer.limits

    def reserve(self, tokens: int) -> float:
        return self._pacer.reserve(time.monotonic(), tokens)

    def recheck(self, tokens: int) -> float:
        return self._pacer.recheck(time.monotonic(), tokens)

    def settle(self, estimated: int, actual: int) -> None:
        self._pacer.settle(estimated, actual)

    def pause(self, seconds: float) -> None:
        self._pacer.pause(time.monotonic(), seconds)


def start_rate_limiter(
    settings: ModelSettings, name: str, *, namespace: str | None = None
) -> ActorHandle[Any] | None:
    """The run's limiter actor named ``name``: the running one, or a new one.

    Call it in the driver, after ``ray.init``, and keep the handle (or a RayRateLimiter
    holding it) for the whole run: Ray ends the actor once no handle to it is left. It is not
    detached, so it belongs to the driver's job and ends with it (after a crash too), and a
    later run never finds it with stale settings or a spent budget. Callers of the same
    ``name`` in the same namespace (the driver's, unless given) share one actor, so one
    endpoint budget; it asks for no CPU, so it never takes a task's place.

    Returns:
        The actor's handle, or None when ``settings`` set neither RPM nor TPM.

    Raises:
        UserError: Ray is not initialised, or an actor of that name runs with other limits.
    """
    limits = Pacer.from_settings(settings).limits
    if limits[0] is None and limits[1] is None:
        return None
    if not ray.is_initialized():
        raise UserError("the cluster's rate limiter needs Ray: call ray.init() first")
    # A restarted actor (its node lost) starts with a full budget: a burst, not a failed run.
    actor = ray.remote(num_cpus=0, max_restarts=3, max_task_retries=3)(_PacerActor)
    created = actor.options(name=name, namespace=namespace, get_if_exists=True).remote(limits)
    handle = cast("ActorHandle[Any]", created)
    running: tuple[Any, ...] = tuple(ray.get(handle.limits.remote()))
    if running != limits:
        raise UserError(
            f"a rate limiter named '{name}' already runs with other limits (requests, tokens "
            f"per minute, burst: {running}, not {limits}): stop that run, or give this one "
            "another name"
        )
    return handle


class RayRateLimiter:
    """A :class:`~recordagent.llm.rate_limit.RateLimiter` that asks the cluster's actor.

    Picklable (it holds only the actor's handle): ship it to tasks, and give it to each
    task's model (``OpenAICompatModel(settings, rate_limiter=...)``).

    Args:
        handle: The actor :func:`start_rate_limiter` returned.
    """

    def __init__(self, handle: ActorHandle[Any]) -> None:
        self.handle = handle

    async def acquire(self, tokens: int) -> None:
        """Wait until a request estimated at ``tokens`` tokens may be sent, and book it."""
        delay: float = await self.handle.reserve.remote(tokens)
        while delay > 0:
            await asyncio.sleep(delay)
            # A pause may have begun while this caller slept: the actor says whether it holds.
            delay = await self.handle.recheck.remote(tokens)

    async def settle(self, estimated: int, actual: int) -> None:
        """Correct the token budget once a request's real usage is known."""
        await self.handle.settle.remote(estimated, actual)

    async def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds``, on every machine of the cluster."""
        await self.handle.pause.remote(seconds)
