"""``recordagent.ask`` and ``recordagent.answer_many``: blocking calls for scripts and notebooks.

They must work from plain code and from inside a running event loop (a Jupyter cell), check
the patients before any model call, and keep going past one item's failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import polars as pl
import pytest

import recordagent as ra
from recordagent.errors import UserError
from recordagent.evaluation.results_table import RESULT_COLUMNS
from recordagent.llm import CachedModel
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.resources import example_bundle_path
from recordagent.runners import Answer, EventSink, build_runner
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings

PATIENTS = ["MM-001", "MM-002", "MM-003"]
QUESTIONS = [
    "When was the autologous stem cell transplantation?",
    ra.Question(text="What was the latest M-protein?", answer=ra.AnswerSpec(type="number")),
]


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("notebook") / "cohort.duckdb"
    with connect(db) as store:
        load_bundle(store, example_bundle_path(), settings=Settings(), source="example")
    return db


@pytest.fixture(autouse=True)
def no_model_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROVIDER", "BASE_URL", "MODEL"):
        monkeypatch.delenv(f"RECORDAGENT_MODEL__{name}", raising=False)


def test_ask_answers_one_question_from_a_store_file(store_file: Path) -> None:
    answer = ra.ask(store_file, "MM-001", QUESTIONS[0], runner="single_pass_rag", answer="date")
    assert answer.patient_id == "MM-001" and answer.runner == "single_pass_rag"
    assert answer.mock and answer.model == "mock-dry-run"  # nothing configured: the mock
    assert answer.item_id.startswith("ad-hoc/MM-001/")


async def test_ask_works_inside_a_running_event_loop(store_file: Path) -> None:
    asyncio.get_running_loop()  # as in a Jupyter cell
    answer = ra.ask(store_file, "MM-002", "Which regimen was given first?", runner="agent")
    assert answer.patient_id == "MM-002" and answer.status in {
        "answered",
        "insufficient_evidence",
    }


def test_answer_many_gives_one_row_per_patient_and_question(store_file: Path) -> None:
    model = dry_run_model()
    frame = ra.answer_many(
        store_file, QUESTIONS, runner="iterative_rag", model=model, progress=False
    )
    assert frame.columns == [c.name for c in RESULT_COLUMNS]
    assert frame.height == len(PATIENTS) * len(QUESTIONS)
    assert frame["patient_id"].to_list() == [p for p in PATIENTS for _ in QUESTIONS]
    assert frame["question"].to_list() == [
        QUESTIONS[0],
        QUESTIONS[1].text,
    ] * len(PATIENTS)
    assert frame["answer_type"].to_list() == ["text", "number"] * len(PATIENTS)
    assert set(frame["runner"].to_list()) == {"iterative_rag"}
    assert frame["item_id"].n_unique() == frame.height
    assert frame["mock"].all() and (frame["prompt_tokens"] > 0).all()
    assert len(model.requests) > 0


async def test_answer_many_works_inside_a_running_event_loop(store_file: Path) -> None:
    frame = ra.answer_many(store_file, QUESTIONS[0], ["MM-003"], runner="full_context",
                           progress=False)  # fmt: skip
    assert frame.select("patient_id", "runner").rows() == [("MM-003", "full_context")]


def test_an_unknown_patient_stops_answer_many_before_any_model_call(store_file: Path) -> None:
    model = dry_run_model()
    with pytest.raises(UserError, match=r"1 patient\(s\) not in the store .*'MM-999'"):
        ra.answer_many(store_file, QUESTIONS, ["MM-001", "MM-999"], model=model, progress=False)
    assert model.requests == []


def test_a_question_given_twice_or_empty_is_refused(store_file: Path) -> None:
    with pytest.raises(UserError, match="given twice"):
        ra.answer_many(store_file, [QUESTIONS[0], QUESTIONS[0]], progress=False)
    with pytest.raises(UserError, match="a question is empty"):
        ra.ask(store_file, "MM-001", "  ")
    with pytest.raises(UserError, match="a question is empty"):
        ra.answer_many(store_file, ["When?", ""], progress=False)


def test_one_question_asked_two_ways_is_two_rows(store_file: Path) -> None:
    asked = [
        ra.Question(text="When was the ASCT?", answer=ra.AnswerSpec(type="date")),
        ra.Question(
            text="When was the ASCT?",
            answer=ra.AnswerSpec(type="date"),
            as_of=dt.date(2019, 1, 1),
        ),
    ]
    frame = ra.answer_many(store_file, asked, ["MM-001"], runner="single_pass_rag",
                           progress=False)  # fmt: skip
    assert frame["item_id"].n_unique() == 2 and frame["as_of"].null_count() == 1


class _SinglePassWith:
    """single_pass_rag with something done before each item (a bug, a delay), counting items."""

    name = "single_pass_rag"

    def __init__(self, before: Callable[[EvalItem], Awaitable[None]]) -> None:
        self.inner = build_runner("single_pass_rag", Settings())
        self.prompt_version = self.inner.prompt_version
        self.before = before
        self.finished = 0

    async def run(
        self,
        item: EvalItem,
        scope: PatientScope,
        model: ChatModel,
        on_event: EventSink | None = None,
    ) -> Answer:
        await self.before(item)
        answer = await self.inner.run(item, scope, model, on_event)
        self.finished += 1
        return answer


async def _bug_on_mm002(item: EvalItem) -> None:
    if item.patient_id == "MM-002":
        raise KeyError("a bug")


async def _slowly(item: EvalItem) -> None:
    await asyncio.sleep(0.3)


def test_a_runner_bug_fails_its_row_and_the_others_are_answered(store_file: Path) -> None:
    frame = ra.answer_many(
        store_file, QUESTIONS[0], runner=_SinglePassWith(_bug_on_mm002), progress=False
    )
    by_patient = {row["patient_id"]: row for row in frame.iter_rows(named=True)}
    assert by_patient["MM-002"]["status"] == "failed"
    assert by_patient["MM-002"]["error"] == "KeyError"
    assert {by_patient[p]["status"] for p in ("MM-001", "MM-003")} <= {
        "answered",
        "insufficient_evidence",
    }


def test_a_missing_store_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no store file"):
        ra.ask(tmp_path / "nope.duckdb", "MM-001", "Anything?")


def test_the_frame_converts_to_pandas(store_file: Path) -> None:
    pytest.importorskip("pandas")
    frame = ra.answer_many(store_file, QUESTIONS[0], ["MM-001"], progress=False)
    assert isinstance(frame, pl.DataFrame)
    assert list(frame.to_pandas()["patient_id"]) == ["MM-001"]


async def test_an_interrupt_in_a_running_loop_cancels_the_remaining_work(store_file: Path) -> None:
    runner = _SinglePassWith(_slowly)
    many = [f"Question {n}?" for n in range(20)]  # 60 items, 8 at a time: about 2.5 s

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            ra.answer_many(store_file, many, runner=runner, progress=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    stopped_after = time.perf_counter() - started
    time.sleep(0.5)  # anything still running would finish items now
    assert stopped_after < 1.5 and runner.finished < 20


def test_a_model_the_caller_gives_is_used_again_and_never_closed(
    store_file: Path, tmp_path: Path
) -> None:
    cached = CachedModel(dry_run_model(), tmp_path / "cache.sqlite")
    first = ra.ask(
        store_file, "MM-001", "Anything on file?", model=cached, runner="single_pass_rag"
    )
    again = ra.ask(
        store_file, "MM-001", "Anything on file?", model=cached, runner="single_pass_rag"
    )
    assert first.model == again.model and again.usage.model_calls == first.usage.model_calls
    cached.close()  # still open until now: the caller's to close
