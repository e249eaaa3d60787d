"""Synchronous conveniences for scripts and notebooks: one answer, or a table of many.

:func:`ask` answers one question about one patient; :func:`answer_many` answers every
question for every patient given, concurrently, into a polars DataFrame (one row per patient
× question). Both are plain functions that block until done, also inside a running event loop
(Jupyter's): the work then runs on an event loop of its own in a worker thread, because a
loop cannot wait on itself. Inside an ``async`` function, use the runners and
:func:`recordagent.evaluation.run.run_items` directly.

The model is the one the settings configure, or — when they configure none — the scripted
dry-run mock, with a warning that says so (:func:`recordagent.runners.configured_model`),
exactly as ``recordagent ask``, ``eval`` and ``chat`` decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from recordagent.errors import UserError
from recordagent.evaluation.results_table import records_frame
from recordagent.evaluation.run import run_items
from recordagent.llm.client import ChatModel, close_model
from recordagent.questions.answers import AnswerSpec, answer_spec
from recordagent.questions.items import Question
from recordagent.records.db import RecordStore, opened_store
from recordagent.runners import Answer, Runner, build_runner, configured_model
from recordagent.settings import Settings, load_settings

__all__ = ["Question", "answer_many", "ask"]

T = TypeVar("T")

_UNWIND_S = 30.0
"""After an interrupt, how long the cancelled work may take to unwind before the wait ends."""

StoreLike = RecordStore | str | Path
"""An open store, or the path of a store file (opened read-only for the call)."""


def ask(
    store: StoreLike,
    patient: str,
    question: str | Question,
    *,
    runner: str | Runner = "agent",
    model: ChatModel | None = None,
    settings: Settings | None = None,
    answer: AnswerSpec | str | None = None,
    as_of: dt.date | None = None,
) -> Answer:
    """Answer one question about one patient, and wait for the answer.

    Args:
        store: An open store, or the path of a store file (opened read-only).
        patient: The patient's id.
        question: The question's words, or a :class:`Question`.
        runner: A runner's name (``agent``, ``single_pass_rag``, ``iterative_rag``,
            ``full_context``) or a runner.
        model: The model to ask; by default the one the settings configure (the dry-run mock,
            with a warning, when none is).
        settings: The settings (budgets, the model); :func:`load_settings` by default.
        answer: The answer expected, as an :class:`AnswerSpec` or a type name ('date',
            'number', 'count', 'boolean', 'category', 'list', 'text'); overrides a Question's.
        as_of: Answer as the record stood on this day; overrides a Question's.

    Returns:
        The runner's Answer: status, value, text, citations, usage and trace, with
        ``patient_id`` set.

    Raises:
        UserError: An unknown runner, a patient the store does not hold, an answer type that
            does not exist, a store file that cannot be opened.
    """
    asked = _question(question, answer, as_of)
    run_settings = settings or load_settings()
    chosen = _runner(runner, run_settings)
    item = asked.item(patient)

    async def run(open_store: RecordStore, chat: ChatModel) -> Answer:
        if not open_store.has_patient(patient):
            raise UserError(f"no patient {patient!r} in the store {open_store.location}")
        return await chosen.run(item, open_store.scope(patient), chat)

    with opened_store(store, run_settings.store) as open_store:
        return _blocking(lambda: _with_model(model, run_settings, lambda m: run(open_store, m)))


def answer_many(
    store: StoreLike,
    questions: str | Question | Sequence[str | Question],
    patients: str | Sequence[str] | None = None,
    *,
    runner: str | Runner = "agent",
    model: ChatModel | None = None,
    settings: Settings | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> pl.DataFrame:
    """Answer every question for every patient, ``concurrency`` at a time, into a DataFrame.

    Each (patient, question) is an ad-hoc item; a runner's bug on one item fails that row
    (status 'failed', column ``error``) and the others go on. Nothing is logged to a file:
    for a resumable run with scores, use an evaluation (``recordagent eval``).

    Args:
        store: An open store, or the path of a store file (opened read-only).
        questions: One question or several: words, or :class:`Question` (answer type, as-of).
        patients: The patient or patients to ask about; every patient of the store by
            default.
        runner: A runner's name or a runner.
        model: The model to ask; by default the one the settings configure (the dry-run mock,
            with a warning, when none is).
        settings: The settings; :func:`load_settings` by default.
        concurrency: Items answered at once (the model's own limit,
            ``model.max_concurrency``, applies on top).
        progress: Show a progress bar (rich: in the terminal and in Jupyter).

    Returns:
        One row per patient × question, patients in the order given and questions in order
        within a patient; the columns of :data:`recordagent.evaluation.results_table.
        RESULT_COLUMNS` (no reference or score: nothing is labelled here).

    Raises:
        UserError: No questions, a question given twice, a patient the store does not hold
            (checked before any model call), an unknown runner.
    """
    asked = _questions(questions)
    run_settings = settings or load_settings()
    chosen = _runner(runner, run_settings)
    if concurrency < 1:
        raise UserError(f"concurrency must be at least 1, not {concurrency}")

    with opened_store(store, run_settings.store) as open_store:
        if isinstance(patients, str):
            patients = [patients]
        ids = list(patients) if patients is not None else open_store.patient_ids()
        missing = [p for p in dict.fromkeys(ids) if not open_store.has_patient(p)]
        if missing:
            shown = ", ".join(repr(p) for p in missing[:5])
            raise UserError(
                f"{len(missing)} patient(s) not in the store {open_store.location}: {shown}"
            )
        items = [q.item(patient) for patient in dict.fromkeys(ids) for q in asked]

        async def run(chat: ChatModel) -> pl.DataFrame:
            with _progress_bar(progress, len(items), chosen.name) as on_progress:
                records = await run_items(
                    items,
                    chosen,
                    chat,
                    open_store,
                    concurrency=concurrency,
                    on_progress=on_progress,
                )
            return records_frame(records)

        return _blocking(lambda: _with_model(model, run_settings, run))


def _asked(text: str) -> Question:
    if not text.strip():
        raise UserError("a question is empty: give its words")
    return Question(text=text)


def _question(
    question: str | Question, answer: AnswerSpec | str | None, as_of: dt.date | None
) -> Question:
    base = question if isinstance(question, Question) else _asked(question)
    update: dict[str, object] = {}
    if answer is not None:
        update["answer"] = _answer_spec(answer)
    if as_of is not None:
        update["as_of"] = as_of
    return base.model_copy(update=update) if update else base


def _answer_spec(answer: AnswerSpec | str) -> AnswerSpec:
    return answer if isinstance(answer, AnswerSpec) else answer_spec(answer)


def _questions(questions: str | Question | Sequence[str | Question]) -> list[Question]:
    given = [questions] if isinstance(questions, str | Question) else list(questions)
    if not given:
        raise UserError("no questions to ask")
    asked = [q if isinstance(q, Question) else _asked(q) for q in given]
    seen: set[Question] = set()
    for question in asked:
        if question in seen:
            raise UserError(f"the question {question.text!r} is given twice")
        seen.add(question)
    return asked


def _runner(runner: str | Runner, settings: Settings) -> Runner:
    return build_runner(runner, settings) if isinstance(runner, str) else runner


async def _with_model(
    model: ChatModel | None,
    settings: Settings,
    work: Callable[[ChatModel], Awaitable[T]],
) -> T:
    """Run ``work`` with the caller's model, or with one built here and closed afterwards.

    A model the caller gave stays theirs: it is not closed (its connections of this call's
    own event loop end with the loop).
    """
    if model is not None:
        return await work(model)
    chat = configured_model(settings)
    try:
        return await work(chat)
    finally:
        await close_model(chat)


def _blocking(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end from synchronous code, with or without a running loop."""

    async def whole() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(whole())  # Ctrl-C cancels the work and waits for it to unwind
    return _on_own_loop(whole())


def _on_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on a new event loop in a worker thread while this thread waits.

    A running loop in this thread (Jupyter's) cannot wait on itself. An interrupt of the
    wait (the notebook's stop button: KeyboardInterrupt here) cancels the work, so no more
    model calls are made and paid for, and is raised once the work has unwound.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(work)
    finished = threading.Event()

    def drive() -> None:
        try:
            with contextlib.suppress(BaseException):  # the task keeps its own outcome
                loop.run_until_complete(task)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            finished.set()

    threading.Thread(target=drive, name="recordagent-notebook", daemon=True).start()
    try:
        while not finished.wait(0.1):  # a timed wait, so an interrupt is seen at once
            pass
    except BaseException:
        if not finished.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed just now: nothing to stop
                loop.call_soon_threadsafe(task.cancel)
            finished.wait(_UNWIND_S)
        raise
    return task.result()


@contextlib.contextmanager
def _progress_bar(
    show: bool, total: int, runner: str
) -> Iterator[Callable[[int, int], None] | None]:
    if not show:
        yield None
        return
    # Loaded when a bar is drawn, not by `import recordagent`.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task(runner, total=total)

        def on_progress(done: int, all_items: int) -> None:
            bar.update(task, completed=done, total=all_items)

        yield on_progress
