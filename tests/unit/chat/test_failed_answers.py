"""The session on failed and truncated answers: one line with the cause, never a raw dump."""

from __future__ import annotations

from typing import Any

from recordagent.chat import Turn, session_markdown
from recordagent.chat.loop import ask_cancellable
from recordagent.chat.render import render_answer
from recordagent.errors import ModelError
from recordagent.evaluation.failures import FAILURE_ADVICE
from recordagent.runners import Answer, TraceEvent
from tests.unit.chat.helpers import make_session, output, recording_console

OVERFLOW = "the prompt (9,120 tokens) does not fit the model's window (8,192)"
RAW = "Let me think step by step about this record. " + "hmm " * 3000
UNPARSED = TraceEvent(seq=0, kind="error", name="answer", started_s=0.1, error="answer_unparsed")


def turn(status: str, **fields: Any) -> Turn:
    answer = Answer(
        item_id="chat/1",
        runner="agent",
        prompt_version="1",
        model="local",
        mock=False,
        status=status,
        **fields,
    )
    return Turn(conversation=1, question="When was the ASCT?", answer=answer, sources=[])


def shown(rendered: Any) -> str:
    console = recording_console()
    console.print(rendered)
    return output(console)


def test_a_failed_answer_shows_its_cause_and_message_in_one_line():
    failed = turn(
        "failed",
        failure="context_overflow",
        failure_message=OVERFLOW,
        text="model error (ModelError): no usable answer from the model",
        details={"model_error": "ModelError"},
    )
    text = shown(render_answer(failed))
    assert f"failed: context_overflow — {OVERFLOW}" in text
    assert "no usable answer" not in text


def test_a_failed_answers_raw_output_is_a_short_labelled_excerpt():
    text = shown(render_answer(turn("failed", text=RAW, trace=[UNPARSED])))
    assert f"failed: invalid_output — {FAILURE_ADVICE['invalid_output']}" in " ".join(text.split())
    assert f"model output, not a valid answer ({len(RAW):,} characters)" in text
    assert "hmm " * 40 not in text and len(text) < 1_000


def test_a_truncated_answer_keeps_its_value_and_says_a_budget_ended_it():
    budget = TraceEvent(seq=0, kind="budget", name="rounds", started_s=1.0, summary="4 round(s)")
    truncated = turn("truncated", value="2020-06-15", text="June 2020", trace=[budget])
    text = " ".join(shown(render_answer(truncated)).split())
    assert 'value: "2020-06-15"' in text and "June 2020" in text
    assert "truncated: a budget ended the run before the model was done (rounds: 4 round(s))" in (
        text
    )


def test_the_export_of_a_failed_answer_has_its_cause_and_no_raw_output(store):
    session = make_session(store, [])
    session.turns.append(turn("failed", text=RAW, trace=[UNPARSED]))
    session.turns.append(turn("failed", failure="timeout", failure_message="no answer in 60 s"))
    markdown = session_markdown(session)
    assert "> failed: invalid_output — " in markdown
    assert "> failed: timeout — no answer in 60 s" in markdown
    assert "hmm " * 40 not in markdown


def test_a_failed_answers_output_is_not_handed_on_as_context(store):
    session = make_session(store, [])
    session.turns.append(turn("failed", text=RAW, trace=[UNPARSED]))
    follow_up = session.item_for("And the second line?").question
    assert "A (failed): -" in follow_up and "step by step" not in follow_up


async def test_a_model_error_in_the_session_is_one_line_with_its_cause(store):
    def overflowing(request):
        raise ModelError(OVERFLOW, cause="context_overflow")

    session = make_session(store, overflowing, runner="full_context")
    console = recording_console()
    asked = await ask_cancellable(session, "When was the ASCT?", console)
    assert asked is not None and asked.answer.failure == "context_overflow"
    assert f"failed: context_overflow — {OVERFLOW}" in " ".join(output(console).split())
