"""Benchmarks of the four runners on the dry-run mock model: agent overhead and context size.

Every run uses :func:`recordagent.runners.dry_run.dry_run_model`, which walks each runner's
control flow (plan, tool loop, retrieval rounds, final answer) without a language model, so what
is measured is the plumbing, never a model's behaviour. The mock is wrapped in a thin timer, so
that besides the runners' own ``usage.model_s`` the time spent inside the mock itself is known.
Questions are :data:`recordagent.tools.recall.LEVEL1_QUESTIONS` plus a few level-2/3 questions;
(patient, question) pairs are drawn with a fixed seed.

a. agent overhead per step, reference cohort (811 patients in one in-memory store): the agent
   with ``dry_run_model(steps=8)`` on ``pairs`` pairs; per run, (``usage.wall_s`` -
   ``usage.model_s``) / ``details["steps"]`` — graph, skeleton, tool calls, rendering and
   bookkeeping, without the model's time — as median / p90 / p95 (target: median <= 20 ms),
   split into tool-call time per step and the rest; then the same at 2 and 16 steps. The graph
   is compiled (``build_graph``) before the first run of each model and timed apart.
   The overhead includes the tracer's local count of each prompt, made because the mock
   reports no usage (a real server does, and then nothing is counted): an upper bound.
b. context tokens per question, `small` cohort: every runner with ``dry_run_model(steps=4)`` on
   the same ``pairs`` pairs; per item ``usage.prompt_tokens`` (summed over the run's model
   calls), ``usage.max_prompt_tokens``, ``model_calls`` and, for full_context, whether and how
   much it truncated; per runner median / p90 / max and the ratios of the medians. Counts are
   local (cl100k via the offline tokenizer) because the mock reports none.
c. wall time per question per runner on `small`, without the model's time.
"""

from __future__ import annotations

import asyncio
import gc
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recordagent.llm.mock import MockModel
from recordagent.llm.types import Completion
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.runners import RUNNER_NAMES, AgentRunner, Answer, Runner, build_runner
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings
from recordagent.sources.synthetic import generate_cohort, load_preset
from recordagent.tools.recall import LEVEL1_QUESTIONS

__all__ = ["bench_runners", "runners_summary"]

Json = dict[str, Any]
OVERHEAD_TARGET_MS = 20.0  # median agent overhead per step, at most
AGENT_STEPS = (2, 8, 16)  # scripted tool steps; 8 is the headline figure
TOKEN_STEPS = 4  # scripted tool steps of the agent in the context-token comparison
# The budgets a 16-step dry run would hit (12 act calls, 200k tokens) are lifted for (a), so
# every run ends by the mock's 'finish'; nothing else in the settings changes.
AGENT_BUDGETS = {"max_steps": 40, "max_tokens": 10_000_000}

_CATEGORIES: dict[str, AnswerSpec] = {
    "isotype": AnswerSpec(type="category", allowed=("IgG", "IgA", "light chain", "other")),
    "light_chain": AnswerSpec(type="category", allowed=("kappa", "lambda")),
    "iss_stage": AnswerSpec(type="category", allowed=("I", "II", "III")),
    "riss_stage": AnswerSpec(type="category", allowed=("I", "II", "III")),
    "bm_plasma_cells_at_diagnosis": AnswerSpec(type="number", unit="%"),
    "crs_max_grade": AnswerSpec(type="count", description="CRS grade, 0 if none."),
}


def _level1_spec(kind: str) -> AnswerSpec:
    """The answer type of a level-1 fact kind (dates, yes/no findings, categories)."""
    if kind in _CATEGORIES:
        return _CATEGORIES[kind]
    if kind.endswith("_date"):
        return AnswerSpec(type="date")
    if kind in {"del17p", "t4_14", "t14_16", "gain1q", "crab_bone_lesions", "transplant_eligible"}:
        return AnswerSpec(type="boolean")
    return AnswerSpec(type="text")


