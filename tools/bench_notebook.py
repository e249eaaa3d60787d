"""Benchmark of ``recordagent.answer_many``: its overhead per question over calling the runner.

The ``small`` synthetic cohort (50 patients) is loaded into an in-memory store; every patient
is asked two questions (100 items) on the dry-run mock model, so what is measured is plumbing,
never a model. Per runner (single_pass_rag, agent) and ``--repeats`` times, alternating order:

a. direct: ``asyncio.run`` of the runner's ``run`` over the items, ``concurrency`` at a time
   (an ``asyncio.Semaphore``), scopes from the open store — the least a caller can write;
b. ``answer_many(store, questions, runner=..., model=..., concurrency=..., progress=False)``:
   items, the patient check, ``run_items`` (record lengths, failure capture), the DataFrame;
c. the same as (b) called inside a running event loop (as from a Jupyter cell), which runs the
   work on its own loop in a worker thread;
d. the same as (b) with the progress bar drawn (rich, to a file-backed console).

Overhead per question = (median of b, c or d - median of a) / items. One warm-up run of each
runner first fills the patients' scope databases, so both paths meet the same warm store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import recordagent as ra
from recordagent.questions import AnswerSpec
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.runners import Runner, build_runner
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings
from recordagent.sources.synthetic import generate_cohort, load_preset

__all__ = ["bench_notebook", "notebook_summary"]

Json = dict[str, Any]
RUNNERS = ("single_pass_rag", "agent")
CONCURRENCY = 8
QUESTIONS = [
    ra.Question(
        text="When was the autologous stem cell transplantation (ASCT)?",
        answer=AnswerSpec(type="date"),
    ),
    ra.Question(
        text="What was the highest serum M-protein ever measured?",
        answer=AnswerSpec(type="number", unit="g/dL"),
    ),
]


def _direct(store: RecordStore, runner: Runner) -> float:
    items = [q.item(p) for p in store.patient_ids() for q in QUESTIONS]
    model = dry_run_model()

    async def all_items() -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(item: ra.EvalItem) -> None:
            async with gate:
                await runner.run(item, store.scope(item.patient_id), model)

        await asyncio.gather(*(one(item) for item in items))

    clock = time.perf_counter()
    asyncio.run(all_items())
    return time.perf_counter() - clock


def _many(store: RecordStore, runner: Runner, *, in_loop: bool, progress: bool) -> float:
    def call() -> None:
        frame = ra.answer_many(
            store,
            QUESTIONS,
            runner=runner,
            model=dry_run_model(),
            concurrency=CONCURRENCY,
            progress=progress,
        )
        assert frame.height == len(QUESTIONS) * len(store.patient_ids())

    async def from_a_cell() -> None:
        call()

    sink = io.StringIO()
    clock = time.perf_counter()
    with contextlib.redirect_stdout(sink):  # the bar's lines, when drawn
        if in_loop:
            asyncio.run(from_a_cell())
        else:
            call()
    return time.perf_counter() - clock


def bench_notebook(repeats: int = 3, seed: int = 0) -> Json:
    """Every measurement of the module docstring, as JSON-ready figures."""
    settings = Settings()
    with tempfile.TemporaryDirectory() as folder:
        generate_cohort(load_preset("small"), seed, Path(folder))
        store = connect()
        load_bundle(store, Path(folder), settings=Settings(chunking={"workers": 2}))
    n_items = len(QUESTIONS) * len(store.patient_ids())
    ways: dict[str, Callable[[RecordStore, Runner], float]] = {
        "direct": _direct,
        "answer_many": lambda s, r: _many(s, r, in_loop=False, progress=False),
        "answer_many_in_running_loop": lambda s, r: _many(s, r, in_loop=True, progress=False),
        "answer_many_with_progress_bar": lambda s, r: _many(s, r, in_loop=False, progress=True),
    }
    result: Json = {
        "cohort": "small",
        "patients": len(store.patient_ids()),
        "items": n_items,
        "concurrency": CONCURRENCY,
        "repeats": repeats,
        "model": "mock-dry-run (plumbing only)",
        "runners": {},
    }
    try:
        for name in RUNNERS:
            runner = build_runner(name, settings)
            _direct(store, runner)  # warm-up: the patients' scope databases
            seconds: dict[str, list[float]] = {way: [] for way in ways}
            for turn in range(repeats):
                order = list(ways) if turn % 2 == 0 else list(reversed(ways))
                for way in order:
                    seconds[way].append(ways[way](store, runner))
            medians = {way: statistics.median(runs) for way, runs in seconds.items()}
            direct = medians["direct"]
            result["runners"][name] = {
                "seconds": {way: [round(s, 3) for s in runs] for way, runs in seconds.items()},
                "median_seconds": {way: round(m, 3) for way, m in medians.items()},
                "per_question_ms": {
                    way: round(m / n_items * 1000, 2) for way, m in medians.items()
                },
                "overhead_per_question_ms": {
                    way: round((m - direct) / n_items * 1000, 2)
                    for way, m in medians.items()
                    if way != "direct"
                },
                "ratio_to_direct": {
                    way: round(m / direct, 3) for way, m in medians.items() if way != "direct"
                },
            }
    finally:
        store.close()
    return result


def notebook_summary(result: Json) -> list[str]:
    """A few lines for humans."""
    lines = [
        f"answer_many on {result['patients']} patients x {len(QUESTIONS)} questions "
        f"({result['items']} items, concurrency {result['concurrency']}, dry-run mock), "
        f"median of {result['repeats']}:"
    ]
    for name, figures in result["runners"].items():
        over = figures["overhead_per_question_ms"]
        ratio = figures["ratio_to_direct"]["answer_many"]
        lines.append(
            f"  {name}: direct {figures['median_seconds']['direct']:.2f} s; answer_many "
            f"{figures['median_seconds']['answer_many']:.2f} s "
            f"({over['answer_many']:+.2f} ms/question, x{ratio}); "
            f"in a running loop {over['answer_many_in_running_loop']:+.2f} ms/question; "
            f"with the bar {over['answer_many_with_progress_bar']:+.2f} ms/question"
        )
    return lines
