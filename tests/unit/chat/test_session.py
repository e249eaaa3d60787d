"""ChatSession: answers with citations, conversation context, /new, runners."""

from __future__ import annotations

import pytest

from recordagent.errors import UserError
from recordagent.llm.mock import MockModel
from recordagent.runners import TraceEvent
from tests.unit.chat.helpers import asct_script, final, make_session


async def test_a_question_streams_steps_and_keeps_a_turn_with_numbered_citations(store):
    session = make_session(store, asct_script())
    events: list[TraceEvent] = []
    turn = await session.ask("When was the ASCT?", on_event=events.append)
    assert turn.answer.status == "answered" and turn.answer.value == "2020-06-15"
    # LA2 was never shown to the model: the runner drops it; the rest are numbered.
    assert [s.label for s in turn.sources] == [
        "transplant Autologous stem cell transplantation 2020-06-15 (event EA3)",
        "outpatient visit note 2020-09-01 (chunk A-D3:0, ASSESSMENT)",
        "outpatient visit note 2020-09-01 (document A-D3)",
    ]
    assert [s.number for s in turn.sources] == [1, 2, 3]
    kinds = [e.kind for e in events]
    assert {"plan", "tool_call", "reflect"} <= set(kinds)
    assert session.last is turn and session.turns == [turn]


async def test_follow_ups_carry_the_conversation_and_new_starts_over(store):
    session = make_session(store, [*asct_script(), *asct_script(), *asct_script()])
    await session.ask("When was the ASCT?")
    follow_up = session.item_for("And what came after it?")
    assert follow_up.question.startswith("And what came after it?\n")
    assert "Q: When was the ASCT?" in follow_up.question
    assert "A (answered): answer 2020-06-15" in follow_up.question
    await session.ask("And what came after it?")
    session.new_conversation()
    assert session.item_for("Fresh question").question == "Fresh question"
    turn = await session.ask("Fresh question")
    assert turn.conversation == 2 and len(session.turns) == 3 and session.current == [turn]


async def test_the_runner_sees_the_earlier_turn(store):
    model = MockModel([*asct_script(), *asct_script()])
    session = make_session(store, [])
    session.model = model
    await session.ask("When was the ASCT?")
    await session.ask("Which drug was given?")
    plan_prompt = "\n".join(m.content or "" for m in model.requests[5].messages)
    assert "Which drug was given?" in plan_prompt and "Q: When was the ASCT?" in plan_prompt


async def test_runner_switch_and_unknown_runner(store):
    session = make_session(store, [final("2020-06-15", ["EA3"])])
    session.set_runner("single_pass_rag")
    turn = await session.ask("When was the ASCT?")
    assert turn.answer.runner == "single_pass_rag" and turn.answer.status == "answered"
    with pytest.raises(UserError, match="unknown runner 'nope'"):
        session.set_runner("nope")
    assert session.runner.name == "single_pass_rag"


async def test_a_model_error_is_a_failed_answer_not_a_crash(store):
    from recordagent.errors import ModelError

    def broken(request):
        raise ModelError("endpoint unreachable")

    session = make_session(store, broken)
    turn = await session.ask("When was the ASCT?")
    assert turn.answer.status == "failed" and "model error (ModelError" in turn.answer.text


def test_analytes_for_completion(store):
    assert "M-protein" in make_session(store, []).analytes()
