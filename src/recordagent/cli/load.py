"""``recordagent load``: validate a record bundle and load it into a store file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recordagent.cli.render import load_progress, render_load_report
from recordagent.errors import UserError
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
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
    db: Annotated[Path, typer.Option(help="DuckDB store file; created if missing.")],
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
    created = not db.exists()
    try:
        with connect(db, settings=settings.store) as store, load_progress(console) as progress:
            loader = {
                "mimic-iv": load_mimic_iv,
                "fhir": load_fhir,
                "omop": load_omop,
            }.get(kind, load_bundle)
            report = loader(
                store, folder, settings=settings, source=source, replace=replace, progress=progress
            )
    except BaseException:
        if created:  # a failed first load leaves no empty store behind
            for leftover in (db, db.with_name(db.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    console.print(render_load_report(report))
