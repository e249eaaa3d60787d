"""The tool fixtures (patients A and B) loaded once per module for the chat tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES


@pytest.fixture(scope="module")
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        load_bundle(opened, FIXTURES / "tool_patients")
        yield opened
