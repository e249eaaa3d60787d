"""The evaluation run: every item answered by one runner, scored and logged as it finishes.

An item whose runner (or scorer) raises an unexpected exception — a bug — does not end the run:
it is logged as a failed record with the exception's kind (:class:`~recordagent.evaluation.log.
ItemError`), the other items go on, and a resumed run retries it. A :class:`UserError` (other
than a model's) is the user's to fix and ends the run with that one error; the items finished
before it stay in the log.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from recordagent.errors import ModelError, UserError
from recordagent.evaluation.judge import JudgeResult, judge_answer
from recordagent.evaluation.log import ItemError, RunLog, RunRecord
from recordagent.evaluation.manifest import item_fingerprint
from recordagent.evaluation.scorers import Score, score_answer
from recordagent.llm.client import ChatModel
from recordagent.questions.answer_types import answer_kind
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.scope import PatientScope
from recordagent.runners import Answer, Runner

if TYPE_CHECKING:
    from recordagent.evaluation.labels import ReferenceLabel

__all__ = [
    "ItemEngine",
    "ItemProgress",
    "RecordLength",
    "StopCheck",
    "check_run",
    "failed_record",
    "record_length",
    "run_items",
]

ItemProgress = Callable[[int, int], None]
"""Called as ``on_progress(done, total)`` with the items done of all: once at the start (the
items already done) and after every item."""

StopCheck = Callable[[], bool]
"""Asked before each item starts; once it says True no further item starts (a budget spent)."""


class ItemEngine(Protocol):
    """What answers a run's items: :func:`run_items` in this process, or a distributed engine.

    Takes :func:`run_items`' arguments and keeps its contract: records appended to ``log`` as
    items finish, resumable, the records of ``items`` returned in their order.
    """

    async def __call__(
        self,
        items: Sequence[EvalItem],
        runner: Runner,
        model: ChatModel,
        store: RecordStore,
        *,
        log: RunLog | None = None,
        references: Mapping[str, ReferenceLabel] | None = None,
        concurrency: int = 8,
        on_progress: ItemProgress | None = None,
        stop: StopCheck | None = None,
    ) -> list[RunRecord]:
        """Answer the items not yet in ``log``; see :func:`run_items`."""
        ...


RecordLength = tuple[int, int]
"""(documents, tokens) of one patient's record."""

# Both counts in one statement over the scope's own tables (documents, chunks of the patient).
_RECORD_LENGTH_SQL = (
    "SELECT (SELECT count(*) FROM documents) AS documents, "
    "(SELECT coalesce(sum(token_count), 0) FROM chunks) AS tokens"
)


def record_length(scope: PatientScope) -> RecordLength:
    """Documents and tokens (summed over chunks) in the patient's record."""
    rows = scope.fetch(_RECORD_LENGTH_SQL)
    documents, tokens = rows[0] if rows else (0, 0)
    return int(documents), int(tokens)


