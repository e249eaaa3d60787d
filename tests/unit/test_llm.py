"""Mock model, replay cache, token counting and prices."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from pydantic import BaseModel

from recordagent.errors import UserError
from recordagent.llm import (
    CachedModel,
    CacheMiss,
    Message,
    MockModel,
    MockScriptExhausted,
    ToolCall,
    count_request_tokens,
    load_prices,
    request_key,
)
from recordagent.llm.client import merged_roles, parse_text_tool_calls
from recordagent.records.tokens import Tokenizer

HELLO = [Message(role="user", content="hello")]
TOOLS = [{"type": "function", "function": {"name": "query_labs", "parameters": {}}}]


class Answer(BaseModel):
    value: int


def run(coro):
    return asyncio.run(coro)


def test_mock_replies_in_order_and_says_it_is_a_mock():
    mock = MockModel(["first", {"tool_calls": [("query_labs", {"analyte": "Hb"})]}])
    first = run(mock.complete(HELLO))
    second = run(mock.complete(HELLO, tools=TOOLS))
    assert (first.text, first.mock, mock.is_mock) == ("first", True, True)
    assert second.tool_calls[0].arguments == {"analyte": "Hb"}
    assert second.finish_reason == "tool_calls"
    with pytest.raises(
        MockScriptExhausted, match="has 2 scripted replies and was asked for reply 3"
    ):
        run(mock.complete(HELLO))


def test_mock_script_may_be_a_function_of_the_request():
    mock = MockModel(lambda request: {"json": {"value": len(request.messages)}})
    completion = run(mock.complete(HELLO * 3, response_format=Answer))
    assert completion.parsed == {"value": 3}
    assert mock.requests[0].schema_name == "Answer"


def test_mock_tool_calls_are_checked_like_a_real_models():
    mock = MockModel([{"tool_calls": [("drop_table", {})]}])
    (call,) = run(mock.complete(HELLO, tools=TOOLS)).tool_calls
    assert call.error == "unknown tool 'drop_table'; available tools: query_labs"


def test_cache_replays_without_calling_the_model(tmp_path: Path):
    inner = MockModel(["recorded answer"])
    recorder = CachedModel(inner, tmp_path / "cache.sqlite", mode="read-write")
    first = run(recorder.complete(HELLO, temperature=0))
    recorder.close()
    replayer = CachedModel(MockModel([]), tmp_path / "cache.sqlite", mode="read")
    again = run(replayer.complete(HELLO, temperature=0))
    assert again.cached and again.text == first.text
    assert again.model_dump(exclude={"cached"}) == first.model_dump(exclude={"cached"})
    assert (replayer.hits, replayer.misses) == (1, 0)
    with pytest.raises(CacheMiss, match="no recording of this request"):
        run(replayer.complete(HELLO, temperature=1))


def test_cache_key_covers_model_messages_tools_schema_and_parameters():
    base = request_key("m", HELLO, None, None, {})
    assert base == request_key("m", list(HELLO), None, None, {})
    assert (
        len(
            {
                base,
                request_key("other", HELLO, None, None, {}),
                request_key("m", [Message(role="user", content="hi")], None, None, {}),
                request_key("m", HELLO, TOOLS, None, {}),
                request_key("m", HELLO, None, Answer, {}),
                request_key("m", HELLO, None, None, {"seed": 1}),
            }
        )
        == 6
    )


def test_token_counts_follow_the_chat_accounting():
    tokenizer = Tokenizer()
    one = count_request_tokens(tokenizer, HELLO)
    assert one == 3 + 3 + tokenizer.count("user") + tokenizer.count("hello")
    assert count_request_tokens(tokenizer, HELLO, TOOLS) > one


def test_prices_by_name_prefix_and_override(tmp_path: Path):
    table = load_prices()
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini")
    assert table.price("llama-3.1-70b") is None
    custom = tmp_path / "prices.yaml"
    custom.write_text("models:\n  llama-3.1-70b: {input: 0.0, output: 0.0}\n")
    assert load_prices(custom).price("llama-3.1-70b") is not None
    custom.write_text("models: [1, 2]\n")
    with pytest.raises(UserError, match="cannot read price table"):
        load_prices(custom)


def test_settings_choose_the_model_and_mock_needs_a_script(monkeypatch):
    from recordagent.llm import OpenAICompatModel, build_model
    from recordagent.settings import load_settings

    monkeypatch.setenv("RECORDAGENT_MODEL__PROVIDER", "openai")
    monkeypatch.setenv("RECORDAGENT_MODEL__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RECORDAGENT_MODEL__MODEL", "llama-3.1-8b")
    settings = load_settings()
    assert (settings.model.provider, settings.model.base_url) == ("openai", "http://127.0.0.1:9/v1")
    built = build_model(settings.model)
    assert isinstance(built, OpenAICompatModel) and built.name == "llama-3.1-8b"
    assert not built.is_mock
    with pytest.raises(UserError, match="has no script here"):
        build_model(load_settings(model={"provider": "mock"}).model)


def test_every_model_implements_the_protocol(tmp_path: Path):
    from recordagent.llm import ChatModel, OpenAICompatModel
    from recordagent.settings import ModelSettings

    mock = MockModel([])
    real = OpenAICompatModel(ModelSettings(provider="openai", base_url="http://127.0.0.1:9/v1"))
    cached = CachedModel(mock, tmp_path / "c.sqlite")
    for model in (mock, real, cached):
        assert isinstance(model, ChatModel)
    assert cached.is_mock and not real.is_mock


def test_odd_tool_call_shapes_become_corrective_errors():
    from types import SimpleNamespace

    from recordagent.llm.client import parse_tool_calls
    from recordagent.llm.openai_compat import _raw_call

    as_dict = SimpleNamespace(name="query_labs", arguments={"analyte": "Hb"})
    raw = [
        _raw_call(0, SimpleNamespace(id="a", function=None)),
        _raw_call(1, SimpleNamespace(id=None, function=as_dict)),
    ]
    nameless, as_object = parse_tool_calls(raw, TOOLS)
    assert nameless.error is not None and "names no tool" in nameless.error
    assert (as_object.id, as_object.arguments, as_object.error) == (
        "call_1",
        {"analyte": "Hb"},
        None,
    )


def test_a_mistyped_cache_mode_is_refused(tmp_path: Path):
    with pytest.raises(UserError, match="cache mode must be"):
        CachedModel(MockModel([]), tmp_path / "c.sqlite", mode="replay")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        '{"tool_calls": [{"name": "search_documents", "arguments": {"query": "x"}}]}',
        'I will search.\n{"tool_calls": [{"name": "search_documents", "arguments": '
        '{"query": "x"}}]} and then answer.',
        '```json\n{"tool_calls": [{"name": "search_documents", "arguments": {"query": "x"}}]}\n```',
        '{"name": "search_documents", "arguments": {"query": "x"}}',
        '{"tool_calls": [{"name": "search_documents", "arguments": "{\\"query\\": \\"x\\"}"}]}',
    ],
    ids=["bare", "prose around", "fenced", "one call", "arguments as a string"],
)
def test_text_tool_calls_are_read_from_the_first_json_object(text: str):
    tools = [{"type": "function", "function": {"name": "search_documents", "parameters": {}}}]
    calls, problem = parse_text_tool_calls(text, tools)
    assert problem == ""
    assert calls is not None
    assert [(c.name, c.arguments) for c in calls] == [("search_documents", {"query": "x"})]


def test_plain_text_and_unknown_objects_are_answers_not_tool_calls():
    tools = [{"type": "function", "function": {"name": "search_documents", "parameters": {}}}]
    assert parse_text_tool_calls("The stage is II.", tools) == (None, "")
    assert parse_text_tool_calls('The value is {"stage": "II"}.', tools) == (None, "")
    calls, problem = parse_text_tool_calls('{"tool_calls": [{"name": "search"', tools)
    assert calls is None and "not valid JSON" in problem


def test_merged_roles_keeps_tool_turns_apart_and_folds_system_messages():
    call = ToolCall(id="c1", name="search_documents", arguments={}, raw_arguments="{}")
    conversation = [
        Message(role="system", content="A"),
        Message(role="user", content="B"),
        Message(role="assistant", content=None, tool_calls=(call,)),
        Message(role="tool", tool_call_id="c1", content="r1"),
        Message(role="tool", tool_call_id="c2", content="r2"),
        Message(role="user", content="C"),
        Message(role="user", content="D"),
    ]
    kept = merged_roles(conversation)
    assert [m.role for m in kept] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert kept[-1].content == "C\n\nD"
    folded = merged_roles(conversation, fold_system=True)
    assert [m.role for m in folded][:2] == ["user", "assistant"]
    assert folded[0].content == "A\n\nB"
    assert merged_roles([Message(role="system", content="only")], fold_system=True) == [
        Message(role="user", content="only")
    ]
    trailing = [Message(role="user", content="q"), Message(role="system", content="s")]
    assert merged_roles(trailing, fold_system=True) == [Message(role="user", content="q\n\ns")]


async def test_closing_a_model_closes_its_own_connections_and_leaves_a_given_client_open():
    from recordagent.llm import OpenAICompatModel
    from recordagent.settings import ModelSettings

    settings = ModelSettings(provider="openai", base_url="http://127.0.0.1:9/v1", model="m")
    given = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x")
    lent = OpenAICompatModel(settings, client=given)
    lent._resources()  # the connections of this loop, as a first call opens them
    await lent.close()
    assert not given.is_closed()
    owned = OpenAICompatModel(settings)
    client, _ = owned._resources()
    await owned.close()
    assert client.is_closed()
    await given.close()
