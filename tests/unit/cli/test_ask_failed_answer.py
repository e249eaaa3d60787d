"""``recordagent ask`` on failed and truncated answers: one line with the cause, no raw dumps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recordagent.cli import ask as ask_cli
from recordagent.evaluation.failures import FAILURE_ADVICE
from recordagent.runners import TraceEvent
from tests.unit.cli.conftest import Ran
from tests.unit.cli.helpers import ScriptedRunner, scripted_answer

OVERFLOW = (
    "the prompt (9,120 tokens) does not fit the model's window (8,192); lower "
    "runners.full_context.window_tokens or set model.context_window"
)
RAW = "I think [bold]the answer[/bold] is somewhere in here. " + "blah " * 2000


def use_runner(monkeypatch: pytest.MonkeyPatch, runner: ScriptedRunner) -> None:
    monkeypatch.setattr(ask_cli, "build_runner", lambda name, settings: runner)


def ask(cli: Callable[..., Ran], db: Path, *extra: str) -> Ran:
    return cli("ask", "MM-001", "When was the ASCT?", "--db", str(db), "--model", "mock", *extra)


def test_a_failed_answer_ends_with_its_cause_and_message_and_exit_code_4(
    cli, example_store, monkeypatch
):
    answer = scripted_answer(
        "full_context",
        "failed",
        failure="context_overflow",
        failure_message=OVERFLOW,
        text="model error (ModelError): no usable answer from the model",
        details={"model_error": "ModelError"},
    )
    use_runner(monkeypatch, ScriptedRunner("full_context", answer))
    ran = ask(cli, example_store, "--runner", "full_context")
    assert ran.code == ask_cli.FAILED_ANSWER_EXIT_CODE == 4
    assert ran.flat_err == f"failed: context_overflow — {OVERFLOW}"
    assert "│ status │ failed (context_overflow)" in " ".join(ran.out.split())
    assert "no usable answer from the model" not in ran.out  # the line on stderr says it


def test_a_failed_answers_raw_model_output_is_not_dumped(cli, example_store, monkeypatch):
    unparsed = TraceEvent(
        seq=0, kind="error", name="answer", started_s=0.1, error="answer_unparsed"
    )
    answer = scripted_answer("agent", "failed", text=RAW, trace=[unparsed])
    use_runner(monkeypatch, ScriptedRunner("agent", answer, [unparsed]))
    ran = ask(cli, example_store)
    assert ran.code == 4
    assert ran.flat_err == f"failed: invalid_output — {FAILURE_ADVICE['invalid_output']}"
    assert "blah blah" in ran.out and "blah " * 40 not in ran.out  # an excerpt, not the dump
    assert f"model output, not a valid answer ({len(RAW):,} characters)" in ran.flat_out
    assert "[bold]the answer[/bold]" in ran.flat_out  # the model's text is text, not markup


def test_a_failed_steps_progress_line_says_the_error_kind(cli, example_store, monkeypatch):
    events = [
        TraceEvent(seq=0, kind="error", name="reflect", started_s=0.1, error="reflection_unparsed"),
        TraceEvent(
            seq=1,
            kind="tool_call",
            name="query_labs",
            started_s=0.2,
            error="invalid_arguments",
            summary="query_labs(analyte=<9 characters>) → error (invalid_arguments)",
        ),
        TraceEvent(seq=2, kind="model_call", name="act 1", started_s=0.3, summary="act 1: 10 + 5"),
    ]
    answer = scripted_answer("agent", "insufficient_evidence", text="The record is silent.")
    use_runner(monkeypatch, ScriptedRunner("agent", answer, events))
    ran = ask(cli, example_store)
    assert ran.code == 0, ran.err
    lines = [line.strip() for line in ran.out.splitlines()]
    assert "0 error reflect: reflection_unparsed" in lines
    assert "1 query_labs(analyte=<9 characters>) → error (invalid_arguments)" in lines
    assert "2 act 1: 10 + 5" in lines
    assert "The record is silent." in ran.out and ran.err == ""


def test_a_truncated_answer_shows_its_value_with_a_note_and_exits_0(
    cli, example_store, monkeypatch
):
    budget = TraceEvent(
        seq=0, kind="budget", name="act", started_s=1.0, summary="budget:steps: answering now"
    )
    answer = scripted_answer(
        "agent", "truncated", value="2020-06-15", text="Best so far: June 2020.", trace=[budget]
    )
    use_runner(monkeypatch, ScriptedRunner("agent", answer, [budget]))
    ran = ask(cli, example_store)
    assert ran.code == 0, ran.err
    assert '"2020-06-15"' in ran.out and "Best so far: June 2020." in ran.out
    assert (
        "truncated: a budget ended the run before the model was done (act: budget:steps: "
        "answering now); the value is the best answer so far"
    ) in ran.flat_out
