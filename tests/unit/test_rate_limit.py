"""The pacer's arithmetic on a fake clock, and the one-process limiter with real callers."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time

import pytest

from recordagent.llm.rate_limit import LocalRateLimiter, Pacer, rate_limiter
from recordagent.settings import ModelSettings


def slots(pacer: Pacer, now: float, n: int, tokens: int = 0) -> list[float]:
    """The send times of ``n`` requests that all ask at ``now``."""
    return [round(now + pacer.reserve(now, tokens), 9) for _ in range(n)]


def test_requests_asking_at_once_go_60_over_rpm_apart_after_the_burst() -> None:
    pacer = Pacer(requests_per_minute=600, burst_s=1.0)  # 10 a second
    times = slots(pacer, 100.0, 14)
    assert times[:10] == [100.0] * 10  # one second of budget goes at once
    assert times[10:] == pytest.approx([100.1, 100.2, 100.3, 100.4])


def test_without_burst_every_request_is_spaced_evenly() -> None:
    pacer = Pacer(requests_per_minute=120, burst_s=0)
    assert slots(pacer, 0.0, 4) == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_the_budget_refills_at_the_rate_while_nothing_is_asked() -> None:
    pacer = Pacer(requests_per_minute=600, burst_s=1.0)
    slots(pacer, 0.0, 10)  # the burst, spent
    assert pacer.reserve(0.0) == pytest.approx(0.1)
    # 0.6 s later, 1.1 s of budget was booked and 0.6 s refilled: 5 slots are free.
    assert slots(pacer, 0.6, 6) == pytest.approx([0.6] * 5 + [0.7])


def test_tokens_per_minute_paces_by_the_tokens_each_request_books() -> None:
    pacer = Pacer(tokens_per_minute=60_000, burst_s=1.0)  # 1,000 tokens a second
    assert slots(pacer, 0.0, 2, tokens=500) == [0.0, 0.0]
    assert slots(pacer, 0.0, 3, tokens=500) == pytest.approx([0.5, 1.0, 1.5])
    assert pacer.reserve(0.0, tokens=2000) == pytest.approx(2.5)  # waits until it fits


def test_both_budgets_apply_and_the_tighter_one_sets_the_pace() -> None:
    pacer = Pacer(requests_per_minute=600, tokens_per_minute=60_000, burst_s=0)
    # 100 tokens take 0.1 s of the token budget and 1 request takes 0.1 s: equal pace.
    assert slots(pacer, 0.0, 3, tokens=100) == pytest.approx([0.0, 0.1, 0.2])
    # 300 tokens take 0.3 s: tokens now set the pace.
    assert slots(pacer, 0.3, 2, tokens=300) == pytest.approx([0.3, 0.6])


def test_settling_below_the_estimate_gives_the_tokens_back() -> None:
    pacer = Pacer(tokens_per_minute=60_000, burst_s=0)
    assert pacer.reserve(0.0, 1000) == 0.0  # books a second of budget
    pacer.settle(estimated=1000, actual=200)
    assert pacer.reserve(0.0, 100) == pytest.approx(0.2)


def test_settling_above_the_estimate_books_the_extra_tokens() -> None:
    pacer = Pacer(tokens_per_minute=60_000, burst_s=0)
    assert pacer.reserve(0.0, 100) == 0.0
    pacer.settle(estimated=100, actual=1100)
    assert pacer.reserve(0.0, 100) == pytest.approx(1.1)


def test_settling_without_a_token_budget_changes_nothing() -> None:
    pacer = Pacer(requests_per_minute=60, burst_s=0)
    pacer.reserve(0.0, 100)
    pacer.settle(estimated=100, actual=10**6)
    assert pacer.reserve(0.0, 100) == pytest.approx(1.0)


def test_a_pause_shifts_every_later_reservation_past_it() -> None:
    pacer = Pacer(requests_per_minute=600, burst_s=1.0)
    pacer.reserve(10.0)
    pacer.pause(10.0, 2.0)
    # The burst is gone too: after a Retry-After the server has no budget left, so the
    # requests held back resume at the steady rate rather than all at once.
    assert slots(pacer, 10.5, 3) == pytest.approx([12.1, 12.2, 12.3])


def test_a_pause_holds_even_without_a_limit_on_the_resource_asked() -> None:
    pacer = Pacer(tokens_per_minute=60_000, burst_s=0)
    pacer.pause(0.0, 1.5)
    assert pacer.reserve(0.2, 0) == pytest.approx(1.3)


def test_a_shorter_pause_does_not_shorten_a_longer_one() -> None:
    pacer = Pacer(requests_per_minute=600, burst_s=0)
    pacer.pause(0.0, 5.0)
    pacer.pause(1.0, 1.0)
    assert pacer.reserve(1.0) >= 4.0


def test_a_slot_that_falls_in_a_later_pause_is_booked_again_after_it() -> None:
    pacer = Pacer(requests_per_minute=600, burst_s=0)
    slot = pacer.reserve(0.0)  # 0.0
    assert slot == 0.0
    waiting = pacer.reserve(0.0)  # 0.1: this caller sleeps, then rechecks
    assert waiting == pytest.approx(0.1)
    pacer.pause(0.05, 1.0)  # another caller got a 429 meanwhile
    assert pacer.recheck(0.1) == pytest.approx(1.05 - 0.1)  # at the end of the pause
    assert pacer.reserve(0.1) == pytest.approx(1.15 - 0.1)  # and the next one paced after it
    assert pacer.recheck(1.2) == 0.0  # no pause holds any more: go


def test_a_request_larger_than_the_whole_token_budget_goes_when_the_budget_is_full() -> None:
    pacer = Pacer(tokens_per_minute=6000, burst_s=1.0)  # 100 tokens a second
    assert pacer.reserve(0.0, 500) == 0.0  # a first request, fitting in no burst: goes
    huge = pacer.reserve(0.0, 10_000)  # more than a minute's budget
    assert huge == pytest.approx(5.0)  # when the first one is paid off, not never
    # Its excess is a debt: the next request waits until it is paid off (100 s later).
    assert pacer.reserve(5.0, 50) == pytest.approx(100.0 - 1.0 + 0.5)


def test_requests_go_in_the_order_they_were_booked() -> None:
    pacer = Pacer(requests_per_minute=600, tokens_per_minute=60_000, burst_s=1.0)
    times = [pacer.reserve(0.0, tokens) for tokens in (900, 800, 5, 5, 700, 1)]
    assert times == sorted(times)


def test_an_unlimited_pacer_never_delays() -> None:
    pacer = Pacer()
    assert pacer.unlimited
    assert slots(pacer, 3.0, 1000, tokens=10**6) == [3.0] * 1000


def test_invalid_budgets_and_estimates_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(requests_per_minute=0)
    with pytest.raises(ValueError, match="burst"):
        Pacer(tokens_per_minute=10, burst_s=-1)
    with pytest.raises(ValueError, match="negative"):
        Pacer(tokens_per_minute=10).reserve(0.0, -5)


def test_settings_without_a_budget_make_no_limiter() -> None:
    assert rate_limiter(ModelSettings()) is None
    limiter = rate_limiter(ModelSettings(requests_per_minute=30, rate_burst_s=2))
    assert isinstance(limiter, LocalRateLimiter)
    assert limiter.pacer.limits == (30, None, 2.0)


def test_budget_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        ModelSettings(requests_per_minute=0)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ModelSettings(rate_burst_s=-1)


def test_a_local_limiter_cannot_be_copied_into_another_process() -> None:
    with pytest.raises(TypeError, match="second budget"):
        pickle.dumps(LocalRateLimiter(Pacer(requests_per_minute=60)))


async def test_concurrent_callers_of_a_local_limiter_are_spread_at_the_rate() -> None:
    limiter = LocalRateLimiter(Pacer(requests_per_minute=1200, burst_s=0))  # 20 a second
    start = time.monotonic()
    went: list[float] = []

    async def caller() -> None:
        await limiter.acquire(10)
        went.append(time.monotonic() - start)

    await asyncio.gather(*(caller() for _ in range(8)))
    went.sort()
    gaps = [b - a for a, b in zip(went, went[1:], strict=False)]
    assert went[0] < 0.03
    # 7 gaps of 50 ms: sleeps wake late, never early, so only the upper side is loose.
    assert 0.35 - 0.005 <= went[-1] <= 0.35 + 0.25
    assert min(gaps) > 0.03


async def test_a_pause_holds_back_callers_already_waiting_for_their_slot() -> None:
    limiter = LocalRateLimiter(Pacer(requests_per_minute=600, burst_s=0))  # 10 a second
    start = time.monotonic()
    went: list[float] = []

    async def caller() -> None:
        await limiter.acquire(0)
        went.append(time.monotonic() - start)

    callers = [asyncio.create_task(caller()) for _ in range(4)]  # slots 0, 0.1, 0.2, 0.3
    await asyncio.sleep(0.05)
    await limiter.pause(0.5)  # until ~0.55
    await asyncio.gather(*callers)
    went.sort()
    assert went[0] < 0.05
    assert all(t >= 0.55 for t in went[1:])  # nobody went during the pause
    assert went[-1] < 0.55 + 0.6


def test_a_local_limiter_paces_callers_on_several_threads_together() -> None:
    limiter = LocalRateLimiter(Pacer(requests_per_minute=1200, burst_s=0))  # 20 a second
    start = time.monotonic()
    went: list[float] = []

    def thread() -> None:
        async def two() -> None:
            for _ in range(2):
                await limiter.acquire(0)
                went.append(time.monotonic() - start)

        asyncio.run(two())

    threads = [threading.Thread(target=thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 6 requests from 3 event loops share one schedule: the last goes 5 slots after the first.
    assert max(went) >= 0.25 - 0.005
