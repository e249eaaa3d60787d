"""Every runner through the real openai client against the loopback fake server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest

from recordagent.llm import OpenAICompatModel
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.runners import Answer, Runner, build_runner
from recordagent.settings import ModelSettings, Settings
from tests.fake_openai import FakeOpenAI, ok, status
from tests.helpers import FIXTURES, asct_item


@pytest.fixture(scope="module")
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        load_bundle(opened, FIXTURES / "tool_patients")
        yield opened


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def model(server: FakeOpenAI) -> OpenAICompatModel:
    return OpenAICompatModel(
        ModelSettings(
            provider="openai",
            model="gpt-4o-mini",
            base_url=server.url,
            timeout_s=2.0,
            max_retries=2,
            backoff_base_s=0.01,
        )
    )


def answer_json(value: object, citations: list[str], status_: str = "answered") -> str:
    return json.dumps(
        {"status": status_, "value": value, "text": "from the record", "citations": citations}
    )


async def run(runner: Runner, store: RecordStore, server: FakeOpenAI, **item) -> Answer:
    async with model(server) as llm:
        return await asyncio.wait_for(
            runner.run(asct_item(**item), store.scope("A"), llm), timeout=30
        )


async def test_the_agent_over_http_with_a_fault_and_a_malformed_tool_call(store, server):
    server.script(
        ok(json.dumps({"needs": ["date of the ASCT"]}), usage=(400, 20)),
        status(500),
        ok(
            None,
            tool_calls=[
                ("c1", "search_documents", '{"query": "stem cell transplantation"'),
                ("c2", "get_timeline", '{"kinds": ["transplant"]}'),
            ],
            usage=(900, 30),
        ),
        ok(None, tool_calls=[("c3", "search_documents", '{"query": "ASCT"}')], usage=(1200, 20)),
        ok(None, tool_calls=[("c4", "finish", "{}")], usage=(1500, 10)),
        ok(
            json.dumps({"needs": [{"need": "date of the ASCT", "status": "met"}]}), usage=(1600, 30)
        ),
        ok(answer_json("2020-06-15", ["EA3", "A-D3:0"]), usage=(1700, 40)),
    )
    answer = await run(build_runner("agent", Settings()), store, server)
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    assert {c.id for c in answer.citations} == {"EA3", "A-D3:0"}
    assert not answer.mock and answer.model == "gpt-4o-mini"
    # The 500 was retried inside one model call: 7 HTTP requests, 6 model calls.
    assert len(server.requests) == 7 and answer.usage.model_calls == 6
    assert answer.usage.tokens_reported
    assert answer.usage.prompt_tokens == 400 + 900 + 1200 + 1500 + 1600 + 1700
    assert answer.usage.cost_usd is not None and answer.usage.cost_usd > 0
    # The malformed call went back as a corrective tool message; the valid one ran.
    act2 = server.requests[3]["messages"]
    replies = {m["tool_call_id"]: m["content"] for m in act2 if m["role"] == "tool"}
    assert "not valid JSON" in replies["c1"]
    assert "[EA3]" in replies["c2"]
    # Structured calls asked for their schemas; act calls offered the tools.
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "Plan"
    assert server.requests[-1]["response_format"]["json_schema"]["name"] == "FinalAnswer"
    assert {t["function"]["name"] for t in server.requests[2]["tools"]} >= {"finish", "query_labs"}


async def test_the_agent_over_http_ends_truncated_when_steps_run_out(store, server):
    plan = ok(json.dumps({"needs": ["date of the ASCT"]}))
    act = ok(None, tool_calls=[("c", "get_timeline", "{}")])
    final = ok(answer_json("2020-06-15", ["EA3"]))
    server.script(plan, act, act, final)
    settings = Settings(runners={"agent": {"max_steps": 2}})
    answer = await run(build_runner("agent", settings), store, server)
    assert answer.status == "truncated" and answer.value == dt.date(2020, 6, 15)
    assert len(server.requests) == 4


async def test_an_unreachable_model_fails_the_item_without_raising(store, server):
    server.script(status(503))
    answer = await run(build_runner("agent", Settings()), store, server)
    assert answer.status == "failed" and "503" in answer.text
    assert len(server.requests) == 3  # one call, two retries


@pytest.mark.parametrize(
    ("name", "replies", "schemas"),
    [
        ("single_pass_rag", [answer_json("2020-06-15", ["EA3"])], ["FinalAnswer"]),
        (
            "iterative_rag",
            [
                json.dumps({"action": "search", "query": "melphalan"}),
                json.dumps(
                    {"action": "answer", "answer": json.loads(answer_json("2020-06-15", ["EA3"]))}
                ),
            ],
            ["IterativeStep", "IterativeStep"],
        ),
        ("full_context", [answer_json("2020-06-15", ["EA3", "A-D3"])], ["FinalAnswer"]),
    ],
)
async def test_each_baseline_over_http(store, server, name, replies, schemas):
    server.script(*(ok(r, usage=(1000, 50)) for r in replies))
    answer = await run(build_runner(name, Settings()), store, server)
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    assert "EA3" in {c.id for c in answer.citations}
    assert [r["response_format"]["json_schema"]["name"] for r in server.requests] == schemas
    assert answer.usage.prompt_tokens == 1000 * len(replies)
    assert answer.runner == name and not answer.mock


async def test_a_reflection_that_never_validates_does_not_fail_the_run(store, server):
    server.script(
        ok(json.dumps({"needs": ["the ASCT date"]})),
        ok(None, tool_calls=[("c1", "get_timeline", "{}"), ("c2", "finish", "{}")]),
        ok("I am fairly sure all is met."),  # reflection, not JSON
        ok("Still not JSON."),  # its one repair
        ok(answer_json("2020-06-15", ["EA3"])),
    )
    answer = await run(build_runner("agent", Settings()), store, server)
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    errors = [e for e in answer.trace if e.kind == "error"]
    assert [e.name for e in errors] == ["reflect", "reflect"]
    assert "input_value" not in errors[0].error  # field paths only, no quoted text


async def test_a_final_answer_that_never_validates_after_a_budget_stop_is_truncated(store, server):
    server.script(
        ok(json.dumps({"needs": ["the ASCT date"]}), usage=(10, 5)),
        ok(None, tool_calls=[("c1", "get_timeline", "{}")], usage=(10, 5)),
        ok("June 2020, I think", usage=(10, 5)),
        ok("June 2020", usage=(10, 5)),
    )
    settings = Settings(runners={"agent": {"max_steps": 1}})
    answer = await run(build_runner("agent", settings), store, server)
    assert answer.status == "truncated" and answer.value is None
    # Plan, one act step, the answer and its repair: every request's tokens are accounted.
    assert len(server.requests) == 4 and answer.usage.prompt_tokens == 10 * 4


async def test_a_loose_but_clear_judge_decision_is_accepted_over_http(store, server):
    server.script(
        ok(json.dumps({"action": "Search", "query": "melphalan"})),
        ok(json.dumps({"action": "ANSWER", "answer": json.loads(answer_json("2020-06-15", []))})),
    )
    answer = await run(build_runner("iterative_rag", Settings()), store, server)
    assert answer.status == "answered" and answer.details["rounds"] == 2


async def test_a_final_answer_the_server_cuts_off_fails_without_a_repair(store, server):
    server.script(ok('{"status": "answered", "value": "2020-06-', finish_reason="length"))
    answer = await run(build_runner("single_pass_rag", Settings()), store, server)
    assert answer.status == "failed" and answer.failure == "output_length"
    assert len(server.requests) == 1 and answer.usage.requests == 1
    assert answer.usage.prompt_tokens > 0 and answer.usage.model_calls == 1
    (error,) = [e for e in answer.trace if e.kind == "error"]
    assert (error.step, error.error, error.attempts) == ("answer", "output_length", 1)
    assert server.requests[0]["max_tokens"] == Settings().runners.max_answer_tokens


async def test_a_plan_the_server_cuts_off_does_not_fail_the_run(store, server):
    server.script(
        ok('{"needs": ["date of the ASCT", "date of the ASCT", "da', finish_reason="length"),
        ok(None, tool_calls=[("c1", "get_timeline", "{}"), ("c2", "finish", "{}")]),
        ok(json.dumps({"needs": [{"need": "date of the ASCT", "status": "met"}]})),
        ok(answer_json("2020-06-15", ["EA3"])),
    )
    answer = await run(build_runner("agent", Settings()), store, server)
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    assert len(server.requests) == 4  # no repair of the cut-off plan
    assert [(e.name, e.error) for e in answer.trace if e.kind == "error"] == [
        ("plan", "output_length"),
        ("plan", "plan_unparsed"),
    ]
    steps = Settings().runners.max_step_tokens
    assert [r["max_tokens"] for r in server.requests] == [
        steps,
        steps,
        steps,
        Settings().runners.max_answer_tokens,
    ]


async def test_full_context_packs_to_the_window_the_server_reports(store):
    settings = Settings(runners={"full_context": {"reserve_tokens": 500}})
    with FakeOpenAI(props={"default_generation_settings": {"n_ctx": 1_350}}) as server:
        server.script(ok(answer_json(None, [], "insufficient_evidence")))
        answer = await run(build_runner("full_context", settings), store, server)
    assert (answer.details["window_tokens"], answer.details["window_source"]) == (1_000, "model")
    assert answer.details["truncated"] is True and answer.status == "insufficient_evidence"
    assert "/props" in server.paths


async def test_a_slow_server_cannot_hold_the_agent_past_max_wall_s(store):
    settings = Settings(runners={"agent": {"max_wall_s": 2.0}})
    runner = build_runner("agent", settings)
    with FakeOpenAI() as server:
        server.script(ok(json.dumps({"needs": ["date of the ASCT"]}), delay_s=3.0))
        llm = OpenAICompatModel(
            ModelSettings(provider="openai", model="gpt-4o-mini", base_url=server.url)
        )
        async with llm:
            runner.graph(llm)
            started = time.perf_counter()
            answer = await runner.run(asct_item(), store.scope("A"), llm)
            took = time.perf_counter() - started
    assert took < 2.5
    assert answer.status == "truncated" and answer.value is None
    assert answer.details["answer_timed_out"] and answer.failure is None
    # The plan was cut off when the loop's time ran out, the answer when the run's did.
    assert len(server.requests) == 2
