"""`recordagent eval` and `recordagent report`, run as a user runs them (subprocesses)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recordagent.evaluation.log import RunLog, RunManifest
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.fake_openai import FakeOpenAI, model_preset, ok, status
from tests.helpers import recordagent


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
        preset = model_preset(
            tmp_path / "fake.yaml", server, max_retries=0, supports_response_format=False
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


def _halves(tiny: dict[str, Path], folder: Path) -> tuple[Path, Path]:
    lines = tiny["items"].read_text(encoding="utf-8").splitlines()
    first, second = folder / "first.jsonl", folder / "second.jsonl"
    first.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    second.write_text("\n".join(lines[6:]) + "\n", encoding="utf-8")
    return first, second


def test_resume_with_another_item_set_is_refused_before_any_work(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    first, second = _halves(tiny, tmp_path)
    out = tmp_path / "run"
    base = [
        "eval", "--labels", str(tiny["labels"]), "--db", str(tiny["db"]),
        "--runner", "single_pass_rag", "--runner", "full_context", "--model", "mock",
        "--out", str(out),
    ]  # fmt: skip
    done = recordagent(*base, "--items", str(first))
    assert done.returncode == 0, done.stderr
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    # full_context's log fits; single_pass_rag's is checked too, before full_context runs.
    (out / "full_context.jsonl").unlink()
    del before["full_context.jsonl"]

    refused = _one_error(recordagent(*base, "--items", str(second), "--resume"))
    assert "single_pass_rag.jsonl is the log of a different run; it differs in items" in refused
    assert "the log's run has 6 items, this run 6" in refused
    assert "6 of this run's items are not in the log's" in refused
    assert "another --out folder" in refused and "same items" in refused
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before  # nothing ran

    other = recordagent(*base[:-1], str(tmp_path / "other"), "--items", str(second))
    assert other.returncode == 0, other.stderr
    assert len(_ids(tmp_path / "other" / "single_pass_rag.jsonl")) == 6


_CRASH_ONE_ITEM = """
import sys
from recordagent.runners.single_pass import SinglePassRag

answer = SinglePassRag.answer

async def crashing(self, item, scope, model, tracer):
    if item.id == sys.argv[1]:
        raise ZeroDivisionError("secret text of the record")
    return await answer(self, item, scope, model, tracer)

