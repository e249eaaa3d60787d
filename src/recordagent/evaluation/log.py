"""Run logs: one append-only JSONL file per (runner, model) run over a set of items.

Line 1 is the manifest (``{"kind": "manifest", ...}``): what ran, on which data and items, with
which settings and code. Every further line is one item's record (``{"kind": "record", ...}``):
the item, the runner's answer, its score and the patient's record length. A record is written
and flushed as soon as its item is answered, so a crash loses at most the items in flight;
reopening the log resumes where it stopped (:meth:`RunLog.done_item_ids`), and a half-written
last line left by the crash is tolerated, reported and cut off.

A log is a run *of something*: the manifest lists the run's items (id and a fingerprint of each)
and a fingerprint of the set, and a log is only continued by the same runner, model, settings,
data and items — never pooled with another run. Every record must be an answer by the log's
runner to one of its items; a line that is not is reported with the file and line.

An item whose runner raised an unexpected exception (a bug) is logged as a failed record with
the exception's kind (``RunRecord.error``), never its message; resuming the run retries it, and
the retry's record supersedes it.

Logs hold ids, counts, lengths, field paths and error kinds, the question and the answer —
never record text or the model's other words (see :mod:`recordagent.runners.trace`).
"""

from __future__ import annotations

import atexit
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from pydantic import BaseModel, Field, ValidationError

from recordagent.errors import UserError, field_path, validation_problems
from recordagent.evaluation.manifest import (
    RESUME_FIELDS,
    ItemError,
    RunManifest,
    RunRecord,
    item_fingerprint,
    record_problem,
)
from recordagent.evaluation.scorers import score_answer
from recordagent.paths import path_kind

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from recordagent.evaluation.labels import ReferenceLabel

# The manifest and record models are re-exported: they are what a log holds and returns.
__all__ = [
    "ItemError",
    "RunLog",
    "RunLogContents",
    "RunLogMismatch",
    "RunLogWarning",
    "RunManifest",
    "RunRecord",
    "read_contents",
    "rescore",
    "superseded",
]


class RunLogWarning(UserWarning):
    """A run log was read with its half-written last line (from a crash) left out."""


class RunLogMismatch(UserError):
    """A log cannot be continued by this run: another runner, model, settings, data or items.

    ``differences`` names each thing that differs, with the log's and this run's value.
    """

    def __init__(self, path: Path, differences: Sequence[str]) -> None:
        self.path = path
        self.differences = list(differences)
        super().__init__(
            f"{path} is the log of a different run; it differs in "
            + "; ".join(self.differences)
            + ". Continue it with the same runner, model, settings, data and items, or write "
            "this run to a new log file"
        )


class RunLogContents(BaseModel):
    """A run log as read: manifest, records, and the crash remnant left out, if any."""

    manifest: RunManifest
    records: list[RunRecord] = Field(
        description="One record per item, in the order written; a failed record (error set) "
        "that a retry superseded is left out."
    )
    truncated_line: int | None = Field(
        default=None,
        description="Line number of a half-written last line that was left out (a crash).",
    )
    spent_usd: float = Field(
        default=0.0,
        description="What every record of the log cost, superseded ones included (a failed "
        "answer asked again was paid for twice).",
    )


