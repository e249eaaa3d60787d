"""``recordagent summary``: per-patient overview of a store file, as a table or as data.

``--format table`` (the default) prints the columns that fit a terminal; ``markdown``, ``csv``,
``json``, ``jsonl`` and ``parquet`` give every column of
:func:`recordagent.records.summary.patient_summary`, on stdout (nothing else there: notices go
to stderr) or in ``--out``. ``--out`` is never the store (nor its write-ahead log), and its
suffix must name the format (``.txt`` for the table) when ``--format`` is not given.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.markup import escape

from recordagent.cli.render import (
    OutputFormat,
    chosen_format,
    markdown_table,
    output_console,
    output_file,
    refuse_overwriting,
    render_summary,
    store_file,
)
from recordagent.evaluation.results_table import frame_bytes, write_results
from recordagent.paths import shown, write_text
from recordagent.records.db import connect
from recordagent.records.summary import patient_summary
from recordagent.settings import Settings

__all__ = ["summary"]

TABLE_LIMIT = 50
"""Patients the table shows when --limit is not given (the data formats give them all)."""


def summary(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="DuckDB store file.")],
    limit: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=f"At most this many patients (0: all). Default: {TABLE_LIMIT} in the table, "
            "all in the other formats.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            help="table (for a terminal), markdown, csv, json, jsonl or parquet. Default: by "
            "the suffix of --out (.txt table, .md, .csv, .json, .jsonl, .parquet), else "
            "table; a format the suffix contradicts is refused.",
            case_sensitive=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write to this file instead of stdout (required for parquet)."),
    ] = None,
) -> None:
    """Print one row per patient: documents, chunks, tokens, labs, events and record span."""
    settings: Settings = ctx.obj
    chosen = chosen_format(output_format, out)
    # DuckDB keeps what is not yet checkpointed in FILE.wal: it is part of the store.
    refuse_overwriting(
        [("--out", out)],
        [("record store", db), ("record store's write-ahead log", Path(f"{db}.wal"))],
    )
    if out is not None:
        output_file(out, "--out")
    with connect(store_file(db), settings=settings.store, read_only=True) as store:
        frame = patient_summary(store)
    if limit is None:
        limit = TABLE_LIMIT if chosen is OutputFormat.table else 0
    # A limit past the patient count shows them all (and may exceed what head() can take).
    shown_rows = frame if limit == 0 or limit >= frame.height else frame.head(limit)
    notices = output_console(stderr=True)

    if chosen is OutputFormat.table:
        title = f"{frame.height} patients in {escape(str(db))}" + (
            f" (first {shown_rows.height})" if shown_rows.height < frame.height else ""
        )
        if out is None:
            output_console().print(render_summary(shown_rows, title))
            return
        text = _table_text(shown_rows, title)
        write_text(out, text, "summary")
    elif chosen is OutputFormat.markdown:
        text = markdown_table(shown_rows)
        if out is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        write_text(out, text, "summary")
    elif out is None:
        sys.stdout.buffer.write(frame_bytes(shown_rows, chosen.value))
        sys.stdout.flush()
        return
    else:
        write_results(shown_rows, out, format=chosen.value)
    notices.print(f"written: {escape(shown(out))} ({shown_rows.height} patients)", highlight=False)


def _table_text(frame: pl.DataFrame, title: str) -> str:
    """The summary table as plain text at its natural width."""
    buffer = io.StringIO()
    output_console(file=buffer).print(render_summary(frame, title))
    return buffer.getvalue()
