"""One patient's MCP server over the two-patient fixture, in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recordagent.mcp import AuditLog, PatientService
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from tests.helpers import FIXTURES


@pytest.fixture(scope="module")
def two_patient_store() -> Iterator[RecordStore]:
    """Patients A and B (tests/fixtures/two_patients), loaded in memory."""
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        yield store


@pytest.fixture(scope="module")
def service_a(two_patient_store: RecordStore) -> PatientService:
    """Patient A's service with the packaged templates (read-only: shared by a module)."""
    return PatientService(two_patient_store, "A", Settings())


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.jsonl", "test", "A") as log:
        yield log
