"""The record store file through a load: atomic first loads, clear errors about the file.

A load must leave a store exactly as it was unless it reports success, and a first load must
leave no file behind unless it reports success. :func:`open_for_load` gives the store a load
writes into, and keeps those promises around it:

* **Into an existing store** the load writes in place. Every loader writes in one transaction
  that it rolls back on any failure, and DuckDB's lock on the file lets one writing process in
  at a time (another gets a UserError that the store is in use).
* **Into a store that does not exist yet** the store is built under a temporary name in the same
  folder, ``.NAME.PID.RANDOM.tmp`` (DuckDB adds ``.wal`` to it while it is open). Only when the
  load has committed is the temporary store checkpointed, closed and hard-linked to NAME, which
  fails instead of overwriting a file that appeared meanwhile; then the temporary name is
  removed. A first load that fails or is interrupted removes its temporary file; one that is
  killed (SIGKILL, power loss) leaves it behind, never NAME, and the next load into NAME
  removes temporary files whose process is gone. Readers never see a half-built store.
* **Two first loads into the same new file at once** each build their own temporary store. The
  first to finish moves its store into place and succeeds; any other fails with a UserError
  saying that another load created the store while it ran, having written nothing to it:
  running it again loads into that store. So, as for loads into an existing store, concurrent
  loads never lose data a load reported as loaded, and the ones that fail say so.
* **Files that belong with a first load** (a bundle load's reject file) are staged by the loader
  and moved into place by :func:`after_landing` only once the store has landed: a first load
  that loses the race above never touches them, so it cannot replace or remove the winner's.

An interrupted load (Ctrl-C) raises :class:`LoadInterrupted`, which says whether the store holds
the load: DuckDB reports Ctrl-C during a statement as an error of its own, and cleanup
statements that then fail may hide that, so the interrupt is looked for in the whole chain of
errors. A store file that cannot be written (read-only file or folder, full disk) or that is
damaged ends in a UserError naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import duckdb

from recordagent.errors import UserError
from recordagent.paths import process_alive
from recordagent.records.db import (
    MEMORY,
    RecordStore,
    connect,
    error_chain,
    store_file_error,
)
from recordagent.records.patient_database import data_version
from recordagent.settings import StoreSettings

__all__ = [
    "LoadInterrupted",
    "Pending",
    "after_landing",
    "is_temporary_store",
    "open_for_load",
    "remove_stale_temporaries",
    "store_files",
    "temporary_store_path",
]

_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?:\.wal|\.tmp)?")
"""A temporary store of a first load, its WAL, or DuckDB's spill folder next to it."""

# errno values that say a file system cannot hold a hard link: fall back to a rename there.
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}
)
# How the system (through DuckDB's messages) says a file could not be written.
_FULL_WORDS = ("No space left on device", "File too large", "Disk quota exceeded")
_NOT_WRITABLE_WORDS = ("Permission denied", "Operation not permitted", "Read-only file system")


