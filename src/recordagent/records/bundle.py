"""Finding and reading the files of a record bundle.

A bundle is a folder holding any of the tables ``patients``, ``documents``, ``labs`` and
``events``, each as ``NAME.parquet``, ``NAME.csv`` or ``NAME.csv.gz``. Documents may instead be
a folder ``documents/`` of UTF-8 text files with ``documents/manifest.csv`` (or ``.parquet``)
listing every document's columns except ``text`` plus a ``file`` column naming the text file,
relative to ``documents/``.

Every file a bundle load reads must be a regular file inside the bundle folder once symbolic
links are followed: a named pipe would block the load forever, a device could be read without
end, and a link out of the folder would load (and fingerprint) files the bundle does not hold.
Links that stay inside the folder are followed.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from recordagent.errors import DataLoadError, LoadProblem, UserError
from recordagent.records.schema import BUNDLE_TABLES

__all__ = [
    "BundleFiles",
    "file_problem",
    "find_bundle_files",
    "fingerprint_files",
    "read_regular_bytes",
    "read_table",
    "special_file_kind",
]

_SUFFIXES = (".parquet", ".csv", ".csv.gz")
ROW_COLUMN = "__row"  # 1-based data row number carried through validation
_DUPLICATE_HEADER = re.compile(r"\A(.+)_duplicated_\d+\Z")  # how polars renames a repeated name
_HEAD_BYTES = 1 << 16  # what is sniffed of a CSV file before polars reads it
_UTF16_OR_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)
# Bytes that were not UTF-8, as the surrogateescape error handler keeps them.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class BundleFiles:
    """The files of one bundle, resolved."""

    root: Path
    tables: dict[str, Path]
    documents_manifest: Path | None = None
    ignored: tuple[str, ...] = field(default=())

    def label(self, path: Path) -> str:
        """Path relative to the bundle folder, as shown in error messages."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def special_file_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is not a regular file; None when it is."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def file_problem(path: Path, label: str, inside: Path | None = None) -> LoadProblem | None:
    """Why ``path`` cannot be read as a data file, or None when it can.

    It must exist (a symbolic link must lead somewhere), be a regular file once links are
    followed, and - when ``inside`` (a resolved folder) is given - lie inside that folder. The
    file is never opened: opening a named pipe blocks until someone writes to it.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            return LoadProblem(
                label, f"is a symbolic link to '{os.readlink(path)}', which does not exist"
            )
        return LoadProblem(label, "file not found")
    except OSError as exc:  # a loop of links, a name too long, no permission
        return LoadProblem(label, f"cannot be read: {exc.strerror or exc}")
    if inside is not None:
        real = path.resolve()
        if not real.is_relative_to(inside):
            return LoadProblem(
                label,
                f"leads to '{real}', outside the bundle folder; every file of a bundle must "
                "lie inside its folder (copy the file in instead of linking to it)",
            )
    kind = special_file_kind(status.st_mode)
    if kind is not None:
        return LoadProblem(label, f"is {kind}, not a regular file")
    return None


def read_regular_bytes(path: Path) -> bytes:
    """The bytes of a regular file, refusing anything else without blocking.

    Raises:
        OSError: ``path`` cannot be opened, or is not a regular file (checked on the opened
            file, so a file swapped for a named pipe after :func:`file_problem` cannot block
            the read).
    """
    # O_NONBLOCK: opening a named pipe for reading returns at once instead of waiting for a
    # writer; for a regular file the flag changes nothing.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        kind = special_file_kind(os.fstat(handle.fileno()).st_mode)
        if kind is not None:
            raise OSError(f"{path} is {kind}, not a regular file")
        return handle.read()


def _readable(paths: list[Path], folder: Path, problems: list[LoadProblem]) -> list[Path]:
    """The paths that are regular files inside ``folder``; a problem for each other one."""
    readable = []
    for path in paths:
        problem = file_problem(path, path.relative_to(folder).as_posix(), folder)
        if problem is None:
            readable.append(path)
        else:
            problems.append(problem)
    return readable


def find_bundle_files(root: str | Path) -> BundleFiles:
    """Resolve which file holds each table of the bundle at ``root``.

    Raises:
        UserError: The folder does not exist or holds no table.
        DataLoadError: A table is present in two formats, or a table file (or the documents
            folder) is not a regular file (folder) inside the bundle folder.
    """
    try:
        is_folder = Path(root).is_dir()
    except (OSError, ValueError) as exc:  # a name too long for the file system, say
        raise UserError(f"bundle folder not found: {exc}") from exc
    if not is_folder:
        raise UserError(f"bundle folder not found: {root}")
    folder = Path(root).resolve()
    problems: list[LoadProblem] = []
    tables: dict[str, Path] = {}
    used: set[str] = set()
    for name in BUNDLE_TABLES:
        present = [folder / f"{name}{s}" for s in _SUFFIXES]
        present = [p for p in present if os.path.lexists(p)]
        used.update(p.name for p in present)
        found = _readable(present, folder, problems)
        if len(present) > 1:
            problems.append(
                LoadProblem(
                    present[0].name,
                    f"table '{name}' is present in more than "
                    f"one format ({', '.join(p.name for p in present)}); keep one",
                )
            )
        elif found:
            tables[name] = found[0]
    manifest = None
    docs_dir = folder / "documents"
    if docs_dir.is_symlink() and not docs_dir.resolve().is_relative_to(folder):
        problems.append(
            LoadProblem(
                "documents/",
                f"leads to '{docs_dir.resolve()}', outside the bundle folder; every file of a "
                "bundle must lie inside its folder (copy the folder in instead of linking to it)",
            )
        )
    elif docs_dir.is_dir():
        candidates = [docs_dir / f"manifest{s}" for s in _SUFFIXES]
        candidates = [c for c in candidates if os.path.lexists(c)]
        manifests = _readable(candidates, folder, problems)
        if "documents" in tables:
            problems.append(
                LoadProblem(
                    "documents/", "documents are given both as a table and as a folder; keep one"
                )
            )
        elif not candidates:
            problems.append(
                LoadProblem(
                    "documents/",
                    "a documents folder needs a manifest.csv or manifest.parquet listing its files",
                )
            )
        elif len(candidates) > 1:
            problems.append(LoadProblem("documents/", "more than one manifest; keep one"))
        elif manifests:
            manifest = manifests[0]
        used.add("documents")
    if problems:
        raise DataLoadError(problems)
    if not tables and manifest is None:
        expected = ", ".join(f"{n}.parquet|csv" for n in BUNDLE_TABLES)
        raise UserError(f"{folder} holds no bundle table; expected any of: {expected}")
    ignored = tuple(
        sorted(
            p.name for p in folder.iterdir() if p.name not in used and not p.name.startswith(".")
        )
    )
    return BundleFiles(folder, tables, manifest, ignored)


def read_table(path: Path, label: str) -> pl.DataFrame:
    """Read one table; CSV columns arrive as text, Parquet keeps its types.

    A row-number column is added so every later problem can name its row.

    Raises:
        DataLoadError: The file cannot be parsed.
    """
    is_csv = not path.name.endswith(".parquet")
    problem = file_problem(path, label) or (_csv_layout_problem(path, label) if is_csv else None)
    if problem is not None:
        raise DataLoadError([problem])
    try:
        if is_csv:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=False)
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # any parser failure is a property of the user's file
        located = (
            _first_ragged_row(path, label) or _first_undecodable_row(path, label)
            if is_csv
            else None
        )
        raise DataLoadError(
            [located or LoadProblem(label, f"cannot read the file: {_first_line(exc)}")]
        ) from exc
    if ROW_COLUMN in frame.columns:
        raise DataLoadError([LoadProblem(label, f"column name '{ROW_COLUMN}' is reserved")])
    repeated = [
        m.group(1)
        for c in frame.columns
        if (m := _DUPLICATE_HEADER.match(c)) and m.group(1) in frame.columns
    ]
    if repeated:
        raise DataLoadError(
            [
                LoadProblem(label, "column appears more than once in the header", column=name)
                for name in dict.fromkeys(repeated)
            ]
        )
    frame = frame.with_row_index(ROW_COLUMN, offset=1)
    if is_csv and frame.width > 1:
        # Blank lines (and lines of bare commas) are layout, not records.
        frame = frame.filter(~pl.all_horizontal(pl.exclude(ROW_COLUMN).is_null()))
    return frame


def fingerprint_files(paths: list[Path], root: Path) -> str:
    """SHA-256 over the relative names and contents of ``paths`` (order-independent)."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: str(p.relative_to(root))):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _first_ragged_row(path: Path, label: str) -> LoadProblem | None:
    """The first CSV row whose field count differs from the header's (read only on failure)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header is None:
                return None
            for number, fields in enumerate(rows, start=1):
                if fields and len(fields) != len(header):
                    return LoadProblem(
                        label,
                        f"the row has {len(fields)} fields but the header has {len(header)}",
                        row=number,
                    )
    except (OSError, EOFError, UnicodeDecodeError, csv.Error):  # EOFError: a truncated .gz
        return None
    return None


def _csv_head(path: Path) -> bytes | None:
    """The first bytes of a (possibly gzipped) CSV file; None when it cannot be read."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return bytes(handle.read(_HEAD_BYTES))
    except (OSError, EOFError):  # the CSV reader reports it, with its own words
        return None


