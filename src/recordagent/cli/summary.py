"""``recordagent summary``: per-patient overview of a store file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from recordagent.cli.render import render_summary, store_file
from recordagent.records.db import connect
from recordagent.records.summary import patient_summary
from recordagent.settings import Settings


def summary(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="DuckDB store file.")],
    limit: Annotated[
        int, typer.Option(min=0, help="Show at most this many patients (0: all).")
    ] = 50,
) -> None:
    """Print one row per patient: documents, chunks, tokens, labs, events and record span."""
    settings: Settings = ctx.obj
    with connect(store_file(db), settings=settings.store, read_only=True) as store:
        frame = patient_summary(store)
    # A limit past the patient count shows them all (and may exceed what head() can take).
    shown = frame if limit == 0 or limit >= frame.height else frame.head(limit)
    title = f"{frame.height} patients in {escape(str(db))}" + (
        f" (first {shown.height})" if shown.height < frame.height else ""
    )
    Console().print(render_summary(shown, title))
