"""A three-item study through ``recordagent eval`` and ``recordagent report`` on the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realmodel.conftest import STATUSES, RealModel, TinyStudy

pytestmark = pytest.mark.realmodel

RUNNER = "single_pass_rag"
EXIT_OK, EXIT_ALL_FAILED = 0, 4
"""`recordagent eval` exits 4 when every answer of a run failed (a model error, logged)."""


def _recordagent(real_model: RealModel, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recordagent", *args],
        capture_output=True,
        text=True,
        env=real_model.env(),
        timeout=600,
        check=False,
    )


def test_a_three_item_eval_writes_logs_and_a_report_from_the_real_server(
    real_model: RealModel, tiny_study: TinyStudy, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = _recordagent(
        real_model,
        "eval", "--items", str(tiny_study.items), "--labels", str(tiny_study.labels),
        "--db", str(tiny_study.db), "--runner", RUNNER, "--model", "settings",
        "--concurrency", "2", "--out", str(out),
    )  # fmt: skip
    shown = done.stdout + done.stderr
    assert done.returncode in (EXIT_OK, EXIT_ALL_FAILED), shown
    assert "Traceback" not in shown and "MOCK MODEL" not in shown
    log = out / f"{RUNNER}.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    manifest = next(line for line in lines if line["kind"] == "manifest")
    records = [line for line in lines if line["kind"] == "record"]
    assert real_model.server.alias in json.dumps(manifest)
    assert len(records) == 3
    for record in records:
        answer = record["answer"]
        assert answer["status"] in STATUSES
        assert answer["model"] == real_model.server_model and not answer["mock"]
        assert answer["usage"]["tokens_reported"] and answer["usage"]["prompt_tokens"] > 0
        assert (answer["status"] == "failed") == (answer.get("failure") is not None), answer
        assert record.get("error") is None  # no unexpected exception in the runner
    if all(r["answer"]["status"] == "failed" for r in records):
        assert done.returncode == EXIT_ALL_FAILED
    assert (out / "report.html").is_file()

    html = tmp_path / "again.html"
    report = _recordagent(real_model, "report", str(log), "--html", str(html))
    assert report.returncode == 0, report.stdout + report.stderr
    assert RUNNER in report.stdout and "Traceback" not in report.stdout + report.stderr
    assert html.stat().st_size > 0
