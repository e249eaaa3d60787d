"""`recordagent ask` and `recordagent audit`, run as a user runs them, on the tiny cohort."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from recordagent.runners import RUNNER_NAMES
from tests.fake_openai import FakeOpenAI, model_preset, ok, status
from tests.helpers import recordagent

SILENT_RECORD = {"status": "insufficient_evidence", "value": None, "text": "", "citations": []}


@dataclass(frozen=True)
class Study:
    db: Path
    items: Path
    labels: Path


def _ok(*args: str) -> str:
    result = recordagent(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Generate tiny, load it into a store file and sample 20 items with their labels."""
    root = tmp_path_factory.mktemp("ask_audit_cli")
    cohort, db = root / "tiny", root / "store.duckdb"
    items, labels = root / "items.jsonl", root / "labels.csv"
    _ok("synth", "--preset", "tiny", "--out", str(cohort))
    _ok("load", str(cohort), "--db", str(db))
    _ok(
        "questions",
        "sample",
        "--cohort",
        str(cohort),
        "--n",
        "20",
        "--out",
        str(items),
        "--labels",
        str(labels),
    )
    return Study(db, items, labels)


@pytest.mark.parametrize("runner", RUNNER_NAMES)
def test_ask_on_the_mock_model_streams_steps_and_prints_the_answer(study: Study, runner: str):
    out = _ok(
        "ask",
        "MM-001",
        "When was multiple myeloma diagnosed?",
        "--db",
        str(study.db),
        "--runner",
        runner,
        "--answer-type",
        "date",
        "--model",
        "mock",
    )
    flat = " ".join(out.split())
    assert "MOCK MODEL" in flat and "NOT a model's answer" in flat
    assert f"{runner} on MM-001 with model mock-dry-run" in flat
    steps = [line for line in out.splitlines() if re.match(r"^ +\d+ \S", line)]
    assert len(steps) >= 2, out  # trace events streamed before the answer
    for field in ("status", "value", "text", "citations", "tokens", "cost"):
        assert f"│ {field}" in out
    assert "insufficient_evidence" in flat
    assert "Dry run on the mock model" in flat


def test_ask_as_of_a_day_and_a_bad_day(study: Study):
    out = _ok(
        "ask",
        "MM-002",
        "How many lines of therapy?",
        "--db",
        str(study.db),
        "--runner",
        "single_pass_rag",
        "--answer-type",
        "count",
        "--as-of",
        "2021-06-30",
        "--model",
        "mock",
    )
    assert "single_pass_rag on MM-002" in out
    bad = recordagent(
        "ask", "MM-002", "x", "--db", str(study.db), "--as-of", "30/06/2021", "--model", "mock"
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "--as-of must be a day as YYYY-MM-DD" in " ".join(bad.stderr.split())


def test_ask_for_an_unknown_patient_is_one_clear_line(study: Study):
    result = recordagent("ask", "NOPE-9", "When?", "--db", str(study.db), "--model", "mock")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    flat = " ".join(result.stderr.split())
    assert "no patient 'NOPE-9' in the store (5 patients: MM-001, MM-002" in flat
    assert "MOCK MODEL" not in result.stdout  # refused before any run


def test_ask_with_an_unknown_runner(study: Study):
    result = recordagent(
        "ask", "MM-001", "When?", "--db", str(study.db), "--runner", "oracle", "--model", "mock"
    )
    assert result.returncode == 2
    assert "unknown runner 'oracle'" in " ".join(result.stderr.split())


def test_audit_prints_the_figures_and_writes_markdown(study: Study, tmp_path: Path):
    markdown = tmp_path / "audit" / "audit.md"
    out = _ok(
        "audit",
        "--db",
        str(study.db),
        "--items",
        str(study.items),
        "--labels",
        str(study.labels),
        "--markdown",
        str(markdown),
    )
    flat = " ".join(out.split())
    assert "Items: 20; audited" in flat
    for title in ("Overall", "By level", "By template"):
        assert title in out
    assert "RAG@5" in flat and "FC mean coverage" in flat
    overall = next(line for line in out.splitlines() if line.startswith("│ all"))
    assert any(ch.isdigit() for ch in overall)
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Evidence audit")
    assert "## Overall" in text


def test_audit_with_a_missing_labels_file(study: Study, tmp_path: Path):
    missing = tmp_path / "no-labels.csv"
    result = recordagent(
        "audit", "--db", str(study.db), "--items", str(study.items), "--labels", str(missing)
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert " ".join(" ".join(lines).split()) == f"error: labels file {missing} does not exist"


def test_ask_with_a_failing_server_ends_with_one_line_naming_the_cause_and_exit_4(
    study: Study, tmp_path: Path
):
    with FakeOpenAI() as server:
        server.script(status(503, message="the model is loading"))
        preset = model_preset(tmp_path / "fake.yaml", server, max_retries=0)
        result = recordagent(
            "--preset", str(preset), "ask", "MM-001", "When was multiple myeloma diagnosed?",
            "--db", str(study.db), "--runner", "single_pass_rag", "--model", "settings",
        )  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("failed: server_error — "), result.stderr
    assert "error answer: server_error" in " ".join(result.stdout.split())  # the step's kind
    assert "status │ failed (server_error)" in " ".join(result.stdout.split())


def test_ask_shows_each_retry_of_a_failing_server_as_a_warning_line(study: Study, tmp_path: Path):
    with FakeOpenAI() as server:
        server.script(status(503, message="the model is loading"), ok(json.dumps(SILENT_RECORD)))
        preset = model_preset(tmp_path / "fake.yaml", server, max_retries=2, backoff_base_s=0.01)
        result = recordagent(
            "--preset", str(preset), "ask", "MM-001", "When was multiple myeloma diagnosed?",
            "--db", str(study.db), "--runner", "single_pass_rag", "--model", "settings",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, result.stderr
    assert "fake: HTTP 503" in warnings[0] and "retry 1 of 2" in warnings[0]
