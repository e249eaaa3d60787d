"""Why answers failed, in words: causes, one-line notes, excerpts, and a study's closing message."""

from __future__ import annotations

from typing import Any

import pytest

from recordagent.errors import MODEL_FAILURES
from recordagent.evaluation.failures import (
    EXCERPT_CHARS,
    FAILURE_ADVICE,
    answer_failure,
    failure_line,
    run_failures,
    shown_text,
    truncation_line,
)
from recordagent.evaluation.log import ItemError, RunRecord
from recordagent.evaluation.study import StudyFailures, study_failures
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.runners import Answer, TraceEvent

OVERFLOW = (
    "the prompt (9,120 tokens) does not fit the model's window (8,192); lower "
    "runners.full_context.window_tokens or set model.context_window"
)
RAW = "Sure! Here is what I found in the record:\n\n" + "The patient was diagnosed " * 200


def answer(status: str = "failed", **fields: Any) -> Answer:
    return Answer(
        item_id=fields.pop("item_id", "q1"),
        runner=fields.pop("runner", "full_context"),
        prompt_version="1",
        model="local",
        mock=False,
        status=status,
        **fields,
    )


def error_event(name: str, kind: str) -> TraceEvent:
    return TraceEvent(seq=0, kind="error", name=name, started_s=0.0, error=kind)


def record(item_id: str, result: Answer, error: ItemError | None = None) -> RunRecord:
    item = EvalItem(id=item_id, patient_id="P", question="When?", answer=AnswerSpec(type="date"))
    return RunRecord(
        item=item,
        answer=result.model_copy(update={"item_id": item_id}),
        record_tokens=100,
        record_documents=1,
        error=error,
    )


def test_every_failure_cause_has_one_line_of_advice():
    assert set(FAILURE_ADVICE) == set(MODEL_FAILURES)
    for cause, advice in FAILURE_ADVICE.items():
        assert advice and "\n" not in advice and not advice.endswith("."), cause


def test_only_connection_failures_ask_whether_the_endpoint_is_reachable():
    asking = {cause for cause, advice in FAILURE_ADVICE.items() if "reachable" in advice}
    assert asking == {"unreachable", "timeout"}
    assert "model.context_window" in FAILURE_ADVICE["context_overflow"]
    assert "runners.max_answer_tokens" in FAILURE_ADVICE["output_length"]


def test_a_failed_answer_is_one_line_with_its_cause_and_the_model_errors_words():
    failed = answer(failure="context_overflow", failure_message=OVERFLOW)
    assert failure_line(failed) == f"failed: context_overflow — {OVERFLOW}"


def test_without_the_words_the_line_says_what_the_cause_means():
    # A run log keeps the cause, never the message.
    failed = Answer.model_validate_json(
        answer(failure="unreachable", failure_message="secret").model_dump_json()
    )
    assert failed.failure_message is None
    assert failure_line(failed) == f"failed: unreachable — {FAILURE_ADVICE['unreachable']}"


def test_a_long_or_multi_line_message_stays_one_short_line():
    failed = answer(failure="server_error", failure_message="HTTP 500:\n" + "x " * 1000)
    line = failure_line(failed)
    assert line is not None and "\n" not in line and len(line) < 500 and line.endswith("…")


@pytest.mark.parametrize("status", ["answered", "insufficient_evidence", "truncated"])
def test_answers_that_did_not_fail_have_no_failure_line(status: str):
    assert answer_failure(answer(status)) is None and failure_line(answer(status)) is None


def test_a_final_answer_that_did_not_parse_failed_with_invalid_output():
    failed = answer(text=RAW, trace=[error_event("answer", "answer_unparsed")])
    assert answer_failure(failed) == "invalid_output"
    line = failure_line(failed)
    assert line is not None and line.startswith("failed: invalid_output — ")


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("ModelError, HTTP 503", "server_error"),
        ("ModelError, HTTP 429", "rate_limited"),
        ("ModelError, HTTP 400", "refused"),
        ("ModelError, APIConnectionError", "unreachable"),
        ("ModelError, APITimeoutError", "timeout"),
        ("MockScriptExhausted", "unclassified"),
    ],
)
def test_logs_written_before_causes_were_kept_are_read_as_far_as_they_say(kind: str, cause: str):
    old = answer(text="model error: no usable answer", details={"model_error": kind})
    assert answer_failure(old) == cause


def test_a_failed_answers_raw_model_output_is_only_a_short_labelled_excerpt():
    failed = answer(text=RAW, trace=[error_event("answer", "answer_unparsed")])
    shown = shown_text(failed)
    assert shown.startswith(f"model output, not a valid answer ({len(RAW):,} characters): Sure!")
    assert "\n" not in shown and len(shown) < EXCERPT_CHARS + 80 and shown.endswith("…")


