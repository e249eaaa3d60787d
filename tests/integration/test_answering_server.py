"""The answering fake server drives every runner over HTTP to answers taken from the record."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from recordagent.errors import ModelError
from recordagent.evaluation.run import run_items
from recordagent.llm import OpenAICompatModel
from recordagent.llm.client import json_schema
from recordagent.llm.types import Message
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.questions.answers import coerce_value, final_answer_model
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.runners import Answer, build_runner
from recordagent.runners.answering import question_block
from recordagent.settings import ModelSettings, Settings
from tests.answering_server import answering_responder
from tests.fake_openai import FakeOpenAI
from tests.helpers import FIXTURES, REPO, asct_item

RUNNERS = ["single_pass_rag", "iterative_rag", "full_context", "agent"]
PATIENTS = ["A", "B"]
FISH = "What did the FISH report show for t(4;14) and del(17p)?"
# One question per answer type, worded so that every runner finds some of both patients'
# records (single-pass retrieval finds nothing of B for a transplant question).
QUESTIONS: dict[str, tuple[str, AnswerSpec]] = {
    "date": ("When was multiple myeloma diagnosed?", AnswerSpec(type="date")),
    "number": ("What was the M-protein value?", AnswerSpec(type="number", unit="g/dL")),
    "count": ("How many myeloma diagnoses are recorded?", AnswerSpec(type="count")),
    "boolean": ("Was lenalidomide given for multiple myeloma?", AnswerSpec(type="boolean")),
    # A category is picked by a hash of the ids shown, modulo the number of allowed values:
    # with six, the two patients' records pick different values in every runner.
    "category": (
        FISH,
        AnswerSpec(
            type="category",
            allowed=("ISS I", "ISS II", "ISS III", "R-ISS I", "R-ISS II", "R-ISS III"),
        ),
    ),
    "list": (FISH, AnswerSpec(type="list", allowed=("t(4;14)", "del(17p)", "1q21", "t(11;14)"))),
    "text": (FISH, AnswerSpec(type="text")),
}
# The response formats each runner asks for (None: the agent's tool steps).
ASKED = {
    "single_pass_rag": {"FinalAnswer"},
    "iterative_rag": {"IterativeStep"},  # round 1 searches again, round 2 answers
    "full_context": {"FinalAnswer"},
    "agent": {"Plan", None, "Reflection", "FinalAnswer"},
}
REPAIR = "That answer does not validate"  # how the client opens a repair request


@pytest.fixture(scope="module")
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        load_bundle(opened, FIXTURES / "tool_patients")
        yield opened


def model(server: FakeOpenAI, **settings: Any) -> OpenAICompatModel:
    return OpenAICompatModel(
        ModelSettings(
            provider="openai",
            model="gpt-4o-mini",
            base_url=server.url,
            timeout_s=5.0,
            max_retries=0,
            **settings,
        )
    )


def typed_items(patient: str) -> list[EvalItem]:
    return [
        asct_item(id=f"{kind}/{patient}", patient_id=patient, question=question, answer=spec)
        for kind, (question, spec) in QUESTIONS.items()
    ]


def repairs(server: FakeOpenAI) -> int:
    return sum(
        1
        for body in server.requests
        if body["messages"][-1]["role"] == "user"
        and (body["messages"][-1]["content"] or "").startswith(REPAIR)
    )


def assert_valid(item: EvalItem, answer: Answer) -> None:
    """Status answered or insufficient_evidence, and a value of the item's type."""
    assert answer.status in {"answered", "insufficient_evidence"}, (item.id, answer.text)
    assert answer.failure is None
    value, spec = answer.value, item.answer
    if value is None:
        assert spec.type != "list" and answer.status == "insufficient_evidence"
        return
    assert coerce_value(spec, value) == value
    expected: dict[str, type | tuple[type, ...]] = {
        "date": dt.date,
        "number": float,
        "count": int,
        "boolean": bool,
        "category": str,
        "list": list,
        "text": str,
    }
    assert isinstance(value, expected[spec.type]), (item.id, value)
    if spec.type == "count":
        assert not isinstance(value, bool) and value >= 0
    if spec.allowed is not None:
        assert set(value if isinstance(value, list) else [value]) <= set(spec.allowed)


async def answer_all(runner_name: str, store: RecordStore, llm: OpenAICompatModel) -> list[Answer]:
    """Every typed item of both patients, all at once (their requests interleave)."""
    runner = build_runner(runner_name, Settings())
    items = [item for patient in PATIENTS for item in typed_items(patient)]
    runs = (runner.run(item, store.scope(item.patient_id), llm) for item in items)
    return list(await asyncio.wait_for(asyncio.gather(*runs), timeout=60))


