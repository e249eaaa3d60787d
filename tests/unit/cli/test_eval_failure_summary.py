"""``recordagent eval`` ends by naming why answers failed, per runner and cause, with advice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recordagent.evaluation import study as study_module
from recordagent.evaluation.failures import FAILURE_ADVICE
from recordagent.llm.client import ChatModel
from recordagent.questions import EvalItem
from recordagent.questions.items import write_items
from recordagent.resources import example_bundle_path
from recordagent.runners import Answer
from recordagent.settings import Settings
from tests.helpers import asct_item
from tests.unit.cli.conftest import Ran
from tests.unit.cli.helpers import ScriptedRunner, scripted_answer

OVERFLOW = "the prompt (9,120 tokens) does not fit the model's window (8,192)"
ITEMS = [asct_item(id=f"asct/{p}", patient_id=p) for p in ("MM-001", "MM-002", "MM-003")]


def use_runners(monkeypatch: pytest.MonkeyPatch, runners: dict[str, ScriptedRunner]) -> None:
    def build(name: str, settings: Settings) -> ScriptedRunner:
        return runners[name]

    monkeypatch.setattr(study_module, "build_runner", build)


def evaluate(cli: Callable[..., Ran], tmp_path: Path, *runners: str) -> Ran:
    items = tmp_path / "items.jsonl"
    write_items(items, ITEMS)
    by_runner = [arg for name in runners for arg in ("--runner", name)]
    return cli(
        "eval", "--items", str(items), "--bundle", str(example_bundle_path()),
        *by_runner, "--model", "mock", "--out", str(tmp_path / "run"),
    )  # fmt: skip


def overflowing(item: EvalItem, model: ChatModel) -> Answer:
    return scripted_answer(
        "full_context", "failed", failure="context_overflow", failure_message=OVERFLOW
    )(item, model)


def test_a_runner_that_failed_every_answer_is_the_error_with_its_cause_and_advice(
    cli, tmp_path, monkeypatch
):
    answered = scripted_answer("single_pass_rag", "answered", value="2020-06-15", text="June")
    use_runners(
        monkeypatch,
        {
            "full_context": ScriptedRunner("full_context", overflowing),
            "single_pass_rag": ScriptedRunner("single_pass_rag", answered),
        },
    )
    ran = evaluate(cli, tmp_path, "single_pass_rag", "full_context")
    assert ran.code == 4, ran.err
    assert (tmp_path / "run" / "report.html").is_file()  # written before the error
    assert ran.err.splitlines() == [
        "error: every answer of full_context failed:",
        "  full_context: 3 of 3 failed — context_overflow 3",
        f"  context_overflow: {FAILURE_ADVICE['context_overflow']}",
        f"    first: {OVERFLOW}",
    ]
    assert "reachable" not in ran.err
    assert "full_context: 3 new answers" in ran.flat_out
    assert "failed answers: context_overflow 3" in ran.flat_out


def test_some_failed_answers_are_counted_at_the_end_and_the_run_succeeds(
    cli, tmp_path, monkeypatch
):
    def sometimes(item: EvalItem, model: ChatModel) -> Answer:
        if item.patient_id == "MM-002":
            return scripted_answer("agent", "failed", failure="timeout")(item, model)
        return scripted_answer("agent", "answered", value="2020-06-15")(item, model)

    use_runners(monkeypatch, {"agent": ScriptedRunner("agent", sometimes)})
    ran = evaluate(cli, tmp_path, "agent")
    assert ran.code == 0, ran.err
    assert "1 answer(s) failed: agent: 1 of 3 failed — timeout 1" in ran.flat_out
    assert f"timeout: {' '.join(FAILURE_ADVICE['timeout'].split())}" in ran.flat_out
