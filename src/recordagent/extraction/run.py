"""An extraction: every selected patient × question answered by one runner, into a table.

:func:`extract` is ``recordagent extract`` without a terminal. Everything that can be checked is
checked before the first model call: the patients and questions, the output folder and the log
in it, the model's price when a budget is set, and that the endpoint accepts a connection. The
answers go into an append-only run log (``OUT/extraction.jsonl``, one record written and flushed
per item), so an extraction is resumable and idempotent: running the same command again skips
every item already answered (and retries items that failed by an unexpected error); a killed run
loses at most the items in flight. The table (``OUT/results.parquet``,
:data:`~recordagent.extraction.table.EXTRACTION_COLUMNS`) is made from the log at the end of
every run, whole or not at all.

A budget (``max_cost``, in dollars, for the whole extraction: what the log already spent counts)
is checked twice: before the run, against the plan's estimate (a run estimated to exceed it is
refused with nothing asked), and while it runs, before each item starts: no item starts once
what is spent, plus the items in flight at the run's mean cost per item, would pass it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field

from recordagent.errors import UserError
from recordagent.evaluation.failures import run_failures
from recordagent.evaluation.log import (
    RunLog,
    RunLogContents,
    RunLogMismatch,
    RunManifest,
    RunRecord,
    superseded,
)
from recordagent.evaluation.manifest import store_data_fingerprint
from recordagent.evaluation.results_table import write_results
from recordagent.evaluation.run import ItemEngine, ItemProgress, run_items
from recordagent.evaluation.study import check_reachable, study_model
from recordagent.extraction.items import ExtractionItems, question_items, template_items
from recordagent.extraction.patients import select_patients
from recordagent.extraction.plan import DEFAULT_SAMPLE, ExtractionPlan, plan_extraction
from recordagent.extraction.table import extraction_frame
from recordagent.llm.client import close_model
from recordagent.llm.pricing import load_prices
from recordagent.paths import check_output_folder, write_text
from recordagent.questions.answers import AnswerSpec, answer_spec
from recordagent.questions.items import Question
from recordagent.records.db import RecordStore, opened_store
from recordagent.runners import build_runner
from recordagent.settings import Settings, load_settings

__all__ = [
    "FAILING_ENDPOINT",
    "LOG_NAME",
    "PLAN_NAME",
    "RAY_MISSING",
    "TABLE_NAME",
    "Extraction",
    "ExtractionProgress",
    "ExtractionSummary",
    "extract",
    "extract_async",
]

LOG_NAME = "extraction.jsonl"
TABLE_NAME = "results.parquet"
PLAN_NAME = "plan.json"

EngineChoice = Literal["local", "ray"]

RAY_MISSING = "the Ray engine needs Ray: pip install 'recordagent[ray]' (or pip install ray)"


class ExtractionSummary(BaseModel):
    """What an extraction run did, and where the whole extraction stands."""

    run_id: str = Field(description="The extraction's run id (kept when it is resumed).")
    items: int = Field(description="Items of the extraction.")
    new: int = Field(description="Items asked by this run (failed answers included).")
    already: int = Field(description="Items answered by earlier runs (not asked again).")
    not_started: int = Field(
        description="Items not asked: the budget was spent, or the endpoint failing."
    )
    statuses: dict[str, int] = Field(description="Answers by status, over the whole extraction.")
    failed_by_error: int = Field(description="Items failed by an unexpected error (a bug).")
    prompt_tokens: int = Field(description="Prompt tokens of this run.")
    completion_tokens: int = Field(description="Completion tokens of this run.")
    cost_usd: float | None = Field(description="What this run cost; None for unpriced models.")
    total_cost_usd: float | None = Field(description="What the whole extraction cost so far.")
    wall_s: float = Field(description="Wall time of this run, in seconds.")
    items_per_s: float = Field(description="Items answered per second by this run.")
    stopped_by_budget: bool = Field(description="True when max_cost stopped the run.")
    stopped_by_failures: bool = Field(
        description="True when the endpoint failed FAILING_ENDPOINT answers in a row (refused, "
        "rate limited, unreachable, server errors, timeouts) and the run stopped starting items."
    )
    failures: dict[str, int] = Field(
        description="Failed answers by cause, over the whole extraction (asked again by a rerun)."
    )
    log: Path = Field(description="The run log.")
    table: Path = Field(description="The results table.")


class Extraction(BaseModel):
    """An extraction's plan and, unless only planned, its summary and table."""

    model_config = {"arbitrary_types_allowed": True}

    plan: ExtractionPlan
    summary: ExtractionSummary | None = None
    table: pl.DataFrame | None = None


