"""``recordagent mcp --http``: the SDK's client over streamable HTTP on loopback, with a token."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from recordagent.mcp import read_audit
from recordagent.mcp.serve import GRACE_S
from tests.helpers import recordagent
from tests.mcp_support import TOKEN, http_server, mcp_args, two_patient_store

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_patient_store(tmp_path_factory.mktemp("mcp-http"))


def with_token(url: str, token: str = TOKEN) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http))


async def test_a_client_with_the_token_is_served_and_one_without_is_refused(
    store: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    audit = tmp_path / "audit.jsonl"
    with http_server(store, "A", audit, "--token-file", str(token_file)) as server:
        async with with_token(server.url) as c:
            tools = (await c.list_tools()).tools
            labs = await c.call_tool("query_labs", {"analyte": "creatinine"})
            skeleton = await c.read_resource((await c.list_resources()).resources[0].uri)
            prompt = await c.get_prompt("general.latest-creatinine")
        async with httpx2.AsyncClient() as raw:
            forwarded = {"X-Forwarded-For": "Patient A has IgG-kappa myeloma"}
            missing = await raw.post(server.url, json=LIST_TOOLS, headers={**ACCEPT, **forwarded})
            wrong = await raw.post(
                server.url, json=LIST_TOOLS, headers={**ACCEPT, "Authorization": "Bearer nope"}
            )
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its transport's error
            async with Client(server.url) as anonymous:
                await anonymous.list_tools()
        assert server.stop() == 0
    assert len(tools) == 5
    assert labs.structured_content == {
        "citations": [{"kind": "lab", "id": "LA3", "document_id": None}]
    }
    assert skeleton.contents[0].text.startswith("Patient A")
    assert "creatinine" in prompt.messages[0].content.text
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "tools" not in missing.text
    records = read_audit(audit)
    refused = [r for r in records if r.method == "http/refused"]
    assert {r.error_kind for r in refused} == {"missing_token", "invalid_token"}
    assert all(r.detail["client"].startswith("127.0.0.1:") for r in refused)
    assert TOKEN not in audit.read_text() and "IgG" not in audit.read_text()
    assert records[-1].method == "server/stop"
    assert records[-1].detail == {"stopped_by": "SIGTERM"}
    assert "stopped (SIGTERM)" in "".join(server.lines)


async def test_concurrent_sessions_get_the_same_answers_as_one(store: Path, tmp_path: Path) -> None:
    calls = [
        ("get_timeline", {}),
        ("query_labs", {"analyte": "M-protein"}),
        ("search_documents", {"query": "myeloma"}),
        ("read_document", {"document_id": "DA1"}),
    ] * 5
    with http_server(store, "A", tmp_path / "audit.jsonl") as server:
        async with Client(server.url) as alone:
            expected = [(await alone.call_tool(n, a)).content[0].text for n, a in calls]
        answers: dict[tuple[int, int], str] = {}

        async def one(c: Client, number: int, index: int) -> None:
            name, arguments = calls[index]
            answers[number, index] = (await c.call_tool(name, arguments)).content[0].text

        async def session(number: int) -> None:
            async with Client(server.url) as c, anyio.create_task_group() as group:
                for index in range(len(calls)):
                    group.start_soon(one, c, number, index)

        async with anyio.create_task_group() as group:
            for number in range(3):
                group.start_soon(session, number)
    assert len(answers) == 3 * len(calls)
    for (_, index), text in answers.items():
        assert text == expected[index]
    assert len([r for r in read_audit(tmp_path / "audit.jsonl") if r.method == "tools/call"]) == (
        4 * len(calls)
    )


def test_a_non_loopback_address_without_a_token_is_refused_before_listening(
    store: Path, tmp_path: Path
) -> None:
    result = recordagent(*mcp_args(store, "A", tmp_path / "a.jsonl", "--http", "0.0.0.0:0"))
    assert result.returncode == 2
    assert "is not a loopback address: a bearer token is required" in result.stderr
    assert not (tmp_path / "a.jsonl").exists()


def test_a_weak_token_and_a_taken_port_are_one_line_errors(store: Path, tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("secret")
    result = recordagent(
        *mcp_args(store, "A", tmp_path / "a.jsonl", "--http", "8765", "--token-file", str(weak))
    )
    assert result.returncode == 2 and "at least 16 characters" in result.stderr
    with http_server(store, "A", tmp_path / "b.jsonl") as server:
        port = server.url.split(":")[2].split("/")[0]
        taken = recordagent(
            *mcp_args(store, "A", tmp_path / "c.jsonl", "--http", f"127.0.0.1:{port}")
        )
    assert taken.returncode == 2
    assert f"--http 127.0.0.1:{port}: cannot listen there" in taken.stderr
    assert "Traceback" not in taken.stderr
    assert not (tmp_path / "c.jsonl").exists(), "no server started: nothing to audit"
    zone = recordagent(*mcp_args(store, "A", tmp_path / "d.jsonl", "--http", "[fe80::1%lo]:80"))
    assert zone.returncode == 2 and "neither an IP address nor a host name" in zone.stderr


async def test_a_token_from_the_environment_guards_loopback_too(
    store: Path, tmp_path: Path
) -> None:
    with http_server(
        store, "A", tmp_path / "a.jsonl", env={"RECORDAGENT_MCP_TOKEN": TOKEN}
    ) as server:
        async with httpx2.AsyncClient() as raw:
            refused = await raw.post(server.url, json=LIST_TOOLS, headers=ACCEPT)
        async with with_token(server.url) as c:
            assert len((await c.list_tools()).tools) == 5
    assert refused.status_code == 401


async def test_dns_rebinding_is_refused_on_every_loopback_address(
    store: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "a.jsonl"
    with http_server(store, "A", audit, address="127.0.0.2:0") as server:
        async with httpx2.AsyncClient() as raw:
            rebound = await raw.post(
                server.url, json=LIST_TOOLS, headers={**ACCEPT, "Host": "evil.example:80"}
            )
            foreign = await raw.post(
                server.url, json=LIST_TOOLS, headers={**ACCEPT, "Origin": "http://evil.example"}
            )
        async with Client(server.url) as c:  # its own address is this machine's: served
            assert len((await c.list_tools()).tools) == 5
    assert (rebound.status_code, foreign.status_code) == (421, 403)
    refused = [r.error_kind for r in read_audit(audit) if r.method == "http/refused"]
    assert refused == ["status 421", "status 403"]


async def test_sigterm_stops_the_server_while_a_client_holds_its_event_stream(
    store: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "a.jsonl"
    with http_server(store, "A", audit) as server:
        with contextlib.suppress(BaseException):  # the client loses its server, as it should
            async with Client(server.url, mode="legacy") as c:  # holds a GET event stream
                await c.list_tools()
                started = time.monotonic()
                server.process.terminate()
                code = await anyio.to_thread.run_sync(lambda: server.process.wait(30))
                waited = time.monotonic() - started
    assert code == 0
    assert waited < GRACE_S + 10, "the held stream is closed after the grace period"
    assert read_audit(audit)[-1].detail == {"stopped_by": "SIGTERM"}
