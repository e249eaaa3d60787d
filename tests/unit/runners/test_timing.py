"""Steps, error kinds and where the time went: the tracer's per-step events and time_by_step."""

from __future__ import annotations

import pytest

from recordagent.errors import MODEL_FAILURES, ModelError, StructuredOutputError
from recordagent.llm import Completion, Message, MockModel, Usage
from recordagent.records.tokens import Tokenizer
from recordagent.runners import Answer, AnswerUsage, TraceEvent, time_by_step
from recordagent.runners.timing import OTHER_STEP, event_step
from recordagent.runners.trace import ERROR_KINDS, Tracer, error_kind, step_kind


def test_a_steps_kind_is_its_name_without_the_number():
    assert [step_kind(n) for n in ("act 3", "decide 12", "plan", "answer", "round 1")] == [
        "act",
        "decide",
        "plan",
        "answer",
        "round",
    ]


def test_a_model_errors_kind_is_its_cause():
    assert set(MODEL_FAILURES) <= ERROR_KINDS
    assert error_kind(ModelError("quokka", cause="timeout")) == "timeout"
    assert error_kind(StructuredOutputError("quokka", None)) == "invalid_output"
    assert error_kind(ModelError("quokka")) == "unclassified"
    assert error_kind(ValueError("quokka")) == "ValueError"
    assert error_kind("context_overflow") == "context_overflow"


def _event(seq: int, kind: str, name: str, duration: float, **fields) -> TraceEvent:
    return TraceEvent(seq=seq, kind=kind, name=name, started_s=0.0, duration_s=duration, **fields)


def _answer(wall: float, *events: TraceEvent) -> Answer:
    return Answer(
        item_id="i",
        runner="agent",
        prompt_version="p",
        model="m",
        mock=False,
        status="answered",
        trace=list(events),
        usage=AnswerUsage(wall_s=wall),
    )


def test_time_by_step_sums_calls_requests_tokens_and_seconds_per_step():
    call = {"prompt_tokens": 100, "completion_tokens": 10, "attempts": 1, "cost_usd": 0.01}
    first = _answer(
        10.0,
        _event(0, "context", "skeleton", 0.5, step="skeleton"),
        _event(1, "model_call", "plan", 2.0, step="plan", **call),
        _event(2, "model_call", "act 1", 1.0, step="act", **call),
        _event(3, "tool_call", "get_timeline", 0.5, step="tool"),
        _event(4, "model_call", "act 2", 3.0, step="act", **(call | {"attempts": 3})),
        _event(5, "plan", "plan", 0.0),  # no step: not a unit of work
        _event(6, "error", "answer", 2.0, step="answer", error="timeout", attempts=1),
    )
    second = _answer(
        4.0,
        _event(0, "model_call", "plan", 1.0, step="plan", **call),
        _event(1, "budget", "act 1", 3.0, step="act", attempts=1),
    )
    rows = {r.step: r for r in time_by_step([first, second])}
    assert list(rows) == ["skeleton", "plan", "act", "tool", "answer", OTHER_STEP]
    act = rows["act"]
    assert (act.items, act.calls, act.requests, act.prompt_tokens) == (2, 3, 5, 200)
    assert act.seconds == 7.0 and act.median_item_s == 3.5 and act.wall_share == 0.5
    assert act.cost_usd == pytest.approx(0.02) and act.model
    assert rows["answer"].requests == 1 and rows["answer"].completion_tokens == 0
    tool = rows["tool"]
    assert not tool.model and tool.requests == 0 and tool.seconds == 0.5
    # Wall time no step accounts for: 10 - 9 and 4 - 4.
    other = rows[OTHER_STEP]
    assert other.seconds == pytest.approx(1.0) and other.items == 1 and other.calls == 0
    assert sum(r.wall_share for r in rows.values()) == pytest.approx(1.0)
    assert time_by_step([]) == []


def test_events_logged_before_steps_get_theirs_from_kind_and_name():
    assert event_step(_event(0, "model_call", "act 4", 1.0)) == "act"
    assert event_step(_event(0, "retrieval", "round 2", 1.0)) == "retrieve"
    assert event_step(_event(0, "context", "pack", 1.0)) == "pack"
    assert event_step(_event(0, "tool_call", "query_labs", 1.0)) == "tool"
    assert event_step(_event(0, "tool_call", "finish", 0.0)) is None
    assert event_step(_event(0, "error", "plan", 0.0, error="plan_unparsed")) is None
    (row,) = time_by_step([_answer(1.0, _event(0, "model_call", "decide 1", 1.0))])
    assert (row.step, row.requests) == ("decide", 1)


async def test_a_structured_reply_cut_off_at_max_tokens_is_an_output_length_error():
    from pydantic import BaseModel

    class Shape(BaseModel):
        x: int

    cut = Completion(
        message=Message(role="assistant", content='{"x": 1'),
        finish_reason="length",
        usage=Usage(prompt_tokens=40, completion_tokens=16),
        attempts=1,
        model="m",
    )
    tracer = Tracer(Tokenizer())
    messages = [Message(role="user", content="x?")]
    with pytest.raises(ModelError) as caught:
        await tracer.complete(MockModel([cut]), messages, name="plan", response_format=Shape)
    assert caught.value.cause == "output_length" and caught.value.completion is not None
    (event,) = tracer.events
    assert (event.kind, event.step, event.error, event.completion_tokens) == (
        "error",
        "plan",
        "output_length",
        16,
    )
    assert tracer.usage.completion_tokens == 16 and tracer.usage.requests == 1
    # Text cut off (no schema) comes back, marked in the trace.
    tracer = Tracer(Tokenizer())
    text = cut.model_copy(update={"message": Message(role="assistant", content="The ASCT wa")})
    completion = await tracer.complete(MockModel([text]), messages, name="act 1")
    assert completion.text == "The ASCT wa"
    assert [(e.kind, e.error) for e in tracer.events] == [
        ("error", "output_length"),
        ("model_call", None),
    ]
