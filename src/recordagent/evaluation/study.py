"""A study in the library: a suite's runners over its items, each into a run log.

:func:`evaluate` is ``recordagent eval`` without a terminal. Everything that can be checked is
checked before the first model call, so a mistake costs nothing: the runners, the output
folder and the logs already in it, the items and labels and, for a configured model, that its
endpoint accepts a connection (:func:`prepare_study`); then the patients in the store and
whether each existing log is a log of this run (:func:`run_study`). Each runner then answers
the items into ``OUT/<runner>.jsonl``; a log already there is continued only with
``resume=True``, and only by the same run (items, runner, model, settings and data).

An item whose runner raises an unexpected exception (a bug) does not stop the study: it is
logged as failed with the exception's kind (``RunLog.failed_item_ids``), and resuming retries
it. What happens is reported to a :class:`StudyProgress` (the default shows nothing). The
report is made from the logs afterwards
(:func:`~recordagent.evaluation.report.build_report`), and :func:`study_failures` says which
answers failed and why, with what to do about each cause (the study's closing message).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import ValidationError

from recordagent.errors import MODEL_FAILURES, ModelFailure, UserError, validation_problems
from recordagent.evaluation.failures import FAILURE_ADVICE, RunFailures, run_failures
from recordagent.evaluation.log import RunLog, RunLogMismatch, RunManifest
from recordagent.evaluation.manifest import store_data_fingerprint
from recordagent.evaluation.run import ItemEngine, ItemProgress, run_items
from recordagent.evaluation.study_inputs import StudyInputs, read_study_inputs
from recordagent.evaluation.suite import Suite
from recordagent.llm.client import ChatModel
from recordagent.paths import check_output_folder, path_kind
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.runners import Runner, build_runner, configured_model
from recordagent.runners.dry_run import dry_run_model
from recordagent.runners.registry import runner_factory
from recordagent.settings import Settings

__all__ = [
    "EngineFactory",
    "RunSummary",
    "Study",
    "StudyFailures",
    "StudyProgress",
    "check_reachable",
    "evaluate",
    "evaluate_async",
    "log_file",
    "log_paths",
    "open_suite_store",
    "prepare_study",
    "run_study",
    "study_failures",
    "study_model",
    "with_budgets",
]


@dataclass(frozen=True)
class Study:
    """A study ready to run: every check that needs no record store is done.

    Attributes:
        name: The suite's name (in messages).
        settings: The settings the runners run with (the suite's budgets merged in).
        inputs: The items and what they are scored against.
        runners: The runners, run one after another.
        model: The model every runner asks.
        logs: The log file of each runner, by runner name.
        output: The output folder (created when the study runs).
        concurrency: Items answered at once per runner.
    """

    name: str
    settings: Settings
    inputs: StudyInputs
    runners: list[Runner]
    model: ChatModel
    logs: dict[str, Path]
    output: Path
    concurrency: int


@dataclass(frozen=True)
class RunSummary:
    """What one runner did in a study.

    Attributes:
        runner: The runner's name.
        path: Its run log.
        new: Items answered now.
        already: Items already answered in the log (a resumed run) and skipped.
        retried: Items failed by an unexpected error in the log, asked again.
        failed_by_error: Items whose latest record is failed by an unexpected error (a bug).
        failures: The run's failed answers by cause (all of its answers, resumed ones too).
    """

    runner: str
    path: Path
    new: int
    already: int
    retried: int
    failed_by_error: int
    failures: RunFailures | None = None


class StudyProgress:
    """What a study reports while it runs. Every method does nothing: override what you show."""

    def planned(self, study: Study) -> None:
        """The study passed its checks; nothing is loaded or asked yet."""

    @contextlib.contextmanager
    def loading(self, bundle: Path) -> Iterator[None]:
        """Around loading a record bundle into memory."""
        yield

    @contextlib.contextmanager
    def running(self, log: RunLog, total: int) -> Iterator[ItemProgress]:
        """Around one runner's items: yields the callback told ``(done, total)`` items.

        ``log`` is open (``log.recovered_line`` says if a crash's half line was cut off);
        ``log.records`` grows as items finish.
        """
        yield lambda done, total: None

    def finished(self, summary: RunSummary) -> None:
        """One runner is done with the items."""


EngineFactory = Callable[[RecordStore, Settings], ItemEngine]
"""Makes the engine that answers a study's items from the study's open store and its settings
(the suite's budgets merged in), e.g. ``functools.partial(ray_engine, address=None)`` from
:mod:`recordagent.extraction.ray_engine`."""


def evaluate(
    suite: Suite,
    settings: Settings,
    *,
    resume: bool = False,
    progress: StudyProgress | None = None,
    engine: EngineFactory | None = None,
) -> list[RunLog]:
    """Run the suite's runners over its items into run logs (in ``suite.output``).

    Starts an event loop of its own: inside a running loop (a notebook), await
    :func:`evaluate_async` instead.

    Args:
        suite: What to run (``load_suite`` reads one from YAML).
        settings: The settings; the suite's budgets are merged into them.
        resume: Continue the logs in the output folder (the same run only): answer the items
            not yet in them and retry those that failed with an unexpected error. Without it
            an existing log is refused.
        progress: Told what happens (default: nothing is shown).
        engine: Makes the engine that answers the items from the open store and the study's
            settings (default:
            :func:`~recordagent.evaluation.run.run_items`, in this process).

    Returns:
        One log per runner, in the suite's order. Items failed by an unexpected error are in
        ``log.failed_item_ids()``.

    Raises:
        UserError: A check failed (nothing was asked), or the study had to stop (a log cannot
            be written, a runner raised a UserError); the items finished stay in the logs.
    """
    return asyncio.run(
        evaluate_async(suite, settings, resume=resume, progress=progress, engine=engine)
    )


async def evaluate_async(
    suite: Suite,
    settings: Settings,
    *,
    resume: bool = False,
    progress: StudyProgress | None = None,
    engine: EngineFactory | None = None,
) -> list[RunLog]:
    """:func:`evaluate` in a running event loop."""
    shown = progress or StudyProgress()
    study = prepare_study(suite, settings, resume=resume)
    shown.planned(study)
    with open_suite_store(suite, study.settings, shown) as store:
        answer = engine(store, study.settings) if engine is not None else None
        return await run_study(study, store, progress=shown, engine=answer)


def prepare_study(suite: Suite, settings: Settings, *, resume: bool = False) -> Study:
    """The suite checked and made ready to run, before any store is opened or model asked.

    Raises:
        UserError: The budgets are invalid, a runner is unknown or named twice, the output
            folder cannot be used, a log exists without ``resume``, the items or labels are
            invalid, or the configured model's endpoint cannot be reached.
    """
    settings = with_budgets(settings, suite.budgets)
    paths = log_paths(suite, resume=resume)
    inputs = read_study_inputs(suite)
    runners = [build_runner(name, settings) for name in suite.runners]
    model = study_model(suite.model, settings)
    if not model.is_mock:
        check_reachable(settings)
    return Study(
        name=suite.name,
        settings=settings,
        inputs=inputs,
        runners=runners,
        model=model,
        logs=paths,
        output=suite.output,
        concurrency=suite.concurrency,
    )


async def run_study(
    study: Study,
    store: RecordStore,
    *,
    progress: StudyProgress | None = None,
    engine: ItemEngine | None = None,
) -> list[RunLog]:
    """Every runner of ``study`` over its items on ``store``, one log each.

    ``engine`` answers the items (default: :func:`~recordagent.evaluation.run.run_items`).

    Raises:
        UserError: An item's patient is not in the store, an existing log is of another run,
            the output folder cannot be created, or a log cannot be written.
    """
    shown = progress or StudyProgress()
    _check_patients(store, study.inputs.items, f"items of suite {study.name!r}")
    fingerprint = store_data_fingerprint(store)
    try:
        study.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the output folder {study.output}: {exc.strerror or exc}"
        ) from exc
    manifests = {
        runner.name: RunManifest.create(
            runner,
            study.model,
            study.settings,
            data_fingerprint=fingerprint,
            template_set_version=study.inputs.template_set_version,
            items=study.inputs.items,
        )
        for runner in study.runners
    }
    # Every existing log is checked before any runner starts: a log that belongs to another
    # run stops the study before any work, not after the first runner's.
    for runner in study.runners:
        try:
            RunLog.check_resumable(study.logs[runner.name], manifests[runner.name])
        except RunLogMismatch as exc:
            raise UserError(
                f"{exc.path} is the log of a different run; it differs in "
                + "; ".join(exc.differences)
                + ". Resume it with the same items, runner, model and settings, or write "
                "this run to another --out folder"
            ) from exc
    logs: list[RunLog] = []
    async with _entered(study.model):
        for runner in study.runners:
            log = RunLog.open(study.logs[runner.name], manifests[runner.name])
            already = len(log.done_item_ids())
            retried = len(log.failed_item_ids())
            with shown.running(log, len(study.inputs.items)) as on_progress:
                await (engine or run_items)(
                    study.inputs.items,
                    runner,
                    study.model,
                    store,
                    log=log,
                    references=study.inputs.references,
                    concurrency=study.concurrency,
                    on_progress=on_progress,
                )
            shown.finished(
                RunSummary(
                    runner=runner.name,
                    path=log.path,
                    new=len(log.done_item_ids()) - already,
                    already=already,
                    retried=retried,
                    failed_by_error=len(log.failed_item_ids()),
                    failures=run_failures(runner.name, log.records),
                )
            )
            logs.append(log)
    return logs


@dataclass(frozen=True)
class StudyFailures:
    """The failed answers of a study, for its closing message.

    Attributes:
        runs: Each run with failed answers, in the study's order.
    """

    runs: tuple[RunFailures, ...]

    @property
    def all_failed(self) -> list[str]:
        """The runners every answer of which failed."""
        return [run.runner for run in self.runs if run.all_failed]

    def causes(self) -> list[tuple[ModelFailure, int]]:
        """Failed answers per cause over all runs, the most frequent first."""
        totals: dict[ModelFailure, int] = {}
        for run in self.runs:
            for cause, n in run.causes:
                totals[cause] = totals.get(cause, 0) + n
        return sorted(totals.items(), key=lambda kv: (-kv[1], MODEL_FAILURES.index(kv[0])))

    def message(self) -> str:
        """What failed and what to do, on several lines ('' when nothing failed).

        The first line says whether a runner failed every answer; then one line per runner
        with failed answers (``full_context: 10 of 10 failed — context_overflow 10``), then
        one line per cause with what it means and what to do, and the first model error's
        message of that cause when the answers still have it.
        """
        if not self.runs:
            return ""
        every = self.all_failed
        head = (
            f"every answer of {', '.join(every)} failed:"
            if every
            else f"{sum(run.failed for run in self.runs):,} answer(s) failed:"
        )
        lines = [head, *(f"  {run.line()}" for run in self.runs)]
        for cause, _ in self.causes():
            lines.append(f"  {cause}: {FAILURE_ADVICE[cause]}")
            example = next(
                (run.examples[cause] for run in self.runs if cause in run.examples), None
            )
            if example is not None:
                lines.append(f"    first: {example}")
        if any(run.by_error for run in self.runs):
            lines.append(
                "  unexpected error (a bug): the items are logged as failed with the error's kind; "
                "--resume retries them"
            )
        return "\n".join(lines)


def study_failures(logs: Sequence[RunLog]) -> StudyFailures:
    """The failed answers of each run, counted by cause (runs without failures left out)."""
    runs = (run_failures(log.manifest.runner, log.records) for log in logs)
    return StudyFailures(tuple(run for run in runs if run.failed))


def with_budgets(settings: Settings, budgets: Mapping[str, Any]) -> Settings:
    """``settings`` with ``budgets`` merged into its ``runners`` section.

    Raises:
        UserError: A budget is not a valid runner setting (each named ``budgets.<path>``).
    """
    if not budgets:
        return settings
    runners = _merge(settings.runners.model_dump(), budgets)
    try:
        return Settings.model_validate({**settings.model_dump(), "runners": runners})
    except ValidationError as exc:
        problems = "; ".join(
            "budgets." + problem.removeprefix("runners.")
            for problem in validation_problems(exc, whole="runners")
        )
        raise UserError(f"suite budgets: {problems}") from exc


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def log_paths(suite: Suite, *, resume: bool) -> dict[str, Path]:
    """The log file of each of the suite's runners, once the output folder can take them.

    Raises:
        UserError: A runner is unknown or named twice, the output folder cannot be used, a log
            path is a folder, or a log exists and ``resume`` is False.
    """
    for name in suite.runners:
        runner_factory(name)  # an unknown name fails here, before any folder is looked at
    if len(set(suite.runners)) != len(suite.runners):
        raise UserError("a runner is named twice")
    check_output_folder(suite.output)
    paths = {name: log_file(suite.output, name) for name in suite.runners}
    kinds = {p: path_kind(p, "run log") for p in [*paths.values(), suite.output / "report.html"]}
    odd = [p for p, kind in kinds.items() if kind not in ("missing", "file")]
    if odd:
        raise UserError(f"{odd[0]} is a folder (or not a regular file): choose another --out")
    if not resume:
        existing = [str(p) for p in paths.values() if kinds[p] != "missing"]
        if existing:
            raise UserError(
                f"run log {existing[0]} exists: pass --resume to continue it, or choose "
                "another --out"
            )
    return paths


def log_file(output: Path, runner: str) -> Path:
    """Where a study writes ``runner``'s log in its output folder."""
    return output / f"{runner}.jsonl"


def study_model(choice: Literal["mock", "settings"], settings: Settings) -> ChatModel:
    """The scripted dry-run model ('mock'), or the model the settings configure.

    'settings' with no model configured (provider 'mock') is the dry-run model too, with a
    warning naming what to set (:func:`~recordagent.runners.configured_model`): every front
    end and the library decide alike.
    """
    if choice == "mock":
        return dry_run_model()
    return configured_model(settings)


def check_reachable(settings: Settings) -> None:
    """A TCP connection to the model's endpoint, so a wrong URL fails before anything is run.

    Raises:
        UserError: The URL has no host, or nothing accepts a connection there.
    """
    url = settings.model.base_url or "https://api.openai.com/v1"
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        raise UserError(f"model.base_url {url!r} has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=min(settings.model.timeout_s, 10.0)):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot reach the model endpoint {url} ({host}:{port}): "
            f"{exc.strerror or exc}; nothing was run"
        ) from exc


def open_suite_store(
    suite: Suite, settings: Settings, progress: StudyProgress | None = None
) -> RecordStore:
    """The suite's store file (read-only), or its bundle (or cohort) loaded into memory.

    Raises:
        UserError: The store file is missing or a folder, or the bundle cannot be loaded.
    """
    if suite.store is not None:
        kind = path_kind(suite.store, "store")
        if kind == "folder":
            raise UserError(
                f"store {suite.store} is a folder, not a DuckDB store file (for a record "
                "bundle folder use --bundle)"
            )
        if kind != "file":
            raise UserError(f"store file {suite.store} does not exist")
        return connect(suite.store, settings=settings.store, read_only=True)
    bundle = suite.bundle or suite.cohort
    assert bundle is not None  # the suite validator ensures it
    path_kind(bundle, "bundle")  # a path that cannot even be looked at is one error line
    store = connect(settings=settings.store)
    try:
        with (progress or StudyProgress()).loading(bundle):
            load_bundle(store, bundle, settings=settings, source=bundle.name)
    except BaseException:
        store.close()
        raise
    return store


def _check_patients(store: RecordStore, items: Sequence[EvalItem], where: str) -> None:
    patients = dict.fromkeys(item.patient_id for item in items)  # each asked about once
    missing = sorted(pid for pid in patients if not store.has_patient(pid))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise UserError(f"{where}: patient(s) not in the store: {shown}")


@contextlib.asynccontextmanager
async def _entered(model: ChatModel) -> AsyncIterator[ChatModel]:
    """The model, entered as an async context when it is one (an HTTP client's connections)."""
    if getattr(model, "__aenter__", None) is None:
        yield model
        return
    async with model:  # type: ignore[attr-defined]
        yield model
