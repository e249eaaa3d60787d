"""``recordagent extract``: every patient × question into a results table (library: extract()).

The plan (items, and tokens and cost estimated from a dry run over a sample of real records) is
printed first; ``--plan`` stops there. The run shows a progress bar with the rate, ETA, failed
answers and cost so far, and ends with a summary: statuses, tokens, cost, wall time and items
per second. Running the same command again continues the extraction (only what is missing is
asked). A run stopped by ``--max-cost`` writes its table and exits 3 with what to do; failed
answers (the endpoint refused, timed out, …) exit 4 with their causes and what to do about
each, and a rerun asks them again.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from recordagent.cli.engines import Engine, EngineOption, RayAddressOption, check_engine
from recordagent.cli.render import output_console
from recordagent.cli.run_progress import run_progress
from recordagent.errors import ModelError, UserError
from recordagent.evaluation.failures import FAILURE_ADVICE
from recordagent.evaluation.log import RunLog
from recordagent.evaluation.run import ItemProgress
from recordagent.extraction import (
    Estimate,
    ExtractionPlan,
    ExtractionProgress,
    ExtractionSummary,
    extract,
)
from recordagent.extraction.plan import DEFAULT_SAMPLE
from recordagent.extraction.run import FAILING_ENDPOINT, LOG_NAME
from recordagent.questions.answers import AnswerSpec, answer_spec
from recordagent.runners import RUNNER_NAMES
from recordagent.settings import Settings

__all__ = ["BUDGET_EXIT_CODE", "extract_command", "failures_message"]

BUDGET_EXIT_CODE = 3
"""Exit code of a run that ``--max-cost`` stopped (its answers are kept; rerun to continue)."""


class ModelChoice(StrEnum):
    """Which model answers."""

    settings = "settings"
    mock = "mock"


def extract_command(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="DuckDB store file with the records.")],
    out: Annotated[
        Path, typer.Option(help="Output folder: extraction.jsonl (run log), results.parquet.")
    ],
    templates: Annotated[
        Path | None, typer.Option(help="Question template folder (asked of every patient).")
    ] = None,
    question: Annotated[
        list[str] | None,
        typer.Option("--question", help="A question asked of every patient (repeatable)."),
    ] = None,
    answer: Annotated[
        str | None,
        typer.Option(
            help="Answer type of --question: date, number, count, boolean, category, list, text."
        ),
    ] = None,
    allowed: Annotated[
        str | None,
        typer.Option(help="The allowed values of a category or list answer, comma-separated."),
    ] = None,
    patient: Annotated[
        list[str] | None, typer.Option("--patient", help="A patient id (repeatable).")
    ] = None,
    patients: Annotated[
        Path | None, typer.Option(help="File of patient ids, one a line (# comments).")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(help="SQL condition over the patients table, e.g. \"sex = 'female'\"."),
    ] = None,
    runner: Annotated[str, typer.Option(help=f"Runner: {', '.join(RUNNER_NAMES)}.")] = "agent",
    model: Annotated[
        ModelChoice,
        typer.Option(
            help="'settings' (the configured model; the scripted dry run, with a banner, when "
            "none is configured) or 'mock' (the scripted dry run)."
        ),
    ] = ModelChoice.settings,
    concurrency: Annotated[
        int, typer.Option(help="Items answered at once (in all, across a cluster).")
    ] = 8,
    plan: Annotated[
        bool, typer.Option("--plan", help="Print the plan (items, tokens, cost) and stop.")
    ] = False,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Budget in dollars for the whole extraction (a priced model)."),
    ] = None,
    sample: Annotated[
        int, typer.Option(help="Items dry-run for the plan's estimate (0: none).")
    ] = DEFAULT_SAMPLE,
    engine: EngineOption = Engine.local,
    ray_address: RayAddressOption = None,
) -> None:
    """Answer every selected patient × question into OUT/results.parquet (resumable)."""
    settings: Settings = ctx.obj
    if patient and patients is not None:
        raise UserError("give --patient or --patients, not both")
    check_engine(engine, ray_address)
    console = output_console()
    display = _Display(console)
    try:
        result = extract(
            db,
            out=out,
            templates=templates,
            questions=question or None,
            answer=_answer(answer, allowed),
            patients=patient or None,
            patients_file=patients,
            where=where,
            runner=runner,
            model=model.value,
            settings=settings,
            concurrency=concurrency,
            max_cost=max_cost,
            plan_only=plan,
            sample=sample,
            engine=engine.value,
            ray_address=ray_address,
            progress=display,
        )
    except KeyboardInterrupt:
        raise UserError(_interrupted(out / LOG_NAME), exit_code=signal.SIGINT + 128) from None
    summary = result.summary
    if summary is None:
        return
    if summary.failed_by_error:
        raise UserError(
            f"{summary.failed_by_error} item(s) failed with an unexpected error (a bug, or a Ray "
            "task lost after its retries); their answers are logged as failed with the error's "
            "kind. Fix the cause and run the same command to retry them",
            exit_code=1,
        )
    if summary.stopped_by_budget:
        failed = f"\n{failures_message(summary)}" if summary.failures else ""
        raise UserError(
            f"stopped by --max-cost ${max_cost or 0:.4f}: the extraction has spent "
            f"${summary.total_cost_usd or 0:.4f}; {summary.not_started} item(s) not asked. Run "
            "the same command with a larger --max-cost to continue" + failed,
            exit_code=BUDGET_EXIT_CODE,
        )
    if summary.failures or summary.stopped_by_failures:
        raise ModelError(failures_message(summary))


def _answer(answer: str | None, allowed: str | None) -> AnswerSpec | None:
    """The answer spec of --answer and --allowed (None: questions answer as text)."""
    if allowed is None:
        return None if answer is None else answer_spec(answer)
    values = [v.strip() for v in allowed.split(",") if v.strip()]
    return answer_spec(answer or "category", values)


def _interrupted(log: Path) -> str:
    """What an interrupt left: the answers kept in the log, and how to go on."""
    if not log.is_file():
        return "interrupted before any item was answered"
    return (
        f"interrupted: the answers so far are kept in {log}; run the same command to continue "
        "(the table is written when a run ends)"
    )


def failures_message(summary: ExtractionSummary) -> str:
    """The failed answers by cause, what to do about each, and that a rerun asks them again."""
    failed = sum(summary.failures.values())
    lines = [
        (
            f"the endpoint failed {FAILING_ENDPOINT} answers in a row: no further item was "
            f"started ({summary.not_started} not asked). "
            if summary.stopped_by_failures
            else ""
        )
        + f"{failed} of {summary.items} answers failed; run the same command to ask them again "
        "once the cause is fixed:"
    ]
    for cause, count in summary.failures.items():
        advice = FAILURE_ADVICE.get(cause, "")  # type: ignore[call-overload]
        lines.append(f"  {cause} {count}: {advice}")
    return "\n".join(lines)


class _Display(ExtractionProgress):
    def __init__(self, console: Console) -> None:
        self.console = console

    def planned(self, plan: ExtractionPlan) -> None:
        if plan.mock:
            self.console.print(
                Panel(
                    "MOCK MODEL: answers come from a scripted dry-run model, not a language "
                    "model.\nThe table says nothing about any record; configure a model for "
                    "results.",
                    title="[bold]mock[/]",
                    style="bold yellow",
                )
            )
        self.console.print(render_plan(plan))

    @contextlib.contextmanager
    def running(self, log: RunLog, total: int) -> Iterator[ItemProgress]:
        with run_progress(self.console, log, total, "extract") as advance:
            yield advance

    def finished(self, summary: ExtractionSummary) -> None:
        self.console.print(render_summary(summary))


def render_plan(plan: ExtractionPlan) -> Table:
    """The plan as a table: what will be asked and what it is estimated to cost."""
    table = Table(title="extraction plan", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("runner, model", f"{plan.runner}, {escape(plan.model)}")
    table.add_row("patients × questions", f"{plan.patients} × {plan.questions}")
    table.add_row("items", f"{plan.items} ({plan.done} already answered, {plan.to_run} to run)")
    for template, why in plan.skipped_templates:
        table.add_row("skipped", f"{escape(template)}: {escape(why)}")
    if plan.sample:
        note = f"estimated from a dry run of {plan.sample} sampled item(s); 95 % interval"
        table.add_row("estimate", note)
        for name, estimate in (
            ("prompt tokens", plan.prompt_tokens),
            ("completion tokens", plan.completion_tokens),
            ("model calls", plan.model_calls),
        ):
            if estimate is not None:
                table.add_row(name, _shown(estimate, "{:,.0f}"))
        if plan.cost_usd is not None:
            table.add_row("cost", _shown(plan.cost_usd, "${:,.4f}"))
        else:
            table.add_row("cost", f"unknown: {escape(plan.model)} has no price")
    return table


def _shown(estimate: Estimate, form: str) -> str:
    return (
        f"{form.format(estimate.total)} ({form.format(estimate.low)}–"
        f"{form.format(estimate.high)}); per item median {form.format(estimate.per_item_median)}"
        f", p10–p90 {form.format(estimate.per_item_p10)}–{form.format(estimate.per_item_p90)}"
    )


def _why_stopped(summary: ExtractionSummary) -> str:
    if summary.stopped_by_budget:
        return "the budget is spent"
    if summary.stopped_by_failures:
        return "the endpoint failing"
    return "the run stopped"


def render_summary(summary: ExtractionSummary) -> Table:
    """The run's summary: statuses, tokens, cost, time and rate, and the files written."""
    table = Table(title="extraction", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row(
        "items",
        f"{summary.items}: {summary.new} asked now, {summary.already} answered before"
        + (
            f", {summary.not_started} not asked ({_why_stopped(summary)})"
            if summary.not_started
            else ""
        ),
    )
    table.add_row("statuses", ", ".join(f"{s} {n}" for s, n in summary.statuses.items()))
    table.add_row(
        "tokens (this run)",
        f"{summary.prompt_tokens:,} prompt + {summary.completion_tokens:,} completion",
    )
    cost = "unpriced" if summary.cost_usd is None else f"${summary.cost_usd:.4f}"
    total = "" if summary.total_cost_usd is None else f" (extraction ${summary.total_cost_usd:.4f})"
    table.add_row("cost (this run)", cost + total)
    table.add_row("wall time", f"{summary.wall_s:.1f} s, {summary.items_per_s:.2f} items/s")
    table.add_row("run log", escape(str(summary.log)))
    table.add_row("table", escape(str(summary.table)))
    return table
