"""``recordagent demo`` ends like ``eval``: failed answers counted per runner and cause."""

from __future__ import annotations

from recordagent.cli import demo as demo_cli
from recordagent.evaluation.failures import FAILURE_ADVICE
from recordagent.runners import RUNNER_NAMES
from recordagent.settings import Settings
from tests.unit.cli.helpers import ScriptedRunner, scripted_answer


def test_a_runner_failing_every_answer_ends_the_demo_with_its_cause_after_the_report(
    cli, tmp_path, monkeypatch
):
    def build(name: str, settings: Settings) -> ScriptedRunner:
        if name == "full_context":
            return ScriptedRunner(name, scripted_answer(name, "failed", failure="context_overflow"))
        return ScriptedRunner(name, scripted_answer(name, "insufficient_evidence"))

    monkeypatch.setattr(demo_cli, "build_runner", build)
    out = tmp_path / "demo"
    ran = cli("demo", "--cohort", "tiny", "--items", "4", "--out", str(out))
    assert ran.code == 4, ran.err
    assert (out / "report.html").is_file()
    assert ran.err.splitlines()[:3] == [
        "error: every answer of full_context failed:",
        "  full_context: 4 of 4 failed — context_overflow 4",
        f"  context_overflow: {FAILURE_ADVICE['context_overflow']}",
    ]
    assert all(f"{name}.jsonl" in {p.name for p in out.iterdir()} for name in RUNNER_NAMES)
