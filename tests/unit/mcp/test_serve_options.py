"""Where the HTTP transport listens, and when it needs a bearer token."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import anyio
import pytest

from recordagent.errors import UserError
from recordagent.mcp import AuditLog, read_audit, serve
from recordagent.mcp.serve import (
    MIN_TOKEN_CHARS,
    REFUSALS_PER_MINUTE,
    HttpEndpoint,
    StaticToken,
    check_token,
    is_loopback,
    listening_socket,
    parse_endpoint,
)

TOKEN = "t" * MIN_TOKEN_CHARS


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("8765", "127.0.0.1", 8765),
        ("0", "127.0.0.1", 0),
        ("localhost:9000", "localhost", 9000),
        ("10.1.2.3:443", "10.1.2.3", 443),
        ("[::1]:8765", "::1", 8765),
    ],
)
def test_endpoints_parse_port_host_and_ipv6(text: str, host: str, port: int) -> None:
    assert parse_endpoint(text) == HttpEndpoint(host, port)


@pytest.mark.parametrize("text", ["", "host:", ":80", "host:http", "70000", "[::1]", "a:-1"])
def test_malformed_endpoints_are_refused_with_the_forms_expected(text: str) -> None:
    with pytest.raises(UserError, match="expected PORT, HOST:PORT or"):
        parse_endpoint(text)


def test_ipv6_urls_bracket_the_host() -> None:
    assert HttpEndpoint("::1", 80).url == "http://[::1]:80/mcp"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_loopback_is_this_machine_only(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_token_is_required_off_loopback_and_optional_on_it() -> None:
    with pytest.raises(UserError, match="not a loopback address: a bearer token is required"):
        check_token(None, HttpEndpoint("0.0.0.0", 80))
    assert check_token(None, HttpEndpoint("127.0.0.1", 80)) is None
    assert check_token(f"  {TOKEN}\n", HttpEndpoint("0.0.0.0", 80)) == TOKEN


@pytest.mark.parametrize("weak", ["short", "t" * (MIN_TOKEN_CHARS - 1), "with space inside 12345"])
def test_weak_tokens_are_refused(weak: str) -> None:
    with pytest.raises(UserError, match=f"at least {MIN_TOKEN_CHARS} characters"):
        check_token(weak, HttpEndpoint("0.0.0.0", 80))


async def test_the_static_verifier_accepts_only_the_shared_secret() -> None:
    verifier = StaticToken(TOKEN)
    accepted = await verifier.verify_token(TOKEN)
    assert accepted is not None
    assert TOKEN not in accepted.model_dump_json()
    assert await verifier.verify_token(TOKEN + "x") is None
    assert await verifier.verify_token("") is None
    assert await verifier.verify_token("\udcff" * 20) is None


def test_the_listening_socket_sends_small_replies_without_waiting() -> None:
    # Nagle's algorithm with the client's delayed ACK held every reply some 40 ms.
    sock = listening_socket(HttpEndpoint("127.0.0.1", 0))
    with sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getsockname()[1] > 0


def test_an_address_that_cannot_be_bound_is_a_user_error() -> None:
    with pytest.raises(UserError, match="cannot listen there"):
        listening_socket(HttpEndpoint("192.0.2.1", 0))  # TEST-NET-1: not this machine's


@pytest.mark.parametrize("text", ["[fe80::1%lo]:80", "127.0.0.1:8000:9", "a b:80", "-x:80", "²:80"])
def test_hosts_that_are_no_address_or_name_are_refused(text: str) -> None:
    with pytest.raises(UserError, match="neither an IP address nor a host name|expected PORT"):
        parse_endpoint(text)


def test_refused_http_requests_are_logged_at_most_so_many_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(serve.time, "monotonic", lambda: clock[0])
    with AuditLog(tmp_path / "a.jsonl", "s", "A") as audit:
        refusals = serve._AuditedRefusals(lambda *a: None, audit)  # type: ignore[arg-type]
        scope = {"type": "http", "headers": [], "client": ("127.0.0.1", 5555)}
        for _ in range(REFUSALS_PER_MINUTE + 5):
            refusals._refused(scope, 401)
        clock[0] += 61
        refusals._refused({**scope, "client": ("Patient A note", 1)}, 413)
    records = read_audit(tmp_path / "a.jsonl")
    assert len(records) == REFUSALS_PER_MINUTE + 1
    assert records[0].error_kind == "missing_token"
    assert records[0].detail == {"client": "127.0.0.1:5555"}
    assert records[-1].error_kind == "status 413"
    assert records[-1].detail == {"client": "<unknown>", "refusals_not_logged": "5"}


def test_refusals_past_the_limit_are_counted_for_the_stop_line(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.jsonl", "s", "A") as audit:
        refusals = serve._AuditedRefusals(lambda *a: None, audit)  # type: ignore[arg-type]
        scope = {"type": "http", "headers": [(b"authorization", b"x")], "client": ("::1", 7)}
        for _ in range(REFUSALS_PER_MINUTE + 15):
            refusals._refused(scope, 401)
        refusals._refused(scope, 503)  # past the limit too: counted, not logged
    assert refusals.not_logged() == 16
    records = read_audit(tmp_path / "a.jsonl")
    assert {(r.outcome, r.error_kind) for r in records} == {("refused", "invalid_token")}
    assert records[0].detail == {"client": "[::1]:7"}


def test_stdin_lines_come_whole_however_the_client_writes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    monkeypatch.setattr(serve, "STDIN_FD", read_end)
    long_line = "x" * 3_000_000
    chunks = [b'{"a":', b"1}\n{", b'"b":2}\n', long_line.encode() + b"\n", b"\xff\xfe\n", b"tail"]

    def client() -> None:
        for chunk in chunks:
            os.write(write_end, chunk)
        os.close(write_end)

    async def read_all() -> list[str]:
        writer = threading.Thread(target=client)
        writer.start()
        lines = [line async for line in serve._StdinLines()]
        writer.join()
        return lines

    try:
        lines = anyio.run(read_all)
    finally:
        os.close(read_end)
    assert lines == ['{"a":1}\n', '{"b":2}\n', long_line + "\n", "\ufffd\ufffd\n", "tail"]