async def run_items(
    items: Sequence[EvalItem],
    runner: Runner,
    model: ChatModel,
    store: RecordStore,
    *,
    log: RunLog | None = None,
    references: Mapping[str, ReferenceLabel] | None = None,
    judge: ChatModel | None = None,
    rubric: str | None = None,
    concurrency: int = 8,
    on_progress: ItemProgress | None = None,
    stop: StopCheck | None = None,
) -> list[RunRecord]:
    """Answer every item not yet in ``log`` with ``runner`` and append its record.

    Without a ``log`` the records are kept in memory only and returned (a notebook's quick
    look, :func:`recordagent.answer_many`): nothing can be resumed.

    Each item is answered from its own patient's scope. Records are scored when ``references``
    are given (items without one are 'ungraded'); without references they are logged unscored,
    to be scored later with :func:`~recordagent.evaluation.log.rescore`. Free-text items are
    graded by the ``judge`` model (with ``rubric``) when one is given, and its verdict is stored
    in the record (without the judge's wording); without a judge they are 'ungraded'. At most
    ``concurrency`` items run at once. ``stop`` is asked before each item starts: once it says
    True, no further item starts and the items in flight finish (a budget that is spent).

    An item whose runner or scorer raises an unexpected exception (a bug) is logged as a
    failed record with the exception's kind in ``error`` (its answer has status 'failed'), and
    the run goes on; :meth:`RunLog.failed_item_ids` lists such items, and a later call on the
    same log retries them.

    Returns:
        The records of ``items``, in their order (those from an earlier, resumed run included);
        items that ``stop`` kept from starting have none.

    Raises:
        UserError: The log belongs to another runner or model, or says mock when the model is
            not (or the reverse); the log is of another item set, or holds items that are not
            in ``items``; an item's patient is not in the store; the log cannot be written; the
            runner raised a UserError (the items finished before it stay in the log).
        ValueError: Two items share an id, or ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    check_run(items, runner, model, log)
    ids = [item.id for item in items]
    # Every patient is checked before the first model call: a typo should not cost a run. The
    # scopes (and record lengths) are made when a patient's first item starts and let go after
    # its last, so a run of a million items neither builds a million scopes first nor keeps them.
    missing = store.missing_patients(item.patient_id for item in items)
    if missing:
        store.scope(missing[0])  # raises the UserError that names the patient
    done_ids = log.done_item_ids() if log is not None else set()
    kept: dict[str, RunRecord] = {}
    todo = [item for item in items if item.id not in done_ids]
    left = Counter(item.patient_id for item in todo)
    patients: dict[str, tuple[PatientScope, RecordLength]] = {}
    total = len(items)
    finished = total - len(todo)
    progress = on_progress or (lambda done, total: None)
    progress(finished, total)

    def patient(patient_id: str) -> tuple[PatientScope, RecordLength]:
        if patient_id not in patients:
            scope = store.scope(patient_id)
            patients[patient_id] = (scope, record_length(scope))
        return patients[patient_id]

    async def scored(
        item: EvalItem, scope: PatientScope
    ) -> tuple[Answer, Score | None, JudgeResult | None]:
        result = await runner.run(item, scope, model)
        if references is None:
            return result, None, None
        reference = references.get(item.id)
        verdict = None
        if (
            judge is not None
            and answer_kind(item.answer.type).judged
            and reference is not None
            and reference.value is not None
            and result.value is not None
        ):
            # Free text only: every other type has a structured scorer. The log keeps the
            # verdict, not the judge's words, and the score is made from what the log keeps.
            judged = await judge_answer(
                judge, item, str(result.value), str(reference.value), rubric
            )
            verdict = judged.for_log()
        return result, score_answer(item, result, reference, judge_verdict=verdict), verdict

    async def answer(item: EvalItem) -> None:
        nonlocal finished
        error = None
        try:
            # Opening the patient's record may fail too: inside the try, as the answer may.
            scope, _ = patient(item.patient_id)
            result, score, verdict = await scored(item, scope)
        except ModelError as exc:
            # A runner is meant to turn model faults into failed answers; one that does
            # not has a bug like any other exception.
            error = ItemError.of(exc)
        except UserError:
            raise
        except Exception as exc:
            error = ItemError.of(exc)
        if error is not None:
            result = _failed(item, runner, model)
            score = _failed_score(item, result, references)
            verdict = None
        documents, tokens = patients.get(item.patient_id, (None, (0, 0)))[1]
        # append() is synchronous: records never interleave, whatever the concurrency.
        record = RunRecord(
            item=item,
            answer=result,
            score=score,
            judge=verdict,
            record_tokens=tokens,
            record_documents=documents,
            error=error,
        )
        if log is not None:
            log.append(record)
        else:
            kept[item.id] = record
        finished += 1
        left[item.patient_id] -= 1
        if not left[item.patient_id]:
            patients.pop(item.patient_id, None)
        progress(finished, total)

    queue = iter(todo)

    async def worker() -> None:
        # ``concurrency`` workers take the items in turn from one iterator: a run holds that
        # many coroutines, not one per item.
        for item in queue:
            if stop is not None and stop():
                return
            await answer(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(todo))):
                group.create_task(worker())
    except BaseExceptionGroup as failure:
        # Only UserErrors leave answer(): the first is the run's one error line.
        first = _first_user_error(failure)
        if first is None:
            raise
        raise first from None

    by_id = {record.item.id: record for record in log.records} if log is not None else kept
    return [by_id[item_id] for item_id in ids if item_id in by_id]


def check_run(
    items: Sequence[EvalItem], runner: Runner, model: ChatModel, log: RunLog | None
) -> None:
    """Refuse a run that cannot go into ``log``, before any work (every engine checks this).

    Raises:
        UserError: The log is another runner's, model's or item set's.
        ValueError: Two items share an id.
    """
    if log is not None:
        _check_log(log, runner, model)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        counts = Counter(ids)
        twice = sorted(i for i, n in counts.items() if n > 1)
        raise ValueError(f"item ids must be unique; repeated: {', '.join(twice[:5])}")
    if log is not None:
        _check_items(log, items)


def failed_record(
    item: EvalItem,
    runner: Runner,
    model: ChatModel,
    error: BaseException,
    references: Mapping[str, ReferenceLabel] | None = None,
) -> RunRecord:
    """The record of an item that ``error`` kept from being answered (a bug, a lost worker).

    A failed placeholder answer with the error's kind: a resumed run retries the item.
    """
    answer = _failed(item, runner, model)
    return RunRecord(
        item=item,
        answer=answer,
        score=_failed_score(item, answer, references),
        record_tokens=0,
        record_documents=0,
        error=ItemError.of(error),
    )


def _failed(item: EvalItem, runner: Runner, model: ChatModel) -> Answer:
    """The placeholder answer of an item whose runner raised: failed, no value, no trace."""
    return Answer(
        item_id=item.id,
        patient_id=item.patient_id,
        runner=runner.name,
        prompt_version=runner.prompt_version,
        model=model.name,
        mock=model.is_mock,
        status="failed",
        value=answer_kind(item.answer.type).empty,
        text="",
    )


def _failed_score(
    item: EvalItem, answer: Answer, references: Mapping[str, ReferenceLabel] | None
) -> Score | None:
    """A failed item scores as any failed answer does (incorrect), if it can be scored."""
    if references is None:
        return None
    try:
        return score_answer(item, answer, references.get(item.id))
    except Exception:  # the scorer itself may be what failed: the record is then unscored
        return None


def _first_user_error(group: BaseExceptionGroup) -> UserError | None:
    for exc in group.exceptions:
        if isinstance(exc, UserError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            inner = _first_user_error(exc)
            if inner is not None:
                return inner
    return None


def _check_items(log: RunLog, items: Sequence[EvalItem]) -> None:
    """Refuse to pool two item sets in one log (a log is a run of its items, and only those)."""
    manifest = log.manifest
    given = {item.id: item_fingerprint(item) for item in items}
    if manifest.items is not None and manifest.items != given:
        new = sorted(set(given) - set(manifest.items))
        gone = sorted(set(manifest.items) - set(given))
        changed = sorted(
            i for i in set(given) & set(manifest.items) if given[i] != manifest.items[i]
        )
        raise UserError(
            f"the run log {log.path} is a run of {len(manifest.items)} items; these are "
            f"{len(given)}: {len(new)} not in the run, {len(gone)} of the run's missing, "
            f"{len(changed)} changed. Run the same items, or start a new log for these"
        )
    foreign = [r.item.id for r in log.records if given.get(r.item.id) != item_fingerprint(r.item)]
    if foreign:
        shown = ", ".join(repr(i) for i in sorted(foreign)[:3])
        raise UserError(
            f"the run log {log.path} holds {len(foreign)} item(s) that are not among the items "
            f"given ({shown}): it is a log of another item set. Run its items, or start a new "
            "log for these"
        )


def _check_log(log: RunLog, runner: Runner, model: ChatModel) -> None:
    """Refuse to log one run's answers under another run's manifest."""
    manifest = log.manifest
    problems = []
    if manifest.runner != runner.name:
        problems.append(f"runner {manifest.runner!r} (this run: {runner.name!r})")
    if manifest.model != model.name:
        problems.append(f"model {manifest.model!r} (this run: {model.name!r})")
    if manifest.mock != model.is_mock:
        problems.append(f"mock={manifest.mock} (this model: mock={model.is_mock})")
    if manifest.prompt_version != runner.prompt_version:
        problems.append(
            f"prompt version {manifest.prompt_version!r} (this run: {runner.prompt_version!r})"
        )
    if problems:
        raise UserError(
            f"the run log {log.path} is for "
            + "; ".join(problems)
            + ": build its manifest with RunManifest.create(runner, model, ...)"
        )
