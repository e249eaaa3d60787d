"""``recordagent eval``: run runners over items into run logs, then report.

Everything that can be checked is checked before the first model call: the suite, the items,
the labels, the runners, the patients in the store, existing logs (refused without
``--resume``) and, for a configured model, that its endpoint accepts a connection. An
unreachable endpoint is therefore a one-line error (exit 1) with nothing written. Answers that
fail during the run (the endpoint goes away) are logged as 'failed'; when every answer of a run
failed the command ends with a one-line error, after writing the logs and report.

An item whose runner raises an unexpected exception (a bug) does not stop the run: it is logged
as a failed record with the exception's kind, the other items are answered, and the command
ends with one error line counting such items (exit 1); ``--resume`` retries them. A log is a
run of one item set with one runner, model and settings: ``--resume`` with anything else is
refused with what differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, ReferenceLabel, read_labels, reference_labels
from recordagent.evaluation.log import (
    RunLog,
    RunLogMismatch,
    RunManifest,
    store_data_fingerprint,
)
from recordagent.evaluation.paths import check_output_folder, path_kind, read_text, write_text
from recordagent.evaluation.report import EvaluationReport, build_report
from recordagent.evaluation.suite import Suite, load_suite
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.runners._base import Runner
from recordagent.settings import Settings

__all__ = ["eval_command", "read_items"]


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
        str | None, typer.Option(help="'mock' (scripted dry run) or 'settings' (configured).")
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
) -> None:
    """Run each runner over the items into OUT/<runner>.jsonl, then print and write the report."""
    settings: Settings = ctx.obj
    plan = _suite(suite, items, labels, db, bundle, runner, model, concurrency, out)
    settings = _with_budgets(settings, plan.budgets)
    console = Console()
    logs = asyncio.run(_run(plan, settings, console, resume=resume))
    crashed = {log.manifest.runner: log.failed_item_ids() for log in logs}
    if any(crashed.values()):
        raise UserError(_crash_summary(logs), exit_code=1)
    failed_all = [
        log.manifest.runner
        for log in logs
        if log.records and all(r.answer.status == "failed" for r in log.records)
    ]
    if failed_all:
        raise UserError(
            "every answer of "
            + ", ".join(failed_all)
            + " failed (see the status counts above: is the model endpoint reachable?)"
        )


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


def _suite(
    suite: Path | None,
    items: Path | None,
    labels: Path | None,
    db: Path | None,
    bundle: Path | None,
    runners: list[str] | None,
    model: str | None,
    concurrency: int | None,
    out: Path | None,
) -> Suite:
    """The suite file with the flags over it, or a suite from the flags alone."""
    merged: dict[str, Any] = load_suite(suite).model_dump() if suite is not None else {}
    flags: dict[str, Any] = {
        "items": items,
        "labels": labels,
        "runners": runners or None,
        "model": model,
        "concurrency": concurrency,
        "output": out,
    }
    merged.update({k: v for k, v in flags.items() if v is not None})
    if db is not None:
        merged.update(store=db, bundle=None)
    if bundle is not None:
        merged.update(bundle=bundle, store=None)
    merged.setdefault("name", suite.stem if suite is not None else "command line")
    try:
        return Suite.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        where = f"suite {suite} with the flags" if suite is not None else "eval options"
        raise UserError(f"{where}: {problems}") from exc


def _with_budgets(settings: Settings, budgets: Mapping[str, Any]) -> Settings:
    if not budgets:
        return settings
    runners = _merge(settings.runners.model_dump(), budgets)
    try:
        return Settings.model_validate({**settings.model_dump(), "runners": runners})
    except ValidationError as exc:
        problems = "; ".join(
            f"budgets.{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"suite budgets: {problems}") from exc


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_items(path: Path) -> list[EvalItem]:
    """The items in a JSONL file (one EvalItem a line).

    Raises:
        UserError: The file is missing, a folder, unreadable or not UTF-8, a line is not a
            valid item (file, line, field), or two items share an id.
    """
    text = read_text(path, "items file")
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = EvalItem.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(line)"
            raise UserError(f"items file {path}, line {number}: {field}: {first['msg']}") from exc
        if item.id in seen:
            raise UserError(f"items file {path}, line {number}: item id {item.id!r} repeated")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise UserError(f"items file {path} has no items")
    return items


class _Inputs:
    """Items, labels and references, read and checked before the store is opened."""

    def __init__(self, suite: Suite) -> None:
        self.template_set_version: str | None = None
        gold: list[Label] | None = None
        if suite.items is not None:
            self.items = read_items(suite.items)
        else:
            assert suite.cohort is not None  # the suite validator ensures it
            self.items, gold = self._sample(suite)
        self.labels: list[Label] = (
            read_labels(suite.labels) if suite.labels is not None else (gold or [])
        )
        by_id = {item.id: item for item in self.items}
        self.references: dict[str, ReferenceLabel] | None = None
        self.unresolved: list[str] = []
        if suite.labels is not None or gold is not None:
            self.references, self.unresolved = reference_labels(self.labels, by_id)

    def _sample(self, suite: Suite) -> tuple[list[EvalItem], list[Label]]:
        from recordagent.evaluation.gold_labels import instance_labels
        from recordagent.questions.gold_data import GoldData
        from recordagent.questions.sampling import instances, sample
        from recordagent.questions.templates import load_templates
        from recordagent.resources import question_templates_path

        cohort = suite.cohort
        assert cohort is not None
        if suite.synthetic_preset is not None and path_kind(cohort, "cohort") == "missing":
            from recordagent.sources.synthetic import generate_cohort, load_preset

            try:
                generate_cohort(load_preset(suite.synthetic_preset), suite.synthetic_seed, cohort)
            except OSError as exc:
                raise UserError(
                    f"cannot write the synthetic cohort to {cohort}: {exc.strerror or exc}"
                ) from exc
        if path_kind(cohort / "gold", "cohort") != "folder":
            raise UserError(f"cohort {cohort} has no gold/ folder: is it a synthetic cohort?")
        template_set = load_templates(suite.templates or question_templates_path() / "myeloma")
        self.template_set_version = template_set.version
        every = instances(template_set, GoldData.load(cohort / "gold", cohort))
        chosen_items = sample(
            [i.item for i in every], n=suite.n if suite.n > 0 else len(every), seed=suite.seed
        )
        chosen_ids = {item.id for item in chosen_items}
        chosen = [i for i in every if i.item.id in chosen_ids]
        return [i.item for i in chosen], list(instance_labels(chosen))


def _open_store(suite: Suite, settings: Settings, console: Console) -> RecordStore:
    if suite.store is not None:
        kind = path_kind(suite.store, "store")
        if kind == "folder":
            raise UserError(
                f"store {suite.store} is a folder, not a DuckDB store file (for a record "
                "bundle folder use --bundle)"
            )
        if kind != "file":
            raise UserError(f"store file {suite.store} does not exist")
        return connect(suite.store, settings=settings.store, read_only=True)
    bundle = suite.bundle or suite.cohort
    assert bundle is not None
    path_kind(bundle, "bundle")  # a path that cannot even be looked at is one error line
    from recordagent.records.load import load_bundle

    store = connect(settings=settings.store)
    try:
        with console.status(f"loading {bundle} into memory"):
            load_bundle(store, bundle, settings=settings, source=bundle.name)
    except BaseException:
        store.close()
        raise
    return store


def _check_patients(store: RecordStore, items: Sequence[EvalItem], where: str) -> None:
    missing = sorted({i.patient_id for i in items if not store.has_patient(i.patient_id)})
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise UserError(f"{where}: patient(s) not in the store: {shown}")


def _model(choice: str, settings: Settings) -> ChatModel:
    if choice == "mock":
        from recordagent.runners.dry_run import dry_run_model

        return dry_run_model()
    from recordagent.llm import build_model

    model = build_model(settings.model)
    _check_reachable(settings)
    return model


def _check_reachable(settings: Settings) -> None:
    """A TCP connection to the model's endpoint, so a wrong URL fails before anything is run."""
    url = settings.model.base_url or "https://api.openai.com/v1"
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        raise UserError(f"model.base_url {url!r} has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=min(settings.model.timeout_s, 10.0)):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot reach the model endpoint {url} ({host}:{port}): "
            f"{exc.strerror or exc}; nothing was run"
        ) from exc


