"""Shared fixtures: tiny readable bundles and fresh stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES


@pytest.fixture
def two_patients(tmp_path: Path) -> Path:
    """A writable copy of the two-patient bundle (patients A and B)."""
    target = tmp_path / "two_patients"
    shutil.copytree(FIXTURES / "two_patients", target)
    return target


@pytest.fixture(scope="module")
def open_world_store() -> Iterator[RecordStore]:
    """Labs named the way real exports name them (tests/fixtures/open_world_labs), loaded."""
    with connect() as opened:
        load_bundle(opened, FIXTURES / "open_world_labs")
        yield opened


@pytest.fixture
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        yield opened
