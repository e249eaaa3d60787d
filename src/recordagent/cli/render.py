"""Rich renderings shared by the subcommands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from recordagent.records.load import LoadReport, ProgressCallback

__all__ = ["load_progress", "render_load_report", "render_summary"]


_SUMMARY_COLUMNS = {
    "patient_id": "patient",
    "sex": "sex",
    "documents": "docs",
    "chunks": "chunks",
    "tokens": "tokens",
    "labs": "labs",
    "events": "events",
    "first_entry": "first",
    "last_entry": "last",
}


def render_summary(frame: pl.DataFrame, title: str) -> Table:
    """The per-patient summary table (the columns that fit a terminal)."""
    table = Table(title=title, box=None, header_style="bold underline", pad_edge=False)
    numeric = {"documents", "chunks", "tokens", "labs", "events"}
    for name, heading in _SUMMARY_COLUMNS.items():
        table.add_column(heading, justify="right" if name in numeric else "left", no_wrap=True)
    for row in frame.select(list(_SUMMARY_COLUMNS)).iter_rows():
        table.add_row(
            *("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row)
        )
    return table


def render_load_report(report: LoadReport) -> Table:
    """What one load did, as a two-column table."""
    table = Table(title=f"source '{report.source}': {report.status}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    if report.status != "unchanged":
        table.add_row("document tokens", f"{report.document_tokens:,} ({report.tokenizer})")
        table.add_row("seconds", ", ".join(f"{k} {v:.2f}" for k, v in report.seconds.items()))
    table.add_row("fingerprint", report.fingerprint[:16])
    if report.ignored_files:
        table.add_row("ignored files", ", ".join(report.ignored_files))
    return table


def progress_columns(label_width: int) -> tuple[ProgressColumn, ...]:
    """Label, bar, done of total, time elapsed: the columns of the command line's progress."""
    return (
        TextColumn(f"{{task.description:<{label_width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )


@contextmanager
def load_progress(console: Console) -> Iterator[ProgressCallback]:
    """A progress bar per load phase, fed by the loader's callback."""
    with Progress(*progress_columns(9), console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
