"""Finding and reading the files of a record bundle.

A bundle is a folder holding any of the tables ``patients``, ``documents``, ``labs`` and
``events``, each as ``NAME.parquet``, ``NAME.csv`` or ``NAME.csv.gz``. Documents may instead be
a folder ``documents/`` of UTF-8 text files with ``documents/manifest.csv`` (or ``.parquet``)
listing every document's columns except ``text`` plus a ``file`` column naming the text file,
relative to ``documents/``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from recordagent.errors import DataLoadError, LoadProblem, UserError
from recordagent.records.schema import BUNDLE_TABLES

__all__ = ["BundleFiles", "find_bundle_files", "fingerprint_files", "read_table"]

_SUFFIXES = (".parquet", ".csv", ".csv.gz")
ROW_COLUMN = "__row"  # 1-based data row number carried through validation
_DUPLICATE_HEADER = re.compile(r"\A(.+)_duplicated_\d+\Z")  # how polars renames a repeated name


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


def find_bundle_files(root: str | Path) -> BundleFiles:
    """Resolve which file holds each table of the bundle at ``root``.

    Raises:
        UserError: The folder does not exist or holds no table.
        DataLoadError: A table is present in two formats.
    """
    if not Path(root).is_dir():
        raise UserError(f"bundle folder not found: {root}")
    folder = Path(root).resolve()
    problems: list[LoadProblem] = []
    tables: dict[str, Path] = {}
    used: set[str] = set()
    for name in BUNDLE_TABLES:
        found = [folder / f"{name}{s}" for s in _SUFFIXES if (folder / f"{name}{s}").is_file()]
        if len(found) > 1:
            problems.append(
                LoadProblem(
                    found[0].name,
                    f"table '{name}' is present in more than "
                    f"one format ({', '.join(p.name for p in found)}); keep one",
                )
            )
        elif found:
            tables[name] = found[0]
            used.add(found[0].name)
    manifest = None
    docs_dir = folder / "documents"
    if docs_dir.is_dir():
        manifests = [
            docs_dir / f"manifest{s}" for s in _SUFFIXES if (docs_dir / f"manifest{s}").is_file()
        ]
        if "documents" in tables:
            problems.append(
                LoadProblem(
                    "documents/", "documents are given both as a table and as a folder; keep one"
                )
            )
        elif not manifests:
            problems.append(
                LoadProblem(
                    "documents/",
                    "a documents folder needs a manifest.csv or manifest.parquet listing its files",
                )
            )
        elif len(manifests) > 1:
            problems.append(LoadProblem("documents/", "more than one manifest; keep one"))
        else:
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
    try:
        if is_csv:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=False)
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # any parser failure is a property of the user's file
        ragged = _first_ragged_row(path, label) if is_csv else None
        raise DataLoadError(
            [ragged or LoadProblem(label, f"cannot read the file: {_first_line(exc)}")]
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
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
