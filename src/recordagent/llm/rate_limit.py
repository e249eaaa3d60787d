"""Pacing model calls to an endpoint's requests-per-minute and tokens-per-minute budget.

:class:`Pacer` is the arithmetic, with the clock passed in: a reservation scheme in the manner
of GCRA (the generic cell rate algorithm), one schedule per resource. Each caller books the
earliest time its request fits both budgets and is told how long to wait; callers that book at
once are spread out instead of all going when the budget refills. :class:`LocalRateLimiter`
paces the callers of one process with it; ``recordagent.extraction.ray_limiter`` holds one in
a Ray actor for a whole cluster. Both implement :class:`RateLimiter`, which
:class:`~recordagent.llm.openai_compat.OpenAICompatModel` calls before every HTTP attempt.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Protocol

from recordagent.settings import ModelSettings

__all__ = ["LocalRateLimiter", "Pacer", "RateLimiter", "rate_limiter"]


class RateLimiter(Protocol):
    """An endpoint budget shared by every caller that holds the same limiter."""

    async def acquire(self, tokens: int) -> None:
        """Wait until a request estimated at ``tokens`` tokens may be sent, and book it."""
        ...

    async def settle(self, estimated: int, actual: int) -> None:
        """Correct the token budget once a request's real usage is known."""
        ...

    async def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the server's Retry-After), whoever asks next."""
        ...


class _Schedule:
    """One resource's budget: the time at which everything booked so far is paid off.

    ``paid_off`` is GCRA's theoretical arrival time. Up to ``burst_s`` seconds of budget may
    be owed at any time; a booking of more than that waits for a full budget and then owes
    its excess, which later bookings wait off.
    """

    __slots__ = ("burst_s", "paid_off", "per_second")

    def __init__(self, per_minute: float, burst_s: float) -> None:
        self.per_second = per_minute / 60
        self.burst_s = burst_s
        self.paid_off = -math.inf  # the budget starts full

    def earliest(self, amount: float) -> float:
        """The first time at which ``amount`` fits."""
        return self.paid_off - max(0.0, self.burst_s - amount / self.per_second)

    def book(self, at: float, amount: float) -> None:
        self.paid_off = max(self.paid_off, at) + amount / self.per_second

    def correct(self, amount: float) -> None:
        self.paid_off += amount / self.per_second

    def empty_at(self, when: float) -> None:
        """Nothing of the budget is left at ``when`` (more may be owed already)."""
        self.paid_off = max(self.paid_off, when + self.burst_s)