# (key, level, question, answer, checklist): level-2/3 questions on top of the level-1 ones.
_HIGHER: list[tuple[str, int, str, AnswerSpec, tuple[str, ...]]] = [
    (
        "min_mprotein_line1",
        2,
        "What was the lowest M-protein during the first line of therapy?",
        AnswerSpec(type="number", unit="g/dL"),
        (),
    ),
    (
        "lines_of_therapy",
        2,
        "How many lines of therapy has the patient received?",
        AnswerSpec(type="count"),
        (),
    ),
    (
        "best_response_line1",
        2,
        "What was the best response to the first line of therapy?",
        AnswerSpec(type="category", allowed=("sCR", "CR", "VGPR", "PR", "MR", "SD", "PD")),
        (),
    ),
    (
        "first_progression_date",
        2,
        "When did the disease first progress after the first line of therapy?",
        AnswerSpec(type="date"),
        (),
    ),
    (
        "triple_class_refractory",
        3,
        "Is the patient triple-class refractory?",
        AnswerSpec(type="boolean"),
        (
            "refractory to an immunomodulatory drug",
            "refractory to a proteasome inhibitor",
            "refractory to an anti-CD38 antibody",
        ),
    ),
]


# -- helpers ------------------------------------------------------------------------------------


class TimedModel:
    """A ChatModel passing every call to ``inner`` and summing the time spent inside it."""

    def __init__(self, inner: MockModel) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.inner.name

    @property
    def is_mock(self) -> bool:
        """The wrapped model's flag."""
        return self.inner.is_mock

    async def complete(self, messages: Any, *args: Any, **kwargs: Any) -> Completion:
        """The wrapped model's completion, timed."""
        clock = time.perf_counter()
        try:
            return await self.inner.complete(messages, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - clock

    def take(self) -> float:
        """Seconds spent in the model since the last call, and restart the count."""
        seconds, self.seconds = self.seconds, 0.0
        self.inner.requests.clear()  # the mock keeps every request; nothing here needs them
        return seconds


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> Json:
    """Median, p90, p95, max and mean of ``values`` times ``scale``, rounded.

    Args:
        values: One figure per run.
        scale: Factor applied first (1000 for seconds to milliseconds).
        digits: Decimals kept.

    Returns:
        The figures and how many values they summarise.
    """
    data = np.asarray(values, dtype=float) * scale
    return {
        "n": len(data),
        "median": round(float(np.median(data)), digits),
        "p90": round(float(np.percentile(data, 90)), digits),
        "p95": round(float(np.percentile(data, 95)), digits),
        "max": round(float(data.max()), digits),
        "mean": round(float(data.mean()), digits),
    }


def questions() -> list[tuple[str, int, str, AnswerSpec, tuple[str, ...]]]:
    """The bench's questions: every level-1 question, then the level-2/3 ones."""
    level1 = [(kind, 1, text, _level1_spec(kind), ()) for kind, text in LEVEL1_QUESTIONS.items()]
    return [*level1, *_HIGHER]


def draw_items(store: RecordStore, n: int, seed: int) -> list[EvalItem]:
    """``n`` distinct (patient, question) pairs of ``store``, drawn with ``seed``."""
    patients = store.patient_ids()
    asked = questions()
    rng = random.Random(seed)
    picks = rng.sample(range(len(patients) * len(asked)), min(n, len(patients) * len(asked)))
    items = []
    for pick in picks:
        patient = patients[pick // len(asked)]
        key, level, text, spec, checklist = asked[pick % len(asked)]
        items.append(
            EvalItem(
                id=f"bench/{key}/{patient}",
                patient_id=patient,
                question=text,
                answer=spec,
                template_id=key,
                level=level,
                checklist=checklist,
            )
        )
    return items


def load_cohort(preset: str, seed: int, folder: Path) -> tuple[RecordStore, Json]:
    """Generate the cohort into ``folder`` (reused if it holds one) and load it in memory.

    Same generator and load settings as ``bench_tools.py``; the caller closes the store.
    """
    facts: Json = {"preset": preset}
    if not (folder / "documents.parquet").is_file():
        clock = time.perf_counter()
        generate_cohort(load_preset(preset), seed, folder)
        facts["generate_seconds"] = round(time.perf_counter() - clock, 2)
    store = connect()
    clock = time.perf_counter()
    report = load_bundle(store, folder, settings=Settings(chunking={"workers": 2}))
    facts["load_seconds"] = round(time.perf_counter() - clock, 2)
    facts["counts"] = report.counts
    return store, facts


async def _run(runner: Runner, item: EvalItem, store: RecordStore, model: TimedModel) -> Json:
    """One run and its figures (mock time from the timer, the rest from the Answer)."""
    model.take()
    answer: Answer = await runner.run(item, store.scope(item.patient_id), model)
    usage = answer.usage
    return {
        "item": item.id,
        "status": answer.status,
        "wall_s": usage.wall_s,
        "model_s": usage.model_s,
        "mock_s": model.take(),
        "model_calls": usage.model_calls,
        "tool_calls": usage.tool_calls,
        "prompt_tokens": usage.prompt_tokens,
        "max_prompt_tokens": usage.max_prompt_tokens,
        "tool_s": sum(e.duration_s for e in answer.trace if e.kind == "tool_call"),
        "tool_result_tokens": sum(
            e.result_tokens or 0 for e in answer.trace if e.kind == "tool_call"
        ),
        "context_s": sum(e.duration_s for e in answer.trace if e.kind in {"context", "retrieval"}),
        "steps": answer.details.get("steps"),
        "stop": answer.details.get("stop"),
        "truncated": answer.details.get("truncated"),
        "document_tokens_dropped": answer.details.get("document_tokens_dropped"),
        "lab_values_dropped": answer.details.get("lab_values_dropped"),
        "events_dropped": answer.details.get("events_dropped"),
        "documents_dropped": (
            answer.details["documents_total"] - answer.details["documents_kept"]
            if "documents_total" in answer.details
            else None
        ),
    }


# -- a. agent overhead per step -----------------------------------------------------------------


async def _agent_runs(
    store: RecordStore, items: list[EvalItem], steps: int, settings: Settings
) -> Json:
    """The agent at ``steps`` scripted tool steps on every item: per-run figures."""
    runner = AgentRunner(settings)
    model = TimedModel(dry_run_model(steps=steps))
    clock = time.perf_counter()
    runner.graph(model)  # what the first run of a model would compile
    compile_s = time.perf_counter() - clock
    first = await _run(runner, items[0], store, model)  # warm-up, not in the figures
    gc.collect()
    runs = [await _run(runner, item, store, model) for item in items]
    return {"compile_s": compile_s, "first": first, "runs": runs}


def _per_step(runs: list[Json]) -> Json:
    """The per-run per-step figures (ms) of a batch of agent runs."""
    overhead = [(r["wall_s"] - r["model_s"]) / r["steps"] for r in runs]
    tools = [r["tool_s"] / r["steps"] for r in runs]
    rest = [o - t for o, t in zip(overhead, tools, strict=True)]
    skeleton = [r["context_s"] / r["steps"] for r in runs]
    return {
        "overhead_ms": spread(overhead, 1000),
        "tool_calls_ms": spread(tools, 1000),
        "rest_ms": spread(rest, 1000),
        "skeleton_ms": spread(skeleton, 1000),
        "graph_and_bookkeeping_ms": spread(
            [r - k for r, k in zip(rest, skeleton, strict=True)], 1000
        ),
        "mock_ms": spread([r["mock_s"] / r["steps"] for r in runs], 1000),
        # Tracer's model time minus the time measured inside the mock: ~0 unless the tracer
        # charges its own work to the model.
        "model_time_not_in_mock_ms": spread(
            [(r["model_s"] - r["mock_s"]) / r["steps"] for r in runs], 1000
        ),
    }


def bench_agent_overhead(store: RecordStore, items: list[EvalItem]) -> Json:
    """Agent overhead per step at 2, 8 and 16 scripted steps on ``items`` (module doc, a)."""
    settings = Settings(runners={"agent": AGENT_BUDGETS})
    builds = []
    for _ in range(5):  # AgentRunner.graph calls build_graph on a model's first use
        runner, model = AgentRunner(settings), dry_run_model()
        clock = time.perf_counter()
        runner.graph(model)
        builds.append(time.perf_counter() - clock)
    result: Json = {
        "items": len(items),
        "settings_changed": {"runners.agent": AGENT_BUDGETS},
        "build_graph_ms": spread(builds, 1000),
        "target_median_ms": OVERHEAD_TARGET_MS,
        "notes": {
            "steps": "details['steps'] counts the act calls, the last of which calls finish: "
            "N scripted tool steps make N + 1 steps.",
            "overhead": "(usage.wall_s - usage.model_s) / details['steps'] per run. tool_calls: "
            "the run's tool_call event durations (tool, rendering, result token count) / steps; "
            "rest = overhead - tool_calls = skeleton + graph_and_bookkeeping.",
            "token_counting": "the tracer counts every prompt locally because the mock reports "
            "no usage (a real server does, and nothing is counted then); that count is part of "
            "the overhead here, so the figures are an upper bound. usage.model_s is the time "
            "inside model.complete only (model_time_not_in_mock checks this).",
        },
        "by_steps": {},
    }
    every: list[Json] = []
    for steps in AGENT_STEPS:
        batch = asyncio.run(_agent_runs(store, items, steps, settings))
        runs = batch["runs"]
        first = batch["first"]
        result["by_steps"][str(steps)] = {
            "scripted_tool_steps": steps,
            "details_steps": dict(Counter(r["steps"] for r in runs)),
            "stops": dict(Counter(str(r["stop"]) for r in runs)),
            "statuses": dict(Counter(r["status"] for r in runs)),
            "per_step": _per_step(runs),
            "per_run": {
                "wall_ms": spread([r["wall_s"] for r in runs], 1000),
                "model_ms": spread([r["model_s"] for r in runs], 1000),
                "model_calls": spread([r["model_calls"] for r in runs], digits=1),
                "tool_calls": spread([r["tool_calls"] for r in runs], digits=1),
                "prompt_tokens": spread([r["prompt_tokens"] for r in runs], digits=0),
                "tool_result_tokens": spread([r["tool_result_tokens"] for r in runs], digits=0),
            },
            "graph_compile_ms": round(batch["compile_s"] * 1000, 3),
            "warm_up_run_wall_ms": round(first["wall_s"] * 1000, 3),
            "overhead_ms_per_run": [
                round((r["wall_s"] - r["model_s"]) / r["steps"] * 1000, 3) for r in runs
            ],
        }
        every.extend(runs)
    headline = result["by_steps"]["8"]["per_step"]["overhead_ms"]
    result["met"] = headline["median"] <= OVERHEAD_TARGET_MS
    medians = [v["per_step"]["overhead_ms"]["median"] for v in result["by_steps"].values()]
    result["flatness_max_over_min_median"] = round(max(medians) / min(medians), 3)
    # Per-run overhead against steps, all runs: the slope is the cost of one more step, the
    # intercept what a run costs whatever its length.
    steps = [r["steps"] for r in every]
    overhead = [(r["wall_s"] - r["model_s"]) * 1000 for r in every]
    slope, intercept = np.polyfit(steps, overhead, 1)
    result["fit"] = {
        "marginal_ms_per_step": round(float(slope), 3),
        "fixed_ms_per_run": round(float(intercept), 3),
    }
    return result


# -- b, c. context tokens and wall time per runner ----------------------------------------------


async def _runner_runs(store: RecordStore, items: list[EvalItem], settings: Settings) -> Json:
    """Every runner on every item (same items): per-run figures by runner."""
    out: Json = {}
    for name in RUNNER_NAMES:
        runner = build_runner(name, settings)
        model = TimedModel(dry_run_model(steps=TOKEN_STEPS))
        await _run(runner, items[0], store, model)  # warm-up (and the agent's graph)
        gc.collect()
        out[name] = [await _run(runner, item, store, model) for item in items]
    return out


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def bench_runner_tokens(store: RecordStore, items: list[EvalItem]) -> Json:
    """Context tokens and wall time per question for each runner (module doc, b and c)."""
    by_runner = asyncio.run(_runner_runs(store, items, Settings()))
    runners: Json = {}
    for name, runs in by_runner.items():
        figures: Json = {
            "prompt_tokens": spread([r["prompt_tokens"] for r in runs], digits=0),
            "max_prompt_tokens": spread([r["max_prompt_tokens"] for r in runs], digits=0),
            "model_calls": spread([r["model_calls"] for r in runs], digits=1),
            "wall_ms": spread([r["wall_s"] for r in runs], 1000),
            "wall_without_model_ms": spread([r["wall_s"] - r["model_s"] for r in runs], 1000),
            "wall_without_mock_ms": spread([r["wall_s"] - r["mock_s"] for r in runs], 1000),
            "statuses": dict(Counter(r["status"] for r in runs)),
            "per_item_prompt_tokens": [r["prompt_tokens"] for r in runs],
        }
        if name == "agent":
            figures["tool_calls"] = spread([r["tool_calls"] for r in runs], digits=1)
        if name == "full_context":
            dropped = [r["document_tokens_dropped"] or 0 for r in runs]
            figures["truncated_items"] = sum(1 for r in runs if r["truncated"])
            figures["items_with_documents_dropped"] = sum(1 for r in runs if r["documents_dropped"])
            figures["document_tokens_dropped"] = spread(dropped, digits=0)
            figures["documents_dropped"] = spread([r["documents_dropped"] for r in runs], digits=0)
            figures["lab_values_dropped"] = spread(
                [r["lab_values_dropped"] for r in runs], digits=0
            )
            figures["events_dropped"] = spread([r["events_dropped"] for r in runs], digits=0)
            figures["per_item_truncated"] = [bool(r["truncated"]) for r in runs]
            figures["per_item_document_tokens_dropped"] = dropped
        runners[name] = figures
    median = {name: runners[name]["prompt_tokens"]["median"] for name in runners}
    return {
        "items": [item.id for item in items],
        "agent_scripted_tool_steps": TOKEN_STEPS,
        "note": (
            "Mock model (dry_run_model(steps=4)): prompt tokens are counted locally with the "
            "offline cl100k tokenizer, since the mock reports none. The agent's figure follows "
            "the scripted policy (plan, 4 tool steps, finish, reflect, answer): it measures the "
            "plumbing, not a real model's behaviour; the RAG and full-context figures are fixed "
            "by their retrieval and packing and hold for any model."
        ),
        "runners": runners,
        "median_ratios": {
            "full_context_over_single_pass_rag": _ratio(
                median["full_context"], median["single_pass_rag"]
            ),
            "full_context_over_iterative_rag": _ratio(
                median["full_context"], median["iterative_rag"]
            ),
            "full_context_over_agent": _ratio(median["full_context"], median["agent"]),
            "agent_over_single_pass_rag": _ratio(median["agent"], median["single_pass_rag"]),
        },
    }


# -- orchestration ------------------------------------------------------------------------------


def bench_runners(pairs: int, seed: int, cohorts: Path | None = None) -> Json:
    """Context tokens on `small`, then agent overhead on `reference` (module doc).

    Args:
        pairs: (patient, question) pairs per measurement.
        seed: Seed of the cohorts and of the drawing of pairs.
        cohorts: A folder holding (or to hold) ``small/`` and ``reference/``; a temporary one
            if None.

    Returns:
        The figures.
    """
    result: Json = {"pairs": pairs, "questions": len(questions())}
    with tempfile.TemporaryDirectory(prefix="bench-runners-") as scratch:
        folder = cohorts or Path(scratch)
        clock = time.perf_counter()
        store, result["small_cohort"] = load_cohort("small", seed, folder / "small")
        with store:
            result["tokens_small"] = bench_runner_tokens(store, draw_items(store, pairs, seed))
        result["tokens_small"]["seconds"] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        store, result["reference_cohort"] = load_cohort("reference", seed, folder / "reference")
        with store:
            result["agent_reference"] = bench_agent_overhead(store, draw_items(store, pairs, seed))
        result["agent_reference"]["seconds"] = round(time.perf_counter() - clock, 2)
    return result


def runners_summary(result: Json) -> list[str]:
    """Lines for humans."""
    agent = result["agent_reference"]
    head = agent["by_steps"]["8"]["per_step"]
    lines = [
        f"agent overhead per step (reference, {agent['items']} runs, 8 scripted steps): "
        f"median {head['overhead_ms']['median']:.1f} ms, p90 {head['overhead_ms']['p90']:.1f}, "
        f"p95 {head['overhead_ms']['p95']:.1f} (target <= {OVERHEAD_TARGET_MS:.0f}: "
        f"{'ok' if agent['met'] else 'MISSED'}); tool calls {head['tool_calls_ms']['median']:.1f}"
        f" ms, rest {head['rest_ms']['median']:.1f} ms; build_graph "
        f"{agent['build_graph_ms']['median']:.1f} ms",
        "  by steps (median ms/step): "
        + ", ".join(
            f"{k}: {v['per_step']['overhead_ms']['median']:.1f}"
            for k, v in agent["by_steps"].items()
        ),
    ]
    tokens = result["tokens_small"]
    lines.append(f"context tokens per question (small, {len(tokens['items'])} items, mock):")
    for name, figures in tokens["runners"].items():
        prompt = figures["prompt_tokens"]
        lines.append(
            f"  {name}: median {prompt['median']:,.0f}, p90 {prompt['p90']:,.0f}, "
            f"max {prompt['max']:,.0f} tokens; wall without model "
            f"{figures['wall_without_model_ms']['median']:.1f} ms"
        )
    lines.append(
        "  median ratios: " + ", ".join(f"{k} {v}" for k, v in tokens["median_ratios"].items())
    )
    return lines