class ExtractionProgress:
    """What an extraction reports while it runs. Every method does nothing: override them."""

    def planned(self, plan: ExtractionPlan) -> None:
        """The extraction passed its checks and is planned; no model was asked yet."""

    @contextlib.contextmanager
    def running(self, log: RunLog, total: int) -> Iterator[ItemProgress]:
        """Around answering: yields the callback told ``(done, total)`` items.

        ``log.records`` grows as items finish (their status, tokens and cost).
        """
        yield lambda done, total: None

    def finished(self, summary: ExtractionSummary) -> None:
        """The run ended (all done, or the budget spent) and the table is written."""


def extract(
    store: RecordStore | str | Path,
    *,
    out: str | Path,
    templates: str | Path | None = None,
    questions: Sequence[str | Question] | None = None,
    answer: AnswerSpec | str | None = None,
    patients: Sequence[str] | None = None,
    patients_file: str | Path | None = None,
    where: str | None = None,
    runner: str = "agent",
    model: Literal["settings", "mock"] = "settings",
    settings: Settings | None = None,
    concurrency: int = 8,
    max_cost: float | None = None,
    plan_only: bool = False,
    sample: int = DEFAULT_SAMPLE,
    engine: EngineChoice | ItemEngine = "local",
    ray_address: str | None = None,
    progress: ExtractionProgress | None = None,
) -> Extraction:
    """Answer every selected patient × question with ``runner`` into ``out``.

    Starts an event loop of its own: inside a running loop await :func:`extract_async`.

    Args:
        store: The record store (a DuckDB file, opened read-only; or an open store).
        out: The output folder: ``extraction.jsonl`` (the run log), ``results.parquet``.
        templates: A question template folder (SQL-derived or gold-derived).
        questions: Questions asked of every patient (text, or :class:`Question`).
        answer: The answer type of questions given as text (default: text).
        patients: Patient ids (default: every patient of the store).
        patients_file: A file of patient ids, one a line.
        where: A SQL condition over ``patients`` narrowing the patients (read-only).
        runner: The runner (agent by default).
        model: 'settings' (the configured model; the dry-run mock, with a warning, when none is
            configured) or 'mock'.
        settings: The settings (loaded from the environment when omitted).
        concurrency: Items answered at once (in all, across a cluster).
        max_cost: Budget in dollars for the whole extraction; needs a priced model.
        plan_only: Plan (counts, estimated tokens and cost) and stop before any model call.
        sample: Items dry-run for the plan's estimate (0: no estimate unless a budget is set).
        engine: 'local' (this process), 'ray' (a Ray cluster), or an ItemEngine.
        ray_address: The Ray cluster to join (default: a local one).
        progress: Told what happens (default: nothing is shown).

    Raises:
        UserError: A check failed (nothing was asked), the budget is estimated to be exceeded,
            or the run had to stop (the items finished stay in the log).
    """
    return asyncio.run(
        extract_async(
            store,
            out=out,
            templates=templates,
            questions=questions,
            answer=answer,
            patients=patients,
            patients_file=patients_file,
            where=where,
            runner=runner,
            model=model,
            settings=settings,
            concurrency=concurrency,
            max_cost=max_cost,
            plan_only=plan_only,
            sample=sample,
            engine=engine,
            ray_address=ray_address,
            progress=progress,
        )
    )


