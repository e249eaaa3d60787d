"""``recordagent load``: validate a record bundle and load it into a store file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recordagent.cli.render import load_progress, render_load_report
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings


def load(
    ctx: typer.Context,
    bundle: Annotated[
        Path, typer.Argument(help="Bundle folder (patients, documents, labs, events).")
    ],
    db: Annotated[Path, typer.Option(help="DuckDB store file; created if missing.")],
    source: Annotated[
        str | None, typer.Option(help="Source name to register; the folder name by default.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a source already loaded under this name.")
    ] = False,
) -> None:
    """Validate BUNDLE and load it into the store at --db (all or nothing)."""
    settings: Settings = ctx.obj
    console = Console()
    created = not db.exists()
    try:
        with connect(db, settings=settings.store) as store, load_progress(console) as progress:
            report = load_bundle(
                store, bundle, settings=settings, source=source, replace=replace, progress=progress
            )
    except BaseException:
        if created:  # a failed first load leaves no empty store behind
            for leftover in (db, db.with_name(db.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    console.print(render_load_report(report))
