"""With no model configured, ``ask`` and ``eval`` answer with the dry-run mock and say so loudly.

The same rule as ``chat``, ``demo`` and the library (``recordagent.configured_model``): the
default settings (provider 'mock') never end in an error, and never pass for a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from recordagent.questions import AnswerSpec, EvalItem
from recordagent.questions.items import write_items
from tests.unit.cli.conftest import Ran


@pytest.fixture(autouse=True)
def no_model_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROVIDER", "BASE_URL", "MODEL"):
        monkeypatch.delenv(f"RECORDAGENT_MODEL__{name}", raising=False)


def test_ask_without_a_model_answers_with_the_labelled_mock(
    cli: Callable[..., Ran], example_store: Path
) -> None:
    ran = cli("ask", "MM-001", "When was the ASCT?", "--db", str(example_store))
    assert ran.code == 0, ran.err
    assert "MOCK MODEL" in ran.flat_out and "NOT a model's answer" in ran.flat_out
    assert "mock-dry-run" in ran.flat_out
    assert "no model is configured" in ran.flat_err
    assert "RECORDAGENT_MODEL__BASE_URL" in ran.flat_err


def test_eval_without_a_model_runs_the_labelled_mock(
    cli: Callable[..., Ran], example_store: Path, tmp_path: Path
) -> None:
    items = tmp_path / "items.jsonl"
    asct = EvalItem.ad_hoc("MM-001", "When was the ASCT?", AnswerSpec(type="date"))
    write_items(items, [asct])
    out = tmp_path / "run"
    ran = cli(
        "eval", "--items", str(items), "--db", str(example_store),
        "--runner", "single_pass_rag", "--out", str(out),
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "MOCK MODEL" in ran.flat_out
    log = next(out.glob("*.jsonl"))
    manifest = json.loads(log.read_text().splitlines()[0])
    assert manifest["kind"] == "manifest"
    assert manifest["mock"] is True and manifest["model"] == "mock-dry-run"