async def extract_async(
    store: RecordStore | str | Path,
    *,
    out: str | Path,
    templates: str | Path | None = None,
    questions: Sequence[str | Question] | None = None,
    answer: AnswerSpec | str | None = None,
    patients: Sequence[str] | None = None,
    patients_file: str | Path | None = None,
    where: str | None = None,
    runner: str = "agent",
    model: Literal["settings", "mock"] = "settings",
    settings: Settings | None = None,
    concurrency: int = 8,
    max_cost: float | None = None,
    plan_only: bool = False,
    sample: int = DEFAULT_SAMPLE,
    engine: EngineChoice | ItemEngine = "local",
    ray_address: str | None = None,
    progress: ExtractionProgress | None = None,
) -> Extraction:
    """:func:`extract` in a running event loop."""
    shown = progress or ExtractionProgress()
    run_settings = settings or load_settings()
    if concurrency < 1:
        raise UserError(f"concurrency must be at least 1, not {concurrency}")
    if sample < 0 or sample == 1:
        raise UserError(f"the plan's sample is 0 (no estimate) or 2 items or more, not {sample}")
    if max_cost is not None and not (math.isfinite(max_cost) and max_cost > 0):
        raise UserError(f"max_cost must be a number of dollars above 0, not {max_cost:g}")
    if (templates is None) == (questions is None):
        raise UserError("give a template folder or questions (one of the two)")
    folder = Path(out)
    check_output_folder(folder)
    chosen = build_runner(runner, run_settings)
    with opened_store(store, run_settings.store) as open_store:
        selected = select_patients(
            open_store,
            patients=patients,
            patients_file=Path(patients_file) if patients_file is not None else None,
            where=where,
        )
        asked = _items(open_store, selected, templates, questions, answer)
        chat = study_model(model, run_settings)
        manifest = RunManifest.create(
            chosen,
            chat,
            run_settings,
            data_fingerprint=store_data_fingerprint(open_store),
            template_set_version=asked.template_set_version,
            items=asked.items,
        )
        log_path = folder / LOG_NAME
        contents = _earlier_records(log_path, manifest)
        earlier = [] if contents is None else contents.records
        done = {r.item.id for r in earlier if not superseded(r)}
        prices = load_prices(run_settings.model.price_file)
        if max_cost is not None and not chat.is_mock and prices.price(chat.name) is None:
            raise UserError(
                f"--max-cost needs the model's price, and {chat.name!r} is not in the price "
                "table: add it to a price file (model.price_file)"
            )
        plan = await plan_extraction(
            asked.items,
            done,
            chosen,
            open_store,
            model=chat.name,
            mock=chat.is_mock,
            prices=prices,
            patients=len(selected),
            questions=asked.questions,
            skipped_templates=asked.skipped,
            # A budget is checked against the estimate: it always has one.
            sample=DEFAULT_SAMPLE if max_cost is not None and not sample else sample,
            concurrency=concurrency,
        )
        spent_before = 0.0 if contents is None else contents.spent_usd
        _check_budget(plan, max_cost, spent_before)
        shown.planned(plan)
        if plan_only:
            return Extraction(plan=plan)
        if not chat.is_mock:
            check_reachable(run_settings)
        item_engine = _engine(engine, open_store, run_settings, ray_address)
        folder.mkdir(parents=True, exist_ok=True)
        log = RunLog.open(log_path, manifest, retry_failed_answers=True)
        write_text(folder / PLAN_NAME, plan.model_dump_json(indent=2) + "\n", "plan")
        stops = _Stops(log, max_cost, _mean_cost(plan))
        started = time.perf_counter()
        already = len(log.done_item_ids())
        try:
            with shown.running(log, len(asked.items)) as on_progress:

                def advance(done_now: int, total: int) -> None:
                    stops.update()
                    on_progress(done_now, total)

                await item_engine(
                    asked.items,
                    chosen,
                    chat,
                    open_store,
                    log=log,
                    concurrency=concurrency,
                    on_progress=advance,
                    stop=stops.stop,
                )
        finally:
            await close_model(chat)
        wall = time.perf_counter() - started
        by_id = {r.item.id: r for r in log.records}
        records = [by_id[i.id] for i in asked.items if i.id in by_id]
        table = extraction_frame(records, log.manifest, open_store, slots=asked.slots)
        table_path = write_results(table, folder / TABLE_NAME, keep=[log_path])
        summary = _summary(
            log,
            records,
            asked,
            already,
            wall,
            table_path,
            stops,
            priced=prices.price(chat.name) is not None,
        )
        shown.finished(summary)
        return Extraction(plan=plan, summary=summary, table=table)


def _items(
    store: RecordStore,
    patients: Sequence[str],
    templates: str | Path | None,
    questions: Sequence[str | Question] | None,
    answer: AnswerSpec | str | None,
) -> ExtractionItems:
    if templates is not None:
        if answer is not None:
            raise UserError("an answer type goes with questions; templates state their own")
        return template_items(templates, store, patients)
    assert questions is not None
    spec = _answer_spec(answer)
    asked = []
    for question in questions:
        if isinstance(question, Question):
            asked.append(question)
        elif not str(question).strip():
            raise UserError("a question is empty: give its words")
        else:
            asked.append(Question(text=str(question), answer=spec))
    return question_items(asked, patients)


def _answer_spec(answer: AnswerSpec | str | None) -> AnswerSpec:
    if answer is None:
        return AnswerSpec(type="text")
    return answer if isinstance(answer, AnswerSpec) else answer_spec(answer)


def _earlier_records(path: Path, manifest: RunManifest) -> RunLogContents | None:
    """The extraction's log as read, if it is there; refuses another run's log."""
    try:
        contents = RunLog.check_resumable(path, manifest)
    except RunLogMismatch as exc:
        raise UserError(
            f"{exc.path} is the log of a different extraction; it differs in "
            + "; ".join(exc.differences)
            + ". Run the same extraction to continue it, or write this one to another --out"
        ) from exc
    return contents


