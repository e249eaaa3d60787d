"""The MCP server on a store from each real export: every tool, resource kind and a prompt.

One patient per source (the one with the most lab values), through the SDK's client in process.
Each tool answers, the citations it returns are that patient's rows only, documents open by
their own ids (FHIR's carry a '/'), prompts come from the general templates, and another
patient's document is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from recordagent.mcp import AuditLog, PatientService, build_server, read_audit
from recordagent.records.db import RecordStore, connect
from recordagent.settings import Settings
from recordagent.sources.fhir import load_fhir
from recordagent.sources.mimic_iv import load_mimic_iv
from recordagent.sources.omop import load_omop
from tests.helpers import SHARED_DATA
from tests.mcp_support import busiest_patient

SOURCES: dict[str, tuple[Path, Callable[[RecordStore, Path], object]]] = {
    "fhir": (SHARED_DATA / "synthea-fhir-ny" / "fhir", load_fhir),
    "omop": (SHARED_DATA / "omop-synthea27nj" / "Synthea27Nj_5.4.zip", load_omop),
    "mimic": (SHARED_DATA / "mimic-iv-demo", load_mimic_iv),
}
# Every row id of a patient, whatever its table: what a citation of this patient may name.
PATIENT_IDS = """
SELECT lab_id FROM labs WHERE patient_id = $p
UNION ALL SELECT event_id FROM events WHERE patient_id = $p
UNION ALL SELECT document_id FROM documents WHERE patient_id = $p
UNION ALL SELECT chunk_id FROM chunks WHERE patient_id = $p
"""


@pytest.mark.parametrize("source", list(SOURCES))
async def test_every_tool_resource_and_a_prompt_on_a_real_export(
    source: str, tmp_path: Path
) -> None:
    path, load = SOURCES[source]
    if not path.exists():
        pytest.skip(f"{source} export is not at {path} (../shared/data)")
    with connect() as store:
        load(store, path)
        con = store.connection
        patient, analyte = busiest_patient(store)
        theirs = {r[0] for r in con.execute(PATIENT_IDS, {"p": patient}).fetchall()}
        others = con.execute(
            "SELECT document_id FROM documents WHERE patient_id <> $p ORDER BY 1 LIMIT 1",
            {"p": patient},
        ).fetchall()
        service = PatientService(store, patient, Settings())
        with AuditLog(tmp_path / "audit.jsonl", "t", patient) as audit:
            async with Client(build_server(service, audit)) as c:
                timeline = await c.call_tool("get_timeline", {})
                analytes = await c.call_tool("list_analytes", {})
                labs = await c.call_tool("query_labs", {"analyte": analyte})
                search = await c.call_tool("search_documents", {"query": "history"})
                resources = (await c.list_resources()).resources
                skeleton = await c.read_resource(service.skeleton_uri)
                documents = [r for r in resources if r.uri.startswith(service.base_uri + "/doc")]
                opened = await c.read_resource(documents[0].uri) if documents else None
                read = (
                    await c.call_tool("read_document", {"document_id": documents[0].name})
                    if documents
                    else None
                )
                prompts = (await c.list_prompts()).prompts
                prompt = await c.get_prompt(prompts[0].name)
                if others:
                    refused = await c.call_tool("read_document", {"document_id": others[0][0]})
                    with pytest.raises(MCPError, match="no resource"):
                        await c.read_resource(service.document_uri(others[0][0]))
                    assert refused.is_error
    for result in (timeline, analytes, labs):
        assert not result.is_error, result.content[0].text
    assert labs.structured_content["citations"], f"{analyte!r} has values"
    assert skeleton.contents[0].text.startswith(f"Patient {patient}:")
    cited = [
        c["id"]
        for r in (timeline, labs, search, read)
        if r is not None and not r.is_error
        for c in r.structured_content["citations"]
    ]
    assert cited and set(cited) <= theirs
    if documents:
        assert opened is not None and opened.contents[0].text.startswith(documents[0].name)
        assert read is not None and not read.is_error
    assert any(p.name.startswith("general.") for p in prompts)
    assert "Question:" in prompt.messages[0].content.text
    assert all(r.outcome != "error" for r in read_audit(tmp_path / "audit.jsonl"))