class RunLog:
    """An open run log: appends records, knows which items are done.

    Use :meth:`open` to start or resume a log and :meth:`read` to load one for reporting.
    """

    def __init__(
        self, path: Path, contents: RunLogContents, *, retry_failed_answers: bool = False
    ) -> None:
        self._path = path
        self.retry_failed_answers = retry_failed_answers
        """Whether failed answers (the endpoint refused, timed out, …) are asked again."""
        self._manifest = contents.manifest
        self._records: dict[str, RunRecord] = {r.item.id: r for r in contents.records}
        self._appended: list[RunRecord] = []
        self.spent_usd = contents.spent_usd
        """What every record of the log cost, superseded ones and this run's included."""
        self.recovered_line = contents.truncated_line
        """Line number of the half-written record cut off when the log was reopened."""

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def manifest(self) -> RunManifest:
        """The run's manifest (the original one when resumed)."""
        return self._manifest

    @property
    def records(self) -> list[RunRecord]:
        """One record per item, in the order written (a retried item's latest record)."""
        return list(self._records.values())

    @classmethod
    def open(
        cls, path: str | Path, manifest: RunManifest, *, retry_failed_answers: bool = False
    ) -> RunLog:
        """Start a log at ``path``, or resume the one there if it is the same run.

        With ``retry_failed_answers``, an item whose answer failed (the endpoint refused or
        timed out, the output did not validate, …) is not done: a resume asks it again, and
        its new record supersedes the failed one (an extraction wants every value; an
        evaluation keeps failures as its results and retries only items a bug failed).

        A half-written last line (a crash) is cut off so the next record starts a clean line;
        :attr:`recovered_line` says which line that was.

        Raises:
            UserError: The folder does not exist, the path is a folder, the file is not a run
                log or cannot be written.
            RunLogMismatch: It is the log of a different run: another runner, model, prompt
                version, settings, template set, data or item set (the message names what
                differs and what to do).
        """
        file = Path(path)
        folder = path_kind(file.parent, "folder for the run log")
        if folder != "folder":
            what = "does not exist" if folder == "missing" else "is not a folder"
            raise UserError(f"folder for the run log {what}: {file.parent}")
        kind = path_kind(file, "run log")
        if kind not in ("missing", "file"):
            raise UserError(f"the run log {file} is a folder (or not a regular file)")
        _hold(file)
        try:
            # A crash while the manifest itself was written leaves one unfinished line and no
            # record: nothing to resume, so the run starts afresh.
            if kind == "missing" or b"\n" not in file.read_bytes():
                with file.open("w", encoding="utf-8") as out:
                    out.write(_line("manifest", manifest))
                return cls(
                    file,
                    RunLogContents(manifest=manifest, records=[]),
                    retry_failed_answers=retry_failed_answers,
                )
        except OSError as exc:
            raise UserError(f"cannot write the run log {file}: {exc.strerror or exc}") from exc
        contents = cls.check_resumable(file, manifest)
        assert contents is not None  # the file exists and holds a complete line
        try:
            _end_cleanly(file)
        except OSError as exc:
            raise UserError(f"cannot write the run log {file}: {exc.strerror or exc}") from exc
        return cls(file, contents, retry_failed_answers=retry_failed_answers)

    @staticmethod
    def check_resumable(path: str | Path, manifest: RunManifest) -> RunLogContents | None:
        """The log at ``path`` if this run may continue it (None if there is none yet).

        Nothing is written: a caller opening several logs checks them all first, so that one
        that does not fit stops the run before any work.

        Raises:
            UserError: The path is a folder or not a valid run log.
            RunLogMismatch: It is the log of a different run.
        """
        file = Path(path)
        kind = path_kind(file, "run log")
        if kind not in ("missing", "file"):
            raise UserError(f"the run log {file} is a folder (or not a regular file)")
        if kind == "missing":
            return None
        try:
            if b"\n" not in file.read_bytes():
                return None  # a crash while the manifest was written: the run starts afresh
        except OSError as exc:
            raise UserError(f"cannot read the run log {file}: {exc.strerror or exc}") from exc
        contents = read_contents(file)
        differ = [
            f"{name} (log: {getattr(contents.manifest, name)!r}, now: {getattr(manifest, name)!r})"
            for name in RESUME_FIELDS
            if getattr(contents.manifest, name) != getattr(manifest, name)
        ]
        items = _item_set_difference(contents, manifest)
        if items is not None:
            differ.append(items)
        if differ:
            raise RunLogMismatch(file, differ)
        return contents

    def append(self, record: RunRecord) -> None:
        """Write one record and flush it to disk.

        A failed record (``error`` set) of the item is superseded by the new one: that is how
        a resumed run retries it.

        Raises:
            ValueError: The item is already in the log, is not one of the run's items, or the
                answer is another runner's.
            UserError: The log file cannot be written (disk full, permissions).
        """
        problem = record_problem(self._manifest, record)
        if problem is not None:
            raise ValueError(f"{problem} ({self._path})")
        earlier = self._records.get(record.item.id)
        if earlier is not None and not superseded(earlier):
            raise ValueError(f"item {record.item.id!r} is already in the run log {self._path}")
        try:
            with self._path.open("a", encoding="utf-8") as out:
                out.write(_line("record", record))
                out.flush()
        except OSError as exc:
            raise UserError(
                f"cannot write the run log {self._path}: {exc.strerror or exc}; the records "
                "written so far are kept, and --resume continues from them"
            ) from exc
        # A retried item moves to the end, where its new record is in the file.
        self._records.pop(record.item.id, None)
        self._records[record.item.id] = record
        self._appended.append(record)
        self.spent_usd += record.answer.usage.cost_usd or 0.0

    def appended(self, since: int = 0) -> list[RunRecord]:
        """The records appended through this object, in order, from the ``since``-th on.

        Cheap at any log size: a display that counts records as they arrive asks for the ones
        since its last look (:attr:`records` copies every record of the log).
        """
        return self._appended[since:]

    def done_item_ids(self) -> set[str]:
        """Ids of the items answered in the log (skipped when a run resumes).

        Items whose record is failed by an error (a bug) are not done: a resume retries them;
        with ``retry_failed_answers``, neither are items whose answer failed.
        """
        if self.retry_failed_answers:
            return {i for i, r in self._records.items() if not superseded(r)}
        return {item_id for item_id, r in self._records.items() if r.error is None}

    def failed_item_ids(self) -> set[str]:
        """Ids of the items whose latest record is failed by an unexpected error."""
        return {item_id for item_id, r in self._records.items() if r.error is not None}

    @staticmethod
    def read(path: str | Path) -> tuple[RunManifest, list[RunRecord]]:
        """The manifest and records of the log at ``path``.

        A half-written last line is left out with a :class:`RunLogWarning`; use
        :func:`read_contents` to get its line number instead.

        Raises:
            UserError: The file is missing, or a line is not a valid manifest or record (the
                message names the file, the line and the field), or a record is not an answer
                by the log's runner to one of the run's items.
        """
        contents = read_contents(Path(path))
        if contents.truncated_line is not None:
            warnings.warn(
                f"{path}: line {contents.truncated_line} is half-written (the run was "
                "interrupted) and was left out",
                RunLogWarning,
                stacklevel=2,
            )
        return contents.manifest, contents.records


