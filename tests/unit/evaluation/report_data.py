"""Hand-built run records for the report tests: ten count questions over three patients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.log import RunManifest, RunRecord
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.runners import Answer, AnswerUsage

# Ten count questions over three patients; the reference of item k is k.
PATIENTS = ["P1", "P1", "P1", "P1", "P2", "P2", "P2", "P3", "P3", "P3"]
LENGTHS = {"P1": (3, 300), "P2": (10, 2_000), "P3": (30, 9_000)}
ITEMS = [
    EvalItem(
        id=f"q{k}/{patient}",
        patient_id=patient,
        question=f"How many events of kind {k}?",
        answer=AnswerSpec(type="count"),
        level=(k % 3) + 1,
    )
    for k, patient in enumerate(PATIENTS)
]
REFERENCES = {
    item.id: ReferenceLabel(item_id=item.id, value=k, source="single", annotators=["md1"])
    for k, item in enumerate(ITEMS)
}
# Which items each runner gets right (by index).
RIGHT = {
    "agent": {0, 1, 2, 3, 4, 5, 6, 7, 8},
    "single_pass_rag": {0, 2, 4, 6, 8},
    "full_context": {0, 1, 2, 3, 4, 5},
}


def manifest(runner: str, model: str = "mock", mock: bool = True) -> RunManifest:
    return RunManifest(
        run_id=f"run-{runner}-{model}",
        created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        runner=runner,
        model=model,
        mock=mock,
        settings_hash="s",
        data_fingerprint="d",
        package_version="0.1.0",
        git_sha=None,
        prompt_version="p1",
    )


def make_record(
    item: EvalItem,
    runner: str,
    value: Any,
    *,
    status: str = "answered",
    tokens: int = 100,
    cost: float | None = None,
    wall: float = 1.0,
    mock: bool = True,
) -> RunRecord:
    documents, record_tokens = LENGTHS[item.patient_id]
    answer = Answer(
        item_id=item.id,
        runner=runner,
        prompt_version="p1",
        model="mock",
        mock=mock,
        status=status,
        value=value,
        usage=AnswerUsage(
            prompt_tokens=tokens - 10,
            completion_tokens=10,
            cost_usd=cost,
            model_calls=1,
            tool_calls=2,
            wall_s=wall,
        ),
    )
    return RunRecord(
        item=item,
        answer=answer,
        record_tokens=record_tokens,
        record_documents=documents,
    )


def run_of(runner: str, **kwargs: Any) -> tuple[RunManifest, list[RunRecord]]:
    records = [
        make_record(
            item, runner, k if k in RIGHT[runner] else k + 1, tokens=100 * (k + 1), **kwargs
        )
        for k, item in enumerate(ITEMS)
    ]
    return manifest(runner, mock=kwargs.get("mock", True)), records
