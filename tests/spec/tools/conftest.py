"""A store with the tool fixture (patients A and B) loaded once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from tests.helpers import FIXTURES


@pytest.fixture(scope="module")
def tool_store() -> Iterator[RecordStore]:
    with connect() as store:
        load_bundle(store, FIXTURES / "tool_patients")
        yield store


@pytest.fixture
def scope_a(tool_store: RecordStore) -> PatientScope:
    return tool_store.scope("A")


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer()
