"""The MCP server of one patient, through the SDK's own client (in process)."""

from __future__ import annotations

import json
import time

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from recordagent.mcp import CITATIONS_SCHEMA, AuditLog, PatientService, build_server, read_audit
from recordagent.mcp import server as mcp_server
from recordagent.tools import default_registry

# Words of patient A's and B's record: none may reach the audit log.
RECORD_WORDS = ("myeloma", "IgG-kappa", "Hypercalcaemia", "VRd", "First visit")


def client(service: PatientService, audit: AuditLog) -> Client:
    return Client(build_server(service, audit))


async def test_tools_are_listed_with_the_agents_schemas_read_only(
    service_a: PatientService, audit: AuditLog
) -> None:
    async with client(service_a, audit) as c:
        listed = (await c.list_tools()).tools
    agent = {s["function"]["name"]: s["function"] for s in default_registry().schemas()}
    assert [t.name for t in listed] == list(agent)
    for tool in listed:
        assert tool.description == agent[tool.name]["description"]
        assert tool.input_schema == agent[tool.name]["parameters"]
        assert tool.output_schema == CITATIONS_SCHEMA
        assert tool.annotations is not None and tool.annotations.read_only_hint


@pytest.mark.parametrize(
    ("tool", "arguments", "cited"),
    [
        ("get_timeline", {}, ["EA1", "DA1", "EA2", "DA2"]),
        ("search_documents", {"query": "myeloma"}, None),
        ("query_labs", {"analyte": "creatinine"}, ["LA3"]),
        ("list_analytes", {}, []),
        ("read_document", {"document_id": "DA1"}, None),
    ],
)
async def test_each_tool_answers_text_with_its_citations_as_structured_content(
    service_a: PatientService,
    audit: AuditLog,
    tool: str,
    arguments: dict[str, object],
    cited: list[str] | None,
) -> None:
    async with client(service_a, audit) as c:
        result = await c.call_tool(tool, arguments)
    direct = service_a.call_tool(tool, arguments)
    assert not result.is_error
    assert result.content[0].type == "text"
    assert result.content[0].text == direct.text
    citations = result.structured_content["citations"]
    assert citations == [ref.model_dump(mode="json") for ref in direct.citations]
    if cited is None:  # ranked passages, a document's chunks: some rows of A, shown
        assert citations
    else:
        assert [c["id"] for c in citations] == cited
    (record,) = [r for r in read_audit(audit.path) if r.method == "tools/call"]
    assert record.name == tool
    assert record.ids == [c["id"] for c in citations]
    assert record.result_chars == len(direct.text)


async def test_refused_arguments_and_unknown_tools_are_tool_errors(
    service_a: PatientService, audit: AuditLog
) -> None:
    async with client(service_a, audit) as c:
        bad = await c.call_tool("query_labs", {"analyte": "", "Patient B note": "x"})
        unknown = await c.call_tool("execute_sql", {"sql": "DELETE FROM labs"})
        other = await c.call_tool("read_document", {"document_id": "DB1"})
    assert bad.is_error and bad.content[0].text.startswith("Error: query_labs:")
    assert unknown.is_error and "unknown tool 'execute_sql'" in unknown.content[0].text
    assert other.is_error and "no document 'DB1' in this patient's record" in other.content[0].text
    assert bad.structured_content is None
    records = [r for r in read_audit(audit.path) if r.method == "tools/call"]
    assert [(r.name, r.outcome, r.error_kind) for r in records] == [
        ("query_labs", "tool_error", "call_refused"),
        ("<unknown: 11 characters>", "tool_error", "unknown_tool"),
        ("read_document", "tool_error", "call_refused"),
    ]
    assert records[0].arguments == ["analyte", "<argument 2: 14 characters>"]
    assert records[1].arguments == ["<argument 1: 3 characters>"]
    audit_text = audit.path.read_text()
    assert "Patient B note" not in audit_text and "DELETE" not in audit_text


async def test_resources_list_the_skeleton_overview_and_documents(
    service_a: PatientService, audit: AuditLog
) -> None:
    async with client(service_a, audit) as c:
        listed = await c.list_resources()
        templates = await c.list_resource_templates()
        skeleton = await c.read_resource(service_a.skeleton_uri)
        overview = await c.read_resource(service_a.overview_uri)
        document = await c.read_resource(service_a.document_uri("DA2"))
    assert [r.name for r in listed.resources] == ["skeleton", "overview", "DA1", "DA2"]
    assert listed.next_cursor is None
    assert templates.resource_templates[0].uri_template == (
        "recordagent://patients/A/documents/{document_id}"
    )
    assert skeleton.contents[0].text.startswith("Patient A: female")
    assert json.loads(overview.contents[0].text)["overview"]["patient_id"] == "A"
    assert document.contents[0].text.startswith("DA2 | 2020-06-01 | progress note")
    reads = [r for r in read_audit(audit.path) if r.method == "resources/read"]
    assert [(r.name, r.ids) for r in reads] == [
        ("skeleton", ["EA1", "EA2"]),
        ("overview", []),
        ("document", ["DA2"]),
    ]


