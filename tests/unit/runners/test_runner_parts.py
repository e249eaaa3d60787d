"""EvidenceBook, Tracer accounting, the registry, and the agent's recursion limit."""

from __future__ import annotations

import pytest

from recordagent.errors import UserError
from recordagent.llm import Completion, Message, MockModel, Usage, count_request_tokens
from recordagent.records.tokens import Tokenizer
from recordagent.runners import RUNNER_NAMES, EvidenceBook, Runner, build_runner
from recordagent.runners.agent.graph import recursion_limit
from recordagent.runners.trace import Tracer
from recordagent.settings import AgentSettings, Settings
from recordagent.tools import SourceRef


def test_the_book_resolves_only_ids_it_was_shown():
    book = EvidenceBook()
    book.add([SourceRef(kind="chunk", id="D-1:2", document_id="D-1")])
    book.add_group("LABS-hb-1", [SourceRef(kind="lab", id="L1"), SourceRef(kind="lab", id="L2")])
    refs, unknown = book.resolve(["[D-1:2]", " D-1 ", "'LABS-hb-1'", "D-2:0", "L1", "D-1:2"])
    assert [(r.kind, r.id) for r in refs] == [
        ("chunk", "D-1:2"),
        ("document", "D-1"),
        ("lab", "L1"),
        ("lab", "L2"),
    ]
    # L1 was only shown inside its passage (lab passages print no row ids): not citable alone.
    assert unknown == ["D-2:0", "L1"]
    assert "D-1" in book and "D-9" not in book and len(book) == 3


async def test_the_tracer_counts_tokens_locally_when_the_model_reports_none():
    tokenizer = Tokenizer()
    events = []
    tracer = Tracer(tokenizer, events.append)
    messages = [Message(role="user", content="When was the ASCT?")]
    await tracer.complete(MockModel(["On 2020-06-15."]), messages, name="answer")
    assert tracer.usage.prompt_tokens == count_request_tokens(tokenizer, messages)
    assert tracer.usage.completion_tokens == tokenizer.count("On 2020-06-15.")
    assert not tracer.usage.tokens_reported and tracer.mock
    reported = Completion(
        message=Message(role="assistant", content="x"),
        usage=Usage(prompt_tokens=100, completion_tokens=5, cost_usd=0.25),
        model="m",
    )
    tracer = Tracer(tokenizer)
    for _ in range(2):
        await tracer.complete(MockModel([reported, reported]), messages, name="a")
    usage = tracer.finish_usage()
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cost_usd) == (200, 10, 0.5)
    assert usage.model_calls == 2 and usage.max_prompt_tokens == 100 and usage.wall_s > 0
    assert [e.kind for e in events] == ["model_call"]


def test_every_registered_runner_satisfies_the_protocol():
    settings = Settings()
    for name in RUNNER_NAMES:
        runner = build_runner(name, settings)
        assert isinstance(runner, Runner) and runner.name == name and runner.prompt_version
    with pytest.raises(UserError, match="unknown runner 'rag'; runners: agent, single_pass_rag"):
        build_runner("rag", settings)


def test_the_recursion_limit_leaves_room_for_every_budgeted_step():
    budget = AgentSettings(max_steps=12, max_replans=2)
    # skeleton + plan + 12 × (act + tools) + 3 reflections + act at the budget + answer
    assert recursion_limit(budget) > 2 + 2 * 12 + 3 + 2


def test_the_token_memo_counts_like_a_fresh_count():
    tokenizer = Tokenizer()
    memo: dict = {}
    conversation = [
        Message(role="system", content="You answer."),
        Message(role="user", content="Q"),
    ]
    for k in range(3):
        conversation = [*conversation, Message(role="tool", tool_call_id=f"c{k}", content="x " * k)]
        assert count_request_tokens(tokenizer, conversation, memo=memo) == count_request_tokens(
            tokenizer, conversation
        )
    assert len(memo) == 5


def test_entry_tokens_share_out_the_joined_count():
    from recordagent.runners.passages import entry_tokens

    tokenizer = Tokenizer()
    entries = [f"2020-0{k % 9 + 1}-0{k % 9 + 1} {k * 0.7:g} g/dL" for k in range(200)]
    costs = entry_tokens(tokenizer, entries)
    exact = tokenizer.count("; ".join(entries))
    assert len(costs) == 200 and abs(sum(costs) - exact) <= 0.05 * exact
    assert entry_tokens(tokenizer, []) == []
