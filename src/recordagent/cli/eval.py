"""``recordagent eval``: the flags as a suite, run by the library's ``evaluate()``.

The study checks everything it can before the first model call (an unreachable endpoint is a
one-line error with nothing written). This command shows its progress, then prints and writes
the report. Answers that fail during the run (the endpoint goes away, the prompts do not fit
the model's window) are logged as 'failed' with their cause; the command ends by counting them
per runner and cause, with what to do about each cause, and when every answer of a run failed
that is its error (exit 4, as a model error), after writing the logs and report. Items failed
by an unexpected error (a bug) end it with one error line counting them (exit 1); ``--resume``
retries them.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel

from recordagent.cli.costs import print_costs
from recordagent.cli.engines import (
    Engine,
    EngineOption,
    RayAddressOption,
    check_engine,
    ray_engine_factory,
)
from recordagent.cli.render import output_console
from recordagent.cli.run_progress import run_progress
from recordagent.errors import ModelError, UserError, validation_problems
from recordagent.evaluation.log import RunLog
from recordagent.evaluation.report import build_report, render_html, render_terminal
from recordagent.evaluation.run import ItemProgress
from recordagent.evaluation.study import (
    RunSummary,
    Study,
    StudyProgress,
    evaluate,
    study_failures,
)
from recordagent.evaluation.suite import Suite, load_suite
from recordagent.paths import write_text
from recordagent.settings import Settings

__all__ = ["eval_command"]


def eval_command(
    ctx: typer.Context,
    suite: Annotated[
        Path | None, typer.Option(help="Suite file (YAML); flags override it.")
    ] = None,
    items: Annotated[Path | None, typer.Option(help="Items file (JSONL of EvalItems).")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labels file (.csv, .jsonl, .parquet) to score against.")
    ] = None,
    db: Annotated[Path | None, typer.Option(help="DuckDB store file with the records.")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Record bundle folder, loaded into memory for the run.")
    ] = None,
    runner: Annotated[
        list[str] | None, typer.Option("--runner", help="Runner to run (repeatable).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="'settings' (the configured model; the scripted dry run, with a banner, when "
            "none is configured) or 'mock' (the scripted dry run)."
        ),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Items answered at once.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder for logs and report.")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the logs in the output folder (same items, runners, model and "
            "settings): answers the items not yet in them and retries items that failed with "
            "an unexpected error.",
        ),
    ] = False,
    engine: EngineOption = Engine.local,
    ray_address: RayAddressOption = None,
) -> None:
    """Run each runner over the items into OUT/<runner>.jsonl, then print and write the report."""
    settings: Settings = ctx.obj
    flags = {
        "items": items,
        "labels": labels,
        "runners": runner or None,
        "model": model,
        "concurrency": concurrency,
        "output": out,
    }
    plan = _suite(suite, flags, db=db, bundle=bundle)
    check_engine(engine, ray_address)
    console = output_console()
    display = _Display(console)
    logs = evaluate(
        plan,
        settings,
        resume=resume,
        progress=display,
        engine=ray_engine_factory(ray_address) if engine == Engine.ray else None,
    )
    assert display.study is not None  # planned() runs before any log is written
    _finish(console, display.study, logs)
    if any(log.failed_item_ids() for log in logs):
        raise UserError(_crash_summary(logs), exit_code=1)
    failures = study_failures(logs)
    if failures.all_failed:
        raise ModelError(failures.message())
    if failures.runs:
        console.print(failures.message(), style="yellow", highlight=False, markup=False)


def _suite(
    suite: Path | None, flags: dict[str, Any], *, db: Path | None, bundle: Path | None
) -> Suite:
    """The suite file with the flags over it, or a suite from the flags alone."""
    merged: dict[str, Any] = load_suite(suite).model_dump() if suite is not None else {}
    merged.update({k: v for k, v in flags.items() if v is not None})
    if db is not None:
        merged.update(store=db, bundle=None)
    if bundle is not None:
        merged.update(bundle=bundle, store=None)
    merged.setdefault("name", suite.stem if suite is not None else "command line")
    try:
        return Suite.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, whole="options"))
        where = f"suite {suite} with the flags" if suite is not None else "eval options"
        raise UserError(f"{where}: {problems}") from exc


class _Display(StudyProgress):
    """The study on the terminal: the mock banner, a progress bar per runner, a line each."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.study: Study | None = None

    def planned(self, study: Study) -> None:
        self.study = study
        if study.model.is_mock:
            self.console.print(
                Panel(
                    "MOCK MODEL: answers come from a scripted dry-run model, not a language "
                    "model.\nThe scores below say nothing about any model; use --model settings "
                    "for results.",
                    title="[bold]mock[/]",
                    style="bold yellow",
                )
            )

    @contextlib.contextmanager
    def loading(self, bundle: Path) -> Iterator[None]:
        with self.console.status(f"loading {bundle} into memory"):
            yield

    @contextlib.contextmanager
    def running(self, log: RunLog, total: int) -> Iterator[ItemProgress]:
        with run_progress(self.console, log, total, log.manifest.runner) as advance:
            yield advance

    def finished(self, summary: RunSummary) -> None:
        failures = summary.failures
        causes = (
            ", ".join(f"{cause} {n}" for cause, n in failures.causes)
            if failures is not None
            else ""
        )
        self.console.print(
            f"{summary.runner}: {summary.new} new answers, {summary.already} already in "
            f"{summary.path}"
            + (f", {summary.retried} failed item(s) retried" if summary.retried else "")
            + (
                f", {summary.failed_by_error} failed with an unexpected error"
                if summary.failed_by_error
                else ""
            )
            + (f"; failed answers: {causes}" if causes else ""),
            highlight=False,
            markup=False,
        )


def _finish(console: Console, study: Study, logs: Sequence[RunLog]) -> None:
    """Print the report, write it as HTML beside the logs, and say what was written."""
    inputs = study.inputs
    report = build_report(logs, inputs.references, labels=inputs.labels)
    render_terminal(report, console)
    html = study.output / "report.html"
    write_text(html, render_html(report), "report")
    print_costs(console, report)
    if inputs.unresolved:
        console.print(f"{len(inputs.unresolved)} labelled items have no reference (unresolved)")
    console.print("written:", highlight=False)
    for log in logs:
        console.print(f"  {log.path}", highlight=False)
    console.print(f"  {html}", highlight=False)


def _crash_summary(logs: Sequence[RunLog]) -> str:
    """One line: how many items failed by an unexpected error, of which kinds, what to do."""
    parts = []
    total = 0
    for log in logs:
        errors = [r.error for r in log.records if r.error is not None]
        if not errors:
            continue
        total += len(errors)
        kinds = Counter(e.kind for e in errors)
        first = next((e.at for e in errors if e.at), None)
        shown = ", ".join(f"{kind} ×{n}" for kind, n in kinds.most_common())
        parts.append(
            f"{log.manifest.runner} {len(errors)} ({shown}"
            + (f"; first at {first})" if first else ")")
        )
    return (
        f"{total} item(s) failed with an unexpected error (a bug): {'; '.join(parts)}. Their "
        "answers are logged as failed with the error's kind; the other items were answered. "
        "Fix the cause and run the same command with --resume to retry them"
    )
