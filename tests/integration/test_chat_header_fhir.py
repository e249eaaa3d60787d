"""The chat header on real Synthea FHIR records: diagnoses under a diagnoses title, social
findings never as therapy lines, counts by event kind, and a header's length."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from recordagent.chat.render import render_header
from recordagent.records.db import RecordStore, connect
from recordagent.records.overview import kind_count
from recordagent.sources.fhir import load_fhir
from tests.helpers import SHARED_DATA
from tests.unit.chat.helpers import header_blocks

SYNTHEA = SHARED_DATA / "synthea-fhir-ny" / "fhir"
# Patient bundles are named by the patient's UUID; the others hold hospitals and practitioners.
PATIENT_BUNDLES = 6


@pytest.fixture(scope="module")
def fhir_store() -> Iterator[RecordStore]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"the Synthea FHIR bundles are not at {SYNTHEA}")
    bundles = [p for p in sorted(SYNTHEA.glob("*.json")) if p.name[8:9] == "-"]
    with connect() as store:
        for path in bundles[:PATIENT_BUNDLES]:
            load_fhir(store, path, source=path.stem)
        yield store


def header_text(store: RecordStore, patient_id: str) -> str:
    console = Console(file=io.StringIO(), record=True, width=100)
    console.print(render_header(store.scope(patient_id)))
    return console.export_text()


def test_fhir_headers_list_diagnoses_as_diagnoses_and_count_every_kind(fhir_store):
    findings_listed = 0
    for patient_id in fhir_store.patient_ids():
        text = header_text(fhir_store, patient_id)
        lines = text.splitlines()
        assert len(lines) <= 25, text
        # Synthea states social findings as Conditions: diagnoses, never therapy lines.
        assert "Therapy lines" not in text and "milestones" not in text.lower(), text
        blocks = header_blocks(text)
        for title, rows in blocks.items():
            if any("(finding)" in row for row in rows):
                assert title == "Diagnoses (most recent):", text
        findings_listed += sum(
            "(finding)" in row for row in blocks.get("Diagnoses (most recent):", [])
        )
        counts = fhir_store.connection.execute(
            "SELECT kind, count(*) FROM events WHERE patient_id = ? GROUP BY kind",
            [patient_id],
        ).fetchall()
        # The counts may wrap onto further lines, until the next "Title: ..." line.
        (start,) = [n for n, line in enumerate(lines) if line.startswith("Events by kind: ")]
        end = next((n for n in range(start + 1, len(lines)) if ":" in lines[n]), len(lines))
        kinds_line = " ".join(" ".join(lines[start:end]).split())
        for kind, count in counts:
            assert kind_count(kind, count) in kinds_line, text
        if any(kind == "diagnosis" for kind, _ in counts):
            assert blocks["Diagnoses (most recent):"], text
    assert findings_listed > 0
