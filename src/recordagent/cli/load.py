"""``recordagent load``: validate a record bundle and load it into a store file."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recordagent.cli.render import load_progress, render_load_report
from recordagent.errors import UserError
from recordagent.records.load import LoadReport, load_bundle
from recordagent.records.store_file import LoadInterrupted, open_for_load
from recordagent.settings import Settings
from recordagent.sources.fhir import load_fhir
from recordagent.sources.mimic_iv import load_mimic_iv
from recordagent.sources.omop import load_omop

SOURCE_KINDS = ("bundle", "mimic-iv", "fhir", "omop")
"""Kinds of source ``recordagent load KIND PATH`` reads; a lone PATH is a bundle."""


def load(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(
            help="A bundle folder, or a source kind followed by its PATH: 'mimic-iv PATH' "
            "(a MIMIC-IV folder with hosp/, optional icu/ and note/) or 'bundle PATH'.",
            metavar="KIND|PATH",
        ),
    ],
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The folder, when a KIND is given.", metavar="PATH", show_default=False
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
    """Load a record bundle, or a MIMIC-IV folder, into the store at --db (all or nothing)."""
    settings: Settings = ctx.obj
    if path is None:
        kind, folder = "bundle", Path(what)
    elif what in SOURCE_KINDS:
        kind, folder = what, path
    else:
        raise UserError(
            f"unknown source kind '{what}'; use one of {', '.join(SOURCE_KINDS)} before the "
            "path, or give a bundle folder alone"
        )
    console = Console()
    loader = {"mimic-iv": load_mimic_iv, "fhir": load_fhir, "omop": load_omop}.get(
        kind, load_bundle
    )
    report: LoadReport | None = None
    try:
        # A first load builds the store under a temporary name and moves it into place only
        # once the load has committed (see records/store_file.py).
        with (
            open_for_load(db, settings=settings.store) as store,
            load_progress(console) as progress,
        ):
            report = loader(
                store, folder, settings=settings, source=source, replace=replace, progress=progress
            )
        console.print(render_load_report(report))
    except KeyboardInterrupt as exc:
        if not isinstance(exc, LoadInterrupted):  # before the store was opened, or after
            exc = LoadInterrupted(db, changed=report is not None, created=not db.exists())
        raise UserError(str(exc), exit_code=128 + signal.SIGINT) from None
