"""`recordagent eval` and `recordagent report`, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.fake_openai import FakeOpenAI, ok
from tests.integration.test_cli import recordagent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny cohort loaded into a store file, with 12 sampled items and their gold labels."""
    root = tmp_path_factory.mktemp("eval_cli")
    cohort = root / "tiny"
    generate_cohort(load_preset("tiny"), 0, cohort)
    db = root / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, cohort, settings=Settings(), source="tiny")
    items, labels = root / "items.jsonl", root / "labels.csv"
    sampled = recordagent(
        "questions", "sample", "--cohort", str(cohort), "--n", "12",
        "--out", str(items), "--labels", str(labels),
    )  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    return {"root": root, "cohort": cohort, "db": db, "items": items, "labels": labels}


def _records(log: Path) -> list[dict[str, object]]:
    """The records of a log; a half-written last line (a killed run) is left out."""
    lines = log.read_text(encoding="utf-8").splitlines()
    entries = []
    for number, line in enumerate(lines, start=1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            assert number == len(lines), f"line {number} of {log} is broken"
    return [entry for entry in entries if entry["kind"] == "record"]


def _ids(log: Path) -> list[str]:
    return [record["item"]["id"] for record in _records(log)]  # type: ignore[index]


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    return " ".join(result.stderr.split())


def test_mock_eval_writes_logs_and_report_and_resume_asks_nothing_new(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [
        "eval", "--items", str(tiny["items"]), "--labels", str(tiny["labels"]),
        "--db", str(tiny["db"]), "--runner", "single_pass_rag", "--runner", "full_context",
        "--model", "mock", "--concurrency", "4", "--out", str(out),
    ]  # fmt: skip
    first = recordagent(*args)
    assert first.returncode == 0, first.stderr
    flat = " ".join(first.stdout.split())
    assert "MOCK MODEL" in flat
    assert "cost total:" in flat
    assert (out / "report.html").is_file()
    for runner in ("single_pass_rag", "full_context"):
        assert sorted(_ids(out / f"{runner}.jsonl")) == sorted(
            json.loads(line)["id"] for line in tiny["items"].read_text().splitlines()
        )
        assert f"{runner}: 12 new answers, 0 already in" in flat
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}

    refused = recordagent(*args)
    assert "pass --resume" in _one_error(refused)

    again = recordagent(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert "single_pass_rag: 0 new answers, 12 already in" in " ".join(again.stdout.split())
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before

    html = tmp_path / "again.html"
    report = recordagent(
        "report", str(out / "single_pass_rag.jsonl"), str(out / "full_context.jsonl"),
        "--labels", str(tiny["labels"]), "--rescore", "--html", str(html),
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "single_pass_rag" in report.stdout and html.is_file()


def test_bad_inputs_give_one_clear_line_and_write_nothing(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "never"
    base = ["--db", str(tiny["db"]), "--model", "mock", "--out", str(out)]

    suite = tmp_path / "bad.yaml"
    suite.write_text("name: x\nrunners: [agent\n", encoding="utf-8")
    assert "not valid YAML" in _one_error(recordagent("eval", "--suite", str(suite)))
    suite.write_text("name: x\nrunners: [agent]\nitems: i.jsonl\nstore: s\nbogus: 1\n")
    assert "bogus: Extra inputs are not permitted" in _one_error(
        recordagent("eval", "--suite", str(suite))
    )
    suite.write_text("placeholder: filled in later\n", encoding="utf-8")
    assert "is a placeholder: filled in later" in _one_error(
        recordagent("eval", "--suite", str(suite))
    )

    missing = _one_error(
        recordagent(
            "eval",
            "--items",
            str(tiny["items"]),
            "--labels",
            str(tmp_path / "no.csv"),
            "--runner",
            "single_pass_rag",
            *base,
        )  # fmt: skip
    )
    assert "no.csv does not exist" in missing

    stranger = tmp_path / "stranger.jsonl"
    first = json.loads(tiny["items"].read_text().splitlines()[0])
    stranger.write_text(json.dumps({**first, "patient_id": "NOBODY"}) + "\n", encoding="utf-8")
    unknown = _one_error(
        recordagent("eval", "--items", str(stranger), "--runner", "single_pass_rag", *base)
    )
    assert "not in the store: NOBODY" in unknown

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    preset = tmp_path / "closed.yaml"
    preset.write_text(
        f"model:\n  provider: openai\n  model: fake\n  base_url: http://127.0.0.1:{port}/v1\n"
        "  max_retries: 0\n",
        encoding="utf-8",
    )
    closed = _one_error(
        recordagent(
            "--preset",
            str(preset),
            "eval",
            "--items",
            str(tiny["items"]),
            "--runner",
            "single_pass_rag",
            "--db",
            str(tiny["db"]),
            "--model",
            "settings",
            "--out",
            str(out),
        )  # fmt: skip
    )
    assert f"cannot reach the model endpoint http://127.0.0.1:{port}/v1" in closed
    assert not out.exists()


def test_killed_run_resumes_without_losing_or_repeating_items(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    final = json.dumps(
        {"status": "answered", "value": None, "text": "from the record", "citations": []}
    )
    out = tmp_path / "run"
    log = out / "single_pass_rag.jsonl"
    with FakeOpenAI() as server:
        server.script(ok(final, usage=(100, 10), delay_s=0.3))
        preset = tmp_path / "fake.yaml"
        preset.write_text(
            f"model:\n  provider: openai\n  model: fake\n  base_url: {server.url}\n"
            "  max_retries: 0\n  supports_response_format: false\n",
            encoding="utf-8",
        )
        args = [
            sys.executable, "-m", "recordagent", "--preset", str(preset), "eval",
            "--items", str(tiny["items"]), "--labels", str(tiny["labels"]),
            "--db", str(tiny["db"]), "--runner", "single_pass_rag", "--model", "settings",
            "--concurrency", "1", "--out", str(out),
        ]  # fmt: skip
        env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
        process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if log.exists() and len(log.read_text().splitlines()) >= 4:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the run wrote no records in time")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        partial = _ids(log)
        assert 3 <= len(partial) < 12

        resumed = subprocess.run(
            [*args, "--resume"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert resumed.returncode == 0, resumed.stderr
        assert len(server.requests) >= 12
    ids = _ids(log)
    expected = [json.loads(line)["id"] for line in tiny["items"].read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12
    assert sorted(ids) == sorted(expected)
    assert ids[: len(partial)] == partial
    statuses = {record["answer"]["status"] for record in _records(log)}  # type: ignore[index]
    assert "failed" not in statuses, statuses  # every item was answered by the fake server


def test_packaged_suites_load() -> None:
    from recordagent.evaluation.suite import load_suite

    suites = Path(__file__).resolve().parents[2] / "eval" / "suites"
    demo = load_suite(suites / "demo.yaml")
    assert demo.model == "mock" and len(demo.runners) == 4 and demo.synthetic_preset == "tiny"
    reference = load_suite(suites / "reference.yaml")
    assert reference.model == "settings" and reference.n == 469
    assert reference.store is not None and reference.store.is_absolute()
    # MIMIC-IV: a store and the silver items and labels `recordagent questions silver` writes.
    runs = suites.parent / "runs"
    mimic = load_suite(suites / "mimic_iv.yaml")
    assert mimic.model == "settings" and len(mimic.runners) == 4 and mimic.cohort is None
    assert mimic.store == runs / "mimic-iv" / "store.duckdb"
    assert mimic.items == runs / "mimic-iv" / "silver" / "items.jsonl"
    assert mimic.labels == runs / "mimic-iv" / "silver" / "labels.jsonl"
    text = (suites / "mimic_iv.yaml").read_text(encoding="utf-8")
    for command in ("recordagent load mimic-iv", "recordagent questions silver", "eval --suite"):
        assert command in text
    mimic_demo = load_suite(suites / "mimic_iv_demo.yaml")
    assert mimic_demo.model == "mock" and len(mimic_demo.runners) == 4
    assert mimic_demo.store == runs / "mimic-iv-demo" / "store.duckdb"
    assert mimic_demo.items == runs / "mimic-iv-demo" / "silver" / "items.jsonl"
    assert mimic_demo.labels == runs / "mimic-iv-demo" / "silver" / "labels.jsonl"
