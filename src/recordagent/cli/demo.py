"""``recordagent demo``: a whole study in miniature, on a synthetic cohort or the MIMIC-IV demo.

Generates the synthetic cohort and loads it (or loads the MIMIC-IV demo), samples questions
from the packaged templates with their gold (or silver) labels, answers them with all four
runners through the evaluator, audits whether retrieval and the full-context window reach the
evidence, and ends with the report (in the terminal, and as HTML). With a model configured
(settings or ``RECORDAGENT_MODEL__…``) the runners ask it; without one they run on the scripted
mock model, and everything says so.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    Progress,
    TaskID,
)

from recordagent.cli.render import (
    load_progress,
    output_folder,
    progress_columns,
    render_load_report,
    shown,
)
from recordagent.errors import UserError
from recordagent.evaluation.audit import audit_evidence, evidence_from_labels, render_audit_terminal
from recordagent.evaluation.gold_labels import instance_labels
from recordagent.evaluation.labels import Label, ReferenceLabel, reference_labels, write_labels
from recordagent.evaluation.log import RunLog, RunManifest, store_data_fingerprint
from recordagent.evaluation.report import build_report, render_html, render_terminal
from recordagent.evaluation.run import run_items
from recordagent.llm import build_model
from recordagent.llm.client import ChatModel
from recordagent.questions.gold_data import GoldData
from recordagent.questions.items import EvalItem
from recordagent.questions.sampling import instances, sample
from recordagent.questions.silver import silver_labels, silver_sample
from recordagent.questions.silver_templates import load_silver_templates
from recordagent.questions.templates import load_templates
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.resources import question_templates_path
from recordagent.runners import RUNNER_NAMES, build_runner
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings
from recordagent.sources.mimic_iv import load_mimic_iv
from recordagent.sources.synthetic import generate_cohort, load_preset

MOCK_BANNER = (
    "No model is configured, so the runners answer with the scripted mock model: its answers "
    "are not a model's and its scores say nothing about any model. The evidence audit needs no "
    "model: its figures are real. Configure one with RECORDAGENT_MODEL__PROVIDER / __BASE_URL "
    "/ __MODEL (or a preset) to run the study for real."
)


SOURCES = ("synthetic", "mimic-iv-demo")


def demo(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            help="'synthetic' (a generated myeloma cohort, gold labels) or 'mimic-iv-demo' (the "
            "MIMIC-IV demo at --mimic-path, silver labels from the MIMIC-IV templates)."
        ),
    ] = "synthetic",
    cohort: Annotated[
        str, typer.Option(help="Synthetic cohort preset: tiny, small or reference.")
    ] = "small",
    items: Annotated[int, typer.Option(min=1, help="Questions to sample (balanced).")] = 40,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the cohort and of the sample.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for run logs, labels and reports (default: a new temp folder)."),
    ] = None,
    mimic_path: Annotated[
        Path,
        typer.Option(help="The MIMIC-IV demo folder (hosp/, icu/), for --source mimic-iv-demo."),
    ] = Path("../shared/data/mimic-iv-demo"),
) -> None:
    """A study in miniature: load records, ask sampled questions with all four runners, report."""
    settings: Settings = ctx.obj
    if source not in SOURCES:
        raise UserError(f"unknown demo source '{source}'; use one of {', '.join(SOURCES)}")
    console = Console()
    if out is None:
        folder = Path(tempfile.mkdtemp(prefix="recordagent-demo-"))
    else:
        folder = output_folder(out, "--out")
    model = _model(settings)
    if model.is_mock:
        console.print(Panel(MOCK_BANNER, title="MOCK MODEL", style="bold red"))
    with connect(settings=settings.store) as store:
        if source == "synthetic":
            study, labels = _synthetic_study(store, settings, cohort, items, seed, folder, console)
        else:
            study, labels = _mimic_study(store, settings, mimic_path, items, seed, console)
        write_labels(labels, folder / "labels.csv")
        references, _ = reference_labels(labels, {i.id: i for i in study})
        logs = asyncio.run(_run_all(study, store, settings, model, references, folder, console))
        audit = audit_evidence(study, evidence_from_labels(labels), store, settings)
    evaluation = build_report(logs, references, labels=labels)
    render_terminal(evaluation, console)
    console.print()
    render_audit_terminal(audit, console)
    html = folder / "report.html"
    html.write_text(render_html(evaluation), encoding="utf-8")
    console.print(f"\nreport: {html}\nrun logs and labels: {folder}")
    if model.is_mock:
        console.print(Panel(MOCK_BANNER, title="MOCK MODEL", style="bold red"))


def _synthetic_study(
    store: RecordStore,
    settings: Settings,
    cohort: str,
    items: int,
    seed: int,
    folder: Path,
    console: Console,
) -> tuple[list[EvalItem], list[Label]]:
    """Generate and load the synthetic cohort; sample items with their gold labels."""
    bundle = folder / f"synthetic-{cohort}"
    preset = load_preset(cohort)
    with load_progress(console) as progress:
        generate_cohort(preset, seed, bundle, progress=progress)
    with load_progress(console) as progress:
        report = load_bundle(
            store, bundle, settings=settings, source=f"synthetic-{cohort}", progress=progress
        )
    console.print(render_load_report(report))
    templates = load_templates(Path(str(question_templates_path())) / "myeloma")
    every = instances(templates, GoldData.load(bundle / "gold", bundle))
    chosen_ids = {i.id for i in sample([x.item for x in every], n=items, seed=seed)}
    chosen = [x for x in every if x.item.id in chosen_ids]
    console.print(
        f"\n{len(chosen)} questions sampled from {len(templates.templates)} templates "
        f"(version {templates.version}) over {len(store.patient_ids())} patients\n"
    )
    return [x.item for x in chosen], instance_labels(chosen)


def _mimic_study(
    store: RecordStore,
    settings: Settings,
    mimic_path: Path,
    items: int,
    seed: int,
    console: Console,
) -> tuple[list[EvalItem], list[Label]]:
    """Load the MIMIC-IV demo; sample items with silver labels from the MIMIC-IV templates."""
    try:
        found = (mimic_path / "hosp").is_dir()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise UserError(f"--mimic-path {shown(mimic_path)}: {exc.strerror or exc}") from None
    if not found:
        raise UserError(
            f"no MIMIC-IV demo at {mimic_path}: download the MIMIC-IV Clinical Database Demo "
            "(PhysioNet, open access) and pass its folder with --mimic-path"
        )
    with load_progress(console) as progress:
        report = load_mimic_iv(store, mimic_path, settings=settings, progress=progress)
    console.print(render_load_report(report))
    templates = load_silver_templates(Path(str(question_templates_path())) / "mimic_iv")
    run = silver_sample(templates, store, n=items, seed=seed)
    console.print(
        f"\n{len(run.instances)} questions sampled from {len(templates.templates)} MIMIC-IV "
        f"templates (version {templates.version}) over {len(store.patient_ids())} patients; "
        "references are silver labels computed by the templates' SQL\n"
    )
    return run.items, silver_labels(run.instances)


def _model(settings: Settings) -> ChatModel:
    """The configured model, or the dry-run mock when none is configured."""
    if settings.model.provider == "mock":
        return dry_run_model()
    return build_model(settings.model)


async def _run_all(
    study: list[EvalItem],
    store: RecordStore,
    settings: Settings,
    model: ChatModel,
    references: dict[str, ReferenceLabel],
    folder: Path,
    console: Console,
) -> list[RunLog]:
    """Every runner over the study, one run log each, with a progress bar per runner."""
    fingerprint = store_data_fingerprint(store)
    logs = []
    with Progress(*progress_columns(16), console=console, transient=False) as bar:
        for name in RUNNER_NAMES:
            runner = build_runner(name, settings)
            manifest = RunManifest.create(
                runner, model, settings, data_fingerprint=fingerprint, items=study
            )
            log = RunLog.open(folder / f"{name}.jsonl", manifest)
            task = bar.add_task(name, total=len(study))

            def advance(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            await run_items(
                study,
                runner,
                model,
                store,
                log=log,
                references=references,
                concurrency=settings.model.max_concurrency,
                on_progress=advance,
            )
            logs.append(log)
    return logs
