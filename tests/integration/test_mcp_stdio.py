"""``recordagent mcp`` over stdio, started by the SDK's own client as a desktop client would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from recordagent.mcp import read_audit
from recordagent.mcp.serve import GRACE_S
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.tools import default_registry
from tests.helpers import FIXTURES, recordagent, store_snapshot
from tests.mcp_support import (
    file_digest,
    mcp_args,
    serve_until_eof,
    stdio_server,
    two_patient_store,
)

HOSTILE = [
    ("search_documents", {"query": "'; DROP TABLE labs; --"}),
    ("query_labs", {"analyte": "x') OR 1=1 --", "start": "2020-01-01"}),
    ("get_timeline", {"kinds": ["diagnosis'; DELETE FROM events; --"]}),
    ("read_document", {"document_id": "DA1' OR patient_id='B"}),
    ("list_analytes", {"name": "%' UNION SELECT * FROM labs --"}),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_patient_store(tmp_path_factory.mktemp("mcp-stdio"))


async def test_a_client_lists_calls_reads_and_prompts_over_stdio(
    store: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    errors = (tmp_path / "stderr.txt").open("w")
    with errors:
        async with Client(stdio_client(stdio_server(store, "A", audit), errlog=errors)) as c:
            tools = (await c.list_tools()).tools
            results = {
                "get_timeline": await c.call_tool("get_timeline", {}),
                "search_documents": await c.call_tool("search_documents", {"query": "plan"}),
                "query_labs": await c.call_tool("query_labs", {"analyte": "M-protein"}),
                "list_analytes": await c.call_tool("list_analytes", {}),
                "read_document": await c.call_tool("read_document", {"document_id": "DA2"}),
            }
            resources = (await c.list_resources()).resources
            skeleton = await c.read_resource(resources[0].uri)
            overview = await c.read_resource(resources[1].uri)
            document = await c.read_resource(resources[2].uri)
            prompts = (await c.list_prompts()).prompts
            prompt = await c.get_prompt(prompts[0].name)
    agent = [s["function"] for s in default_registry().schemas()]
    assert [(t.name, t.description, t.input_schema) for t in tools] == [
        (s["name"], s["description"], s["parameters"]) for s in agent
    ]
    assert not any(r.is_error for r in results.values())
    assert [c["id"] for c in results["query_labs"].structured_content["citations"]] == [
        "LA1",
        "LA2",
    ]
    assert "0.3" in results["query_labs"].content[0].text
    assert results["read_document"].content[0].text.startswith("DA2 | 2020-06-01")
    assert skeleton.contents[0].text.startswith("Patient A: female")
    assert json.loads(overview.contents[0].text)["patient"]["sex"] == "female"
    assert document.contents[0].text.startswith("DA1 | 2020-01-05")
    assert [p.name for p in prompts] == [
        "general.latest-creatinine",
        "general.hypertension-diagnosed",
    ]
    assert "Question:" in prompt.messages[0].content.text
    methods = [r.method for r in read_audit(audit)]
    assert methods[0] == "server/start" and methods[-1] == "server/stop"
    assert methods.count("tools/call") == 5
    assert "serving over stdio" in (tmp_path / "stderr.txt").read_text()


async def test_another_patients_rows_are_refused_and_the_store_is_not_written(
    store: Path, tmp_path: Path
) -> None:
    before = file_digest(store)
    with connect(store, read_only=True) as reader:
        counts = store_snapshot(reader)
    audit = tmp_path / "audit.jsonl"
    async with Client(stdio_client(stdio_server(store, "A", audit))) as c:
        # The server holds the file read-only: another reader may open it while it serves.
        with connect(store, read_only=True) as reader:
            assert reader.has_patient("B")
        document = await c.call_tool("read_document", {"document_id": "DB1"})
        labs = await c.call_tool("query_labs", {"analyte": "calcium", "patient_id": "B"})
        search = await c.call_tool("search_documents", {"query": "hypercalcaemia"})
        with pytest.raises(MCPError, match="no resource"):
            await c.read_resource("recordagent://patients/B/documents/DB1")
        with pytest.raises(MCPError, match="no resource"):
            await c.read_resource("recordagent://patients/A/documents/DB1")
        hostile = [await c.call_tool(name, arguments) for name, arguments in HOSTILE]
        timeline = await c.call_tool("get_timeline", {})
    assert document.is_error
    assert "no document 'DB1' in this patient's record" in document.content[0].text
    for result in (labs, search, *hostile, timeline):
        shown = json.dumps(result.structured_content) + result.content[0].text
        assert "B1" not in shown and "Hypercalcaemia" not in shown
    assert len(timeline.structured_content["citations"]) == 4
    assert file_digest(store) == before
    with connect(store, read_only=True) as reader:
        assert store_snapshot(reader) == counts


def test_bad_start_options_are_one_line_errors(store: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    missing = recordagent(*mcp_args(store, "C", audit))
    assert missing.returncode == 2
    assert "no patient 'C' in the store (2 patients: A, B)" in missing.stderr
    no_store = recordagent(*mcp_args(tmp_path / "x.duckdb", "A", audit))
    assert no_store.returncode == 2 and "error:" in no_store.stderr
    folder = recordagent(*mcp_args(store, "A", tmp_path))
    assert folder.returncode == 2
    assert "cannot open it for appending" in folder.stderr
    token = recordagent(*mcp_args(store, "A", audit, "--token-file", str(store)))
    assert token.returncode == 2 and "--token-file applies to --http only" in token.stderr
    for result in (missing, no_store, folder, token):
        assert result.stdout == ""  # stdout is the protocol's
        assert "Traceback" not in result.stderr


def test_a_client_that_closes_stdin_stops_the_server_cleanly(store: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    process = serve_until_eof(store, "A", audit)
    assert process.returncode == 0, process.stderr
    assert process.stdout == ""
    assert "stopped (client)" in process.stderr
    assert [r.method for r in read_audit(audit)] == ["server/start", "server/stop"]


def test_malformed_requests_are_refused_audited_and_sigterm_stops_an_idle_session(
    store: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "recordagent", *mcp_args(store, "A", audit)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None

    def ask(message: dict[str, object]) -> dict[str, object]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        if "id" not in message:
            return {}
        answer: dict[str, object] = json.loads(process.stdout.readline())
        return answer

    try:
        hello = ask({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}})  # fmt: skip
        ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
        unknown = ask({"jsonrpc": "2.0", "id": 2, "method": "records/dump_everything"})
        malformed = ask({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                         "params": {"name": "get_timeline", "arguments": ["x"]}})  # fmt: skip
        cursor = ask({"jsonrpc": "2.0", "id": 4, "method": "resources/list",
                      "params": {"cursor": "²"}})  # fmt: skip
        # An idle client: stdin stays open, and SIGTERM must still stop the server at once.
        process.terminate()
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert "result" in hello
    assert unknown["error"]["code"] == -32601  # type: ignore[index]
    assert malformed["error"]["code"] == -32602  # type: ignore[index]
    assert "invalid cursor" in cursor["error"]["message"]  # type: ignore[index]
    records = read_audit(audit)
    assert [(r.method, r.outcome, r.error_kind) for r in records[1:-1]] == [
        ("initialize", "ok", None),
        ("<unknown: 23 characters>", "refused", "mcp_error -32601"),
        ("tools/call", "refused", "invalid_params"),
        ("resources/list", "refused", "invalid_cursor"),
    ]
    assert records[-1].detail == {"stopped_by": "SIGTERM"}
    assert "dump_everything" not in audit.read_text()


def test_bad_audit_files_and_markup_in_ids_are_handled(store: Path, tmp_path: Path) -> None:
    same = recordagent(*mcp_args(store, "A", store))
    assert same.returncode == 2
    assert "is the store file: give the audit log its own" in same.stderr
    odd = tmp_path / "odd"
    shutil.copytree(FIXTURES / "two_patients", odd)
    for table in odd.glob("*.csv"):
        table.write_text(table.read_text().replace(",A,", ",A[/b],").replace("\nA,", "\nA[/b],"))
    odd_store = tmp_path / "odd.duckdb"
    with connect(odd_store) as writable:
        load_bundle(writable, odd)
    served = serve_until_eof(odd_store, "A[/b]", tmp_path / "a.jsonl")
    assert served.returncode == 0, served.stderr
    assert "patient A[/b]: serving over stdio" in served.stderr
    assert [r.method for r in read_audit(tmp_path / "a.jsonl")] == ["server/start", "server/stop"]


def test_sigterm_stops_a_server_whose_client_stopped_reading(store: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "recordagent", *mcp_args(store, "A", audit)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,  # never read: the server's replies fill the pipe and block
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    try:
        hello = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}  # fmt: skip
        lines = [hello, {"jsonrpc": "2.0", "method": "notifications/initialized"}]
        lines += [{"jsonrpc": "2.0", "id": n, "method": "tools/list"} for n in range(1, 80)]
        process.stdin.write("".join(json.dumps(line) + "\n" for line in lines).encode())
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the server is stuck writing
            if audit.exists() and audit.read_text().count('"tools/list"') >= 10:
                break
            time.sleep(0.1)
        started = time.monotonic()
        process.terminate()
        assert process.wait(timeout=GRACE_S + 15) == 0
        waited = time.monotonic() - started
    finally:
        process.kill()
    stop = read_audit(audit)[-1]
    assert stop.method == "server/stop"
    assert stop.detail == {"stopped_by": "SIGTERM", "forced": "true"}
    assert waited >= GRACE_S - 0.5, "it waited for the stop to finish on its own first"