SinglePassRag.answer = crashing
from recordagent.cli.main import run
run(sys.argv[2:])
"""


def test_an_item_that_crashes_is_logged_and_the_eval_ends_with_a_count_and_resumes(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    log = out / "single_pass_rag.jsonl"
    crash_id = json.loads(tiny["items"].read_text().splitlines()[3])["id"]
    args = [
        "eval", "--items", str(tiny["items"]), "--labels", str(tiny["labels"]),
        "--db", str(tiny["db"]), "--runner", "single_pass_rag", "--model", "mock",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASH_ONE_ITEM, crash_id, *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    message = _one_error(crashed)
    assert crashed.returncode == 1
    assert "1 item(s) failed with an unexpected error (a bug): single_pass_rag 1" in message
    assert "ZeroDivisionError ×1" in message and "--resume" in message
    assert (out / "report.html").is_file()  # the report of the rest is written
    records = _records(log)
    assert len(records) == 12
    failed = [r for r in records if r.get("error")]
    assert [r["item"]["id"] for r in failed] == [crash_id]  # type: ignore[index]
    assert failed[0]["error"]["kind"] == "ZeroDivisionError"  # type: ignore[index]
    assert "secret text" not in log.read_text()
    noted = recordagent("report", str(log))
    assert "1 answer(s) failed by an unexpected error (ZeroDivisionError ×1)" in " ".join(
        noted.stdout.split()
    )

    resumed = recordagent(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    flat = " ".join(resumed.stdout.split())
    assert "1 new answers, 11 already in" in flat and "1 failed item(s) retried" in flat
    ids = _ids(log)
    assert len(ids) == 13 and sorted(set(ids)) == sorted(ids[:12])  # the retry appended
    report = recordagent("report", str(log))
    assert report.returncode == 0, report.stderr
    assert "unexpected error" not in report.stdout  # the retry superseded the failure


_EVAL = ["eval", "--items", "{items}", "--labels", "{labels}", "--db", "{db}"]
_RUN = ["--runner", "single_pass_rag", "--model", "mock"]
_AUDIT = ["audit", "--db", "{db}", "--items", "{items}", "--labels", "{labels}"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*_EVAL, *_RUN, "--out", "{file}"], "--out {file} is a file, not a folder"),
        ([*_EVAL, *_RUN, "--out", "{file}/below"], "{file} is a file, so the folder cannot"),
        ([*_EVAL[:-2], "--db", "{folder}", *_RUN, "--out", "{out}"], "is a folder, not a DuckDB"),
        (["eval", "--items", "{folder}", "--db", "{db}", *_RUN, "--out", "{out}"], "a folder"),
        (["eval", "--items", "{binary}", "--db", "{db}", *_RUN, "--out", "{out}"], "not UTF-8"),
        (
            [*_EVAL[:3], "--labels", "{folder}.csv", "--db", "{db}", *_RUN, "--out", "{out}"],
            "a folder",
        ),
        (["eval", "--suite", "{folder}"], "is a folder, not a YAML file"),
        ([*_EVAL, *_RUN, "--out", "{toolong}"], "File name too long"),
        ([*_EVAL[:-2], "--db", "{toolong}", *_RUN, "--out", "{out}"], "File name too long"),
        (["report", "{toolong}"], "File name too long"),
        ([*_AUDIT[:1], "--db", "{toolong}", *_AUDIT[3:]], "File name too long"),
        ([*_AUDIT[:3], "--items", "{empty}", *_AUDIT[5:]], "has no items"),
        ([*_EVAL, *_RUN, "--out", "{logfolder}", "--resume"], "is a folder (or not a regular"),
        (["report", "{folder}"], "is a folder, not a run log"),
        (["report", "{log}", "--html", "{folder}"], "--html {folder} is a folder"),
        (["report", "{log}", "--html", "{file}/x.html"], "cannot write the HTML report"),
        ([*_AUDIT[:1], "--db", "{folder}", *_AUDIT[3:]], "is a folder, not a DuckDB store file"),
        ([*_AUDIT[:3], "--items", "{binary}", *_AUDIT[5:]], "is not UTF-8 text"),
        ([*_AUDIT, "--markdown", "{folder}"], "--markdown {folder} is a folder"),
        ([*_AUDIT, "--markdown", "{file}/x.md"], "cannot write the Markdown audit"),
    ],
)
def test_bad_paths_give_one_error_line(
    tiny: dict[str, Path], tmp_path: Path, argv: list[str], expected: str
) -> None:
    places = {
        "items": tiny["items"], "labels": tiny["labels"], "db": tiny["db"],
        "folder": tmp_path / "folder", "file": tmp_path / "file", "binary": tmp_path / "binary",
        "out": tmp_path / "out", "logfolder": tmp_path / "logs", "log": tmp_path / "run.jsonl",
        "toolong": tmp_path / ("x" * 5000), "empty": tmp_path / "empty.jsonl",
    }  # fmt: skip
    places["empty"].write_text("\n", encoding="utf-8")
    for folder in ("folder", "folder.csv", "logs/single_pass_rag.jsonl"):
        (tmp_path / folder).mkdir(parents=True)
    places["file"].write_text("x\n", encoding="utf-8")
    places["binary"].write_bytes(b"\xff\xfe\x00 not text")
    manifest = RunManifest(
        run_id="r", created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), runner="agent", model="m",
        mock=True, settings_hash="s", data_fingerprint="d", package_version="0",
        prompt_version="p",
    )  # fmt: skip
    RunLog.open(places["log"], manifest)  # a log of a run that answered nothing yet
    named = {name: str(path) for name, path in places.items()}
    result = recordagent(*[part.format(**named) for part in argv])
    message = _one_error(result)
    assert expected.format(**named) in message, message


def test_a_log_line_from_another_run_is_named_by_file_and_line(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    first, second = _halves(tiny, tmp_path)
    runs = {}
    for name, items in (("a", first), ("b", second)):
        out = tmp_path / name
        done = recordagent(
            "eval", "--items", str(items), "--db", str(tiny["db"]), "--runner", "full_context",
            "--model", "mock", "--out", str(out),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs[name] = out / "full_context.jsonl"
    # A record of run b pasted into run a's log: an item outside run a's item set.
    pasted = runs["b"].read_text().splitlines()[1]
    with runs["a"].open("a", encoding="utf-8") as log:
        log.write(pasted + "\n")
    message = _one_error(recordagent("report", str(runs["a"])))
    assert f"{runs['a']}, line 8: item" in message and "is not one of the run's 6 items" in message
    refused = _one_error(
        recordagent(
            "eval",
            "--items",
            str(first),
            "--db",
            str(tiny["db"]),
            "--runner",
            "full_context",
            "--model",
            "mock",
            "--out",
            str(tmp_path / "a"),
            "--resume",
        )  # fmt: skip
    )
    assert "line 8" in refused


def test_a_server_refusing_every_prompt_as_too_long_ends_the_eval_naming_that_cause(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    too_long = (
        "This model's maximum context length is 2048 tokens. However, you requested 9120 "
        "tokens (8120 in the messages, 1000 in the completion)."
    )
    out = tmp_path / "run"
    with FakeOpenAI() as server:
        server.script(status(400, message=too_long))
        preset = model_preset(tmp_path / "fake.yaml", server, max_retries=0)
        result = recordagent(
            "--preset", str(preset), "eval", "--items", str(tiny["items"]),
            "--labels", str(tiny["labels"]), "--db", str(tiny["db"]),
            "--runner", "single_pass_rag", "--model", "settings", "--out", str(out),
        )  # fmt: skip
    message = _one_error(result)
    assert result.returncode == 4
    assert "every answer of single_pass_rag failed:" in message
    assert "single_pass_rag: 12 of 12 failed — context_overflow 12" in message
    assert "context_overflow: the prompts do not fit the model's context window" in message
    assert "maximum context length is 2048 tokens" in message  # the server's words, once
    assert "reachable" not in message
    assert (out / "report.html").is_file()
    statuses = {r["answer"]["status"] for r in _records(out / "single_pass_rag.jsonl")}  # type: ignore[index]
    causes = {r["answer"]["failure"] for r in _records(out / "single_pass_rag.jsonl")}  # type: ignore[index]
    assert statuses == {"failed"} and causes == {"context_overflow"}
    assert "maximum context length" not in (out / "single_pass_rag.jsonl").read_text()
