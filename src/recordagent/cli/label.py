"""``recordagent label``: expert labelling of one's own items — export a workbook, import sheets.

``label export`` writes the workbook (a sheet per annotator, an HTML view per item, an index);
``label import`` reads the filled sheets, writes the merged labels file and the adjudication
sheet, and prints agreement. Both are one library call (:mod:`recordagent.evaluation.labelling`).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from recordagent.cli.render import output_console, progress_columns, readable_name, store_file
from recordagent.evaluation.labelling import (
    LabellingExport,
    LabellingImport,
    export_labelling,
    import_labelling,
)
from recordagent.evaluation.labels import read_labels
from recordagent.questions.items import read_items
from recordagent.records.db import connect
from recordagent.settings import Settings, load_settings

__all__ = ["app", "render_export", "render_import"]

app = typer.Typer(
    help="Expert labelling of your own items: export a workbook for annotators, import their "
    "sheets (merged labels, agreement, adjudication).",
    no_args_is_help=True,
)

_SHOWN_IDS = 20


def _settings(ctx: typer.Context) -> Settings:
    # The root command sets the settings; a sub-app run on its own falls back to the default.
    return ctx.obj if isinstance(ctx.obj, Settings) else load_settings(None)


@app.command("export")
def export(
    ctx: typer.Context,
    items: Annotated[Path, typer.Option(help="Items file (JSONL, one EvalItem a line).")],
    db: Annotated[Path, typer.Option(help="DuckDB store file holding the items' patients.")],
    annotators: Annotated[
        str, typer.Option(help="Annotator names, comma-separated (one sheet each).")
    ],
    out: Annotated[Path, typer.Option(help="New (or empty) folder for the workbook.")],
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labels whose evidence rows are included among each view's excerpts, unmarked "
            "(values never shown)."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Shuffle the items with this seed (same order per sheet).")
    ] = None,
    max_chars: Annotated[
        int, typer.Option(min=1000, help="Characters of record text per item view.")
    ] = 16_000,
    k: Annotated[int, typer.Option(min=1, max=50, help="Search hits asked for per item.")] = 12,
) -> None:
    """Write a labelling workbook: a CSV sheet per annotator and an HTML view per item."""
    settings = _settings(ctx)
    chosen = read_items(readable_name(items, "--items"))
    flagged = read_labels(readable_name(labels, "--labels")) if labels is not None else None
    names = annotators.split(",")
    console = output_console()
    with (
        connect(store_file(db), settings=settings.store, read_only=True) as store,
        Progress(*progress_columns(8), console=console, transient=True) as bar,
    ):
        task = bar.add_task("views", total=len(chosen))
        result = export_labelling(
            chosen,
            store,
            names,
            out,
            settings=settings,
            labels=flagged,
            seed=seed,
            max_chars=max_chars,
            k=k,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    render_export(result, console)


@app.command("import")
def import_command(
    ctx: typer.Context,
    sheets: Annotated[list[Path], typer.Argument(help="The annotators' filled sheets (CSV).")],
    items: Annotated[Path, typer.Option(help="The items file the workbook was made from.")],
    out: Annotated[Path, typer.Option(help="Labels file to write (.csv, .jsonl or .parquet).")],
    adjudication: Annotated[
        Path | None,
        typer.Option(help="A filled adjudication sheet: its values settle those items."),
    ] = None,
    adjudication_out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the adjudication sheet (default: <out stem>.adjudication.csv)."
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            help="DuckDB store of the items' patients: every evidence id must name a row of "
            "the item's patient."
        ),
    ] = None,
) -> None:
    """Merge filled sheets into a labels file; print agreement; write the adjudication sheet."""
    settings = _settings(ctx)
    chosen = read_items(readable_name(items, "--items"))
    named = [readable_name(sheet, "sheet") for sheet in sheets]
    with ExitStack() as stack:
        store = (
            stack.enter_context(connect(store_file(db), settings=settings.store, read_only=True))
            if db is not None
            else None
        )
        result = import_labelling(
            named,
            chosen,
            readable_name(out, "--out"),
            adjudication=adjudication,
            adjudication_out=adjudication_out,
            store=store,
        )
    render_import(result, output_console())


def render_export(result: LabellingExport, console: Console) -> None:
    """What the export wrote, for the terminal."""
    order = f"shuffled with seed {result.seed}" if result.seed is not None else "file order"
    console.print(
        f"Workbook written to {escape(str(result.folder))}: {result.items} item(s) of "
        f"{result.patients} patient(s), {order}.",
        highlight=False,
    )
    for name, path in result.sheets.items():
        console.print(f"  sheet of {escape(name)}: {escape(str(path))}", highlight=False)
    console.print(f"  views: {escape(str(result.index))}", highlight=False)
    console.print(
        f"  about {result.mean_chars:,.0f} characters of record per view; "
        f"{result.flagged_items} item(s) include rows the labels file cites (unmarked)",
        highlight=False,
    )
    if result.items_without_excerpts:
        console.print(
            f"  {len(result.items_without_excerpts)} item(s) with no excerpt (nothing matched "
            f"the question): {escape(_ids(result.items_without_excerpts))}",
            highlight=False,
        )
    if result.unknown_evidence:
        console.print(
            f"  {len(result.unknown_evidence)} item(s) cite ids their record does not have: "
            f"{escape(_ids(list(result.unknown_evidence)))}",
            highlight=False,
        )
    if result.after_as_of:
        console.print(
            f"  {len(result.after_as_of)} item(s) cite rows dated after their as_of (left out "
            f"of the view): {escape(_ids(list(result.after_as_of)))}",
            highlight=False,
        )


def render_import(result: LabellingImport, console: Console) -> None:
    """The import's summary: counts per annotator, agreement table, what needs adjudication."""
    counts = Table(title="Labelled", header_style="bold")
    for heading in ("annotator", "labelled", "unanswerable", "not labelled"):
        counts.add_column(heading, justify="left" if heading == "annotator" else "right")
    for who in result.annotators:
        counts.add_row(
            escape(who.annotator), str(who.labelled), str(who.unanswerable), str(who.not_labelled)
        )
    console.print(counts)
    console.print(
        f"{result.items} item(s): {result.labelled_by_several} labelled by two or more "
        f"annotators, {result.labelled_once} by one, {result.labelled_by_none} by none.",
        highlight=False,
    )
    several = len(result.annotators) >= 3
    table = Table(title="Agreement (items labelled by two or more)", header_style="bold")
    for heading in ("group", "items", "agree", "% agreement", "Cohen's κ"):
        table.add_column(heading, justify="left" if heading == "group" else "right")
    if several:
        table.columns[-1].header = "mean pairwise κ"
        table.add_column("Fleiss' κ", justify="right")
    for row in result.agreement:
        name = "overall" if row.group == "overall" else f"{row.group}: {row.key}"
        kappa = row.mean_pairwise_kappa if several else row.cohen_kappa
        cells = [
            escape(name),
            str(row.items),
            str(row.agreeing),
            _share(row.percent_agreement),
            _number(kappa),
        ]
        if several:
            cells.append(_number(row.fleiss_kappa))
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"Labels written to {escape(str(result.labels_file))} ({result.labels_written} rows); "
        f"{result.resolved} item(s) have a reference.",
        highlight=False,
    )
    for warning in result.warnings:
        console.print(f"warning: {escape(warning)}", highlight=False)
    if result.disagreements:
        settled = len(result.disagreements) - len(result.open_disagreements)
        line = (
            f"{len(result.disagreements)} disagreement(s), {settled} adjudicated, "
            f"{len(result.open_disagreements)} open"
        )
        if result.open_disagreements:
            line += f": {escape(_ids(result.open_disagreements))}"
        console.print(line, highlight=False)
    elif result.adjudicated:
        console.print(f"{len(result.adjudicated)} item(s) adjudicated.", highlight=False)
    if result.stale_adjudication_sheet is not None:
        console.print(
            f"No disagreements left; {escape(str(result.stale_adjudication_sheet))} from an "
            "earlier import is out of date.",
            highlight=False,
        )
    if result.unresolved:
        console.print(
            f"{len(result.unresolved)} still without a reference: "
            f"{escape(_ids(result.unresolved))}",
            highlight=False,
        )
    if result.adjudication_sheet is not None:
        console.print(
            f"Adjudication sheet: {escape(str(result.adjudication_sheet))} (fill "
            "adjudicated_value, then import again with --adjudication).",
            highlight=False,
        )


def _ids(ids: list[str]) -> str:
    more = f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else ""
    return ", ".join(ids[:_SHOWN_IDS]) + more


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
