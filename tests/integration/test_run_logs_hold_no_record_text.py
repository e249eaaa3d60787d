"""Run logs hold ids, lengths, field paths and error kinds — never the record's text or the
model's own words — whatever the runners, the model, the tools and the judge do.

A fixture record full of distinctive words (a document type, a title, a section heading, a
sentence, an analyte, an event) is answered by every runner on a scripted model that writes
those words into its plan, its tool arguments, its queries, its reflection, its citations and
its finish reason, and whose calls hit every kind of tool error (unknown analyte, unknown
section, unknown document, unknown tool, bad JSON, bad argument type). One item's model call
fails with a message quoting the record, one item's runner raises with such a message, and the
judge's rationale quotes it. The questions, answers and reference labels use none of the words,
so no log file may contain any of them anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recordagent.errors import ModelError
from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.log import RunLog, RunManifest
from recordagent.evaluation.run import run_items
from recordagent.llm import MockModel, MockRequest
from recordagent.llm.client import ChatModel
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.runners import Answer, EventSink, Runner, build_runner
from recordagent.settings import Settings
from tests.helpers import write_csv

# Every word that only the record (or the model quoting it) uses; matched case-insensitively,
# so that lower-cased slugs of them ('LABS-quokkatinine-1') count too.
DISTINCTIVE = ("zanzibar", "quokka", "wombatoid", "platypus", "numbat", "aardvarkian")
SENTENCE = "Zanzibar quokka effusion noted along the left border."

RUNNERS = ("agent", "single_pass_rag", "iterative_rag", "full_context")

ITEMS = [
    EvalItem(
        id="peak/Q1",
        patient_id="Q1",
        question="What was the highest value of the marker measured in March 2021?",
        answer=AnswerSpec(type="number"),
        level=1,
    ),
    EvalItem(
        id="first/Q1",
        patient_id="Q1",
        question="When was the effusion first documented?",
        answer=AnswerSpec(type="date"),
        level=1,
    ),
    EvalItem(
        id="summary/Q1",
        patient_id="Q1",
        question="Summarise the consult in one sentence.",
        answer=AnswerSpec(type="text"),
        level=3,
    ),
    EvalItem(
        id="unreachable/Q1",
        patient_id="Q1",
        question="Which therapy was started in April 2021?",
        answer=AnswerSpec(type="text"),
        level=1,
    ),
    EvalItem(
        id="crash/Q1",
        patient_id="Q1",
        question="How many consults were written?",
        answer=AnswerSpec(type="count"),
        level=1,
    ),
]
VALUES: dict[str, Any] = {
    "peak/Q1": 42.0,
    "first/Q1": "2021-03-02",
    "summary/Q1": "A routine consult.",
    "unreachable/Q1": "none",
    "crash/Q1": 1,
}
REFERENCES = {
    i: ReferenceLabel(item_id=i, value=v, source="single", annotators=["md1"])
    for i, v in VALUES.items()
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    folder = tmp_path_factory.mktemp("distinctive")
    write_csv(
        folder, "patients", [{"patient_id": "Q1", "sex": "female", "birth_date": "1950-01-01"}]
    )
    text = (
        "WOMBATOID FINDINGS\n"
        f"{SENTENCE}\n"
        "The Aardvarkian review board discussed the platypus-type consult.\n\n"
        "PLAN\nRepeat the numbat protocol in four weeks.\n"
    )
    write_csv(
        folder,
        "documents",
        [
            {
                "document_id": "Q-D1",
                "patient_id": "Q1",
                "date": "2021-03-02",
                "type": "Platypus consult",
                "title": "Aardvarkian review",
                "text": text,
            }
        ],
    )
    write_csv(
        folder,
        "labs",
        [
            {
                "lab_id": f"QL{k}",
                "patient_id": "Q1",
                "time": f"2021-03-0{k} 08:00",
                "analyte_code": "",
                "analyte_name": "Quokkatinine",
                "value_num": 40 + k,
                "value_text": "",
                "unit": "mg/dL",
                "ref_low": "",
                "ref_high": "",
                "flag": "",
            }
            for k in (1, 2)
        ],
    )
    write_csv(
        folder,
        "events",
        [
            {
                "event_id": "QE1",
                "patient_id": "Q1",
                "start_time": "2021-04-01",
                "end_time": "",
                "kind": "therapy",
                "code": "",
                "label": "Numbat protocol",
                "detail": "Wombatoid dosing",
            }
        ],
    )
    with connect() as opened:
        load_bundle(opened, folder)
        yield opened


def _question(request: MockRequest) -> str:
    text = "\n".join(m.content or "" for m in request.messages)
    match = re.search(r"^Question: (.+)$", text, flags=re.M)
    return match.group(1) if match else ""


def _final(request: MockRequest) -> dict[str, Any]:
    item = next(i for i in ITEMS if i.question == _question(request))
    return {
        "status": "answered",
        "value": VALUES[item.id],
        "text": "A plain answer.",
        # Citations the model makes up are its words too: only ids it was shown survive.
        "citations": [SENTENCE, "Quokkatinine", "Q-D1:0", "LABS-quokkatinine-1", "QE1"],
    }


def _act(request: MockRequest) -> dict[str, Any]:
    steps = sum(1 for m in request.messages if m.role == "assistant" and m.tool_calls)
    script: list[list[tuple[str, Any]]] = [
        [
            (
                "search_documents",
                {"query": "Zanzibar quokka effusion", "document_types": ["Platypus consult"]},
            ),
            ("query_labs", {"analyte": "Quokkatininex"}),  # unknown: the error names the record's
        ],
        [
            ("query_labs", {"analyte": "Quokkatinine", "specimen": "Wombatoid fluid"}),
            ("query_labs", {"analyte": "Quokkatinine", "aggregate": "max"}),
            ("read_document", {"document_id": "Q-D1", "section": "Aardvarkian heading"}),
            ("read_document", {"document_id": "Q-D1", "section": "WOMBATOID FINDINGS"}),
            ("read_document", {"document_id": "Zanzibar quokka effusion"}),
        ],
        [
            ("Quokkatinine_lookup", {"zanzibar": 1}),  # no such tool
            ("get_timeline", {"kinds": ["Numbat protocol"]}),
            ("list_analytes", {"contains": "quokka"}),
            ("query_labs", '{"analyte": "Quokkatinine"'),  # not JSON
            ("query_labs", {"analyte": "Quokkatinine", "limit": "Zanzibar"}),  # not an integer
            ("get_timeline", {"platypus_filter": "Numbat"}),  # an argument the tool lacks
        ],
        [("finish", {"reason": f"Found it: {SENTENCE}"})],
    ]
    return {"tool_calls": script[min(steps, len(script) - 1)]}


def script(request: MockRequest) -> Any:
    """The scripted model: the record's words everywhere the model writes."""
    if request.schema_name is not None and _question(request) == ITEMS[3].question:
        raise ModelError(f"HTTP 400: the server rejected a prompt quoting '{SENTENCE}'")
    if request.schema_name == "Plan":
        return {"json": {"needs": [f"find: {SENTENCE}", "Quokkatinine peak in March"]}}
    if request.schema_name == "Reflection":
        return {
            "json": {
                "needs": [{"need": "Zanzibar quokka effusion date", "status": "met"}],
                "next_step": "read the Platypus consult again",
            }
        }
    if request.schema_name == "IterativeStep":
        if "round 1 of" in (request.messages[-1].content or ""):
            return {"json": {"action": "search", "query": "Zanzibar quokka Quokkatinine numbat"}}
        return {"json": {"action": "answer", "answer": _final(request)}}
    if request.schema_name == "FinalAnswer":
        return {"json": _final(request)}
    if request.tools:
        return _act(request)
    return "Zanzibar quokka effusion, said the model in passing."


