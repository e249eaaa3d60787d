"""``recordagent demo``: a whole study in miniature, on a synthetic cohort or the MIMIC-IV demo.

Generates the synthetic cohort and loads it (or loads the MIMIC-IV demo), samples questions
from the packaged templates with their gold (or silver) labels, answers them with all four
runners through the evaluator, audits whether retrieval and the full-context window reach the
evidence, and ends with the report (in the terminal, and as HTML). With a model configured
(settings or ``RECORDAGENT_MODEL__…``) the runners ask it; without one they run on the scripted
mock model, and everything says so. Failed answers are counted per runner and cause at the end,
with what to do about each cause; when every answer of a runner failed, that is the command's
error (exit 4, as a model error), after the report is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress

from recordagent.cli.render import (
    load_progress,
    output_console,
    output_folder,
    progress_columns,
    render_load_report,
    shown,
)
from recordagent.errors import ModelError, UserError
from recordagent.evaluation.audit import audit_evidence, evidence_from_labels, render_audit_terminal
from recordagent.evaluation.labels import write_labels
from recordagent.evaluation.log import RunLog
from recordagent.evaluation.report import build_report, render_html, render_terminal
from recordagent.evaluation.run import ItemProgress
from recordagent.evaluation.silver_labels import silver_labels
from recordagent.evaluation.study import (
    Study,
    StudyProgress,
    log_file,
    run_study,
    study_failures,
    study_model,
)
from recordagent.evaluation.study_inputs import StudyInputs, sample_cohort
from recordagent.questions.silver import silver_sample
from recordagent.questions.silver_templates import load_silver_templates
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.resources import question_templates_path
from recordagent.runners import RUNNER_NAMES, build_runner
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
    console = output_console()
    if out is None:
        folder = Path(tempfile.mkdtemp(prefix="recordagent-demo-"))
    else:
        folder = output_folder(out, "--out")
    # With no model configured the demo's own banner says so (no second warning line).
    model = study_model("mock" if settings.model.provider == "mock" else "settings", settings)
    if model.is_mock:
        console.print(Panel(MOCK_BANNER, title="MOCK MODEL", style="bold red"))
    with connect(settings=settings.store) as store:
        if source == "synthetic":
            inputs = _synthetic_study(store, settings, cohort, items, seed, folder, console)
        else:
            inputs = _mimic_study(store, settings, mimic_path, items, seed, console)
        write_labels(inputs.labels, folder / "labels.csv")
        study = Study(
            name="demo",
            settings=settings,
            inputs=inputs,
            runners=[build_runner(name, settings) for name in RUNNER_NAMES],
            model=model,
            logs={name: log_file(folder, name) for name in RUNNER_NAMES},
            output=folder,
            concurrency=settings.model.max_concurrency,
        )
        with Progress(*progress_columns(16), console=console, transient=False) as bar:
            logs = asyncio.run(run_study(study, store, progress=_Bars(bar)))
        # Known by now when the study asked the server: the audit packs to the runner's window.
        window = asyncio.run(model.context_window())
        audit = audit_evidence(
            inputs.items,
            evidence_from_labels(inputs.labels),
            store,
            settings,
            model_window=window,
        )
    evaluation = build_report(logs, inputs.references, labels=inputs.labels)
    render_terminal(evaluation, console)
    console.print()
    render_audit_terminal(audit, console)
    html = folder / "report.html"
    html.write_text(render_html(evaluation), encoding="utf-8")
    console.print(f"\nreport: {html}\nrun logs and labels: {folder}")
    if model.is_mock:
        console.print(Panel(MOCK_BANNER, title="MOCK MODEL", style="bold red"))
    failures = study_failures(logs)
    if failures.all_failed:
        raise ModelError(failures.message())
    if failures.runs:
        console.print(failures.message(), style="yellow", highlight=False, markup=False)


class _Bars(StudyProgress):
    """A progress bar per runner, all kept on screen."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    @contextlib.contextmanager
    def running(self, log: RunLog, total: int) -> Iterator[ItemProgress]:
        task = self.bar.add_task(log.manifest.runner, total=total)

        def advance(done: int, total: int) -> None:
            self.bar.update(task, completed=done, total=total)

        yield advance


def _synthetic_study(
    store: RecordStore,
    settings: Settings,
    cohort: str,
    items: int,
    seed: int,
    folder: Path,
    console: Console,
) -> StudyInputs:
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
    sampled = sample_cohort(bundle, n=items, seed=seed)
    templates = sampled.template_set
    console.print(
        f"\n{len(sampled.items)} questions sampled from {len(templates.templates)} templates "
        f"(version {templates.version}) over {len(store.patient_ids())} patients\n"
    )
    return sampled.inputs()


def _mimic_study(
    store: RecordStore,
    settings: Settings,
    mimic_path: Path,
    items: int,
    seed: int,
    console: Console,
) -> StudyInputs:
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
    return StudyInputs.of(
        run.items, silver_labels(run.instances), template_set_version=templates.version
    )