def read_contents(path: Path) -> RunLogContents:
    """Read and validate every line of a run log (see :meth:`RunLog.read`)."""
    kind = path_kind(path, "run log")
    if kind == "folder":
        raise UserError(f"{path} is a folder, not a run log (a JSONL file)")
    if kind != "file":
        raise UserError(f"no run log at {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the run log {path}: {exc.strerror or exc}") from exc
    # Split as bytes and decode line by line: a crash can cut the last line in the middle of a
    # multi-byte character (logs written before lines were ASCII-only), which is a half-written
    # line like any other, not a broken file.
    pieces = data.split(b"\n")
    # A log written to the end finishes with a newline: the last piece is then empty. Anything
    # else there is a line the writer did not finish.
    unfinished = pieces.pop().decode("utf-8", errors="replace")
    lines = []
    for number, piece in enumerate(pieces, start=1):
        try:
            lines.append(piece.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}, line {number}: not UTF-8 text ({exc.reason})") from exc
    manifest: RunManifest | None = None
    records: dict[str, RunRecord] = {}
    seen: dict[str, int] = {}
    spent = 0.0
    truncated: int | None = None
    candidates = [(n, line, True) for n, line in enumerate(lines, start=1)]
    if unfinished.strip():
        candidates.append((len(lines) + 1, unfinished, False))
    for number, line, complete in candidates:
        if not line.strip():
            continue
        try:
            payload = json.loads(line)
        except json.JSONDecodeError as exc:
            if not complete and manifest is not None:
                truncated = number
                break
            raise UserError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
        entry = _entry(path, number, payload, first=manifest is None)
        if isinstance(entry, RunManifest):
            manifest = entry
            continue
        assert manifest is not None  # the first entry is the manifest
        problem = record_problem(manifest, entry)
        if problem is not None:
            raise UserError(
                f"{path}, line {number}: {problem}: a line from another run's log? Remove it, "
                "or report the runs separately"
            )
        item_id = entry.item.id
        earlier = records.get(item_id)
        if earlier is not None and not superseded(earlier):
            raise UserError(
                f"{path}, line {number}: item {item_id!r} is already on line {seen[item_id]}"
            )
        # A failed record is superseded by the item's retry, written later.
        records.pop(item_id, None)
        records[item_id] = entry
        seen[item_id] = number
        spent += entry.answer.usage.cost_usd or 0.0
    if manifest is None:
        raise UserError(f"{path}: empty file, not a run log (line 1 must be the manifest)")
    return RunLogContents(
        manifest=manifest,
        records=list(records.values()),
        truncated_line=truncated,
        spent_usd=spent,
    )


# Logs this process writes, each with an open handle holding an exclusive lock on it.
_HELD: dict[Path, BinaryIO] = {}


@atexit.register
def _release() -> None:
    # The kernel drops the locks when the process ends; closing the handles first keeps the
    # interpreter from warning about files left open.
    for handle in _HELD.values():
        handle.close()
    _HELD.clear()


