"""Rich renderings, and checks of path arguments, shared by the subcommands."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.markup import escape
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

from recordagent.errors import UserError
from recordagent.paths import path_kind, shown
from recordagent.records.load_report import LoadProgress, LoadReport

__all__ = [
    "load_progress",
    "output_file",
    "output_folder",
    "readable_name",
    "render_load_report",
    "render_summary",
    "shown",
    "store_file",
]


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
    for warning in report.warnings:
        table.add_row("warning", escape(warning))
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
def load_progress(console: Console) -> Iterator[LoadProgress]:
    """A progress bar per load phase, fed by the loader's callback."""
    with Progress(*progress_columns(9), console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def readable_name(path: Path, option: str) -> Path:
    """``path`` once the file system accepts its name; what is there the reader checks.

    Raises:
        UserError: The name is refused (too long, for one), naming ``option``.
    """
    path_kind(path, option)
    return path


def store_file(db: Path, option: str = "--db") -> Path:
    """``db`` if it names an existing file (the store checks what is in it).

    Raises:
        UserError: Nothing is there, or a folder, or the name is refused.
    """
    kind = path_kind(db, option)
    if kind == "missing":
        raise UserError(
            f"no record store at {shown(db)} (create one with: recordagent load BUNDLE {option})"
        )
    if kind == "folder":
        raise UserError(f"{option} {shown(db)} is a folder, not a record store file")
    return db


def output_file(path: Path, option: str) -> Path:
    """``path`` once it is known that a file can be written there; its folder is created.

    Checked before the work whose result it receives, so that a bad path fails at once.

    Raises:
        UserError: ``path`` is a folder, its folder cannot be created, or the file cannot be
            written (naming ``option``).
    """
    kind = path_kind(path, option)
    if kind == "folder":
        raise UserError(f"{option} {shown(path)} is a folder; give a file name")
    _make_folder(path.parent, option, path)
    if kind == "other":  # a device or pipe: opening it to probe could block
        return path
    try:
        # Opening for append changes no existing file; a probe file is removed again.
        with path.open("ab"):
            pass
    except OSError as exc:
        raise UserError(
            f"{option} {shown(path)} cannot be written: {exc.strerror or exc}"
        ) from None
    if kind == "missing":
        path.unlink(missing_ok=True)
    return path


def output_folder(path: Path, option: str) -> Path:
    """``path`` as a folder that files can be written into, created if missing.

    Raises:
        UserError: ``path`` is a file, or the folder cannot be created or written (naming
            ``option``).
    """
    if path_kind(path, option) in ("file", "other"):
        raise UserError(f"{option} {shown(path)} is a file; give a folder")
    _make_folder(path, option, path)
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(
            f"{option} {shown(path)} cannot be written: {exc.strerror or exc}"
        ) from None
    return path


def _make_folder(folder: Path, option: str, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in (folder, *folder.parents) if p.is_file()), folder)
        raise UserError(
            f"{option} {shown(path)}: {shown(blocking)} is a file, not a folder"
        ) from None
    except OSError as exc:
        raise UserError(
            f"{option} {shown(path)}: cannot create the folder {shown(folder)}: "
            f"{exc.strerror or exc}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {shown(path)}: the folder {shown(folder)} is not writable")
