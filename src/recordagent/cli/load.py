"""``recordagent load``: load a record bundle, or another kind of source, into a store file.

The kinds, their help and their loaders come from :data:`recordagent.sources.registry.SOURCES`.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recordagent.cli.render import load_progress, render_load_report
from recordagent.errors import UserError
from recordagent.records.load_report import LoadReport
from recordagent.records.store_file import LoadInterrupted, open_for_load
from recordagent.settings import Settings
from recordagent.sources.registry import DEFAULT_KIND, SOURCES, SourceKind, source_kind


def kinds_help() -> str:
    """The help of ``KIND|PATH``: every kind of source, what it is and what PATH it takes."""
    kinds = "; ".join(f"'{k.name} PATH': {k.description} ({k.expects})" for k in SOURCES)
    return f"A bundle folder, or a source kind followed by its PATH: {kinds}."


def load(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(help=kinds_help(), metavar="KIND|PATH"),
    ],
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The folder or file, when a KIND is given.", metavar="PATH", show_default=False
        ),
    ] = None,
    *,
    db: Annotated[
        Path,
        typer.Option(
            help="DuckDB store file; created if missing, and only once the load has succeeded."
        ),
    ],
    source: Annotated[
        str | None, typer.Option(help="Source name to register; the folder name by default.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a source already loaded under this name.")
    ] = False,
) -> None:
    """Load a record bundle, or another kind of source, into the store at --db (all or nothing)."""
    settings: Settings = ctx.obj
    kind, folder = _kind_and_path(what, path)
    console = Console()
    report: LoadReport | None = None
    try:
        # A first load builds the store under a temporary name and moves it into place only
        # once the load has committed (see records/store_file.py).
        with (
            open_for_load(db, settings=settings.store) as store,
            load_progress(console) as progress,
        ):
            report = kind.load(
                store, folder, settings=settings, source=source, replace=replace, progress=progress
            )
        console.print(render_load_report(report))
    except KeyboardInterrupt as exc:
        if not isinstance(exc, LoadInterrupted):  # before the store was opened, or after
            exc = LoadInterrupted(db, changed=report is not None, created=not db.exists())
        raise UserError(str(exc), exit_code=128 + signal.SIGINT) from None


def _kind_and_path(what: str, path: Path | None) -> tuple[SourceKind, Path]:
    """The kind of source and its path: ``KIND PATH``, or a lone PATH of the default kind."""
    if path is None:
        return DEFAULT_KIND, Path(what)
    kind = source_kind(what)
    if kind is None:
        raise UserError(
            f"unknown source kind '{what}'; use one of {', '.join(k.name for k in SOURCES)} "
            "before the path, or give a bundle folder alone"
        )
    return kind, path
