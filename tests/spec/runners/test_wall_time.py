"""The agent's max_wall_s is a hard limit: the loop leaves the final answer its reserve, and the
final answer gets what is left, with slow scripted models."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

from recordagent.llm import MockModel, MockRequest
from recordagent.records.scope import PatientScope
from recordagent.runners import AgentRunner, time_by_step
from recordagent.settings import Settings
from tests.helpers import asct_item, final

PLAN = {"json": {"needs": ["date of the ASCT"]}}
MET = {"json": {"needs": [{"need": "date of the ASCT", "status": "met", "evidence": ["EA3"]}]}}


class Slow(MockModel):
    """A mock whose calls take ``delay(request)`` seconds (without blocking the event loop)."""

    def __init__(self, script, delay: Callable[[MockRequest], float]) -> None:
        super().__init__(script)
        self.delay = delay

    async def complete(self, messages, tools=None, response_format=None, **params):
        request = MockRequest(
            messages=list(messages), tools=tools, schema_class=response_format, params=params
        )
        await asyncio.sleep(self.delay(request))
        return await super().complete(messages, tools, response_format, **params)


def script(request: MockRequest):
    if request.schema_name == "Plan":
        return PLAN
    if request.schema_name == "Reflection":
        return MET
    if request.schema_name == "FinalAnswer":
        return final("2020-06-15", ["EA3"])
    return {"tool_calls": [("get_timeline", {})]}


def within(seconds: float) -> Settings:
    return Settings(runners={"agent": {"max_wall_s": seconds}})


async def test_a_slow_model_cannot_run_past_max_wall_s(scope_a: PatientScope):
    model = Slow(script, lambda request: 0.7)
    runner = AgentRunner(within(2.0))
    runner.graph(model)  # LangGraph imported and the graph built beforehand
    started = time.perf_counter()
    answer = await asyncio.wait_for(runner.run(asct_item(), scope_a, model), timeout=10)
    took = time.perf_counter() - started
    assert took < 2.5 and answer.usage.wall_s < 2.5
    # The loop stopped with the reserve left; the answer did not come within it.
    assert answer.status == "truncated" and answer.value is None
    assert answer.details["stop"] == "budget:time" and answer.details["answer_timed_out"]
    assert answer.failure is None
    cut = [e for e in answer.trace if e.kind == "budget" and e.step is not None]
    assert [e.step for e in cut] == ["act", "answer"]
    # The time the cut-off calls took is accounted for, step by step.
    steps = {s.step: s for s in time_by_step([answer])}
    assert steps["answer"].seconds > 0.3 and steps["answer"].requests == 1
    assert abs(sum(s.seconds for s in steps.values()) - answer.usage.wall_s) < 1e-3


async def test_the_loop_leaves_the_final_answer_its_reserve(scope_a: PatientScope):
    # Tool-loop calls are slow, the answer is quick: the loop stops when a quarter of the
    # wall time is left, and the answer comes within it ('truncated', with its value).
    model = Slow(script, lambda request: 0.4 if request.tools else 0.0)
    answer = await asyncio.wait_for(
        AgentRunner(within(2.0)).run(asct_item(), scope_a, model), timeout=10
    )
    assert answer.status == "truncated" and answer.value == dt.date(2020, 6, 15)
    assert answer.details["stop"] == "budget:time"
    assert "answer_timed_out" not in answer.details
    assert 1.4 < answer.usage.wall_s < 2.0


async def test_the_reserve_is_a_setting(scope_a: PatientScope):
    settings = Settings(runners={"agent": {"max_wall_s": 2.0, "answer_reserve": 0.6}})
    model = Slow(script, lambda request: 0.3 if request.tools else 0.0)
    answer = await asyncio.wait_for(
        AgentRunner(settings).run(asct_item(), scope_a, model), timeout=10
    )
    assert answer.details["stop"] == "budget:time" and answer.status == "truncated"
    # The loop had 0.8 s: two act steps at most, then the answer at once.
    assert answer.details["steps"] <= 3 and answer.usage.wall_s < 1.2


async def test_a_spent_wall_time_sends_nothing(scope_a: PatientScope):
    model = MockModel(script)
    answer = await AgentRunner(within(1e-9)).run(asct_item(), scope_a, model)
    assert answer.status == "truncated" and answer.value is None
    assert model.requests == [] and answer.usage.model_calls == answer.usage.requests == 0