@dataclass(eq=False)
class Pending:
    """A file move waiting for a first load's store to land; see :func:`after_landing`."""

    publish: Callable[[], None]
    discard: Callable[[], None]
    _landing: _Landing | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Never publish: discard now (the load this belongs to did not commit)."""
        if self._landing is not None and self in self._landing.pending:
            self._landing.pending.remove(self)
            self.discard()


@dataclass
class _Landing:
    """A first load in progress: the store file it becomes and what waits for it to land."""

    target: Path
    pending: list[Pending] = field(default_factory=list)

    def land(self) -> None:
        while self.pending:
            self.pending.pop(0).publish()

    def abandon(self) -> None:
        while self.pending:
            with contextlib.suppress(Exception):  # must not hide the error that ended the load
                self.pending.pop(0).discard()


# First loads in progress in this process, by their temporary store's location.
_FIRST_LOADS: dict[str, _Landing] = {}


def store_files(store: RecordStore) -> dict[Path, str]:
    """The files a load into ``store`` writes, each with how a message names it.

    The store file and its write-ahead log; for a first load (:func:`open_for_load`), also the
    store file it becomes and that file's log. Empty for a store in memory.
    """
    if store.location == MEMORY:
        return {}
    path = Path(store.location)
    landing = _FIRST_LOADS.get(store.location)
    shown = path if landing is None else landing.target
    files = {path: f"the record store {shown}", _wal(path): f"the record store {shown}'s log"}
    if landing is not None:
        files |= {
            landing.target: f"the record store {shown}",
            _wal(landing.target): f"the record store {shown}'s log",
        }
    return files


def after_landing(
    store: RecordStore, publish: Callable[[], None], discard: Callable[[], None]
) -> Pending | None:
    """Run ``publish`` once ``store``, a first load's, has landed at its name; else ``discard``.

    For a loader whose output must appear only with the store (a reject file): the first load
    that loses a race to create the store (see the module documentation) never publishes.

    Returns:
        The pending move (cancel it if the load does not commit after all), or None when
        ``store`` is not a first load's: the caller publishes now, with its commit.
    """
    landing = _FIRST_LOADS.get(store.location)
    if landing is None:
        return None
    pending = Pending(publish, discard, landing)
    landing.pending.append(pending)
    return pending


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


class LoadInterrupted(KeyboardInterrupt):
    """A load was interrupted (Ctrl-C); the message says what the store holds now.

    A KeyboardInterrupt, so that code that stops on Ctrl-C still stops.

    Attributes:
        store: The store file the load wrote to.
        changed: Whether the load had committed before the interrupt (its data is in the
            store); ``False`` means the store is exactly as it was, or was not created.
    """

    def __init__(self, store: Path, *, changed: bool, created: bool) -> None:
        self.store = store
        self.changed = changed
        if changed:
            message = f"interrupted after the load was committed; its data is in {store}"
        elif created:
            message = f"interrupted; nothing was written and no store was created at {store}"
        else:
            message = f"interrupted; the store {store} is unchanged"
        super().__init__(message)


@contextlib.contextmanager
def open_for_load(
    path: str | Path, *, settings: StoreSettings | None = None
) -> Iterator[RecordStore]:
    """The store to load into at ``path``, created atomically if it does not exist yet.

    Use it around one load::

        with open_for_load("cohort.duckdb") as store:
            report = load_bundle(store, "exports/cohort")

    The store is published (a new file moved into place) only when the block ends without an
    error; see the module documentation for what happens to an existing store, to a first
    load that fails, and to concurrent first loads.

    Args:
        path: The store file, or ``":memory:"``.
        settings: Thread and memory limits for DuckDB.

    Raises:
        LoadInterrupted: The block was interrupted (Ctrl-C), whatever error that became.
        UserError: The path cannot hold a store, the file or its folder cannot be written, the
            disk is full, the store is damaged or in use, or another load created the store
            while this first load ran.
    """
    if str(path) == MEMORY:
        with connect(MEMORY, settings=settings) as store:
            yield store
        return
    target = Path(path)
    try:
        exists = _check_target(target)
        remove_stale_temporaries(target)
    except KeyboardInterrupt:
        raise LoadInterrupted(target, changed=False, created=not target.exists()) from None
    if exists:
        with _existing_store(target, settings) as store:
            yield store
    else:
        with _new_store(target, settings) as store:
            yield store


def temporary_store_path(target: Path) -> Path:
    """A fresh temporary name for a first load into ``target``: hidden, in the same folder."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def is_temporary_store(path: Path, target: Path | None = None) -> bool:
    """Whether ``path`` is a first load's temporary file (of ``target``, when given)."""
    match = _TEMPORARY.fullmatch(path.name)
    return match is not None and (target is None or match["name"] == target.name)


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove temporary files of first loads into ``target`` whose process is gone.

    A process id that was reused by another process keeps its files until that one ends; a
    file that cannot be removed is left. The process check is local: a folder shared between
    machines should not see first loads into one name from two machines at once.

    Returns:
        The paths removed.
    """
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or match["name"] != target.name or process_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _check_target(target: Path) -> bool:
    """Whether a store file exists at ``target``; a UserError if a load cannot write there."""
    try:
        exists = target.exists()
        folder = target.parent
        if not folder.exists():
            raise UserError(f"folder for the record store does not exist: {folder}")
        if not folder.is_dir():
            raise UserError(f"{folder} is a file, not a folder, so it cannot hold {target}")
        if target.is_dir():
            raise UserError(f"{target} is a folder, not a record store file")
        if target.is_symlink() and not exists:
            raise UserError(f"{target} is a symbolic link to a file that does not exist")
        if exists and target.is_file():
            if not os.access(target, os.W_OK):
                raise UserError(
                    f"the record store {target} is read-only on disk, so nothing can be loaded "
                    "into it; make it writable (chmod u+w) or load into another store file"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                raise UserError(
                    f"the folder {folder} is read-only, and a load into {target} writes its "
                    f"log ({target.name}.wal) there; make the folder writable or load into a "
                    "store file in another folder"
                )
        elif not exists and not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(
                f"cannot create the record store {target}: the folder {folder} is read-only"
            )
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise UserError(f"cannot use {target} as a record store: {exc.strerror or exc}") from None
    return exists


@contextlib.contextmanager
def _existing_store(target: Path, settings: StoreSettings | None) -> Iterator[RecordStore]:
    try:
        store = connect(target, settings=settings)
    except BaseException as exc:
        _raise_translated(exc, target, changed=False, created=False)
    before: str | None = None
    loaded = False
    try:
        before = data_version(store.connection)
        yield store
        loaded = True  # the loader returned: its transaction committed (or had nothing to do)
        store.close()
    except BaseException as exc:
        changed = loaded or (before is not None and _changed(store, before))
        with contextlib.suppress(Exception):
            store.close()
        _raise_translated(exc, target, changed=changed, created=False)


@contextlib.contextmanager
def _new_store(target: Path, settings: StoreSettings | None) -> Iterator[RecordStore]:
    temporary = temporary_store_path(target)
    published = False
    identity: tuple[int, int] | None = None
    landing = _FIRST_LOADS[str(temporary)] = _Landing(target)
    try:
        with connect(temporary, settings=settings) as store:
            yield store
            # Everything into the main file, so that the file alone is the whole store.
            store.connection.execute("CHECKPOINT")
        stat = temporary.stat()
        identity = (stat.st_dev, stat.st_ino)
        _publish(temporary, target)
        published = True
        landing.land()
    except BaseException as exc:
        if identity is not None and not published:
            published = _same_file(target, identity)  # interrupted just after the link
        _raise_translated(exc, target, changed=published, created=True, temporary=temporary)
    finally:
        del _FIRST_LOADS[str(temporary)]
        landing.abandon()
        _remove_temporary(temporary)


def _publish(temporary: Path, target: Path) -> None:
    """Move a closed, checkpointed store into place; never over a file that is there now."""
    wal = temporary.with_name(temporary.name + ".wal")
    if wal.exists():  # committed data outside the file would be lost with the file alone
        raise RuntimeError(f"{wal} is left after a checkpoint and close; not publishing")
    another_load = UserError(
        f"another load created the record store {target} while this one ran, so this load "
        "wrote nothing to it; run it again to load into that store"
    )
    try:
        _sync(temporary)
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise another_load from None
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # A file system without hard links: check, then rename. Unlike the link this can
            # overwrite a store created in between, in a window of microseconds.
            if target.exists() or target.is_symlink():
                raise another_load from None
            os.rename(temporary, target)
    except OSError as exc:
        raise _cannot_write(target, exc.strerror or str(exc), created=True) from exc
    # The store is in place and complete; flushing the folder only makes its new name survive
    # a power loss, where the system can do that.
    with contextlib.suppress(OSError):
        _sync(target.parent)


def _sync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries) to the disk where the system allows it."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        handle = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF):
            raise
    finally:
        os.close(handle)


def _same_file(path: Path, identity: tuple[int, int]) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return (stat.st_dev, stat.st_ino) == identity


def _remove_temporary(temporary: Path) -> None:
    # Best effort: a file that cannot be removed is cleaned up by a later load, and must not
    # hide the error that ended this one.
    for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
        with contextlib.suppress(OSError):
            leftover.unlink()
    spill = temporary.with_name(temporary.name + ".tmp")  # DuckDB's spill folder, if it made one
    if spill.is_dir():
        shutil.rmtree(spill, ignore_errors=True)


def _changed(store: RecordStore, before: str) -> bool:
    """Whether a load into an existing store committed (every load changes the data version)."""
    try:
        return data_version(store.connection) != before
    except duckdb.Error:  # the connection is unusable (a fatal write error): nothing committed
        return False


def _raise_translated(
    exc: BaseException, target: Path, *, changed: bool, created: bool, temporary: Path | None = None
) -> NoReturn:
    translated = _translated(exc, target, changed=changed, created=created, temporary=temporary)
    if translated is exc:
        raise exc
    raise translated from exc


def _translated(
    exc: BaseException, target: Path, *, changed: bool, created: bool, temporary: Path | None = None
) -> BaseException:
    """The error to raise for ``exc``, which ended a load into ``target``.

    ``exc`` itself, or a clearer error: the interrupt it came from, the write to the store file
    that failed, the damage to the store it ran into.
    """
    if isinstance(exc, LoadInterrupted):
        return exc
    if _interrupted(exc):
        return LoadInterrupted(target, changed=changed, created=created)
    if changed:
        return exc
    names = _file_names(target, temporary)
    for error in error_chain(exc):
        reason = _write_failure(error, names)
        if reason is not None:
            return _cannot_write(target, reason, created=created)
    if isinstance(exc, UserError):
        # Already says what is wrong. A loader's UserError may quote a DuckDB error about
        # another file (a source database), so damage markers are not read into it.
        return exc
    return store_file_error(exc, str(target)) or exc


def _cannot_write(target: Path, reason: str, *, created: bool) -> UserError:
    state = "no store was created" if created else "the store is unchanged"
    advice = (
        "free some disk space"
        if any(word in reason for word in _FULL_WORDS)
        else "make sure the file and its folder can be written"
    )
    return UserError(
        f"cannot write the record store {target} ({reason}); {state}: {advice} and load again"
    )


def _interrupted(exc: BaseException) -> bool:
    # DuckDB consumes a pending KeyboardInterrupt while a statement runs and raises
    # RuntimeError("Query interrupted") instead (or InterruptException), and the loaders'
    # cleanup may then fail on the aborted transaction and raise something else again. An
    # interrupt that lands while DuckDB reads a registered Python frame comes back as an
    # InvalidInputException quoting it.
    return any(
        isinstance(e, KeyboardInterrupt | duckdb.InterruptException)
        or (isinstance(e, RuntimeError) and str(e).startswith("Query interrupted"))
        or (isinstance(e, duckdb.Error) and _PYTHON_INTERRUPT.search(str(e)) is not None)
        for e in error_chain(exc)
    )


_PYTHON_INTERRUPT = re.compile(r"registered as '[^']*' failed: .*\bKeyboardInterrupt\b", re.DOTALL)


def _file_names(target: Path, temporary: Path | None) -> tuple[str, ...]:
    """The store's files as DuckDB may name them in a message: as given, and absolute."""
    files = [target] if temporary is None else [target, temporary]
    names = {str(f) for f in files} | {os.path.abspath(f) for f in files}
    return tuple(sorted(names, key=len, reverse=True))


def _write_failure(error: BaseException, names: tuple[str, ...]) -> str | None:
    """Why ``error`` says DuckDB could not write one of the store's files, or None."""
    if not isinstance(error, duckdb.Error):
        return None
    message = str(error)
    if not any(f'"{name}' in message for name in names):  # an error about another file
        return None
    for words in (*_FULL_WORDS, *_NOT_WRITABLE_WORDS, "Input/output error"):
        if words in message:
            return words
    return None
