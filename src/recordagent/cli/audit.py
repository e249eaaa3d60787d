"""``recordagent audit``: does retrieval and the full-context window reach the gold evidence?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recordagent.cli.render import output_console
from recordagent.errors import UserError
from recordagent.evaluation.audit import (
    audit_evidence,
    evidence_from_labels,
    render_audit_markdown,
    render_audit_terminal,
)
from recordagent.evaluation.labels import read_labels
from recordagent.paths import path_kind, write_text
from recordagent.questions.items import read_items
from recordagent.records.db import connect
from recordagent.settings import Settings

__all__ = ["audit"]


def audit(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="DuckDB store file holding the items' patients.")],
    items: Annotated[
        Path, typer.Option(help="Items file (JSONL, one EvalItem a line: questions sample).")
    ],
    labels: Annotated[
        Path, typer.Option(help="Labels with evidence ids (.csv, .jsonl or .parquet).")
    ],
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the audit as Markdown here.")
    ] = None,
) -> None:
    """Audit, without a model, whether single-pass retrieval and full context reach the evidence."""
    settings: Settings = ctx.obj
    kind = path_kind(labels, "labels file")
    if kind == "folder":
        raise UserError(f"labels file {labels} is a folder, not a file")
    if kind != "file":
        raise UserError(f"labels file {labels} does not exist")
    kind = path_kind(db, "store")
    if kind == "folder":
        raise UserError(f"store {db} is a folder, not a DuckDB store file")
    if kind != "file":
        raise UserError(f"no store file at {db} (create one with: recordagent load BUNDLE --db)")
    if markdown is not None and path_kind(markdown, "--markdown") == "folder":
        raise UserError(f"--markdown {markdown} is a folder; give the Markdown file to write")
    chosen = read_items(items)
    evidence = evidence_from_labels(read_labels(labels))
    console = output_console()
    columns = (
        TextColumn("auditing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        connect(db, settings=settings.store, read_only=True) as store,
        Progress(*columns, console=console, transient=True) as bar,
    ):
        task = bar.add_task("audit", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = audit_evidence(chosen, evidence, store, settings, on_progress=update)
    render_audit_terminal(result, console)
    if markdown is not None:
        write_text(markdown, render_audit_markdown(result), "Markdown audit")
        console.print(f"Markdown written to {markdown}", highlight=False)