async def test_documents_are_paged_with_cursors(
    service_a: PatientService, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mcp_server, "DOCUMENT_PAGE", 1)
    original = service_a.documents_page
    monkeypatch.setattr(service_a, "documents_page", lambda offset: original(offset, limit=1))
    async with client(service_a, audit) as c:
        first = await c.list_resources()
        second = await c.list_resources(cursor=first.next_cursor)
        third = await c.list_resources(cursor=second.next_cursor)
        for cursor in ("-1; DROP", "²", "١٢", "1" * 13):
            with pytest.raises(MCPError, match="invalid cursor"):
                await c.list_resources(cursor=cursor)
    assert [r.name for r in first.resources] == ["skeleton", "overview", "DA1"]
    assert [r.name for r in second.resources] == ["DA2"]
    assert third.resources == [] and third.next_cursor is None
    assert read_audit(audit.path)[-1].error_kind == "invalid_cursor"


@pytest.mark.parametrize(
    "uri",
    [
        "recordagent://patients/B/skeleton",
        "recordagent://patients/B/documents/DB1",
        "recordagent://patients/A/documents/DB1",
        "recordagent://patients/A/documents/nope",
    ],
)
async def test_another_patients_resources_are_refused_alike(
    service_a: PatientService, audit: AuditLog, uri: str
) -> None:
    async with client(service_a, audit) as c:
        with pytest.raises(MCPError, match="no resource .* for patient A"):
            await c.read_resource(uri)
    (record,) = [r for r in read_audit(audit.path) if r.method == "resources/read"]
    assert (record.outcome, record.error_kind) == ("refused", "no_such_resource")
    assert record.name == f"<unknown: {len(uri)} characters>"


async def test_prompts_are_this_patients_instantiated_templates(
    service_a: PatientService, audit: AuditLog
) -> None:
    async with client(service_a, audit) as c:
        prompts = (await c.list_prompts()).prompts
        got = await c.get_prompt("general.latest-creatinine")
        with pytest.raises(MCPError, match="no prompt 'general.latest-hba1c' for patient A"):
            await c.get_prompt("general.latest-hba1c")
    names = [p.name for p in prompts]
    assert names == [p.name for p in service_a.prompts()]
    assert all(p.arguments == [] for p in prompts)
    message = got.messages[0]
    assert message.role == "user"
    assert "most recent serum creatinine" in message.content.text
    assert got.description is not None and got.description.startswith("Level 1 (general):")


async def test_the_audit_log_holds_no_record_text(
    service_a: PatientService, audit: AuditLog
) -> None:
    async with client(service_a, audit) as c:
        await c.call_tool("search_documents", {"query": "IgG-kappa myeloma"})
        await c.call_tool("read_document", {"document_id": "DA1", "section": "HISTORY"})
        await c.call_tool("query_labs", {"analyte": "Hypercalcaemia"})
        await c.read_resource(service_a.document_uri("DA1"))
        await c.read_resource(service_a.skeleton_uri)
        await c.get_prompt("general.latest-creatinine")
    text = audit.path.read_text()
    assert len(read_audit(audit.path)) >= 6
    for word in (*RECORD_WORDS, "HISTORY"):
        assert word not in text, word


def test_the_server_introduces_itself_with_the_patient(
    service_a: PatientService, audit: AuditLog
) -> None:
    server = build_server(service_a, audit)
    options = server.create_initialization_options()
    assert options.instructions is not None
    assert "patient A" in options.instructions
    assert service_a.skeleton_uri in options.instructions


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_failing_handler_is_audited_and_tells_the_client_nothing_of_it(
    service_a: PatientService, audit: AuditLog, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    def broken(name: str, arguments: object) -> None:
        raise RuntimeError("IgG-kappa myeloma in the exception")

    monkeypatch.setattr(service_a, "call_tool", broken)
    async with Client(build_server(service_a, audit), mode=mode) as c:
        with pytest.raises(MCPError) as raised:
            await c.call_tool("get_timeline", {})
    assert raised.value.message == "internal error"
    assert "IgG" not in str(raised.value.error)
    record = read_audit(audit.path)[-1]
    assert (record.method, record.outcome, record.error_kind) == (
        "tools/call",
        "error",
        "RuntimeError",
    )


async def test_every_request_is_audited_once_the_handshake_included(
    service_a: PatientService, audit: AuditLog
) -> None:
    async with Client(build_server(service_a, audit), mode="legacy") as c:
        await c.list_tools()
        await c.list_resource_templates()
    methods = [r.method for r in read_audit(audit.path)]
    assert methods == ["initialize", "tools/list", "resources/templates/list"]


async def test_a_request_cancelled_before_its_reply_is_audited_as_cancelled(
    service_a: PatientService, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = service_a.call_tool

    def slow(name: str, arguments: dict[str, object] | None) -> object:
        time.sleep(0.3)
        return original(name, arguments)

    monkeypatch.setattr(service_a, "call_tool", slow)
    async with client(service_a, audit) as c:
        with anyio.move_on_after(0.05):
            await c.call_tool("get_timeline", {})
        await c.list_tools()  # the session goes on
    records = [r for r in read_audit(audit.path) if r.method == "tools/call"]
    assert [(r.outcome, r.ids) for r in records] == [("cancelled", [])]