def _hold(file: Path) -> None:
    """Make this process the only writer of ``file`` until it ends.

    Two processes appending to one log (the same eval started twice) would each answer the
    same items and write them twice. The lock is the kernel's (``flock``): it goes with the
    process, so a killed run never leaves a stale one behind.
    """
    if fcntl is None:  # not POSIX: no lock to take
        return
    key = file.resolve()
    if key in _HELD:
        return  # this process holds it already (a log reopened in the same run)
    try:
        handle = file.open("ab")
    except OSError as exc:
        raise UserError(f"cannot write the run log {file}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise UserError(
            f"the run log {file} is being written by another process (a run still going?): "
            "wait for it to end, or write this run to another log"
        ) from exc
    _HELD[key] = handle


def superseded(record: RunRecord) -> bool:
    """Whether a later record of the item may take this one's place: it failed.

    By a bug (``error``), or in its answer (a log is only resumed that way with
    ``retry_failed_answers``).
    """
    return record.error is not None or record.answer.status == "failed"


def _item_set_difference(logged: RunLogContents, manifest: RunManifest) -> str | None:
    """How the logged run's items differ from this run's (None: they do not, or are unknown)."""
    if manifest.items is None:
        return None  # the caller did not say; run_items checks the items it is given
    ours = manifest.items
    if logged.manifest.items is not None:
        if logged.manifest.items_fingerprint == manifest.items_fingerprint:
            return None
        theirs = logged.manifest.items
        total = f"the log's run has {len(theirs)} items, this run {len(ours)}"
    else:
        # A log from before item sets were recorded: it continues when every item in it is
        # one of this run's, unchanged.
        theirs = {r.item.id: item_fingerprint(r.item) for r in logged.records}
        if all(ours.get(i) == f for i, f in theirs.items()):
            return None
        total = f"the log holds {len(theirs)} answered items, this run has {len(ours)}"
    new = sorted(set(ours) - set(theirs))
    gone = sorted(set(theirs) - set(ours))
    changed = sorted(i for i in set(ours) & set(theirs) if ours[i] != theirs[i])
    parts = [total]
    if new:
        parts.append(f"{len(new)} of this run's items are not in the log's ({_some(new)})")
    if gone:
        parts.append(f"{len(gone)} of the log's items are not in this run ({_some(gone)})")
    if changed:
        parts.append(
            f"{len(changed)} items have the same id but another question or answer spec "
            f"({_some(changed)})"
        )
    return "items (" + ", ".join(parts) + ")"


def _some(ids: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(repr(i) for i in ids[:shown]) + more


def _entry(path: Path, number: int, payload: Any, *, first: bool) -> RunManifest | RunRecord:
    """One parsed line as a manifest (line 1) or a record (every other line)."""
    where = f"{path}, line {number}"
    if not isinstance(payload, dict) or "kind" not in payload:
        raise UserError(f"{where}: not a run log line (an object with a 'kind' field)")
    kind = payload.pop("kind")
    expected = "manifest" if first else "record"
    if kind != expected:
        raise UserError(f"{where}: field 'kind' is {kind!r}; expected {expected!r} here")
    model: type[RunManifest] | type[RunRecord] = RunManifest if first else RunRecord
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        messages = validation_problems(exc, located=False)
        problems = "; ".join(
            f"field '{field_path(error['loc']) or kind}': {message}"
            for error, message in zip(exc.errors()[:3], messages, strict=False)
        )
        raise UserError(f"{where}: invalid {kind}: {problems}") from exc


def _line(kind: Literal["manifest", "record"], entry: BaseModel) -> str:
    payload = {"kind": kind, **entry.model_dump(mode="json")}
    # ASCII only: a crash mid-write can then never split a character.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")) + "\n"


def _end_cleanly(path: Path) -> None:
    """Make the next append start a line of its own.

    A half-written last line (a crash) is cut off; a complete last line without its newline
    (a hand edit) gets one.
    """
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    last = data[data.rfind(b"\n") + 1 :]
    try:
        json.loads(last)
    except ValueError:
        with path.open("r+b") as out:
            out.truncate(len(data) - len(last))
        return
    with path.open("ab") as out:
        out.write(b"\n")


def rescore(
    records: Iterable[RunRecord], references: Mapping[str, ReferenceLabel]
) -> list[RunRecord]:
    """The records scored again against ``references``, without re-running anything."""
    return [
        record.model_copy(
            update={
                "score": score_answer(
                    record.item,
                    record.answer,
                    references.get(record.item.id),
                    judge_verdict=record.judge,
                )
            }
        )
        for record in records
    ]
