"""``recordagent questions``: list, validate and sample question templates.

Two kinds of template folder exist, told apart by the field that derives the answer
(:func:`recordagent.questions.template_files.template_kind`): gold-derived templates
(``gold:``, e.g. ``question_templates/myeloma``), whose answers come from a synthetic cohort's
gold tables, and SQL-derived templates (``silver:``, e.g. ``question_templates/general`` for
any source, ``question_templates/mimic_iv``), whose reference answers ("silver labels") are SQL
over a loaded record store. ``list`` and ``validate`` take either; without a folder they go
through every packaged family. ``sample`` runs the path of the folder's kind: ``--cohort`` for
gold-derived templates, ``--db`` for SQL-derived ones (``silver`` is the same SQL path, writing
a folder with items.jsonl and labels.jsonl).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from recordagent.cli.render import (
    add_id_column,
    output_console,
    output_file,
    output_folder,
    progress_columns,
    readable_name,
    store_file,
)
from recordagent.errors import UserError
from recordagent.questions.items import EvalItem, write_items
from recordagent.questions.silver_templates import (
    SilverTemplate,
    SilverTemplateSet,
    load_silver_templates,
)
from recordagent.questions.template_files import template_kind
from recordagent.questions.templates import QuestionTemplate, TemplateSet, load_templates
from recordagent.resources import question_templates_path
from recordagent.settings import Settings

if TYPE_CHECKING:
    from recordagent.questions.silver import SilverRun

__all__ = ["app"]

app = typer.Typer(
    help="Question templates: list, validate, and sample study items with their reference "
    "labels — gold-derived templates over a synthetic cohort (--cohort), SQL-derived ones over "
    "any loaded record store (--db).",
    no_args_is_help=True,
)

_FOLDER_HELP = (
    "Template folder (*.yaml, searched recursively); default: every packaged family "
    "(general, mimic_iv, myeloma)."
)


@app.command("list")
def list_templates(
    folder: Annotated[Path | None, typer.Argument(help=_FOLDER_HELP)] = None,
) -> None:
    """List the templates: id, level, answer type and question."""
    console = output_console()
    for source in _sources(folder):
        loaded = _load_any(source)
        table = Table(
            title=f"{len(loaded.templates)} question templates (version {loaded.version})"
            + (f" in {source.name}" if folder is None else ""),
            header_style="bold",
        )
        add_id_column(table, "id")
        table.add_column("level", justify="right")
        table.add_column("answer", no_wrap=True)
        table.add_column("question")
        listed: list[QuestionTemplate | SilverTemplate] = list(loaded.templates)
        for t in sorted(listed, key=lambda t: t.level):
            answer = t.answer.type + (f" ({t.answer.unit})" if t.answer.unit else "")
            needs = t.needs if isinstance(t, SilverTemplate) else ()
            question = t.question + (f" (needs {', '.join(needs)})" if needs else "")
            table.add_row(t.id, str(t.level), answer, escape(question))
        console.print(table)


@app.command("validate")
def validate(
    folder: Annotated[Path | None, typer.Argument(help=_FOLDER_HELP)] = None,
) -> None:
    """Validate the templates; exits 2 with every problem (file, template id, field) if any."""
    for path in _sources(folder):
        loaded = _load_any(path)
        levels = Counter(t.level for t in loaded.templates)
        per_level = ", ".join(f"level {level}: {levels[level]}" for level in sorted(levels))
        kind = "silver " if isinstance(loaded, SilverTemplateSet) else ""
        output_console().print(
            f"{len(loaded.templates)} {kind}templates valid in {path} "
            f"(version {loaded.version}; {per_level})",
            highlight=False,
        )


def _sources(folder: Path | None) -> list[Path]:
    """The folder given, or each packaged source (a folder of the packaged templates)."""
    if folder is not None:
        return [readable_name(folder, "FOLDER")]
    root = question_templates_path()
    sources = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return sources or [root]


def _load_any(folder: Path) -> TemplateSet | SilverTemplateSet:
    """The folder's templates, read by the loader of their kind (SQL-derived or gold-derived).

    Raises:
        UserError: a folder of mixed or unrecognisable kind, or invalid templates.
    """
    if template_kind(folder) == "sql":
        return load_silver_templates(folder)
    return load_templates(folder)


@app.command("sample")
def sample(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Items file to write (JSONL, one EvalItem a line).")],
    cohort: Annotated[
        Path | None,
        typer.Option(
            help="Gold-derived templates: a synthetic cohort folder (recordagent synth), "
            "bundle + gold/."
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            help="SQL-derived templates: the record store (DuckDB file) their labels are "
            "computed over, opened read-only."
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", min=0, help="Items to draw; 0 for every item.")] = 469,
    seed: Annotated[
        int, typer.Option(min=0, help="Sampling seed; the same seed draws the same set.")
    ] = 0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Also write the labels here (.csv, .jsonl or .parquet)."),
    ] = None,
    templates: Annotated[
        Path | None,
        typer.Option(
            help="Template folder, of either kind; default: the packaged myeloma templates "
            "with --cohort, the packaged general templates with --db."
        ),
    ] = None,
) -> None:
    """Instantiate the templates, draw a balanced set and write items (and labels).

    Gold-derived templates are asked of a synthetic cohort (--cohort, gold labels from its
    facts); SQL-derived templates of a record store (--db, silver labels from their queries).
    The templates' kind decides which one is needed.
    """
    if cohort is not None and db is not None:
        raise UserError(
            "give --cohort (gold-derived templates) or --db (SQL-derived templates), not both"
        )
    if cohort is None and db is None:
        raise UserError(
            "give --cohort DIR (a synthetic cohort, for gold-derived templates) or --db STORE "
            "(a loaded record store, for SQL-derived templates such as question_templates/general)"
        )
    if templates is not None:
        readable_name(templates, "--templates")
        kind = template_kind(templates)
    else:
        kind = "sql" if db is not None else "gold"
    folder = templates or _packaged("general" if kind == "sql" else "myeloma")
    if kind == "sql" and db is None:
        raise UserError(
            f"{folder} holds SQL-derived templates: their labels are computed over a record "
            "store, not read from a cohort's gold facts. Load the data first (recordagent load "
            "COHORT --db STORE, or load fhir|omop|mimic-iv), then give --db STORE instead of "
            "--cohort"
        )
    if kind == "gold" and db is not None:
        raise UserError(
            f"{folder} holds gold-derived templates: their labels come from a synthetic "
            "cohort's gold facts, which a record store does not hold. Give --cohort DIR "
            "(recordagent synth), or SQL-derived templates with --templates (e.g. "
            "question_templates/general)"
        )
    if kind == "sql":
        assert db is not None  # narrowed by the checks above
        _sample_store(ctx.obj, folder, db, out=out, labels=labels, n=n, seed=seed)
    else:
        assert cohort is not None  # narrowed by the checks above
        _sample_cohort(folder, cohort, out=out, labels=labels, n=n, seed=seed)


def _packaged(family: str) -> Path:
    return Path(str(question_templates_path())) / family


def _sample_cohort(
    templates: Path, cohort: Path, *, out: Path, labels: Path | None, n: int, seed: int
) -> None:
    """Gold-derived templates over a synthetic cohort: items and gold labels."""
    from recordagent.evaluation.labels import write_labels
    from recordagent.evaluation.study_inputs import sample_cohort

    readable_name(cohort, "--cohort")
    output_file(out, "--out")  # before the work: a path that cannot be written fails at once
    if labels is not None:
        output_file(labels, "--labels")
    sampled = sample_cohort(cohort, n=n, seed=seed, templates=templates)
    write_items(out, sampled.items)
    if labels is not None:
        write_labels(sampled.labels, labels)
    output_console().print(
        _sample_table(sampled.template_set, sampled.applicable, sampled.items, out, labels)
    )


def _sample_store(
    settings: Settings,
    templates: Path,
    db: Path,
    *,
    out: Path,
    labels: Path | None,
    n: int,
    seed: int,
) -> None:
    """SQL-derived templates over a record store: items and silver labels."""
    from recordagent.evaluation.labels import write_labels
    from recordagent.evaluation.silver_labels import silver_labels

    store_file(db)
    output_file(out, "--out")  # before the work: a path that cannot be written fails at once
    if labels is not None:
        output_file(labels, "--labels")
    template_set = load_silver_templates(templates)
    console = output_console()
    run = _run_silver(settings, template_set, db, n=n, seed=seed, console=console)
    write_items(out, run.items)
    if labels is not None:
        write_labels(silver_labels(run.instances), labels)
    console.print(_silver_table(template_set, run, sampled=bool(n)))
    console.print(
        f"items: {out}" + (f"\nlabels: {labels}" if labels is not None else ""), highlight=False
    )


def _run_silver(
    settings: Settings,
    template_set: SilverTemplateSet,
    db: Path,
    *,
    n: int | None,
    seed: int,
    console: Console,
) -> SilverRun:
    """Every item of the templates over the store (``n`` falsy), or a balanced sample of n."""
    from recordagent.questions.silver import silver_instances, silver_sample
    from recordagent.records.db import connect

    with (
        connect(db, settings=settings.store, read_only=True) as store,
        Progress(*progress_columns(9), console=console, transient=True) as bar,
    ):
        task = bar.add_task("patients", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if n:
            return silver_sample(template_set, store, n, seed, progress=advance)
        return silver_instances(template_set, store, progress=advance)


def _sample_table(
    template_set: TemplateSet,
    every: Sequence[EvalItem],
    chosen: Sequence[EvalItem],
    out: Path,
    labels: Path | None,
) -> Table:
    """Items drawn per level, with the spread over templates."""
    table = Table(
        title=f"{len(chosen)} of {len(every)} items (templates version {template_set.version})",
        header_style="bold",
    )
    for column in ("level", "templates", "available", "drawn", "per template"):
        table.add_column(column, justify="right")
    for level in sorted({t.level for t in template_set.templates}):
        ids = [t.id for t in template_set.templates if t.level == level]
        available = Counter(i.template_id for i in every if i.level == level)
        drawn = Counter(i.template_id for i in chosen if i.level == level)
        counts = [drawn.get(t, 0) for t in ids if available.get(t, 0)]
        spread = f"{min(counts)}-{max(counts)}" if counts else "-"
        table.add_row(
            str(level),
            str(len(ids)),
            str(sum(available.values())),
            str(sum(drawn.values())),
            spread,
        )
    table.caption = f"items: {out}" + (f"; labels: {labels}" if labels else "")
    return table


@app.command("silver")
def silver(
    ctx: typer.Context,
    templates: Annotated[
        Path,
        typer.Option(
            help="SQL-derived template folder, e.g. question_templates/general (any source) "
            "or question_templates/mimic_iv."
        ),
    ],
    db: Annotated[Path, typer.Option(help="The record store (DuckDB file), opened read-only.")],
    out: Annotated[Path, typer.Option(help="Folder to write items.jsonl and labels.jsonl into.")],
    n: Annotated[
        int | None,
        typer.Option(
            "--n",
            min=0,
            help="Items to draw, balanced over levels and templates; default (or 0): every item.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Sampling seed; the same seed draws the same set.")
    ] = 0,
) -> None:
    """Ask SQL-derived templates of every patient in --db; write items and silver labels to OUT.

    Works on a store from any loader (bundle, FHIR, OMOP, MIMIC-IV): the templates' SQL reads
    the store's tables. The same as `questions sample --db`, writing a folder for a suite.
    """
    from recordagent.evaluation.silver_labels import write_silver

    readable_name(templates, "--templates")
    if template_kind(templates) != "sql":
        raise UserError(
            f"{templates} holds gold-derived templates, whose labels come from a synthetic "
            "cohort: use recordagent questions sample --cohort DIR --templates "
            f"{templates}"
        )
    store_file(db)
    output_folder(out, "--out")  # before the work: a folder that cannot be written fails at once
    template_set = load_silver_templates(templates)
    console = output_console()
    run = _run_silver(
        settings=ctx.obj, template_set=template_set, db=db, n=n, seed=seed, console=console
    )
    items_file, labels_file = write_silver(run.instances, out)
    console.print(_silver_table(template_set, run, sampled=bool(n)))
    console.print(f"items: {items_file}\nlabels: {labels_file}", highlight=False)


def _silver_table(template_set: SilverTemplateSet, run: SilverRun, *, sampled: bool) -> Table:
    """Items per template, the patients it did not apply to (n/a), and skipped templates."""
    asked = f"{run.patients_visited} of {run.patients_total}" if sampled else run.patients_total
    table = Table(
        title=f"{len(run.instances)} items from {len(template_set.templates)} silver templates "
        f"(version {run.version}) over {asked} patients",
        header_style="bold",
    )
    add_id_column(table, "template")
    table.add_column("level", justify="right")
    table.add_column("applicable", justify="right")
    table.add_column("n/a", justify="right")
    if sampled:
        table.add_column("drawn", justify="right")
    table.add_column("note", min_width=20)
    for tally in run.tallies:
        row = [
            tally.template_id,
            str(tally.level),
            str(tally.applicable),
            str(tally.not_applicable),
        ]
        if sampled:
            row.append("-" if tally.drawn is None else str(tally.drawn))
        row.append(f"skipped: {tally.skipped}" if tally.skipped else "")
        table.add_row(*row)
    return table