def _csv_layout_problem(path: Path, label: str) -> LoadProblem | None:
    """An empty file, a text encoding other than UTF-8, or old Mac line ends, said plainly.

    Read as UTF-8 lines, each of these becomes a puzzle instead (a header of one long name,
    letters separated by NUL bytes, 'column missing').
    """
    head = _csv_head(path)
    if head is None:
        return None
    if head.startswith(_UTF16_OR_32_BOMS):
        return LoadProblem(label, "the file is UTF-16 (or UTF-32) text; save it as UTF-8")
    body = head.removeprefix(codecs.BOM_UTF8)
    if not body.strip():
        return LoadProblem(
            label, "the file is empty: a table needs at least a header row naming its columns"
        )
    if b"\x00" in body.split(b"\n", 1)[0]:
        return LoadProblem(
            label,
            "the header holds NUL bytes: the file is not UTF-8 text (UTF-16 without a byte "
            "order mark?); save it as UTF-8",
        )
    if b"\r" in body and b"\n" not in body:
        return LoadProblem(
            label,
            "the file uses CR-only line endings (classic Mac OS); save it with LF or CRLF "
            "line endings",
        )
    return None


def _first_undecodable_row(path: Path, label: str) -> LoadProblem | None:
    """The first CSV row (and column) holding bytes that are not UTF-8 (read only on failure)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    advice = "save the file as UTF-8 (it may be Latin-1 or Windows-1252 text)"
    try:
        with opener(path, "rt", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header is None:
                return None
            if any(_UNDECODABLE.search(name) for name in header):
                return LoadProblem(label, f"the header is not UTF-8 text; {advice}")
            if header:
                header[0] = header[0].removeprefix("\ufeff")
            for number, fields in enumerate(rows, start=1):
                for position, value in enumerate(fields):
                    found = _UNDECODABLE.search(value)
                    if found is not None:
                        byte = ord(found.group()) - 0xDC00
                        return LoadProblem(
                            label,
                            f"not UTF-8 text (byte 0x{byte:02X}); {advice}",
                            row=number,
                            column=header[position] if position < len(header) else None,
                        )
    except (OSError, EOFError, csv.Error):
        return None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
