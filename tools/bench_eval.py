"""Benchmark of evaluation-run throughput against the fake OpenAI server.

``run_items(..., concurrency=16)`` against ``concurrency=1`` (sequential) for each of the four
runners, on the tiny synthetic cohort, with a real HTTP client
(:class:`~recordagent.llm.openai_compat.OpenAICompatModel`, ``max_concurrency=16``) and the fake
server of ``tests/fake_openai.py`` answering every request after ``delay_s`` (0.3 s).

The fake server replays one fixed reply, and every structured reply is validated with extra
fields forbidden, so each runner gets the fixed reply that ends it fastest:

* single_pass_rag, full_context: a valid FinalAnswer (one model call per item);
* iterative_rag: an IterativeStep that answers at once (one call per item);
* agent: the same FinalAnswer. The agent cannot be driven by one fixed reply: its plan and
  reflection do not validate (each is repaired once, then falls back) and the act step sees no
  tool call, so every item costs several calls; ``calls_per_item`` reports how many.

Sequential runs take ``sequential_items`` items per runner (a subset; time per item is
extrapolated to all items), concurrent runs take every item. Items are ad-hoc date questions
spread over the cohort's patients; one warm-up item per patient runs first, unmeasured. The
fake server runs in a child process (in this one it would share the interpreter lock); calls
per item are the answers' ``usage.model_calls``.

``python tools/bench_eval.py [RUNNER ...]`` runs some runners only (all four by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # tests.fake_openai lives in the repository, not the package
    sys.path.insert(0, str(REPO_ROOT))


from recordagent.evaluation.log import RunLog, RunManifest  # noqa: E402
from recordagent.evaluation.run import run_items  # noqa: E402
from recordagent.llm.openai_compat import OpenAICompatModel  # noqa: E402
from recordagent.questions import AnswerSpec, EvalItem  # noqa: E402
from recordagent.records.db import RecordStore, connect  # noqa: E402
from recordagent.records.load import load_bundle  # noqa: E402
from recordagent.runners import RUNNER_NAMES, build_runner  # noqa: E402
from recordagent.settings import ModelSettings, Settings  # noqa: E402
from recordagent.sources.synthetic import generate_cohort, load_preset  # noqa: E402

__all__ = ["bench_eval", "eval_summary", "server_process"]

Json = dict[str, Any]
TARGET_RATIO = 12.0  # concurrent / sequential throughput, at least
CONCURRENCY = 16
DELAY_S = 0.3

_FINAL = {"status": "insufficient_evidence", "value": None, "text": "bench", "citations": []}
_REPLIES = {
    "single_pass_rag": _FINAL,
    "full_context": _FINAL,
    "iterative_rag": {"action": "answer", "answer": _FINAL},
    "agent": _FINAL,
}
_QUESTIONS = (
    "When was multiple myeloma diagnosed?",
    "When did the first line of therapy start?",
    "When was the autologous stem cell transplant?",
    "When was the most recent M-protein measured?",
)


def _items(patients: list[str], n: int) -> list[EvalItem]:
    out = []
    for k in range(n):
        question = f"{_QUESTIONS[k % len(_QUESTIONS)]} (#{k})"
        out.append(EvalItem.ad_hoc(patients[k % len(patients)], question, AnswerSpec(type="date")))
    return out


# The server runs in its own process, as a real one would: in this process its threads would
# share the interpreter lock with the runners and slow them down.
_SERVER = """
import json, sys, time
from tests.fake_openai import FakeOpenAI, ok
with FakeOpenAI() as server:
    server.script(ok(sys.argv[1], delay_s=float(sys.argv[2])))
    print(server.url, flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def fake_server(reply: Json) -> Iterator[str]:
    """A FakeOpenAI server in a child process replaying ``reply``; yields its URL."""
    with server_process(["-c", _SERVER, json.dumps(reply), str(DELAY_S)]) as url:
        yield url


@contextlib.contextmanager
def server_process(args: list[str]) -> Iterator[str]:
    """A server ``python ARGS`` run in the repository; yields the URL it prints first.

    The server runs until its stdin closes (killed if it has not ended 10 s later).
    """
    child = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def _run(
    name: str,
    items: list[EvalItem],
    store: RecordStore,
    url: str,
    settings: Settings,
    concurrency: int,
    folder: Path,
) -> Json:
    model = OpenAICompatModel(
        ModelSettings(
            provider="openai",
            base_url=url,
            model="gpt-4o-mini",
            max_concurrency=CONCURRENCY,
            max_retries=0,
            timeout_s=30.0,
        )
    )
    runner = build_runner(name, settings)
    manifest = RunManifest.create(
        runner, model, settings, data_fingerprint="bench-eval", items=items
    )
    log = RunLog.open(folder / f"{name}-c{concurrency}.jsonl", manifest)
    clock = time.perf_counter()
    records = await run_items(items, runner, model, store, log=log, concurrency=concurrency)
    seconds = time.perf_counter() - clock
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.answer.status] = statuses.get(record.answer.status, 0) + 1
    calls = sum(record.answer.usage.model_calls for record in records)
    return {
        "items": len(items),
        "seconds": round(seconds, 3),
        "items_per_s": round(len(items) / seconds, 3),
        "seconds_per_item": round(seconds / len(items), 4),
        "calls_per_item": round(calls / len(items), 2),
        "statuses": statuses,
    }