def _log_paths(suite: Suite, *, resume: bool) -> dict[str, Path]:
    from recordagent.runners.registry import RUNNER_NAMES

    unknown = [r for r in suite.runners if r not in RUNNER_NAMES]
    if unknown:
        raise UserError(f"unknown runner '{unknown[0]}'; runners: {', '.join(RUNNER_NAMES)}")
    if len(set(suite.runners)) != len(suite.runners):
        raise UserError("a runner is named twice")
    check_output_folder(suite.output)
    paths = {name: suite.output / f"{name}.jsonl" for name in suite.runners}
    odd = [
        p
        for p in [*paths.values(), suite.output / "report.html"]
        if path_kind(p, "run log") not in ("missing", "file")
    ]
    if odd:
        raise UserError(f"{odd[0]} is a folder (or not a regular file): choose another --out")
    if not resume:
        existing = [str(p) for p in paths.values() if path_kind(p, "run log") != "missing"]
        if existing:
            raise UserError(
                f"run log {existing[0]} exists: pass --resume to continue it, or choose "
                "another --out"
            )
    return paths


async def _run(suite: Suite, settings: Settings, console: Console, *, resume: bool) -> list[RunLog]:
    """Run every runner, one log each; print and write the report."""
    from recordagent.runners.registry import build_runner

    paths = _log_paths(suite, resume=resume)
    inputs = _Inputs(suite)
    runners = [build_runner(name, settings) for name in suite.runners]
    model = _model(suite.model, settings)
    if model.is_mock:
        console.print(
            Panel(
                "MOCK MODEL: answers come from a scripted dry-run model, not a language model.\n"
                "The scores below say nothing about any model; use --model settings for results.",
                title="[bold]mock[/]",
                style="bold yellow",
            )
        )
    with _open_store(suite, settings, console) as store:
        _check_patients(store, inputs.items, f"items of suite {suite.name!r}")
        fingerprint = store_data_fingerprint(store)
        try:
            suite.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the output folder {suite.output}: {exc.strerror or exc}"
            ) from exc
        manifests = {
            runner.name: RunManifest.create(
                runner,
                model,
                settings,
                data_fingerprint=fingerprint,
                template_set_version=inputs.template_set_version,
                items=inputs.items,
            )
            for runner in runners
        }
        # Every existing log is checked before any runner starts: a log that belongs to
        # another run stops the command before any work, not after the first runner's.
        for runner in runners:
            try:
                RunLog.check_resumable(paths[runner.name], manifests[runner.name])
            except RunLogMismatch as exc:
                raise UserError(
                    f"{exc.path} is the log of a different run; it differs in "
                    + "; ".join(exc.differences)
                    + ". Resume it with the same items, runner, model and settings, or write "
                    "this run to another --out folder"
                ) from exc
        logs: list[RunLog] = []
        async with _entered(model):
            for runner in runners:
                log = RunLog.open(paths[runner.name], manifests[runner.name])
                if log.recovered_line is not None:
                    console.print(
                        f"{log.path}: half-written line {log.recovered_line} (interrupted run) "
                        "dropped; its item runs again",
                        highlight=False,
                    )
                before = len(log.done_item_ids())
                retried = len(log.failed_item_ids())
                await _run_one(console, runner, log, inputs, model, store, suite.concurrency)
                crashed = len(log.failed_item_ids())
                console.print(
                    f"{runner.name}: {len(log.done_item_ids()) - before} new answers, "
                    f"{before} already in {log.path}"
                    + (f", {retried} failed item(s) retried" if retried else "")
                    + (f", {crashed} failed with an unexpected error" if crashed else ""),
                    highlight=False,
                )
                logs.append(log)
    report = build_report(logs, inputs.references, labels=inputs.labels)
    _finish(console, report, suite, logs, inputs)
    return logs


