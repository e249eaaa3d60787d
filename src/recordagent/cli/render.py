"""Rich renderings, and checks of path arguments, shared by the subcommands."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO

import polars as pl
from rich.console import Console, ConsoleRenderable, RenderHook
from rich.constrain import Constrain
from rich.markup import escape
from rich.measure import Measurement
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
from rich.text import Text

from recordagent.errors import UserError
from recordagent.paths import path_kind, same_file, shown
from recordagent.records.load_report import LoadProgress, LoadReport

__all__ = [
    "OUT_SUFFIXES",
    "PIPE_WIDTH",
    "add_id_column",
    "chosen_format",
    "load_progress",
    "markdown_table",
    "output_console",
    "output_file",
    "output_folder",
    "readable_name",
    "refuse_overwriting",
    "render_load_report",
    "render_summary",
    "shown",
    "store_file",
]


PIPE_WIDTH = 10_000
"""The width of an output console that is not a terminal: no table is squeezed to fit it."""


def output_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """The console a command prints its results on: whole ids however the output is read.

    In a terminal it is rich's console at the terminal's width (``COLUMNS`` overrides it).
    Anywhere else — a pipe, a file, CI — rich would lay every table out at 80 columns and cut
    ids to fit with an ellipsis; there, nothing is laid out narrower than it needs: each
    table, line and panel takes its natural width (``COLUMNS`` is not consulted, since no
    screen wraps the text).

    Args:
        stderr: Print to stderr (messages beside data written to stdout).
        file: Print to this text file instead (never a terminal: laid out at natural width).
    """
    console = Console(stderr=stderr, file=file)
    if console.is_terminal:
        return console
    wide = Console(stderr=stderr, file=file, width=PIPE_WIDTH)
    wide.push_render_hook(_NaturalWidth(wide))
    return wide


class _NaturalWidth(RenderHook):
    """Lays each printed thing out at the width it needs, not the console's (huge) width.

    Tables, text and lines need no help; a renderable that fills the width it is given (a
    panel) would otherwise be ``PIPE_WIDTH`` characters wide.
    """

    def __init__(self, console: Console) -> None:
        self._console = console

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        options = self._console.options
        fitted: list[ConsoleRenderable] = []
        for renderable in renderables:
            if isinstance(renderable, Table | Text) and not getattr(renderable, "expand", False):
                fitted.append(renderable)  # never wider than it needs: no second measuring
                continue
            width = Measurement.get(self._console, options, renderable).maximum
            fitted.append(
                renderable if width >= options.max_width else Constrain(renderable, width)
            )
        return fitted


def add_id_column(table: Table, header: str, **options: object) -> None:
    """Add a column of ids to ``table``: folded onto a second line if it must, never cut.

    A ``no_wrap`` column that does not fit a terminal is cut with an ellipsis — the id is
    then lost; folding keeps every character.
    """
    table.add_column(header, overflow="fold", no_wrap=False, **options)  # type: ignore[arg-type]


def markdown_table(frame: pl.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (numbers right-aligned, null as empty)."""
    names = frame.columns
    numeric = {n for n, t in frame.schema.items() if t.is_numeric()}
    lines = [
        "| " + " | ".join(names) + " |",
        "|" + "|".join("---:" if n in numeric else "---" for n in names) + "|",
    ]
    for row in frame.iter_rows():
        cells = ("" if v is None else str(v).replace("|", "\\|") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
        # Every cell folds rather than lose characters to an ellipsis in a narrow terminal.
        add_id_column(table, heading, justify="right" if name in numeric else "left")
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


OUT_SUFFIXES = {
    ".txt": "table",
    ".md": "markdown",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}
"""The format each suffix of ``--out`` names, for the commands that take ``--format``."""

_TEXT_SUFFIX = ".txt"
"""Plain text: the table by default, yet a fit for any text format (never parquet)."""


class OutputFormat(StrEnum):
    """What ``report`` and ``summary`` write: a table for a terminal, or the rows as data."""

    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"


def chosen_format(given: str | None, out: Path | None) -> OutputFormat:
    """The format to write: ``given``, else the one the suffix of ``out`` names, else 'table'.

    Raises:
        UserError: ``out`` is a folder; its suffix names no format and no format is given
            (a table written over a file meant as something else, a store, would destroy
            it); ``given`` contradicts the suffix (csv into ``x.parquet``); or parquet, a
            binary file, is to go to stdout.
    """
    chosen = OutputFormat(_format_named(given, out))
    if chosen is OutputFormat.parquet and out is None:
        raise UserError(
            "--format parquet writes a binary file: give it with --out FILE.parquet "
            "(or use --format csv or jsonl for a pipe)"
        )
    return chosen


def _format_named(given: str | None, out: Path | None) -> str:
    if out is None:
        return given or "table"
    if path_kind(out, "--out") == "folder":  # said first: a folder's name has no suffix to fix
        raise UserError(f"--out {shown(out)} is a folder; give a file name")
    suffix = out.suffix.lower()
    named = OUT_SUFFIXES.get(suffix)
    if given is None:
        if named is None:
            what = f"its suffix '{out.suffix}'" if out.suffix else "a name without a suffix"
            raise UserError(
                f"--out {shown(out)}: {what} names no format; end it in one of "
                f"{', '.join(OUT_SUFFIXES)}, or give --format"
            )
        return named
    text_anyway = suffix == _TEXT_SUFFIX and given != "parquet"
    if named is not None and named != given and not text_anyway:
        raise UserError(
            f"--format {given} contradicts --out {shown(out)}, whose suffix '{out.suffix}' "
            f"names {named}; change one of them, or leave out --format"
        )
    return given


def refuse_overwriting(
    outputs: Sequence[tuple[str, Path | None]], inputs: Sequence[tuple[str, Path]]
) -> None:
    """Refuse an output that is one of the inputs, or another output, before any work.

    Each output and input is ``(what, path)``: ``("--out", out)``, ``("run log", log)``. The
    same file by another name (a symbolic or hard link, ``./x``) counts. stdout counts as an
    output when it is redirected into a file: ``>> run.jsonl`` would append to the log.

    Raises:
        UserError: Naming the option, the file and the input it would replace.
    """
    given = [(what, path) for what, path in outputs if path is not None]
    for number, (what, path) in enumerate(given):
        for source, original in inputs:
            if same_file(path, original):
                raise UserError(
                    f"{what} {shown(path)} is the {source} {shown(original)}: writing it "
                    "would destroy it; give another file"
                )
        for other, earlier in given[:number]:
            if same_file(path, earlier):
                raise UserError(
                    f"{what} {shown(path)} and {other} {shown(earlier)} are the same file; "
                    "give each its own"
                )
    redirected = _stdout_file()
    for source, original in inputs:
        if redirected is not None and _is_file(original, redirected):
            raise UserError(
                f"stdout is redirected into the {source} {shown(original)}: writing to it "
                "would destroy it; redirect to another file, or use --out"
            )


def _stdout_file() -> os.stat_result | None:
    """What stdout is, when it is a regular file; None for a terminal, a pipe or no file."""
    try:
        status = os.fstat(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return status if stat.S_ISREG(status.st_mode) else None


def _is_file(path: Path, status: os.stat_result) -> bool:
    try:
        mine = path.stat()
    except (OSError, ValueError):
        return False
    return (mine.st_dev, mine.st_ino) == (status.st_dev, status.st_ino)