async def _bench(items_n: int, sequential_n: int, folder: Path, runners: tuple[str, ...]) -> Json:
    settings = Settings()
    cohort = folder / "tiny"
    (folder / "warm").mkdir()
    generate_cohort(load_preset("tiny"), 0, cohort)
    os.environ.setdefault("OPENAI_API_KEY", "bench-fake-key")
    per_runner: Json = {}
    with connect() as store:
        load_bundle(store, cohort, settings=settings)
        patients = store.patient_ids()
        items = _items(patients, items_n)
        warm = [
            EvalItem.ad_hoc(p, f"warm-up {k}", AnswerSpec(type="date"))
            for k, p in enumerate(patients)
        ]
        for name in runners:
            with fake_server(_REPLIES[name]) as url:
                # One item per patient first: one-time costs (indexes, tokenizer) stay out.
                await _run(name, warm, store, url, settings, 1, folder / "warm")
                seq = await _run(name, items[:sequential_n], store, url, settings, 1, folder)
                con = await _run(name, items, store, url, settings, CONCURRENCY, folder)
            ratio = con["items_per_s"] / seq["items_per_s"]
            per_runner[name] = {
                "sequential": seq,
                "concurrent": con,
                "sequential_extrapolated_seconds": round(seq["seconds_per_item"] * items_n, 1),
                "ratio": round(ratio, 2),
                "met": ratio >= TARGET_RATIO,
            }
    ratios = [r["ratio"] for r in per_runner.values()]
    return {
        "items": items_n,
        "sequential_items": sequential_n,
        "sequential_is_subset": sequential_n < items_n,
        "note": "sequential throughput measured on the first sequential_items items and "
        "extrapolated per item; agent driven by a fixed FinalAnswer reply (plan/reflect "
        "fall back after one repair), so it makes several calls per item",
        "delay_s": DELAY_S,
        "concurrency": CONCURRENCY,
        "model_max_concurrency": CONCURRENCY,
        "target_ratio_at_least": TARGET_RATIO,
        "runners": per_runner,
        "min_ratio": min(ratios),
        "median_ratio": round(statistics.median(ratios), 2),
    }


def bench_eval(
    items: int = 200, sequential_items: int = 40, runners: tuple[str, ...] = RUNNER_NAMES
) -> Json:
    """Throughput of evaluation runs, concurrent against sequential, per runner."""
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as folder:
        return asyncio.run(_bench(items, min(sequential_items, items), Path(folder), runners))


def eval_summary(result: Json) -> list[str]:
    """Lines for humans."""
    ok_text = {True: "ok", False: "MISSED"}
    lines = [
        f"evaluation runs: {result['items']} items per runner, fake server {result['delay_s']} s "
        f"per call, concurrency {result['concurrency']} vs 1 "
        f"(sequential on {result['sequential_items']} items)"
    ]
    for name, r in result["runners"].items():
        lines.append(
            f"  {name}: {r['concurrent']['items_per_s']:.1f} items/s vs "
            f"{r['sequential']['items_per_s']:.2f} sequential = {r['ratio']:.1f}x "
            f"(target >= {result['target_ratio_at_least']:g}: {ok_text[r['met']]}; "
            f"{r['concurrent']['calls_per_item']} calls/item)"
        )
    return lines


if __name__ == "__main__":
    figures = bench_eval(runners=tuple(sys.argv[1:]) or RUNNER_NAMES)
    print(json.dumps(figures, indent=2))
    print("\n".join(eval_summary(figures)))