def test_a_model_errors_answer_shows_no_text_the_failure_line_says_it_all():
    timed_out = answer(
        failure="timeout",
        text="model error (ModelError): no answer",
        details={"model_error": "ModelError"},
    )
    assert shown_text(timed_out) == ""
    legacy = answer(text="model error (ModelError, HTTP 503)", details={"model_error": "x"})
    assert shown_text(legacy) == ""


def test_a_given_answers_text_is_shown_whole():
    text = "Diagnosed on 2020-01-05.\nSee the discharge letter. " * 20
    assert shown_text(answer("answered", text=text)) == text


def test_a_truncated_answer_says_which_budget_ended_it_and_keeps_its_value():
    budget = TraceEvent(
        seq=3, kind="budget", name="act", started_s=1.0, summary="budget:steps: answering now"
    )
    truncated = answer("truncated", value="2020-01-05", text="best so far", trace=[budget])
    assert truncation_line(truncated) == (
        "truncated: a budget ended the run before the model was done (act: budget:steps: "
        "answering now); the value is the best answer so far"
    )
    assert shown_text(truncated) == "best so far"
    empty = answer("truncated", text=RAW, trace=[error_event("answer", "answer_unparsed")])
    note = truncation_line(empty)
    assert note is not None and note.endswith("no value was reached")
    assert shown_text(empty).startswith("model output, not a valid answer")
    assert truncation_line(answer("answered")) is None


def test_a_runs_failures_are_counted_by_cause_the_most_frequent_first():
    records = [
        record("q1", answer(failure="context_overflow", failure_message=OVERFLOW)),
        record("q2", answer(failure="context_overflow")),
        record("q3", answer(failure="timeout")),
        record("q4", answer("answered", value="2020-01-05")),
        record("q5", answer(), error=ItemError(kind="ZeroDivisionError")),
    ]
    failures = run_failures("full_context", records)
    assert failures.causes == (("context_overflow", 2), ("timeout", 1))
    assert failures.by_error == 1 and failures.failed == 4 and not failures.all_failed
    assert failures.examples == {"context_overflow": OVERFLOW}
    assert failures.line() == (
        "full_context: 4 of 5 failed — context_overflow 2, timeout 1, unexpected error (a bug) 1"
    )


class FakeLog:
    """What study_failures reads of a RunLog: the runner's name and the records."""

    def __init__(self, runner: str, records: list[RunRecord]) -> None:
        self.manifest = type("Manifest", (), {"runner": runner})()
        self.records = records


def test_a_study_whose_runner_failed_every_answer_names_the_cause_and_what_to_do():
    full = [
        record(f"q{n}", answer(failure="context_overflow", failure_message=OVERFLOW))
        for n in range(10)
    ]
    agent = [
        record(f"q{n}", answer("answered", runner="agent", value="2020-01-05")) for n in range(10)
    ]
    failures = study_failures([FakeLog("full_context", full), FakeLog("agent", agent)])
    assert failures.all_failed == ["full_context"]
    assert failures.message().splitlines() == [
        "every answer of full_context failed:",
        "  full_context: 10 of 10 failed — context_overflow 10",
        f"  context_overflow: {FAILURE_ADVICE['context_overflow']}",
        f"    first: {OVERFLOW}",
    ]
    assert "reachable" not in failures.message()


def test_a_study_with_some_failed_answers_counts_them_per_runner_and_cause():
    agent = [
        record("q1", answer(failure="timeout", runner="agent")),
        record("q2", answer(failure="output_length", runner="agent")),
        record("q3", answer("answered", runner="agent", value="2020-01-05")),
    ]
    rag = [
        record("q1", answer(failure="timeout", runner="rag")),
        record("q2", answer(failure="timeout", runner="rag")),
        record("q3", answer("answered", runner="rag", value="2020-01-05")),
    ]
    failures = study_failures([FakeLog("agent", agent), FakeLog("rag", rag)])
    assert failures.all_failed == []
    lines = failures.message().splitlines()
    assert lines[:3] == [
        "4 answer(s) failed:",
        "  agent: 2 of 3 failed — timeout 1, output_length 1",
        "  rag: 2 of 3 failed — timeout 2",
    ]
    assert [line.split(":")[0].strip() for line in lines[3:]] == ["timeout", "output_length"]


def test_a_study_without_failed_answers_has_no_closing_message():
    fine = [record("q1", answer("answered", value="2020-01-05"))]
    failures = study_failures([FakeLog("agent", fine)])
    assert failures == StudyFailures(()) and failures.message() == ""


def test_the_models_doc_explains_every_failure_cause():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "models.md").read_text(encoding="utf-8")
    table = doc.split("### When a model call fails", 1)[1]
    for cause in MODEL_FAILURES:
        assert f"| `{cause}` |" in table, cause


def test_a_run_whose_items_all_failed_by_a_bug_is_not_a_model_that_failed_everything():
    crashed = [
        record(f"q{k}", answer(), error=ItemError(kind="ZeroDivisionError")) for k in range(3)
    ]
    failures = run_failures("agent", crashed)
    assert failures.failed == 3 and failures.by_error == 3 and not failures.all_failed
