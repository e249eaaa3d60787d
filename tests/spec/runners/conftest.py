"""The tool fixture (patients A and B) loaded once per module, and helpers for runner tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.settings import Settings
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def runner_store() -> Iterator[RecordStore]:
    with connect() as store:
        load_bundle(store, FIXTURES / "tool_patients")
        yield store


@pytest.fixture
def scope_a(runner_store: RecordStore) -> PatientScope:
    return runner_store.scope("A")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


def asct_item(**overrides: Any) -> EvalItem:
    """Patient A's ASCT date question (gold: 2020-06-15, event EA3, document A-D3)."""
    fields: dict[str, Any] = {
        "id": "asct_date/A",
        "patient_id": "A",
        "question": "When was the autologous stem cell transplantation (ASCT)?",
        "answer": AnswerSpec(type="date"),
        "level": 1,
    }
    return EvalItem(**(fields | overrides))


def final(value: Any, citations: list[str], status: str = "answered") -> dict[str, Any]:
    """A scripted final answer."""
    return {
        "json": {
            "status": status,
            "value": value,
            "text": f"scripted answer {value}",
            "citations": citations,
        }
    }
