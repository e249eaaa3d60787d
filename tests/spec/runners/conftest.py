"""The tool fixture (patients A and B) loaded once per module, and helpers for runner tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.settings import Settings
from tests.helpers import FIXTURES


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
