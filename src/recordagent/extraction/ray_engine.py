"""The Ray engine: a run's items sharded by patient over a Ray cluster.

The driver (this process) keeps the run log, exactly as :func:`~recordagent.evaluation.run.
run_items` does: it checks the run, leaves out the items already answered, groups the rest by
patient into shards (:data:`SHARD_WAVES` times a task's share of the concurrency, by default),
and keeps one shard queued per worker slot beyond those running, as Ray tasks. Each task opens
the record store read-only from the path (a file every node can read: shared storage), builds
the runner and the model from the settings, answers its shard with ``run_items`` at its share
of the concurrency, and returns the records; the driver appends them to the log as each shard
finishes. So:

* **one writer**: only the driver writes the log and the table; tasks write nothing;
* **resumable**: a rerun skips every item in the log, hence every finished shard; a killed run
  loses the shards in flight (about two waves of items per worker slot), never a record
  already appended;
* **retries**: a task whose worker dies is retried by Ray (``max_retries``); an item that fails
  inside a task is a failed record, as in one process;
* **one rate limit**: with ``model.requests_per_minute`` or ``tokens_per_minute`` set, every
  task's model asks one Ray actor for its turn
  (:mod:`recordagent.extraction.ray_limiter`), so the cluster together keeps the endpoint's
  budget and a ``Retry-After`` pauses every worker.

``concurrency`` is the total across the cluster: at most ``min(CPUs, concurrency,
model.max_concurrency)`` tasks run at once, each answering ``concurrency // tasks`` items at
once with ``model.max_concurrency // tasks`` connections.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayTaskError

from recordagent.errors import UserError
from recordagent.evaluation.log import RunLog, RunRecord
from recordagent.evaluation.run import (
    ItemEngine,
    ItemProgress,
    StopCheck,
    check_run,
    failed_record,
    run_items,
)
from recordagent.llm.client import ChatModel, close_model
from recordagent.questions.items import EvalItem
from recordagent.records.db import MEMORY, RecordStore, connect
from recordagent.runners import Runner, build_runner
from recordagent.runners.dry_run import DRY_RUN_MODEL_NAME, dry_run_model
from recordagent.settings import Settings

if TYPE_CHECKING:
    from recordagent.evaluation.labels import ReferenceLabel
    from recordagent.extraction.ray_limiter import RayRateLimiter

__all__ = ["SHARD_WAVES", "RayEngine", "ray_engine", "shard_by_patient"]

SHARD_WAVES = 2
"""A shard holds about this many times a task's share of the concurrency (whole patients: a
patient's items never straddle two shards): enough that a task's start costs little (a 25 ms
empty task against seconds of answering), few enough that a killed driver loses little."""


def ray_engine(
    store: RecordStore,
    settings: Settings,
    *,
    address: str | None = None,
    shard_items: int | None = None,
) -> ItemEngine:
    """The Ray engine for runs over ``store`` (a store file every worker can read).

    Raises:
        UserError: The store is in memory (workers cannot read it).
    """
    if store.location == MEMORY:
        raise UserError(
            "the Ray engine reads the store from its file on every worker: give a store file "
            "(--db), not a bundle loaded into memory"
        )
    # absolute, not resolved: a link on shared storage is the path every node mounts
    return RayEngine(Path(store.location).absolute(), settings, address, shard_items)


@dataclass(frozen=True)
class _Shard:
    """What one task answers, and everything it needs to do so on any node."""

    items: list[dict[str, Any]]
    references: dict[str, dict[str, Any]] | None
    runner: str
    settings: Settings
    store: str
    mock: bool
    concurrency: int
    limiter: RayRateLimiter | None


class RayEngine:
    """An :class:`~recordagent.evaluation.run.ItemEngine` on a Ray cluster (see the module)."""

    def __init__(
        self,
        store: Path,
        settings: Settings,
        address: str | None,
        shard_items: int | None = None,
    ) -> None:
        if shard_items is not None and shard_items < 1:
            raise ValueError(f"shard_items must be at least 1, not {shard_items}")
        self.store = store
        self.settings = settings
        self.address = address
        self.shard_items = shard_items

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
        """Answer the items not yet in ``log`` on the cluster; see the module."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        check_run(items, runner, model, log)
        rebuilt = build_runner(runner.name, self.settings)
        if type(rebuilt) is not type(runner) or rebuilt.prompt_version != runner.prompt_version:
            raise UserError(
                f"the Ray engine rebuilds the runner {runner.name!r} on every worker from its "
                "name and the settings: run it with a registered runner, not one of your own"
            )
        if model.name != (DRY_RUN_MODEL_NAME if model.is_mock else self.settings.model.model):
            raise UserError(
                "the Ray engine rebuilds the model on every worker from the settings: run it "
                "with the configured model or the dry-run mock, not a model object of your own"
            )
        missing = store.missing_patients(item.patient_id for item in items)
        if missing:
            store.scope(missing[0])  # every patient checked before any task: a typo costs nothing
        done = log.done_item_ids() if log is not None else set()
        todo = [item for item in items if item.id not in done]
        kept: dict[str, RunRecord] = {}
        total, finished = len(items), len(items) - len(todo)
        progress = on_progress or (lambda done, total: None)
        progress(finished, total)
        if not todo:
            return self._records(items, log, kept)
        connect_cluster(self.address)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        connections = self.settings.model.max_concurrency
        running = min(slots, concurrency, connections)
        shards = shard_by_patient(todo, self.shard_items or SHARD_WAVES * concurrency // running)
        # At most ``concurrency`` items in flight in all, and the model's connection limit, are
        # shared out between the tasks that run at once (rounded down: never above either).
        running = min(running, len(shards))
        share = concurrency // running
        settings = _with_connections(self.settings, connections // running)
        # Shards queued beyond those running wait for a CPU (never run at once with them), so
        # a slot never waits on the driver; with fewer tasks than CPUs, none are queued.
        submitted = 2 * slots if running == slots else running
        actor = None if model.is_mock else self._limiter_actor(runner)
        limiter = None if actor is None else _rate_limiter(actor)
        answer = ray.remote(num_cpus=1, max_retries=3)(answer_shard)
        pending: dict[asyncio.Future[Any], tuple[ray.ObjectRef[Any], list[EvalItem]]] = {}
        queue = list(reversed(shards))

        def submit() -> None:
            while queue and len(pending) < submitted:
                shard = _started(queue.pop(), stop)
                if not shard:
                    queue.clear()  # no further item may start (a budget is spent)
                    return
                payload = _Shard(
                    items=[i.model_dump(mode="json") for i in shard],
                    references=_references(shard, references),
                    runner=runner.name,
                    settings=settings,
                    store=str(self.store),
                    mock=model.is_mock,
                    concurrency=share,
                    limiter=limiter,
                )
                task = answer.remote(payload)
                pending[asyncio.wrap_future(task.future())] = (task, shard)

        def record(answered: RunRecord) -> None:
            nonlocal finished
            if log is not None:
                log.append(answered)
            else:
                kept[answered.item.id] = answered
            finished += 1
            progress(finished, total)

        try:
            submit()
            while pending:
                ready, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                stopping: UserError | None = None
                for future in ready:
                    _, shard = pending.pop(future)
                    try:
                        for raw in _result(future):
                            record(RunRecord.model_validate_json(raw))
                    except UserError as exc:
                        stopping = stopping or exc  # the other finished shards are kept first
                    except ray.exceptions.RayError as exc:
                        # The task was lost after Ray's retries (a node gone, out of memory):
                        # its items are failed by that error, and a resumed run retries them.
                        for item in shard:
                            record(failed_record(item, runner, model, exc, references))
                if stopping is not None:
                    raise stopping
                submit()
        finally:
            # An error, an interrupt or a cancelled caller: the tasks still out would go on
            # asking the model (and paying for it) in a process that lives on, a notebook's.
            for future, (task, _) in pending.items():
                future.cancel()
                ray.cancel(task)
            if actor is not None:
                ray.kill(actor)  # the run's budget ends with the run
        return self._records(items, log, kept)

    @staticmethod
    def _records(
        items: Sequence[EvalItem], log: RunLog | None, kept: Mapping[str, RunRecord]
    ) -> list[RunRecord]:
        by_id = {r.item.id: r for r in log.records} if log is not None else kept
        return [by_id[item.id] for item in items if item.id in by_id]

    def _limiter_actor(self, runner: Runner) -> Any:
        """The actor holding the endpoint's budget for the run, when the settings set one."""
        from recordagent.extraction.ray_limiter import start_rate_limiter

        return start_rate_limiter(
            self.settings.model, name=f"recordagent-rate-{runner.name}-{uuid.uuid4().hex[:8]}"
        )


def _rate_limiter(actor: Any) -> RayRateLimiter:
    from recordagent.extraction.ray_limiter import RayRateLimiter

    return RayRateLimiter(actor)


def connect_cluster(address: str | None) -> None:
    """Join the Ray cluster at ``address``, or start a local one; nothing if already joined.

    Raises:
        UserError: The cluster cannot be reached.
    """
    if ray.is_initialized():
        return
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local cluster"
        raise UserError(f"cannot start or join the Ray cluster ({where}): {exc}") from exc


def shard_by_patient(items: Sequence[EvalItem], size: int) -> list[list[EvalItem]]:
    """Items in shards of about ``size``, a patient's items always in one shard, order kept."""
    by_patient: dict[str, list[EvalItem]] = {}
    for item in items:
        by_patient.setdefault(item.patient_id, []).append(item)
    shards: list[list[EvalItem]] = []
    current: list[EvalItem] = []
    for patient_items in by_patient.values():
        if current and len(current) + len(patient_items) > size:
            shards.append(current)
            current = []
        current.extend(patient_items)
    if current:
        shards.append(current)
    return shards


def answer_shard(shard: _Shard) -> list[str]:
    """A Ray task: the shard's items answered from the store file; their records as JSON.

    JSON text, not objects: the driver validates it straight from the bytes (pydantic-core),
    which costs it a fraction of validating Python dicts.
    """
    return asyncio.run(_answer_shard(shard))


async def _answer_shard(shard: _Shard) -> list[str]:
    from recordagent.evaluation.labels import ReferenceLabel

    items = [EvalItem.model_validate(raw) for raw in shard.items]
    references = (
        None
        if shard.references is None
        else {k: ReferenceLabel.model_validate(v) for k, v in shard.references.items()}
    )
    runner = build_runner(shard.runner, shard.settings)
    chat = _worker_model(shard)
    try:
        with connect(shard.store, settings=shard.settings.store, read_only=True) as store:
            records = await run_items(
                items,
                runner,
                chat,
                store,
                references=references,
                concurrency=shard.concurrency,
            )
    finally:
        await close_model(chat)
    return [record.model_dump_json() for record in records]


def _worker_model(shard: _Shard) -> ChatModel:
    if shard.mock:
        return dry_run_model()
    from recordagent.llm.openai_compat import OpenAICompatModel

    return OpenAICompatModel(shard.settings.model, rate_limiter=shard.limiter)


def _with_connections(settings: Settings, connections: int) -> Settings:
    """``settings`` with the model's requests in flight set to ``connections`` (per task)."""
    model = settings.model.model_copy(update={"max_concurrency": max(1, connections)})
    return settings.model_copy(update={"model": model})


def _started(shard: list[EvalItem], stop: StopCheck | None) -> list[EvalItem]:
    """The shard's items that may start (all, unless ``stop`` says the budget is spent)."""
    if stop is None:
        return shard
    kept = []
    for item in shard:
        if stop():
            break
        kept.append(item)
    return kept


def _references(
    shard: Sequence[EvalItem], references: Mapping[str, ReferenceLabel] | None
) -> dict[str, dict[str, Any]] | None:
    if references is None:
        return None
    return {
        item.id: references[item.id].model_dump(mode="json")
        for item in shard
        if item.id in references
    }


def _result(future: asyncio.Future[Any]) -> list[str]:
    """A finished task's records; a UserError raised in the task is raised here as itself."""
    try:
        result: list[str] = future.result()
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, UserError):
            raise cause from None
        raise
    return result