@contextlib.asynccontextmanager
async def _entered(model: ChatModel) -> Any:
    enter = getattr(model, "__aenter__", None)
    if enter is None:
        yield model
        return
    async with model:  # type: ignore[attr-defined]
        yield model


async def _run_one(
    console: Console,
    runner: Runner,
    log: RunLog,
    inputs: _Inputs,
    model: ChatModel,
    store: RecordStore,
    concurrency: int,
) -> None:
    from recordagent.evaluation.run import run_items

    name = runner.name
    tally: dict[str, Any] = {"seen": len(log.records), "failed": 0, "tokens": 0, "cost": 0.0}
    for record in log.records:
        _count(tally, record.answer)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("tokens {task.fields[tokens]:,}"),
        TextColumn("cost ${task.fields[cost]:.4f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(name, total=len(inputs.items), failed=0, tokens=0, cost=0.0)

        def on_progress(done: int, total: int) -> None:
            records = log.records
            for record in records[tally["seen"] :]:
                _count(tally, record.answer)
            tally["seen"] = len(records)
            progress.update(
                task,
                completed=done,
                total=total,
                failed=tally["failed"],
                tokens=tally["tokens"],
                cost=tally["cost"],
            )

        await run_items(
            inputs.items,
            runner,
            model,
            store,
            log=log,
            references=inputs.references,
            concurrency=concurrency,
            on_progress=on_progress,
        )


def _count(tally: dict[str, Any], answer: Any) -> None:
    if answer.status == "failed":
        tally["failed"] += 1
    tally["tokens"] += answer.usage.prompt_tokens + answer.usage.completion_tokens
    tally["cost"] += answer.usage.cost_usd or 0.0


def _finish(
    console: Console,
    report: EvaluationReport,
    suite: Suite,
    logs: Sequence[RunLog],
    inputs: _Inputs,
) -> None:
    from recordagent.evaluation.report import render_html, render_terminal

    render_terminal(report, console)
    html = suite.output / "report.html"
    write_text(html, render_html(report), "report")
    print_costs(console, report)
    if inputs.unresolved:
        console.print(f"{len(inputs.unresolved)} labelled items have no reference (unresolved)")
    console.print("written:", highlight=False)
    for log in logs:
        console.print(f"  {log.path}", highlight=False)
    console.print(f"  {html}", highlight=False)


def print_costs(console: Console, report: EvaluationReport) -> None:
    """One line per runner: answers, tokens, cost, and the total."""
    total = 0.0
    priced = False
    for result in report.runners:
        usage = result.usage
        cost = "unpriced" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
        if usage.cost_usd is not None:
            total += usage.cost_usd
            priced = True
        console.print(
            f"cost {result.name}: {usage.answers} answers, {usage.total_tokens:,} tokens, "
            f"{usage.model_calls} model calls, {cost}",
            highlight=False,
        )
    console.print(
        f"cost total: {'$' + format(total, '.4f') if priced else 'unpriced'}", highlight=False
    )
