"""The reject file of a quarantining bundle load: the rows left out, each with why.

A load given a reject file loads the rows that pass every check and writes each row that does
not to the file: one CSV line per problem, naming the file, the 1-based data row, the column and
the reason, with the row's values as given (a JSON object, since the tables' columns differ).
The file is written under a temporary name next to its target (``.NAME.PID.RANDOM.tmp``) and
moved into place in one rename, just before the load commits; a load that fails removes it
again (only if it is still the file this load put there), so the file at the target is always
whole. For a first load (a store that does not exist yet) the file is moved into place only once
the store has landed (:func:`recordagent.records.store_file.after_landing`). A load killed
(SIGKILL) while writing it leaves the temporary file, which the next load writing that reject
file removes.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from recordagent.errors import LoadProblem, UserError
from recordagent.paths import process_alive, same_file
from recordagent.records.bundle import ROW_COLUMN

__all__ = [
    "REJECT_COLUMNS",
    "checked_reject_path",
    "discard",
    "discard_published",
    "file_identity",
    "publish_rejects",
    "stage_rejects",
]

REJECT_COLUMNS = ("file", "row", "column", "reason", "values")
"""The reject file's header."""


def checked_reject_path(
    path: str | Path, bundle: Path, store_files: Mapping[Path, str] | None = None
) -> Path:
    """The reject file's absolute path, once it is a file that can be written there.

    Args:
        path: The reject file as given.
        bundle: The bundle folder being loaded.
        store_files: The files of the store being loaded into, each with how a message names
            it (:func:`recordagent.records.store_file.store_files`): the reject file may be
            none of them, by any name or link.

    Raises:
        UserError: The folder does not exist, the path is a folder, it is one of the store's
            files, or it lies inside the bundle folder ``bundle`` (where a later load would
            read or list it).
    """
    try:
        target = Path(path).expanduser().resolve()
        folder_exists, is_folder = target.parent.is_dir(), target.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, an embedded NUL
        raise UserError(f"the reject file '{path}' cannot be used: {exc}") from exc
    if is_folder:
        raise UserError(f"the reject file '{path}' is a folder; name a file, e.g. rejects.csv")
    if not folder_exists:
        raise UserError(
            f"the reject file's folder '{target.parent}' "
            + (
                "is a file, not a folder"
                if target.parent.exists()
                else "does not exist; create it first"
            )
        )
    for file, what in (store_files or {}).items():
        if same_file(path, file):
            raise UserError(
                f"the reject file '{path}' is {what}, which the load writes; name another file"
            )
    if target.is_relative_to(bundle):
        raise UserError(
            f"the reject file '{path}' lies inside the bundle folder, which a later load would "
            "read; write it outside the bundle"
        )
    if not os.access(target.parent, os.W_OK):
        raise UserError(f"the reject file's folder '{target.parent}' cannot be written")
    return target


def stage_rejects(
    target: Path,
    problems: Iterable[LoadProblem],
    tables: Mapping[str, pl.DataFrame],
) -> Path:
    """Write the reject file under a temporary name next to ``target``; returns that name.

    Args:
        target: Where :func:`publish_rejects` will move the file.
        problems: One line each, in the order given; every problem names a row.
        tables: The tables as read (with their row column), by file label: the values given.

    Raises:
        UserError: The file could not be written (the temporary file is removed).
    """
    _remove_stale_temporaries(target)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    rows_by_file: dict[str, dict[int, str]] = {}
    listed = list(problems)
    for file in {p.file for p in listed}:
        wanted = {p.row for p in listed if p.file == file and p.row is not None}
        frame = tables.get(file)
        rows_by_file[file] = {} if frame is None else _values_by_row(frame, wanted)
    try:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REJECT_COLUMNS)
            for problem in listed:
                values = rows_by_file[problem.file].get(problem.row or 0, "{}")
                writer.writerow(
                    [problem.file, problem.row, problem.column or "", problem.message, values]
                )
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(exc, OSError):
            raise UserError(
                f"the reject file '{target}' could not be written: {exc.strerror or exc}"
            ) from exc
        raise
    return temporary


def publish_rejects(temporary: Path, target: Path) -> None:
    """Move a staged reject file into place (one rename: readers see the old or the new)."""
    os.replace(temporary, target)


def file_identity(path: Path) -> tuple[int, int]:
    """A file's identity (device, inode), which a rename keeps: see :func:`discard_published`."""
    status = path.stat()
    return status.st_dev, status.st_ino


def discard(path: Path | None) -> None:
    """Remove a staged reject file of a load that did not commit."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def discard_published(target: Path, identity: tuple[int, int] | None) -> None:
    """Remove a published reject file of a load that did not commit, if it is still there.

    Another load may have put its own file at ``target`` since: that one is left.
    """
    if identity is None:
        return
    with contextlib.suppress(OSError):
        status = target.stat()
        if (status.st_dev, status.st_ino) == identity:
            target.unlink()


def _values_by_row(frame: pl.DataFrame, rows: set[int]) -> dict[int, str]:
    """The given values of ``rows``, each as a JSON object (missing values left out)."""
    picked = frame.filter(pl.col(ROW_COLUMN).is_in(sorted(rows)))
    found = {}
    for record in picked.iter_rows(named=True):
        row = record.pop(ROW_COLUMN)
        given = {k: _json_value(v) for k, v in record.items() if v is not None}
        found[row] = json.dumps(given, ensure_ascii=False, default=str)
    return found


def _json_value(value: object) -> object:
    """A value as JSON holds it: numbers JSON has no word for (inf, nan) as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _remove_stale_temporaries(target: Path) -> None:
    """Remove reject files a killed load of ``target`` left half-written (its process is gone)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match is not None and not process_alive(int(match[1])):
                with contextlib.suppress(OSError):
                    entry.unlink()
