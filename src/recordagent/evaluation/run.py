"""The evaluation run: every item answered by one runner, scored and logged as it finishes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from recordagent.errors import UserError
from recordagent.evaluation.judge import judge_answer
from recordagent.evaluation.log import RunLog, RunRecord
from recordagent.evaluation.scorers import score_answer
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.scope import PatientScope
from recordagent.runners._base import Runner

if TYPE_CHECKING:
    from recordagent.evaluation.labels import ReferenceLabel

__all__ = ["ProgressCallback", "RecordLength", "record_length", "run_items"]

ProgressCallback = Callable[[int, int], None]
"""Called as ``on_progress(done, total)`` once at the start and after every item."""

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
    log: RunLog,
    references: Mapping[str, ReferenceLabel] | None = None,
    judge: ChatModel | None = None,
    rubric: str | None = None,
    concurrency: int = 8,
    on_progress: ProgressCallback | None = None,
) -> list[RunRecord]:
    """Answer every item not yet in ``log`` with ``runner`` and append its record.

    Each item is answered from its own patient's scope. Records are scored when ``references``
    are given (items without one are 'ungraded'); without references they are logged unscored,
    to be scored later with :func:`~recordagent.evaluation.log.rescore`. Free-text items are
    graded by the ``judge`` model (with ``rubric``) when one is given, and its verdict is stored
    in the record; without a judge they are 'ungraded'. At most
    ``concurrency`` items run at once; a bug in a runner stops the run, and the items finished
    before it stay in the log for a resume.

    Returns:
        The records of ``items``, in their order (those from an earlier, resumed run included).

    Raises:
        UserError: The log belongs to another runner or model, or says mock when the model is
            not (or the reverse); an item's patient is not in the store.
        ValueError: Two items share an id, or ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    _check_log(log, runner, model)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"item ids must be unique; repeated: {', '.join(twice[:5])}")
    # Every patient is checked before the first model call: a typo should not cost a run.
    scopes = {pid: store.scope(pid) for pid in dict.fromkeys(item.patient_id for item in items)}
    lengths = {pid: record_length(scope) for pid, scope in scopes.items()}

    done_ids = log.done_item_ids()
    todo = [item for item in items if item.id not in done_ids]
    total = len(items)
    finished = total - len(todo)
    progress = on_progress or (lambda done, total: None)
    progress(finished, total)
    gate = asyncio.Semaphore(concurrency)

    async def answer(item: EvalItem) -> None:
        nonlocal finished
        async with gate:
            result = await runner.run(item, scopes[item.patient_id], model)
        score, verdict = None, None
        if references is not None:
            reference = references.get(item.id)
            if (
                judge is not None
                and item.answer.type == "text"
                and reference is not None
                and reference.value is not None
                and result.value is not None
            ):
                # Free text only: every other type has a structured scorer.
                verdict = await judge_answer(
                    judge, item, str(result.value), str(reference.value), rubric
                )
            score = score_answer(item, result, reference, judge_verdict=verdict)
        documents, tokens = lengths[item.patient_id]
        # append() is synchronous: records never interleave, whatever the concurrency.
        log.append(
            RunRecord(
                item=item,
                answer=result,
                score=score,
                judge=verdict,
                record_tokens=tokens,
                record_documents=documents,
            )
        )
        finished += 1
        progress(finished, total)

    async with asyncio.TaskGroup() as group:
        for item in todo:
            group.create_task(answer(item))

    by_id = {record.item.id: record for record in log.records}
    return [by_id[item_id] for item_id in ids]


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
