"""Run logs: one append-only JSONL file per (runner, model) run over a set of items.

Line 1 is the manifest (``{"kind": "manifest", ...}``): what ran, on which data, with which
settings and code. Every further line is one item's record (``{"kind": "record", ...}``): the
item, the runner's answer, its score and the patient's record length. A record is written and
flushed as soon as its item is answered, so a crash loses at most the item in flight; reopening
the log resumes where it stopped (:meth:`RunLog.done_item_ids`), and a half-written last line
left by the crash is tolerated, reported and cut off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import uuid
import warnings
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from recordagent.errors import UserError
from recordagent.evaluation.judge import JudgeResult
from recordagent.evaluation.scorers import Score, score_answer
from recordagent.llm.client import ChatModel
from recordagent.questions.answers import coerce_value
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.runners._base import Answer, Runner
from recordagent.settings import Settings

if TYPE_CHECKING:
    from recordagent.evaluation.labels import ReferenceLabel

__all__ = [
    "RunLog",
    "RunLogContents",
    "RunLogWarning",
    "RunManifest",
    "RunRecord",
    "git_sha",
    "package_version",
    "read_contents",
    "rescore",
    "store_data_fingerprint",
]

# Manifest fields that must match for a reopened log to be continued: answers made under
# different settings, prompts, models or data would be pooled into one concordance otherwise.
# Code version (package, git sha) may differ: a commit elsewhere in the repository should not
# force a rerun, and the manifest keeps the version the run started with.
_RESUME_FIELDS = (
    "runner",
    "model",
    "mock",
    "settings_hash",
    "template_set_version",
    "data_fingerprint",
    "prompt_version",
)


class RunLogWarning(UserWarning):
    """A run log was read with its half-written last line (from a crash) left out."""


class RunManifest(BaseModel):
    """What a run was: runner, model, settings, data and code it ran with."""

    run_id: str = Field(description="Unique id of the run (kept when the run is resumed).")
    created: dt.datetime = Field(description="When the run started (UTC).")
    runner: str = Field(description="Registered runner name.")
    model: str = Field(description="The model that answered.")
    mock: bool = Field(description="True when a scripted mock answered: not a model's results.")
    settings_hash: str = Field(description="Settings.fingerprint() of the run's settings.")
    template_set_version: str | None = Field(
        default=None, description="Version of the question templates the items came from."
    )
    data_fingerprint: str = Field(description="Fingerprint of the record data the run read.")
    package_version: str = Field(description="recordagent version that started the run.")
    git_sha: str | None = Field(
        default=None, description="Commit of the code, when it runs from a git checkout."
    )
    prompt_version: str = Field(description="Version of the runner's prompts.")

    @classmethod
    def create(
        cls,
        runner: Runner,
        model: ChatModel,
        settings: Settings,
        *,
        data_fingerprint: str,
        template_set_version: str | None = None,
        run_id: str | None = None,
    ) -> RunManifest:
        """The manifest of a new run of ``runner`` on ``model`` (mock taken from the model)."""
        return cls(
            run_id=run_id or uuid.uuid4().hex[:12],
            created=dt.datetime.now(dt.UTC).replace(microsecond=0),
            runner=runner.name,
            model=model.name,
            mock=model.is_mock,
            settings_hash=settings.fingerprint(),
            template_set_version=template_set_version,
            data_fingerprint=data_fingerprint,
            package_version=package_version(),
            git_sha=git_sha(),
            prompt_version=runner.prompt_version,
        )


class RunRecord(BaseModel):
    """One item of a run: the item, the answer, its score and the patient's record length."""

    item: EvalItem = Field(description="The item as the runner received it.")
    answer: Answer = Field(description="The runner's answer.")
    score: Score | None = Field(
        default=None, description="The answer scored against the reference (None: not scored)."
    )
    judge: JudgeResult | None = Field(
        default=None,
        description="The model judge's verdict on a free-text answer, stored so that scores "
        "can be recomputed without asking the judge again.",
    )
    record_tokens: int = Field(ge=0, description="Tokens in the patient's record (chunks).")
    record_documents: int = Field(ge=0, description="Documents in the patient's record.")

    @model_validator(mode="after")
    def _typed_value(self) -> RunRecord:
        # JSON has no dates: a value read back from a log is re-typed by the item's answer
        # type, so that a rescore sees exactly what the runner returned.
        if self.answer.item_id != self.item.id:
            raise ValueError(
                f"the answer is for item {self.answer.item_id!r}, the record for {self.item.id!r}"
            )
        if self.answer.value is not None:
            try:
                typed = coerce_value(self.item.answer, self.answer.value)
            except ValueError as exc:
                raise ValueError(f"answer value: {exc}") from exc
            if typed != self.answer.value or type(typed) is not type(self.answer.value):
                self.answer = self.answer.model_copy(update={"value": typed})
        return self


