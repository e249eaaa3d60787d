"""The OpenAI-compatible client through the real `openai` SDK against a fake HTTP server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from recordagent.errors import ModelError
from recordagent.llm import CachedModel, Message, OpenAICompatModel, ToolCall
from tests.fake_openai import FakeOpenAI, bounded, drop, empty, fake_model, ok, status

HELLO = [Message(role="user", content="hello")]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "search_documents", "parameters": {"type": "object"}},
    }
]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


model = fake_model


async def complete(m: OpenAICompatModel, *args: object, **kw: object):
    return await bounded(m.complete(*args, **kw))


@pytest.mark.parametrize(
    "fault",
    [status(429), status(500), status(503), drop(), empty(), ok(delay_s=1.0)],
    ids=["429", "500", "503", "dropped", "no-choices", "timeout"],
)
async def test_a_transient_fault_is_retried_then_succeeds(server: FakeOpenAI, fault):
    server.script(fault, ok("recovered"))
    completion = await complete(model(server, retry_timeouts=True), HELLO)
    assert completion.text == "recovered"
    assert completion.attempts == 2
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (status(429), "HTTP 429"),
        (status(500), "HTTP 500"),
        (drop(), "APIConnectionError"),
        (empty(), "no choices"),
        (ok(delay_s=1.0), "timed out"),
    ],
)
async def test_a_persistent_fault_is_a_clear_error_after_the_budget(server, fault, message):
    server.script(fault)
    with pytest.raises(ModelError, match="gave up after 3 attempt") as caught:
        await complete(model(server, retry_timeouts=True), HELLO)
    assert message in str(caught.value)
    assert len(server.requests) == 3


async def test_retry_after_is_honoured(server: FakeOpenAI):
    server.script(status(429, retry_after=0.4), ok())
    clock = time.perf_counter()
    await complete(model(server), HELLO)
    assert time.perf_counter() - clock >= 0.4


async def test_a_refused_request_is_not_retried(server: FakeOpenAI):
    server.script(status(400))
    with pytest.raises(ModelError, match="refused the request \\(400\\)"):
        await complete(model(server), HELLO)
    assert len(server.requests) == 1


async def test_bad_tool_calls_become_corrective_messages(server: FakeOpenAI):
    server.script(
        ok(
            None,
            tool_calls=[
                ("c1", "search_documents", '{"query": "del(17p)"}'),
                ("c2", "search_documents", '{"query": "x"'),
                ("c3", "delete_everything", "{}"),
            ],
        )
    )
    completion = await complete(model(server), HELLO, tools=TOOLS)
    good, broken, unknown = completion.tool_calls
    assert (good.arguments, good.error) == ({"query": "del(17p)"}, None)
    assert broken.arguments is None and "not valid JSON" in (broken.error or "")
    assert "unknown tool 'delete_everything'; available tools: search_documents" == unknown.error
    assert server.requests[0]["tools"] == TOOLS


async def test_usage_and_cost_are_accounted(server: FakeOpenAI):
    server.script(ok(usage=(1000, 500)))
    completion = await complete(model(server), HELLO)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1000, 500)
    assert completion.usage.reported
    assert completion.usage.cost_usd == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)


async def test_usage_is_counted_locally_when_the_server_reports_none(server: FakeOpenAI):
    server.script(ok("four words right here", usage=None))
    completion = await complete(model(server, model="local-llama"), HELLO)
    assert not completion.usage.reported
    assert completion.usage.completion_tokens == 4
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.cost_usd is None  # not in the price table: on-premises


class Stage(BaseModel):
    stage: str
    confidence: float


async def test_structured_output_is_requested_validated_and_repaired_once(server: FakeOpenAI):
    server.script(
        ok('{"stage": "II"}', usage=(10, 5)),
        ok('{"stage": "II", "confidence": 0.9}', usage=(10, 5)),
    )
    completion = await complete(model(server), HELLO, response_format=Stage)
    assert completion.parsed == {"stage": "II", "confidence": 0.9}
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "Stage"
    repair = server.requests[1]["messages"][-1]["content"]
    assert "does not validate" in repair and "confidence" in repair
    assert completion.usage.prompt_tokens == 20  # both calls counted


async def test_a_server_without_response_format_gets_the_schema_in_the_prompt(server):
    server.script(ok('```json\n{"stage": "III", "confidence": 1}\n```'))
    m = model(server, supports_response_format=False)
    completion = await complete(m, HELLO, response_format=Stage)
    assert completion.parsed == {"stage": "III", "confidence": 1.0}
    request = server.requests[0]
    assert "response_format" not in request
    assert request["messages"][0]["role"] == "system"
    assert '"confidence"' in request["messages"][0]["content"]


async def test_an_answer_that_never_validates_is_a_model_error(server: FakeOpenAI):
    server.script(ok("not json"))
    with pytest.raises(ModelError, match="did not validate after one repair"):
        await complete(model(server), HELLO, response_format=Stage)


async def test_concurrency_is_limited_by_one_shared_semaphore(server: FakeOpenAI):
    server.script(ok(delay_s=0.2))
    limited = model(server, max_concurrency=2)
    clock = time.perf_counter()
    await asyncio.gather(*(complete(limited, HELLO) for _ in range(6)))
    assert time.perf_counter() - clock >= 0.6  # three waves of two
    free = model(server, max_concurrency=16)
    clock = time.perf_counter()
    await asyncio.gather(*(complete(free, HELLO) for _ in range(6)))
    assert time.perf_counter() - clock < 0.6


async def test_unknown_parameters_are_refused_before_any_call(server: FakeOpenAI):
    with pytest.raises(ValueError, match="unknown completion parameter"):
        await complete(model(server), HELLO, temprature=0.2)
    assert server.requests == []


async def test_parameters_and_messages_reach_the_server(server: FakeOpenAI):
    await complete(model(server), HELLO, temperature=0.0, seed=7, max_tokens=50)
    request = server.requests[0]
    assert (request["temperature"], request["seed"], request["max_tokens"]) == (0.0, 7, 50)
    assert request["messages"] == [{"role": "user", "content": "hello"}]
    assert request["model"] == "gpt-4o-mini"


async def test_schemas_go_to_the_server_verbatim_and_azure_gets_its_deployment_path(
    server: FakeOpenAI,
):
    server.script(ok('{"stage": "II", "confidence": 0.9}'))
    azure = model(
        server,
        provider="azure",
        model="my-deployment",
        base_url=server.url.removesuffix("/v1"),
        azure_api_version="2024-10-21",
    )
    answer = await complete(azure, HELLO, tools=TOOLS, response_format=Stage)
    assert answer.parsed == {"stage": "II", "confidence": 0.9}
    assert server.paths == [
        "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    ]
    request = server.requests[0]
    assert request["tools"] == TOOLS
    assert request["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Stage", "schema": Stage.model_json_schema()},
    }


async def test_a_server_without_tool_calling_gets_tools_in_the_prompt(server: FakeOpenAI):
    server.script(
        ok('{"tool_calls": [{"name": "search_documents", "arguments": {"query": "x"'),
        ok('{"tool_calls": [{"name": "search_documents", "arguments": {"query": "ISS"}}]}'),
    )
    m = model(server, supports_tools=False)
    history = [
        *HELLO,
        Message(
            role="assistant",
            tool_calls=(
                ToolCall(
                    id="c0",
                    name="search_documents",
                    arguments={"query": "a"},
                    raw_arguments='{"query": "a"}',
                ),
            ),
        ),
        Message(role="tool", tool_call_id="c0", content="1 passage"),
    ]
    completion = await complete(m, history, tools=TOOLS)
    (call,) = completion.tool_calls
    assert (call.name, call.arguments, call.error) == ("search_documents", {"query": "ISS"}, None)
    first = server.requests[0]
    assert "tools" not in first
    assert "You can call these tools" in first["messages"][0]["content"]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant", "user"]
    assert "not valid" in server.requests[1]["messages"][-1]["content"]  # the one repair


async def test_a_replayed_run_makes_no_http_call(server: FakeOpenAI, tmp_path):
    server.script(ok("first answer", usage=(12, 3)))
    recorder = CachedModel(model(server), tmp_path / "cache.sqlite", mode="read-write")
    recorded = [await complete(recorder, HELLO, seed=s) for s in (1, 2)]
    recorder.close()
    calls = len(server.requests)
    replayer = CachedModel(model(server), tmp_path / "cache.sqlite", mode="read")
    replayed = [await complete(replayer, HELLO, seed=s) for s in (1, 2)]
    assert len(server.requests) == calls == 2
    for before, after in zip(recorded, replayed, strict=True):
        assert after.cached
        assert after.model_dump_json(exclude={"cached"}) == before.model_dump_json(
            exclude={"cached"}
        )


async def test_a_tool_call_is_not_mistaken_for_a_bad_structured_answer(server: FakeOpenAI):
    server.script(ok(None, tool_calls=[("c1", "search_documents", '{"query": "ISS"}')]))
    completion = await complete(model(server), HELLO, tools=TOOLS, response_format=Stage)
    assert completion.parsed is None and completion.tool_calls[0].name == "search_documents"
    assert len(server.requests) == 1  # no repair round


async def test_a_wait_longer_than_the_backoff_cap_is_a_clear_error(server: FakeOpenAI):
    server.script(status(429, retry_after=3600))
    with pytest.raises(ModelError, match="asks to wait 3600 s"):
        await complete(model(server), HELLO)
    assert len(server.requests) == 1


def test_one_model_serves_several_event_loops(server: FakeOpenAI):
    m = model(server, max_concurrency=1)
    for _ in range(2):
        texts = asyncio.run(_three(m))
        assert texts == ["ok", "ok", "ok"]


async def _three(m: OpenAICompatModel) -> list[str]:
    done = await asyncio.gather(*(complete(m, HELLO) for _ in range(3)))
    await m.close()
    return [c.text for c in done]


async def test_identical_requests_in_flight_are_sent_once(server: FakeOpenAI, tmp_path):
    server.script(ok(delay_s=0.2))
    cached = CachedModel(model(server), tmp_path / "c.sqlite", mode="read-write")
    results = await asyncio.gather(*(complete(cached, HELLO) for _ in range(4)))
    assert len(server.requests) == 1
    assert {r.text for r in results} == {"ok"}
