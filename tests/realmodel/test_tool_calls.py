"""Tool calls over the real server: natively through its Jinja chat template, and in the prompt.

The session's server renders tools with a ChatML template that has them (SmolLM2 speaks
ChatML; its own template shows no tools). A 135M model rarely calls a tool well, so the tests
ask only that requests with tools go through and that the agent's trace shows tool calls or a
documented stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from tools.local_llm import LocalServer

from recordagent.errors import ModelError
from recordagent.llm import Completion, Message, count_request_tokens
from recordagent.llm.client import tools_instruction
from recordagent.llm.openai_compat import OpenAICompatModel
from recordagent.records.tokens import Tokenizer
from recordagent.settings import ModelSettings
from recordagent.tools import default_registry
from tests.realmodel.conftest import (
    STATUSES,
    THREADS,
    TIMEOUT_S,
    Answers,
    RealModel,
    RunResult,
    Wire,
)

pytestmark = pytest.mark.realmodel

DOCUMENTED_STOPS = {"budget", "answer", "error"}


def _tool_requests(result: RunResult) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(sent, received) for sent, received in result.exchanges if sent.get("tools")]


def _shows_tool_calls_or_a_documented_stop(result: RunResult) -> None:
    answer = result.answer
    assert answer.status in STATUSES
    kinds = [event.kind for event in answer.trace]
    act_calls = [e for e in answer.trace if e.kind == "model_call" and e.step == "act"]
    acted = any(kind == "tool_call" for kind in kinds) or bool(act_calls)
    stopped = any(kind in DOCUMENTED_STOPS for kind in kinds)
    assert acted or stopped, kinds
    if acted:
        assert answer.usage.tool_calls == kinds.count("tool_call")


def test_the_agent_sends_native_tools_that_the_servers_template_renders(
    answers: Answers,
) -> None:
    result = answers.get("agent")
    assert any(sent.get("tools") for sent in result.sent), "the agent sent no tools"
    sent = _tool_requests(result)
    assert sent, "no request with tools came back from the server"
    names = {tool["function"]["name"] for tool in sent[0][0]["tools"]}
    assert {"search_documents", "query_labs", "get_timeline"} <= names
    tokenizer = Tokenizer(ModelSettings().encoding)
    for request, received in sent:
        assert "choices" in received, received  # the server took the tools (no 4xx)
        # The template rendered the schemas: the server's prompt count holds them. Dropped,
        # it would be about 1.2x the messages' local count (SmolLM2 against cl100k).
        messages = count_request_tokens(
            tokenizer,
            [Message(role=m["role"], content=m.get("content")) for m in request["messages"]],
        )
        schemas = count_request_tokens(tokenizer, [], request["tools"]) - count_request_tokens(
            tokenizer, []
        )
        floor = 1.3 * messages + 0.5 * schemas
        assert received["usage"]["prompt_tokens"] > floor, (received["usage"], messages, schemas)
        calls = received["choices"][0]["message"].get("tool_calls") or []
        for call in calls:
            assert call["function"]["name"]  # parsed by the server from <tool_call> text
    _shows_tool_calls_or_a_documented_stop(result)


def test_the_agent_puts_tools_into_the_prompt_when_native_tools_are_off(
    answers: Answers,
) -> None:
    result = answers.get("agent", "prompt_tools", supports_tools=False)
    assert result.exchanges, "no request came back from the server"
    # Nothing went as native tools; the tool list went into a system message instead.
    assert not any(sent.get("tools") for sent in result.sent)
    instruction = tools_instruction([]).split("[")[0]  # the words before the tool list
    prompted = [
        sent
        for sent, _ in result.exchanges
        if any(instruction in str(m.get("content") or "") for m in sent["messages"])
    ]
    assert prompted, "no request carried the tools in its prompt"
    for _, received in result.exchanges:
        assert "choices" in received, received
    _shows_tool_calls_or_a_documented_stop(result)


@pytest.fixture(scope="module")
def no_jinja_server(
    real_model: RealModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """A second, small server without the Jinja engine: it refuses requests with tools."""
    server = LocalServer(
        real_model.server.binary,
        real_model.server.model,
        ctx_size=4_096,
        parallel=1,
        jinja=False,
        threads=THREADS,
        log_path=tmp_path_factory.mktemp("no_jinja") / "server.log",
    )
    with server:
        yield server


def test_a_server_that_refuses_tools_gets_them_again_in_the_prompt(
    no_jinja_server: LocalServer,
) -> None:
    wire = Wire()
    timeline = next(
        t for t in default_registry().schemas() if t["function"]["name"] == "get_timeline"
    )
    messages = [
        Message(role="system", content="Answer questions about the patient's record."),
        Message(role="user", content="Which therapies did the patient receive?"),
    ]

    async def ask() -> Completion | ModelError:
        settings = ModelSettings(
            provider="openai",
            base_url=no_jinja_server.base_url,
            model=no_jinja_server.alias,
            timeout_s=TIMEOUT_S,
            max_retries=1,
            backoff_base_s=0.2,
            context_window=no_jinja_server.slot_context,
        )
        async with OpenAICompatModel(settings, client=wire.client(settings.base_url)) as model:
            try:
                return await model.complete(
                    messages, tools=[timeline], temperature=0.0, max_tokens=128
                )
            except ModelError as exc:  # a small model may ramble past max_tokens
                return exc

    outcome = asyncio.run(ask())
    # llama-server without --jinja answers a request with tools with an error (HTTP 500,
    # "tools param requires --jinja flag"); the client sends it again with the tools in the
    # prompt, and that one is answered.
    assert wire.sent[0].get("tools")
    assert not wire.sent[-1].get("tools")
    instruction = tools_instruction([]).split("[")[0]
    assert any(instruction in str(m.get("content") or "") for m in wire.sent[-1]["messages"])
    (_, refusal), *_, (_, answer) = wire.exchanges
    assert "--jinja" in refusal["error"]["message"]
    assert "choices" in answer
    if isinstance(outcome, ModelError):  # the documented stop of a reply cut off mid-call
        assert outcome.cause == "output_length", outcome
        outcome = outcome.completion
    assert isinstance(outcome, Completion)
    assert outcome.usage.reported and outcome.model == no_jinja_server.alias