class CrashesOnOneItem:
    """A runner with a bug that surfaces on one item, its message quoting the record."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def prompt_version(self) -> str:
        return self.inner.prompt_version

    async def run(
        self,
        item: EvalItem,
        scope: PatientScope,
        model: ChatModel,
        on_event: EventSink | None = None,
    ) -> Answer:
        if item.id == "crash/Q1":
            raise RuntimeError(f"unexpected row: {SENTENCE} / Quokkatinine")
        return await self.inner.run(item, scope, model, on_event)


@pytest.mark.parametrize("name", RUNNERS)
async def test_no_record_text_or_model_words_reach_the_run_log(
    store: RecordStore, tmp_path: Path, name: str
) -> None:
    settings = Settings(runners={"iterative_rag": {"max_rounds": 2}})
    runner = CrashesOnOneItem(build_runner(name, settings))
    model = MockModel(script, name="mock-distinctive")
    judge = MockModel(
        [{"json": {"correct": True, "rationale": f"Both mention: {SENTENCE}"}}] * 5,
        name="mock-judge",
    )
    manifest = RunManifest.create(
        runner, model, settings, data_fingerprint="distinctive", items=ITEMS
    )
    log = RunLog.open(tmp_path / f"{name}.jsonl", manifest)
    records = await run_items(
        ITEMS, runner, model, store, log=log, references=REFERENCES, judge=judge
    )

    # The record's words did reach the model (tool results, corrective errors): the test
    # would prove nothing otherwise.
    seen = "\n".join(m.content or "" for r in model.requests for m in r.messages).lower()
    assert "zanzibar quokka effusion" in seen
    if name == "agent":
        assert "quokkatinine" in seen and "closest" in seen  # the unknown-analyte correction

    by_id = {r.item.id: r for r in records}
    assert by_id["crash/Q1"].error is not None and by_id["crash/Q1"].error.kind == "RuntimeError"
    assert by_id["unreachable/Q1"].answer.status == "failed"
    assert by_id["peak/Q1"].answer.status == "answered"
    if name != "agent":  # the agent's plan/act calls come first; its answer is judged too
        assert by_id["summary/Q1"].judge is not None
    if name == "agent":
        trace = by_id["peak/Q1"].answer.trace
        kinds = {e.error for e in trace if e.kind == "tool_call" and e.error}
        assert {"ToolError", "unknown_tool", "invalid_json", "invalid_arguments"} <= kinds
        assert all(e.error_chars for e in trace if e.error)

    logged = sorted(tmp_path.glob("*.jsonl"))
    assert logged, "the run wrote no log"
    for path in logged:
        text = path.read_text(encoding="utf-8").lower()
        found = [word for word in DISTINCTIVE if word in text]
        assert not found, f"{path.name} holds record or model text: {found}"
