"""Model failures with causes, what failed calls spent, replies cut off at max_tokens, and the
completion tokens each kind of call may use — every runner, with the scripted mock model."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from recordagent.errors import ModelError, ModelFailure
from recordagent.evaluation.failures import shown_text
from recordagent.llm import Completion, Message, MockModel, MockRequest, Usage
from recordagent.records.scope import PatientScope
from recordagent.runners import AgentRunner, FullContext, IterativeRag, SinglePassRag
from recordagent.settings import Settings
from tests.helpers import asct_item, final

PLAN = {"json": {"needs": ["date of the ASCT"]}}
MET = {"json": {"needs": [{"need": "date of the ASCT", "status": "met", "evidence": ["EA3"]}]}}
ANSWER = final("2020-06-15", ["EA3"])


def spent(attempts: int = 1, prompt: int = 0, completion: int = 0, cost: float | None = None):
    """An empty completion carrying what a failed call spent (as the client attaches it)."""
    return Completion(
        message=Message(role="assistant"),
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost),
        attempts=attempts,
        model="served-model",
    )


def cut_off(text: str) -> Completion:
    """A reply the server stopped at max_tokens."""
    return Completion(
        message=Message(role="assistant", content=text),
        finish_reason="length",
        usage=Usage(prompt_tokens=900, completion_tokens=600),
        model="served-model",
    )


def failing(cause: ModelFailure, completion: Completion | None = None):
    def raise_(request: MockRequest):
        raise ModelError(
            f"the server said: Zanzibar quokka ({cause})", cause=cause, completion=completion
        )

    return raise_


@pytest.mark.parametrize("runner", [SinglePassRag, IterativeRag, FullContext, AgentRunner])
@pytest.mark.parametrize("cause", ["server_error", "timeout", "refused"])
async def test_a_model_error_fails_the_item_with_its_cause(scope_a, settings, runner, cause):
    model = MockModel(failing(cause, spent(attempts=3, prompt=700, cost=0.02)))
    answer = await runner(settings).run(asct_item(), scope_a, model)
    assert answer.status == "failed" and answer.value is None
    assert answer.failure == cause and "Zanzibar quokka" in (answer.failure_message or "")
    assert answer.details["model_error"] == "ModelError"
    assert answer.text.startswith("model error (ModelError): ")
    # The message is for the terminal only: it may quote the server or the record.
    logged = answer.model_dump_json()
    assert "failure_message" not in logged and "quokka" not in logged
    assert json.loads(logged)["failure"] == cause
    # What the failed call spent is counted, not lost: one call, three HTTP requests.
    assert (answer.usage.model_calls, answer.usage.requests) == (1, 3)
    assert answer.usage.prompt_tokens == 700 and answer.usage.cost_usd == pytest.approx(0.02)
    (error,) = [e for e in answer.trace if e.kind == "error"]
    assert (error.error, error.attempts, error.prompt_tokens, error.cost_usd) == (
        cause,
        3,
        700,
        0.02,
    )
    assert error.step in {"answer", "decide", "plan"} and error.duration_s >= 0


async def test_a_model_error_without_a_completion_counts_one_request(scope_a, settings):
    answer = await SinglePassRag(settings).run(
        asct_item(), scope_a, MockModel(failing("unreachable"))
    )
    assert answer.failure == "unreachable"
    assert (answer.usage.model_calls, answer.usage.requests, answer.usage.prompt_tokens) == (
        1,
        1,
        0,
    )


async def test_an_exhausted_script_is_unclassified(scope_a, settings):
    answer = await AgentRunner(settings).run(asct_item(), scope_a, MockModel([PLAN]))
    assert answer.status == "failed" and answer.failure == "unclassified"
    assert answer.trace[-1].kind == "error" and answer.trace[-1].error == "unclassified"


async def test_requests_count_retries_and_repairs_and_calls_count_calls(scope_a, settings):
    retried = Completion(
        message=Message(role="assistant", content=json.dumps(ANSWER["json"])),
        parsed=ANSWER["json"],
        usage=Usage(prompt_tokens=500, completion_tokens=40, cost_usd=0.001),
        attempts=3,
        model="served-model",
    )
    model = MockModel([retried])
    answer = await SinglePassRag(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered"
    assert (answer.usage.model_calls, answer.usage.requests) == (1, 3)
    call = next(e for e in answer.trace if e.kind == "model_call")
    assert (call.step, call.attempts, call.cost_usd) == ("answer", 3, 0.001)


async def test_every_unit_of_work_has_its_step(scope_a, settings):
    model = MockModel(
        [
            PLAN,
            {"tool_calls": [("get_timeline", {"kinds": ["transplant"]})]},
            {"tool_calls": [("finish", {"reason": "found"})]},
            MET,
            ANSWER,
        ]
    )
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    steps = [(e.kind, e.name, e.step) for e in answer.trace if e.step is not None]
    assert steps == [
        ("context", "skeleton", "skeleton"),
        ("model_call", "plan", "plan"),
        ("model_call", "act 1", "act"),
        ("tool_call", "get_timeline", "tool"),
        ("model_call", "act 2", "act"),
        ("model_call", "reflect", "reflect"),
        ("model_call", "answer", "answer"),
    ]
    calls = [e for e in answer.trace if e.kind == "model_call"]
    assert all(e.attempts == 1 and e.cost_usd is None for e in calls)
    assert answer.usage.requests == answer.usage.model_calls == 5
    # The baselines' record work has its step too.
    rag = await IterativeRag(settings).run(
        asct_item(), scope_a, MockModel([{"json": {"action": "answer", "answer": ANSWER["json"]}}])
    )
    assert [(e.name, e.step) for e in rag.trace if e.step] == [
        ("round 1", "retrieve"),
        ("decide 1", "decide"),
    ]
    full = await FullContext(settings).run(asct_item(), scope_a, MockModel([ANSWER]))
    assert [(e.name, e.step) for e in full.trace if e.step] == [
        ("pack", "pack"),
        ("answer", "answer"),
    ]


# --- replies cut off at max_tokens -------------------------------------------------------------


def _agent_script(plan, reflection, answer):
    def script(request: MockRequest):
        if request.schema_name == "Plan":
            return plan
        if request.schema_name == "Reflection":
            return reflection
        if request.schema_name == "FinalAnswer":
            return answer
        done = any(m.role == "tool" for m in request.messages)
        return {"tool_calls": [("finish", {})] if done else [("get_timeline", {})]}

    return script


async def test_a_plan_cut_off_at_max_tokens_falls_back_like_an_unparsed_one(scope_a, settings):
    plan = cut_off('{"needs": ["date of the ASCT", "date of the ASCT", "date of the AS')
    answer = await AgentRunner(settings).run(
        asct_item(), scope_a, MockModel(_agent_script(plan, MET, ANSWER))
    )
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    assert answer.failure is None
    errors = [(e.name, e.error) for e in answer.trace if e.kind == "error"]
    assert errors == [("plan", "output_length"), ("plan", "plan_unparsed")]
    # The cut-off call's tokens count like any other.
    plan_call = next(e for e in answer.trace if e.name == "plan" and e.kind == "error")
    assert (plan_call.step, plan_call.prompt_tokens, plan_call.completion_tokens) == (
        "plan",
        900,
        600,
    )
    assert answer.usage.completion_tokens >= 600


async def test_a_cut_off_the_client_raises_falls_back_the_same_way(scope_a, settings):
    def script(request: MockRequest):
        if request.schema_name in {"Plan", "Reflection"}:
            raise ModelError("cut off", cause="output_length", completion=spent(prompt=50))
        return _agent_script(PLAN, MET, ANSWER)(request)

    answer = await AgentRunner(settings).run(asct_item(), scope_a, MockModel(script))
    assert answer.status == "answered" and answer.details["stop"] == "reflected"
    errors = [(e.name, e.error) for e in answer.trace if e.kind == "error"]
    assert errors == [
        ("plan", "output_length"),
        ("plan", "plan_unparsed"),
        ("reflect", "output_length"),
        ("reflect", "reflection_unparsed"),
    ]


async def test_a_reflection_cut_off_ends_the_loop_instead_of_the_run(scope_a, settings):
    reflection = cut_off('{"needs": [{"need": "date of the ASCT", "status": "open", "evid')
    answer = await AgentRunner(settings).run(
        asct_item(), scope_a, MockModel(_agent_script(PLAN, reflection, ANSWER))
    )
    assert answer.status == "answered" and answer.details["stop"] == "reflected"


async def test_a_tool_loop_reply_cut_off_goes_on_to_reflection(scope_a, settings):
    def script(request: MockRequest):
        if request.tools:
            return cut_off("Let me think about the transplant. The transplant was")
        return _agent_script(PLAN, MET, ANSWER)(request)

    answer = await AgentRunner(settings).run(asct_item(), scope_a, MockModel(script))
    assert answer.status == "answered"
    assert ("act 1", "output_length") in [(e.name, e.error) for e in answer.trace]
    # A raised cut-off (a server without native tool calls) goes the same way.

    def raising(request: MockRequest):
        if request.tools:
            raise ModelError("cut off", cause="output_length", completion=spent(attempts=2))
        return _agent_script(PLAN, MET, ANSWER)(request)

    answer = await AgentRunner(settings).run(asct_item(), scope_a, MockModel(raising))
    assert answer.status == "answered" and answer.details["steps"] == 1


@pytest.mark.parametrize("runner", [SinglePassRag, FullContext, IterativeRag])
async def test_a_final_answer_cut_off_fails_with_output_length(scope_a, settings, runner):
    cut = cut_off('{"status": "answered", "value": "2020-06-15", "text": "The transplant wa')
    if runner is IterativeRag:
        # The decision is cut off first (it falls back to answering now), then the answer.
        model = MockModel([cut, cut])
    else:
        model = MockModel([cut])
    answer = await runner(settings).run(asct_item(), scope_a, model)
    assert answer.status == "failed" and answer.failure == "output_length"
    assert answer.value is None and "cut off at max_tokens" in answer.text
    assert answer.usage.completion_tokens == 600 * len(model.requests)
    if runner is FullContext:
        # The runner's details survive the failure.
        assert answer.details["documents_total"] == 4 and answer.details["model_error"]
    if runner is IterativeRag:
        assert [e.error for e in answer.trace if e.kind == "error"] == [
            "output_length",
            "decision_unparsed",
            "output_length",
        ]


async def test_the_agents_final_answer_cut_off_keeps_the_runs_details(scope_a, settings):
    cut = cut_off('{"status": "answered", "value": "2020-06-15", "citations": ["EA3", "EA3", "EA')
    answer = await AgentRunner(settings).run(
        asct_item(), scope_a, MockModel(_agent_script(PLAN, MET, cut))
    )
    assert answer.status == "failed" and answer.failure == "output_length"
    assert answer.details["stop"] == "reflected" and answer.details["steps"] == 2


# --- completion tokens per kind of call ------------------------------------------------------


async def test_steps_get_max_step_tokens_and_the_final_answer_max_answer_tokens(scope_a):
    settings = Settings(runners={"max_step_tokens": 321, "max_answer_tokens": 987})
    model = MockModel(_agent_script(PLAN, MET, ANSWER))
    await AgentRunner(settings).run(asct_item(), scope_a, model)
    limits = [(r.schema_name, r.params["max_tokens"]) for r in model.requests]
    assert limits == [
        ("Plan", 321),
        (None, 321),
        (None, 321),
        ("Reflection", 321),
        ("FinalAnswer", 987),
    ]
    model = MockModel([{"json": {"action": "search", "query": "melphalan"}}, ANSWER, ANSWER])
    settings = Settings(
        runners={
            "max_step_tokens": 321,
            "max_answer_tokens": 987,
            "iterative_rag": {"max_rounds": 1},
        }
    )
    await IterativeRag(settings).run(asct_item(), scope_a, model)
    assert [(r.schema_name, r.params["max_tokens"]) for r in model.requests] == [
        ("IterativeStep", 321),
        ("FinalAnswer", 987),
    ]
    for runner in (SinglePassRag, FullContext):
        model = MockModel([ANSWER])
        await runner(settings).run(asct_item(), scope_a, model)
        assert model.requests[0].params == {"temperature": 0.0, "max_tokens": 987}


async def test_a_runs_failure_is_reported_only_for_its_item(scope_a: PatientScope, settings):
    # A failure leaves the runner usable: the next item answers normally.
    runner = SinglePassRag(settings)
    failed = await runner.run(asct_item(), scope_a, MockModel(failing("rate_limited")))
    answered = await runner.run(asct_item(), scope_a, MockModel([ANSWER]))
    assert failed.failure == "rate_limited"
    assert answered.failure is None and answered.failure_message is None
    assert answered.status == "answered"


async def test_a_final_answer_that_never_parses_is_invalid_output(scope_a, settings):
    answer = await SinglePassRag(settings).run(asct_item(), scope_a, MockModel(["June 2020"]))
    assert answer.status == "failed" and answer.failure == "invalid_output"

    # After a budget stop the same reply is 'truncated': the budget, not the model, ended it.
    def script(request: MockRequest):
        return (
            "June 2020"
            if request.schema_name == "FinalAnswer"
            else _agent_script(PLAN, MET, ANSWER)(request)
        )

    tight = Settings(runners={"agent": {"max_steps": 1}})
    answer = await AgentRunner(tight).run(asct_item(), scope_a, MockModel(script))
    assert answer.status == "truncated" and answer.failure is None


async def test_an_unusable_final_answer_is_shown_as_a_labelled_excerpt_not_hidden(
    scope_a: PatientScope,
):
    raw = "Sure! The stem cell transplant was done in June 2020, I think. " * 10
    answer = await SinglePassRag(Settings()).run(asct_item(), scope_a, MockModel([raw]))
    assert answer.status == "failed" and answer.failure == "invalid_output"
    shown = shown_text(answer)
    assert shown.startswith("model output, not a valid answer (")
    assert len(shown) < len(raw)
