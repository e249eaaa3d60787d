"""What a run log holds: the manifest (what a run is a run of) and one record per item.

:mod:`recordagent.evaluation.log` writes and reads them; this module defines them, the
fingerprints of items and data, and the checks that a record belongs to its log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import traceback
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from recordagent.evaluation.judge import JudgeResult
from recordagent.evaluation.scorers import Score
from recordagent.llm.client import ChatModel
from recordagent.questions.answers import coerce_value
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.source_table import store_fingerprints
from recordagent.resources import package_version
from recordagent.runners import Answer, Runner
from recordagent.settings import Settings

__all__ = [
    "RESUME_FIELDS",
    "ItemError",
    "RunManifest",
    "RunRecord",
    "git_sha",
    "item_fingerprint",
    "item_set_fingerprint",
    "record_problem",
    "store_data_fingerprint",
]

# Manifest fields that must match for a reopened log to be continued: answers made under
# different settings, prompts, models or data would be pooled into one concordance otherwise.
# Code version (package, git sha) may differ: a commit elsewhere in the repository should not
# force a rerun, and the manifest keeps the version the run started with. The item set is
# compared too, with a message of its own (RunLog.open).
RESUME_FIELDS = (
    "runner",
    "model",
    "mock",
    "settings_hash",
    "template_set_version",
    "data_fingerprint",
    "prompt_version",
)


def item_fingerprint(item: EvalItem) -> str:
    """A short hash of everything the runner and the scorer read of ``item``."""
    # Defaults left out: a field added to EvalItem later does not change old items' hashes,
    # so a run started before an upgrade can still be resumed after it.
    payload = item.model_dump_json(exclude_defaults=True).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def item_set_fingerprint(items: Mapping[str, str]) -> str:
    """A short hash of a run's items (id → :func:`item_fingerprint`), whatever their order."""
    payload = json.dumps(sorted(items.items()), separators=(",", ":")).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


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
    items: dict[str, str] | None = Field(
        default=None,
        description="The run's items: id → item_fingerprint (question, patient, answer and "
        "scoring spec, as-of day). A record of any other item is refused. None in logs "
        "written before item sets were recorded, and for runs started without their items.",
    )
    items_fingerprint: str | None = Field(
        default=None,
        description="item_set_fingerprint(items): what the run is a run of, compared when it "
        "is resumed.",
    )

    @model_validator(mode="after")
    def _item_set(self) -> RunManifest:
        if self.items is not None:
            expected = item_set_fingerprint(self.items)
            if self.items_fingerprint is None:
                self.items_fingerprint = expected
            elif self.items_fingerprint != expected:
                raise ValueError(
                    f"items_fingerprint {self.items_fingerprint!r} is not the fingerprint of "
                    f"the listed items ({expected!r}): the manifest was edited"
                )
        return self

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
        items: Sequence[EvalItem] | None = None,
    ) -> RunManifest:
        """The manifest of a new run of ``runner`` on ``model`` (mock taken from the model).

        Give the run's ``items``: the manifest then records what the run is a run of, a resume
        with other items is refused, and a record of any other item is rejected.
        """
        listed = None if items is None else {item.id: item_fingerprint(item) for item in items}
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
            items=listed,
        )


class ItemError(BaseModel):
    """An unexpected exception (a bug) raised while answering or scoring one item."""

    kind: str = Field(description="The exception's class name (its message is not kept).")
    at: str | None = Field(
        default=None, description="Where it was raised: 'file.py:123 in function'."
    )

    @classmethod
    def of(cls, exc: BaseException) -> ItemError:
        """The kind and place of ``exc``; its message may quote the record and is left out."""
        frames = traceback.extract_tb(exc.__traceback__)
        at = None
        if frames:
            last = frames[-1]
            at = f"{Path(last.filename).name}:{last.lineno} in {last.name}"
        return cls(kind=type(exc).__name__, at=at)


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
    error: ItemError | None = Field(
        default=None,
        description="Set when answering the item raised an unexpected exception (a bug): the "
        "answer is then a placeholder with status 'failed'. A resumed run retries the item.",
    )

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


def record_problem(manifest: RunManifest, record: RunRecord) -> str | None:
    """Why ``record`` does not belong in the log of ``manifest`` (None when it does)."""
    answer = record.answer
    if answer.runner != manifest.runner:
        return (
            f"the answer is by runner {answer.runner!r}, but this is the log of runner "
            f"{manifest.runner!r}"
        )
    if answer.prompt_version != manifest.prompt_version:
        return (
            f"the answer was made with prompt version {answer.prompt_version!r}, the run with "
            f"{manifest.prompt_version!r}"
        )
    # 'unknown': the runner failed before any model call, so no model is named.
    if answer.model not in (manifest.model, "unknown"):
        return f"the answer is by model {answer.model!r}, but the run is on {manifest.model!r}"
    if manifest.items is not None:
        item_id = record.item.id
        expected = manifest.items.get(item_id)
        if expected is None:
            return (
                f"item {item_id!r} is not one of the run's {len(manifest.items)} items "
                "(listed in its manifest)"
            )
        if item_fingerprint(record.item) != expected:
            return (
                f"item {item_id!r} is not the item the run was started with (its question, "
                "patient or answer spec differs)"
            )
    return None


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
    payload = json.dumps(sorted(store_fingerprints(store).items())).encode()
    return hashlib.sha256(payload).hexdigest()[:16]