class Pacer:
    """When each request may go, given a requests and a tokens per minute budget.

    Deterministic: every method takes the time (``now``, seconds on a monotonic clock) from
    the caller, and delays are relative to it, so one pacer may serve callers whose clocks
    differ (on other machines). Not thread-safe: the limiters serialise access.

    Requests go in the order they were booked. Each resource allows ``burst_s`` seconds of its
    budget at once (so ``burst_s * rate`` requests or tokens) and then one request per its
    share of the rate. A request estimated above that burst, even above the whole per-minute
    token budget, is never refused and never waits forever: it goes once the budget is full
    and leaves it in debt, which later requests wait off (the server may still refuse it).

    Args:
        requests_per_minute: The request budget; None for no limit.
        tokens_per_minute: The token budget (prompt plus completion); None for no limit.
        burst_s: Seconds of budget that may go at once.

    Raises:
        ValueError: A rate that is not positive, or a negative burst.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        burst_s: float = 1.0,
    ) -> None:
        for rate in (requests_per_minute, tokens_per_minute):
            if rate is not None and not rate > 0:
                raise ValueError(f"a rate must be positive, not {rate}")
        if not burst_s >= 0:
            raise ValueError(f"burst_s must be 0 or more, not {burst_s}")
        self.limits = (requests_per_minute, tokens_per_minute, float(burst_s))
        self._requests = _Schedule(requests_per_minute, burst_s) if requests_per_minute else None
        self._tokens = _Schedule(tokens_per_minute, burst_s) if tokens_per_minute else None
        self._last = -math.inf  # the latest slot booked: slots are handed out in order
        self._paused_until = -math.inf

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> Pacer:
        """The pacer of ``settings``' RPM, TPM and burst (unlimited where they say None)."""
        return cls(settings.requests_per_minute, settings.tokens_per_minute, settings.rate_burst_s)

    @property
    def unlimited(self) -> bool:
        """Whether neither requests nor tokens are limited."""
        return self._requests is None and self._tokens is None

    def reserve(self, now: float, tokens: int = 0) -> float:
        """Book the earliest slot for a request of ``tokens`` estimated tokens.

        Returns:
            Seconds from ``now`` until the request may be sent; 0 when it may go now.

        Raises:
            ValueError: A negative token estimate.
        """
        if tokens < 0:
            raise ValueError(f"a token estimate cannot be negative ({tokens})")
        at = max(now, self._last, self._paused_until)
        if self._requests is not None:
            at = max(at, self._requests.earliest(1))
        if self._tokens is not None:
            at = max(at, self._tokens.earliest(tokens))
        if self._requests is not None:
            self._requests.book(at, 1)
        if self._tokens is not None:
            self._tokens.book(at, tokens)
        self._last = at
        return at - now

    def recheck(self, now: float, tokens: int = 0) -> float:
        """What a caller that has waited out its delay does next: go, or wait again.

        A pause that began while it waited and still holds took its slot: it books a new one
        after the pause (the lost slot stays spent, as the pause would have left it unused).

        Returns:
            0 when the request may go now; otherwise seconds to wait before asking again.
        """
        if now >= self._paused_until:
            return 0.0
        return self.reserve(now, tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Book ``actual - estimated`` more tokens (fewer when negative) on the token budget."""
        if self._tokens is not None:
            self._tokens.correct(actual - estimated)

    def pause(self, now: float, seconds: float) -> None:
        """Let nothing go before ``now + seconds``, then resume at the steady rate.

        A server that asks to wait has no budget left: the budgets restart empty at the end
        of the pause rather than full, so the callers held back do not all go at once.
        """
        resume = now + max(0.0, seconds)
        if resume <= self._paused_until:
            return
        self._paused_until = resume
        for schedule in (self._requests, self._tokens):
            if schedule is not None:
                schedule.empty_at(resume)


class LocalRateLimiter:
    """A :class:`RateLimiter` for the callers of one process.

    Safe to share between event loops and threads: the pacer is used under a lock, and each
    caller sleeps on its own loop outside it. A caller cancelled while it waits leaves its
    slot spent. Not picklable: a copy in another process would be a second budget.

    Args:
        pacer: The budget.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self._lock = threading.Lock()

    async def acquire(self, tokens: int) -> None:
        """Wait until a request estimated at ``tokens`` tokens may be sent, and book it."""
        with self._lock:
            delay = self.pacer.reserve(time.monotonic(), tokens)
        while delay > 0:
            await asyncio.sleep(delay)
            with self._lock:
                delay = self.pacer.recheck(time.monotonic(), tokens)

    async def settle(self, estimated: int, actual: int) -> None:
        """Correct the token budget once a request's real usage is known."""
        with self._lock:
            self.pacer.settle(estimated, actual)

    async def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds``, whoever asks next."""
        with self._lock:
            self.pacer.pause(time.monotonic(), seconds)

    def __reduce__(self) -> str:
        raise TypeError(
            "a LocalRateLimiter paces one process: a copy in another process would be a second "
            "budget; give tasks a RayRateLimiter (recordagent.extraction.ray_limiter) instead"
        )


def rate_limiter(settings: ModelSettings) -> RateLimiter | None:
    """A limiter of this process for ``settings``' budget; None when neither RPM nor TPM is set."""
    pacer = Pacer.from_settings(settings)
    return None if pacer.unlimited else LocalRateLimiter(pacer)
