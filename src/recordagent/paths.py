"""Paths given by the user — files read, files written, output folders — without tracebacks.

``Path.is_file()`` and its kin raise for some paths instead of answering (a name longer than
the file system allows, a permission problem on the way); :func:`path_kind` answers for every
path, and turns what cannot be answered into a :class:`UserError` naming the path.
:func:`read_text`, :func:`write_text` and :func:`check_output_folder` do the same for reading,
writing and choosing an output folder: every problem is one error line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Literal

from recordagent.errors import UserError

__all__ = [
    "PathKind",
    "check_output_folder",
    "path_kind",
    "process_alive",
    "read_text",
    "replace_file",
    "same_file",
    "shown",
    "write_text",
]

PathKind = Literal["missing", "file", "folder", "other"]
"""Nothing there (or a file on the way), a regular file, a folder, or anything else."""

# A path that names nothing: not there, or a file where a folder should be on the way.
_ABSENT = {errno.ENOENT, errno.ENOTDIR}


def path_kind(path: Path, what: str) -> PathKind:
    """What ``path`` is; ``what`` names it in the error ('items file', '--out').

    Raises:
        UserError: The path cannot be looked at (name too long, permission denied, a loop of
            links, a NUL byte): the message names ``what``, the path and the reason.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno in _ABSENT:
            return "missing"
        raise UserError(f"{what} {shown(path)}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # an embedded NUL byte
        raise UserError(f"{what} {shown(path)}: {exc}") from exc
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "other"


def shown(value: str | Path, limit: int = 120) -> str:
    """``value`` for a one-line message: control characters escaped, a long value cut."""
    text = str(value)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text):,} characters)"
    if not text.isprintable():  # a newline, NUL or lone surrogate would break the line
        text = text.encode("unicode_escape").decode("ascii")
    return text


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the ``what`` file at ``path``.

    Raises:
        UserError: The path does not exist, is a folder, cannot be read or is not UTF-8.
    """
    kind = path_kind(path, what)
    if kind == "folder":
        raise UserError(f"{what} {path} is a folder, not a file")
    if kind == "missing":
        raise UserError(f"{what} {path} does not exist")
    if kind == "other":
        raise UserError(f"{what} {path} is not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror or exc}") from exc


def write_text(path: Path, text: str, what: str) -> None:
    """Write ``text`` to ``path`` (its folder made if missing), whole or not at all.

    Raises:
        UserError: The path is a folder, or the file cannot be written.
    """
    replace_file(path, text.encode("utf-8"), what)


def replace_file(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, renamed into place.

    A reader never sees half a file, and a write that fails (a full disk, an interrupt)
    leaves the file that was there. A symbolic link is written through, to the file it names.

    Raises:
        UserError: The path is a folder, or the file cannot be written.
    """
    if path_kind(path, what) == "folder":
        raise UserError(f"{what} {path} is a folder; give a file name")
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as out:  # a new file: the mode open() gives, umask applied
            out.write(data)
        os.replace(temporary, target)
    except OSError as exc:
        _remove(temporary)
        raise UserError(f"cannot write the {what} {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove(temporary)
        raise


def _remove(temporary: Path) -> None:
    with contextlib.suppress(OSError):  # never there, or its folder is not one
        temporary.unlink(missing_ok=True)


def same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name one file: the same path, or links (symbolic or hard) to it.

    Paths that cannot both be looked at are compared once their symbolic links are resolved,
    so that a file yet to be written through a link is the file the link names.
    """
    try:
        return os.path.samefile(first, second)
    except (OSError, ValueError):
        return _resolved(first) == _resolved(second)


def _resolved(path: str | Path) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL byte
        return Path(os.path.abspath(path))


def check_output_folder(folder: Path, what: str = "--out") -> None:
    """Refuse an output folder that is a file or cannot be created or written, before any work.

    Nothing is created: a run that stops at a later check writes nothing.

    Raises:
        UserError: ``folder`` is a file, lies under a file, or is not writable.
    """
    kind = path_kind(folder, what)
    if kind == "folder":
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"{what} {folder}: the folder is not writable")
        return
    if kind != "missing":
        raise UserError(f"{what} {folder} is a file, not a folder (the output folder)")
    parent = folder.absolute().parent
    while path_kind(parent, what) == "missing" and parent != parent.parent:
        parent = parent.parent
    if path_kind(parent, what) != "folder":
        raise UserError(f"{what} {folder}: {parent} is a file, so the folder cannot be made")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {folder}: cannot create it, {parent} is not writable")


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists: the writer of a temporary file left behind, say."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists but belongs to someone else
        return True
    return True
