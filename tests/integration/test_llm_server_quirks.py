"""What real servers do to requests (llama.cpp, vLLM, Ollama, strict chat templates), faked.

Each test injects one behaviour seen on a real server and pins what the client does about it:
slow generations are not restarted, cut-off answers are named, strict templates get alternating
roles, refused or dropped tools move into the prompt, the context window is learnt and checked,
and a failed call still accounts for what it spent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field

from recordagent.errors import ModelError, StructuredOutputError
from recordagent.llm import Message, OpenAICompatModel
from tests.fake_openai import FakeOpenAI, bounded, drop, fake_model, ok, status

HELLO = [Message(role="user", content="hello")]
SEARCH = {
    "type": "function",
    "function": {
        "name": "search_documents",
        "description": "Search the patient's documents for passages matching a query.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for."}},
            "required": ["query"],
        },
    },
}


class Stage(BaseModel):
    stage: str = Field(max_length=10)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def model(server: FakeOpenAI, **overrides: object) -> OpenAICompatModel:
    return fake_model(server, **{"model": "local", **overrides})


async def complete(m: OpenAICompatModel, *args: object, **kw: object):
    return await bounded(m.complete(*args, **kw))


def posts(server: FakeOpenAI) -> list[str]:
    return [p for p in server.paths if p.endswith("/chat/completions")]


async def test_a_request_that_times_out_is_not_resent_and_the_error_names_the_setting(server):
    server.script(ok(delay_s=1.0))
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO)
    assert caught.value.cause == "timeout"
    assert "timeout_s=0.5" in str(caught.value) and "not resent" in str(caught.value)
    assert len(server.requests) == 1
    assert caught.value.completion.attempts == 1


async def test_a_lost_connection_is_still_retried_and_each_retry_is_logged(server, caplog):
    server.script(drop(), ok("back"))
    with caplog.at_level(logging.WARNING, logger="recordagent.llm"):
        completion = await complete(model(server), HELLO)
    assert completion.text == "back" and completion.attempts == 2
    assert any("retry 1 of 2" in r.getMessage() for r in caplog.records)


async def test_an_answer_cut_off_at_max_tokens_fails_as_such_without_a_repair(server):
    server.script(ok('{"stage": "I', finish_reason="length", usage=(40, 16)))
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO, response_format=Stage, max_tokens=16)
    error = caught.value
    assert error.cause == "output_length"
    assert "max_tokens=16" in str(error) and "finish_reason 'length'" in str(error)
    assert len(server.requests) == 1  # no repair: it would be cut off again
    assert (error.completion.usage.prompt_tokens, error.completion.usage.completion_tokens) == (
        40,
        16,
    )


async def test_a_repair_cut_off_at_max_tokens_fails_as_such(server):
    server.script(
        ok('{"stage": 3}', usage=(40, 4)),
        ok('{"stage": "II and more', finish_reason="length", usage=(60, 16)),
    )
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO, response_format=Stage, max_tokens=16)
    assert caught.value.cause == "output_length"
    assert caught.value.completion.usage.prompt_tokens == 100  # both requests counted
    assert caught.value.completion.attempts == 2


async def test_a_plain_text_answer_cut_off_is_returned_with_its_finish_reason(server):
    server.script(ok("a long story", finish_reason="length"))
    completion = await complete(model(server), HELLO, max_tokens=3)
    assert (completion.text, completion.finish_reason) == ("a long story", "length")


async def test_consecutive_messages_of_one_role_are_merged_for_strict_templates(server):
    conversation = [
        Message(role="system", content="You answer questions."),
        Message(role="system", content="Answer in JSON."),
        Message(role="user", content="The question."),
        Message(role="user", content="The record."),
    ]
    await complete(model(server), conversation)
    assert server.requests[0]["messages"] == [
        {"role": "system", "content": "You answer questions.\n\nAnswer in JSON."},
        {"role": "user", "content": "The question.\n\nThe record."},
    ]


async def test_a_template_without_a_system_role_gets_it_folded_into_the_user_message(
    server, caplog
):
    refused = status(400, message="System role not supported")
    server.script(refused, ok("first"), ok("second"))
    m = model(server)
    conversation = [Message(role="system", content="Rules."), *HELLO]
    with caplog.at_level(logging.WARNING, logger="recordagent.llm"):
        assert (await complete(m, conversation)).text == "first"
        assert (await complete(m, conversation)).text == "second"
    folded = [{"role": "user", "content": "Rules.\n\nhello"}]
    assert [r["messages"] for r in server.requests] == [
        [{"role": "system", "content": "Rules."}, {"role": "user", "content": "hello"}],
        folded,
        folded,  # learnt once: later calls fold from the start
    ]
    assert m.fold_system
    assert any("folded" in r.getMessage() for r in caplog.records)


async def test_a_role_refusal_without_a_system_message_is_not_a_reason_to_fold(server):
    server.script(status(400, message="Conversation roles must alternate user/assistant"))
    m = model(server)
    with pytest.raises(ModelError) as caught:
        await complete(m, HELLO)
    assert caught.value.cause == "refused" and not m.fold_system


async def test_system_role_keep_passes_the_refusal_on(server):
    server.script(status(400, message="System role not supported"))
    m = model(server, system_role="keep")
    with pytest.raises(ModelError) as caught:
        await complete(m, [Message(role="system", content="Rules."), *HELLO])
    assert caught.value.cause == "refused" and len(server.requests) == 1


async def test_tools_the_server_refuses_go_into_the_prompt_without_retries(server, caplog):
    server.script(
        status(500, message="tools param requires --jinja flag"),
        ok('{"tool_calls": [{"name": "search_documents", "arguments": {"query": "stage"}}]}'),
    )
    m = model(server)
    with caplog.at_level(logging.WARNING, logger="recordagent.llm"):
        completion = await complete(m, HELLO, tools=[SEARCH])
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("search_documents", {"query": "stage"})
    ]
    assert len(server.requests) == 2  # not retried as a server fault
    assert "tools" not in server.requests[1]
    assert "search_documents" in server.requests[1]["messages"][0]["content"]
    assert m.prompt_tools
    assert any("tools go into the prompt" in r.getMessage() for r in caplog.records)


async def test_tools_a_server_silently_drops_are_detected_and_put_in_the_prompt(server):
    call = '{"tool_calls": [{"name": "search_documents", "arguments": {"query": "stage"}}]}'
    server.script(
        ok("I cannot search.", ignore_tools=True),
        ok("x"),  # the one-token probe of the same messages without tools
        ok(call),
    )
    m = model(server)
    completion = await complete(m, HELLO, tools=[SEARCH])
    assert [c.name for c in completion.tool_calls] == ["search_documents"]
    probe = server.requests[1]
    assert "tools" not in probe and probe["max_tokens"] == 1
    assert "tools" in server.requests[0] and "tools" not in server.requests[2]
    assert m.prompt_tools
    assert completion.attempts == 3  # the dropped request, the probe, the prompt tools


async def test_tools_a_server_reads_are_checked_once_and_kept(server):
    server.script(ok("no call needed"), ok("x"), ok("still none"))
    m = model(server)
    await complete(m, HELLO, tools=[SEARCH])
    await complete(m, HELLO, tools=[SEARCH])
    assert len(server.requests) == 3 and not m.prompt_tools
    assert "tools" not in server.requests[1]  # the probe, once
    assert "tools" in server.requests[2]


@pytest.mark.parametrize(
    "usages",
    [((4000, 5), (3000, 1)), ((0, 5), (3000, 1)), ((4000, 5), (0, 1))],
    ids=["template overhead", "cached prompt", "cached probe"],
)
async def test_a_healthy_server_with_odd_prompt_counts_keeps_native_tools(server, usages):
    # A chat template's fixed text inflates short prompts, and a cached prompt may be counted
    # as 0: neither means the tools were dropped.
    server.script(ok("no call needed", usage=usages[0]), ok("x", usage=usages[1]), ok("next"))
    m = model(server)
    await complete(m, HELLO, tools=[SEARCH])
    assert not m.prompt_tools


@pytest.mark.parametrize(
    ("listing", "props", "window"),
    [
        ({"data": [{"id": "local", "meta": {"n_ctx": 4096, "n_ctx_train": 8192}}]}, None, 4096),
        ({"data": [{"id": "local", "max_model_len": 32768}]}, None, 32768),
        (None, {"default_generation_settings": {"n_ctx": 2048}}, 2048),
        (None, None, None),
    ],
    ids=["llama.cpp models", "vLLM models", "llama.cpp props", "silent server"],
)
async def test_the_context_window_is_asked_of_the_server_once(listing, props, window):
    with FakeOpenAI(models=listing, props=props) as server:
        m = model(server)
        assert await m.context_window() == window
        assert await m.context_window() == window
        asked = [p for p in server.paths if not p.endswith("/chat/completions")]
        assert len(asked) == (1 if props else 2)


async def test_llama_cpp_props_per_slot_window_wins_over_the_listing():
    listing = {"data": [{"id": "local", "meta": {"n_ctx": 8192}}]}
    props = {"default_generation_settings": {"n_ctx": 4096}}
    with FakeOpenAI(models=listing, props=props) as server:
        assert await model(server).context_window() == 4096


async def test_the_context_window_setting_wins_and_nothing_is_asked(server):
    m = model(server, context_window=1024)
    assert await m.context_window() == 1024
    assert server.paths == []


async def test_a_prompt_that_cannot_fit_the_window_is_not_sent(server):
    m = model(server, context_window=600)
    huge = [Message(role="user", content="word " * 2000)]
    with pytest.raises(ModelError) as caught:
        await complete(m, huge)
    assert caught.value.cause == "context_overflow"
    assert "600 tokens" in str(caught.value) and "not sent" in str(caught.value)
    assert posts(server) == []


async def test_a_context_overflow_the_server_reports_is_named_and_not_retried(server):
    server.script(
        status(
            400,
            message="request (9120 tokens) exceeds the available context size (8192 tokens), "
            "try increasing it",
        )
    )
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO)
    assert caught.value.cause == "context_overflow"
    assert "context window" in str(caught.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize("code", [408, 504, 524])
async def test_a_gateway_that_stopped_waiting_is_a_timeout_and_not_resent(server, code):
    server.script(status(code))
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO)
    assert caught.value.cause == "timeout" and len(server.requests) == 1


async def test_the_retry_warning_says_the_status_not_the_servers_words(server, caplog):
    server.script(status(503, message="could not parse: patient has myeloma"), ok("back"))
    with caplog.at_level(logging.WARNING, logger="recordagent.llm"):
        await complete(model(server), HELLO)
    (line,) = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert "HTTP 503" in line and "myeloma" not in line


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (status(429), "rate_limited"),
        (status(503), "server_error"),
        (drop(), "unreachable"),
        (status(401), "refused"),
    ],
)
async def test_every_failure_says_its_cause(server, fault, cause):
    server.script(fault)
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO)
    assert caught.value.cause == cause


async def test_a_failed_repair_keeps_the_usage_of_both_requests(server):
    server.script(ok('{"stage": 1}', usage=(1991, 57)), ok('{"stage": 2}', usage=(2100, 40)))
    with pytest.raises(StructuredOutputError) as caught:
        await complete(model(server), HELLO, response_format=Stage)
    spent = caught.value.completion
    assert (spent.usage.prompt_tokens, spent.usage.completion_tokens) == (4091, 97)
    assert spent.attempts == 2 and caught.value.cause == "invalid_output"


async def test_a_repair_the_server_refuses_keeps_the_usage_of_the_first_request(server):
    server.script(ok('{"stage": 1}', usage=(1991, 57)), status(400))
    with pytest.raises(ModelError) as caught:
        await complete(model(server), HELLO, response_format=Stage)
    spent = caught.value.completion
    assert (spent.usage.prompt_tokens, spent.usage.completion_tokens) == (1991, 57)
    assert spent.attempts == 2


async def test_retries_count_as_requests_of_the_call(server):
    server.script(status(503), status(503), ok('{"stage": "II"}'))
    completion = await complete(model(server), HELLO, response_format=Stage)
    assert completion.attempts == 3 and completion.parsed == {"stage": "II"}


async def test_a_tool_call_after_another_json_object_in_the_text_is_read(server):
    server.script(
        ok(
            'The arguments look like {"query": "..."}. So:\n{"tool_calls": [{"name": '
            '"search_documents", "arguments": {"query": "ISS"}}]}'
        )
    )
    completion = await complete(model(server, supports_tools=False), HELLO, tools=[SEARCH])
    assert [c.arguments for c in completion.tool_calls] == [{"query": "ISS"}]


async def test_a_tool_call_in_text_followed_by_prose_is_read(server):
    server.script(
        ok(
            'Let me look.\n{"tool_calls": [{"name": "search_documents", "arguments": '
            '{"query": "ISS"}}]}\nThis will find the stage.'
        )
    )
    m = model(server, supports_tools=False)
    completion = await complete(m, HELLO, tools=[SEARCH])
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("search_documents", {"query": "ISS"})
    ]
    assert len(server.requests) == 1


async def test_calls_starting_together_ask_for_the_window_once():
    listing = {"data": [{"id": "local", "meta": {"n_ctx": 4096}}]}
    with FakeOpenAI(models=listing) as server:
        m = model(server)
        await asyncio.gather(*(complete(m, HELLO) for _ in range(5)))
        assert server.paths.count("/v1/models") == 1
        assert len(posts(server)) == 5