class RunLogContents(BaseModel):
    """A run log as read: manifest, records, and the crash remnant left out, if any."""

    manifest: RunManifest
    records: list[RunRecord]
    truncated_line: int | None = Field(
        default=None,
        description="Line number of a half-written last line that was left out (a crash).",
    )


class RunLog:
    """An open run log: appends records, knows which items are done.

    Use :meth:`open` to start or resume a log and :meth:`read` to load one for reporting.
    """

    def __init__(self, path: Path, contents: RunLogContents) -> None:
        self._path = path
        self._manifest = contents.manifest
        self._records: list[RunRecord] = list(contents.records)
        self._done: set[str] = {r.item.id for r in self._records}
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
        """Every record in the log, in the order written."""
        return list(self._records)

    @classmethod
    def open(cls, path: str | Path, manifest: RunManifest) -> RunLog:
        """Start a log at ``path``, or resume the one there if it is the same run.

        A half-written last line (a crash) is cut off so the next record starts a clean line;
        :attr:`recovered_line` says which line that was.

        Raises:
            UserError: The folder does not exist, the file is not a run log, or it is a log of
                a different run (the message names the fields that differ).
        """
        file = Path(path)
        if not file.parent.is_dir():
            raise UserError(f"folder for the run log does not exist: {file.parent}")
        # A crash while the manifest itself was written leaves one unfinished line and no
        # record: nothing to resume, so the run starts afresh.
        if not file.exists() or b"\n" not in file.read_bytes():
            with file.open("w", encoding="utf-8") as out:
                out.write(_line("manifest", manifest))
            return cls(file, RunLogContents(manifest=manifest, records=[]))
        contents = read_contents(file)
        differ = [
            f"{name} (log: {getattr(contents.manifest, name)!r}, now: {getattr(manifest, name)!r})"
            for name in _RESUME_FIELDS
            if getattr(contents.manifest, name) != getattr(manifest, name)
        ]
        if differ:
            raise UserError(
                f"{file} is the log of a different run; it differs in "
                + "; ".join(differ)
                + ". Write this run to a new log file"
            )
        _end_cleanly(file)
        return cls(file, contents)

    def append(self, record: RunRecord) -> None:
        """Write one record and flush it to disk.

        Raises:
            ValueError: The item is already in the log, or the answer is another runner's.
        """
        if record.item.id in self._done:
            raise ValueError(f"item {record.item.id!r} is already in the run log {self._path}")
        if record.answer.runner != self._manifest.runner:
            raise ValueError(
                f"answer by runner {record.answer.runner!r} in the log of {self._manifest.runner!r}"
            )
        with self._path.open("a", encoding="utf-8") as out:
            out.write(_line("record", record))
            out.flush()
        self._records.append(record)
        self._done.add(record.item.id)

    def done_item_ids(self) -> set[str]:
        """Ids of the items already in the log (skipped when a run resumes)."""
        return set(self._done)

    @staticmethod
    def read(path: str | Path) -> tuple[RunManifest, list[RunRecord]]:
        """The manifest and records of the log at ``path``.

        A half-written last line is left out with a :class:`RunLogWarning`; use
        :func:`read_contents` to get its line number instead.

        Raises:
            UserError: The file is missing, or a line is not a valid manifest or record (the
                message names the file, the line and the field).
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
    if not path.is_file():
        raise UserError(f"no run log at {path}")
    # Split as bytes and decode line by line: a crash can cut the last line in the middle of a
    # multi-byte character (logs written before lines were ASCII-only), which is a half-written
    # line like any other, not a broken file.
    pieces = path.read_bytes().split(b"\n")
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
    records: list[RunRecord] = []
    seen: dict[str, int] = {}
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
        if entry.item.id in seen:
            raise UserError(
                f"{path}, line {number}: item {entry.item.id!r} is already on line "
                f"{seen[entry.item.id]}"
            )
        seen[entry.item.id] = number
        records.append(entry)
    if manifest is None:
        raise UserError(f"{path}: empty file, not a run log (line 1 must be the manifest)")
    return RunLogContents(manifest=manifest, records=records, truncated_line=truncated)


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
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc']) or kind}': {err['msg']}"
            for err in exc.errors()[:3]
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


def package_version() -> str:
    """The installed recordagent version ('unknown' when it is not installed)."""
    try:
        return version("recordagent")
    except PackageNotFoundError:
        return "unknown"


def git_sha(folder: Path | None = None) -> str | None:
    """The commit checked out where the code lives; None outside a git checkout."""
    where = folder or Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None


def store_data_fingerprint(store: RecordStore) -> str:
    """One short fingerprint of every source loaded in ``store`` (for a manifest)."""
    from recordagent.records.load import store_fingerprints

    payload = json.dumps(sorted(store_fingerprints(store).items())).encode()
    return hashlib.sha256(payload).hexdigest()[:16]