@pytest.mark.parametrize("runner_name", RUNNERS)
async def test_each_runner_answers_every_type_from_each_patients_record(store, runner_name):
    with FakeOpenAI(responder=answering_responder()) as server:
        async with model(server) as llm:
            first = await answer_all(runner_name, store, llm)
            again = await answer_all(runner_name, store, llm)
    items = [item for patient in PATIENTS for item in typed_items(patient)]
    for item, answer in zip(items, first, strict=True):
        assert_valid(item, answer)
        # Every question finds some of each record, so each is answered, citing what it saw.
        assert answer.status == "answered" and answer.citations, (item.id, answer.text)
        assert not answer.mock and answer.usage.tokens_reported
    assert [a.value for a in again] == [a.value for a in first]
    assert [a.citations for a in again] == [a.citations for a in first]
    by_patient = {(a.patient_id, a.item_id.split("/")[0]): a.value for a in first}
    for kind in QUESTIONS:
        assert by_patient["A", kind] != by_patient["B", kind], kind
    assert repairs(server) == 0
    asked = {
        body.get("response_format", {}).get("json_schema", {}).get("name")
        for body in server.requests
    }
    assert asked == ASKED[runner_name]


def test_a_reply_is_the_record_s_answer_with_tokens_sent_and_a_quarter_of_its_characters():
    spec = AnswerSpec(type="date")
    messages = [
        {"role": "system", "content": "Cite ids such as [E-5]."},
        {
            "role": "user",
            "content": f"{question_block(asct_item(as_of=dt.date(2024, 1, 1)))}\n\n"
            "2020-06-15 transplant [EA3]\n2020-09-01 visit [A-D3]\n\nAnswer now.",
        },
    ]
    schema = json_schema(final_answer_model(spec))
    body = {
        "messages": messages,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "FinalAnswer", "schema": schema},
        },
    }
    action = answering_responder(delay_s=0.25)(body)
    assert action.content is not None
    assert json.loads(action.content) == {
        "status": "answered",
        "value": "2020-09-01",
        "text": "Derived from 2 id(s) shown.",
        "citations": ["EA3", "A-D3"],
    }
    assert action.usage == ((len(json.dumps(messages)) + 2) // 4, len(action.content) // 4)
    assert action.delay_s == 0.25


async def test_the_as_of_day_of_a_question_is_not_read_as_a_day_of_the_record(store):
    item = asct_item(as_of=dt.date(2020, 12, 31))
    with FakeOpenAI(responder=answering_responder()) as server:
        async with model(server) as llm:
            answer = await build_runner("full_context", Settings()).run(item, store.scope("A"), llm)
    # The record up to that day ends with the visit of 2020-09-01.
    assert answer.status == "answered" and answer.value == dt.date(2020, 9, 1)


async def test_forty_items_at_concurrency_eight_answer_as_they_do_one_at_a_time(store):
    items = [
        item.model_copy(update={"id": f"{item.id}/{k}"})
        for k in range(3)
        for patient in PATIENTS
        for item in typed_items(patient)
    ][:40]
    runner = build_runner("agent", Settings())
    with FakeOpenAI(responder=answering_responder()) as server:
        async with model(server, max_concurrency=8) as llm:
            together = await run_items(items, runner, llm, store, concurrency=8)
            alone = await run_items(items, runner, llm, store, concurrency=1)
    assert len(together) == len(alone) == 40
    for item, record in zip(items, together, strict=True):
        assert record.error is None and record.answer.status != "failed"
        assert_valid(item, record.answer)
    assert [r.answer.value for r in together] == [r.answer.value for r in alone]
    assert repairs(server) == 0


async def test_a_server_without_response_format_gets_the_schema_in_the_prompt_and_answers(store):
    with FakeOpenAI(responder=answering_responder()) as server:
        async with model(server, supports_response_format=False) as llm:
            answers = await answer_all("iterative_rag", store, llm)
    assert all(a.status == "answered" for a in answers)
    assert "response_format" not in server.requests[0] and repairs(server) == 0


async def test_a_response_format_no_runner_sends_is_refused_with_the_reason():
    class Verdict(BaseModel):
        grade: bool

    with FakeOpenAI(responder=answering_responder()) as server:
        async with model(server) as llm:
            with pytest.raises(ModelError) as caught:
                await llm.complete([Message(role="user", content="?")], response_format=Verdict)
    assert caught.value.cause == "refused"
    assert "no reply for the response format 'Verdict'" in str(caught.value)


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.answering_server", "--delay", "0"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child, child.stdout.readline().strip()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


async def test_the_server_process_answers_until_stdin_closes(store, served):
    child, url = served
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    settings = ModelSettings(provider="openai", model="gpt-4o-mini", base_url=url, max_retries=0)
    async with OpenAICompatModel(settings) as llm:
        answer = await build_runner("full_context", Settings()).run(
            asct_item(), store.scope("A"), llm
        )
    assert answer.status == "answered" and answer.value == dt.date(2021, 6, 20)
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait(timeout=10) == 0


def test_the_server_process_stops_cleanly_on_sigterm(served):
    child, url = served
    assert url.startswith("http://127.0.0.1:")
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=10) == 0