def _check_budget(plan: ExtractionPlan, max_cost: float | None, spent: float) -> None:
    """Refuse a run whose estimated cost would take the extraction past ``max_cost``."""
    if max_cost is None or plan.cost_usd is None:
        return
    estimated = plan.cost_usd
    if spent + estimated.total > max_cost:
        raise UserError(
            f"the {plan.to_run} items to run are estimated at ${estimated.total:.4f} "
            f"(95 % interval ${estimated.low:.4f}–${estimated.high:.4f}), which with the "
            f"${spent:.4f} already spent exceeds --max-cost ${max_cost:.4f}; nothing was asked. "
            "Raise the budget, or narrow the patients or questions"
        )


FAILING_ENDPOINT = 20
"""Consecutive answers failed by the endpoint (refused, rate limited, unreachable, server errors,
timeouts: each after its retries) after which no further item starts: a revoked key, a spent
quota or a dead backend would otherwise fail every item left."""

_ENDPOINT_FAILURES = frozenset(
    {"refused", "rate_limited", "unreachable", "server_error", "timeout"}
)


def _mean_cost(plan: ExtractionPlan) -> float:
    """The plan's cost per item: what an item in flight is taken to cost before any finished."""
    if plan.cost_usd is None or not plan.to_run:
        return 0.0
    return plan.cost_usd.total / plan.to_run


class _Stops:
    """Whether the next item may start: the budget, and an endpoint that fails every call."""

    def __init__(self, log: RunLog, cap: float | None, planned_mean: float) -> None:
        self.log = log
        self.cap = cap
        self.planned_mean = planned_mean
        self.spent_total = log.spent_usd
        self.spent_run = 0.0
        self.finished_run = 0
        self.started_run = 0
        self.failing = 0  # consecutive answers the endpoint failed
        self.stopped_by: Literal["budget", "failing endpoint"] | None = None

    def update(self) -> None:
        """Count the records written since the last update."""
        for record in self.log.appended(self.finished_run):
            cost = record.answer.usage.cost_usd or 0.0
            self.spent_total += cost
            self.spent_run += cost
            self.finished_run += 1
            failure = record.answer.failure
            if record.answer.status == "failed" and failure in _ENDPOINT_FAILURES:
                self.failing += 1
            else:
                self.failing = 0

    def stop(self) -> bool:
        """True once no further item may start (asked as each item starts; it stays True)."""
        if self.stopped_by is not None:
            return True
        self.update()
        if self.failing >= FAILING_ENDPOINT:
            self.stopped_by = "failing endpoint"
            return True
        if self.cap is not None:
            in_flight = self.started_run - self.finished_run
            mean = self.spent_run / self.finished_run if self.finished_run else self.planned_mean
            if self.spent_total >= self.cap or self.spent_total + (in_flight + 1) * mean > self.cap:
                self.stopped_by = "budget"
                return True
        self.started_run += 1
        return False


def _engine(
    engine: EngineChoice | ItemEngine,
    store: RecordStore,
    settings: Settings,
    ray_address: str | None,
) -> ItemEngine:
    if engine == "local":
        return run_items
    if engine == "ray":
        try:
            from recordagent.extraction.ray_engine import ray_engine
        except ImportError as exc:
            raise UserError(RAY_MISSING) from exc

        return ray_engine(store, settings, address=ray_address)
    if isinstance(engine, str):
        raise UserError(f"unknown engine {engine!r}: use local or ray")
    return engine


def _summary(
    log: RunLog,
    records: Sequence[RunRecord],
    asked: ExtractionItems,
    already: int,
    wall: float,
    table: Path,
    stops: _Stops,
    *,
    priced: bool,
) -> ExtractionSummary:
    new_records = log.appended()
    usage = [r.answer.usage for r in new_records]
    statuses = Counter(r.answer.status for r in records)
    return ExtractionSummary(
        run_id=log.manifest.run_id,
        items=len(asked.items),
        new=len(new_records),
        already=already,
        not_started=len(asked.items) - already - len(new_records),
        statuses=dict(sorted(statuses.items())),
        failed_by_error=len(log.failed_item_ids()),
        prompt_tokens=sum(u.prompt_tokens for u in usage),
        completion_tokens=sum(u.completion_tokens for u in usage),
        cost_usd=sum(u.cost_usd or 0.0 for u in usage) if priced else None,
        total_cost_usd=log.spent_usd if priced else None,
        wall_s=round(wall, 3),
        items_per_s=round(len(new_records) / wall, 3) if wall > 0 else 0.0,
        stopped_by_budget=stops.stopped_by == "budget",
        stopped_by_failures=stops.stopped_by == "failing endpoint",
        failures=dict(run_failures(log.manifest.runner, records).causes),
        log=log.path,
        table=table,
    )
