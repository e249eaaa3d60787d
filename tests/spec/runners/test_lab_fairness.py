"""Every runner sees the lab values query_labs returns: same grouping, same units, same rows.

On a record named the way FHIR exports name labs (tests/fixtures/open_world_labs), the latest
glucose is reported as 7.0 mmol/L and an earlier one as 99 mg/dL. query_labs gives 126.112 mg/dL;
the single-pass RAG and iterative RAG passages, the full-context lab table and the agent's tool
result must all show the model that same number, and cite the same row. The mock model's answers
are scripted: what is checked is what each runner put in front of the model.
"""

from __future__ import annotations

import re

from recordagent.llm import MockModel
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.db import RecordStore
from recordagent.runners import AgentRunner, FullContext, IterativeRag, SinglePassRag
from recordagent.settings import Settings
from recordagent.tools.labs import QueryLabsInput, query_labs
from tests.helpers import final

LATEST = "2021-07-05"


def item() -> EvalItem:
    return EvalItem(
        id="last_glucose/OW",
        patient_id="OW",
        question="What was the most recent glucose value?",
        answer=AnswerSpec(type="number", unit="mg/dL"),
        level=1,
    )


def seen(model: MockModel) -> str:
    return "\n".join(m.content or "" for r in model.requests for m in r.messages)


def glucose_values_on(day: str, text: str) -> set[str]:
    """Numbers written right after ``day`` in the blocks (passages, table lines, tool
    results) about glucose."""
    blocks = re.split(r"\n(?=\[)|\n\n", text)
    return {
        number
        for block in blocks
        if "Glucose" in block
        for number in re.findall(rf"{day}(?: \d\d:\d\d)? (\d+(?:\.\d+)?)", block)
    }


async def test_the_tool_and_all_four_runners_show_the_same_latest_glucose(
    open_world_store: RecordStore,
):
    scope = open_world_store.scope("OW")
    settings = Settings()
    tool = query_labs(scope, QueryLabsInput(analyte="glucose", aggregate="last"))
    expected = f"{tool.result:g}"
    assert (expected, tool.unit, tool.points[0].lab_id) == ("126.112", "mg/dL", "U2")

    single = MockModel([final(tool.result, ["LABS-glucose-1"])])
    await SinglePassRag(settings).run(item(), scope, single)
    iterative = MockModel(
        [{"json": {"action": "answer", "answer": final(tool.result, ["LABS-glucose-1"])["json"]}}]
    )
    await IterativeRag(settings).run(item(), scope, iterative)
    full = MockModel([final(tool.result, ["LABS-glucose"])])
    await FullContext(settings).run(item(), scope, full)
    agent = MockModel(
        [
            {"json": {"needs": ["latest glucose"]}},
            {"tool_calls": [("query_labs", {"analyte": "glucose", "aggregate": "last"})]},
            {"tool_calls": [("finish", {"reason": "found"})]},
            {"json": {"needs": [{"need": "latest glucose", "status": "met", "evidence": ["U2"]}]}},
            final(tool.result, ["U2"]),
        ]
    )
    answers = {
        "agent": await AgentRunner(settings).run(item(), scope, agent),
    }
    for name, model in {
        "single_pass_rag": single,
        "iterative_rag": iterative,
        "full_context": full,
        "agent": agent,
    }.items():
        assert glucose_values_on(LATEST, seen(model)) == {expected}, name
    assert {c.id for c in answers["agent"].citations} == {"U2"}
