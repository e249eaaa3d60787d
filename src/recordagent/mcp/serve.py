"""Serving one patient over MCP: stdio for a client that starts the server, or streamable HTTP.

``serve_patient`` is the whole command: open the store read-only, check the patient, start the
audit log, build the server, serve until the client leaves or a signal (SIGINT, SIGTERM) stops
it, and log the stop. Over HTTP the server listens on loopback unless told otherwise, and a
bearer token is required on any other address (and checked on loopback when one is given):
patient records do not go out to a network unauthenticated.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import signal
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from recordagent.errors import UserError
from recordagent.mcp.audit_log import AuditLog
from recordagent.mcp.server import build_server
from recordagent.mcp.service import PatientService
from recordagent.records.db import connect
from recordagent.resources import package_version
from recordagent.settings import Settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MIN_TOKEN_CHARS",
    "HttpEndpoint",
    "StaticToken",
    "check_token",
    "is_loopback",
    "listening_socket",
    "parse_endpoint",
    "serve_patient",
]

MIN_TOKEN_CHARS = 16
"""Shortest bearer token accepted: a guessable token protects nothing."""
MCP_PATH = "/mcp"


@dataclass(frozen=True)
class HttpEndpoint:
    """Where the HTTP transport listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The MCP endpoint's URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{MCP_PATH}"


def parse_endpoint(text: str) -> HttpEndpoint:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` as an endpoint (loopback when no host).

    Raises:
        UserError: Not one of these forms, or a port outside 0-65535 (0: any free port).
    """
    raw = text.strip()
    host, port = "127.0.0.1", raw
    if raw.startswith("["):
        inside, _, rest = raw[1:].partition("]")
        host, port = inside, rest.removeprefix(":")
    elif ":" in raw:
        host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(
            f"--http {text!r}: expected PORT, HOST:PORT or [IPv6]:PORT (e.g. 127.0.0.1:8765)"
        )
    return HttpEndpoint(host, int(port))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1 or 'localhost')."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StaticToken:
    """A token verifier (the SDK's protocol) accepting one shared secret, in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access of a matching token; None for any other."""
        if hmac.compare_digest(token.encode("utf-8", "replace"), self._token):
            return AccessToken(token="<shared secret>", client_id="bearer", scopes=[])
        return None


def check_token(token: str | None, endpoint: HttpEndpoint | None) -> str | None:
    """The token to require, checked: needed off loopback, never weak.

    Raises:
        UserError: No token for a non-loopback address, or a token that is too short or has
            whitespace inside.
    """
    if token is not None:
        token = token.strip()
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise UserError(
                f"the bearer token must be at least {MIN_TOKEN_CHARS} characters without "
                "spaces (e.g. the output of: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
    if endpoint is not None and token is None and not is_loopback(endpoint.host):
        raise UserError(
            f"--http {endpoint.host}:{endpoint.port} is not a loopback address: a bearer token "
            "is required (--token-file FILE or the RECORDAGENT_MCP_TOKEN environment variable)"
        )
    return token


def serve_patient(
    store_path: str | Path,
    patient_id: str,
    settings: Settings,
    *,
    audit_path: str | Path,
    endpoint: HttpEndpoint | None = None,
    token: str | None = None,
    template_folders: Sequence[str | Path] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> str:
    """Serve ``patient_id``'s record from the store over stdio, or HTTP at ``endpoint``.

    Args:
        store_path: The store file, opened read-only for the server's life.
        patient_id: The one patient served.
        settings: Store limits, tool catalogue files, the agent's result budgets.
        audit_path: The audit log file (appended to).
        endpoint: Serve streamable HTTP there; None serves stdio.
        token: The bearer token HTTP clients must send (required off loopback).
        template_folders: SQL-derived template folders for prompts (default: packaged).
        on_ready: Called with a line saying where the server listens, once it does.

    Returns:
        What stopped the server: 'client' (stdin closed), 'SIGINT' or 'SIGTERM' (the audit
        log's stop line says so too; 'error' there when it failed).

    Raises:
        UserError: No such store or patient, a bad template folder or token, an audit file
            that cannot be written, an address that cannot be bound.
    """
    token = check_token(token, endpoint)
    server_id = uuid.uuid4().hex[:12]
    with connect(store_path, settings=settings.store, read_only=True) as store:
        service = PatientService(store, patient_id, settings, template_folders=template_folders)
        with AuditLog(audit_path, server_id, service.patient_id) as audit:
            detail = {
                "transport": "stdio" if endpoint is None else "http",
                "store": str(store_path),
                "version": package_version(),
            }
            if endpoint is not None:
                detail["address"] = endpoint.url
            audit.write("server/start", detail=detail)
            stopped_by = "error"
            try:
                server = build_server(service, audit)
                if endpoint is None:
                    stopped_by = anyio.run(_serve_stdio, server, on_ready)
                else:
                    stopped_by = anyio.run(_serve_http, server, audit, endpoint, token, on_ready)
            except KeyboardInterrupt:
                stopped_by = "SIGINT"  # before the server's own signal handling was up
                raise
            finally:
                audit.write("server/stop", detail={"stopped_by": stopped_by})
    return stopped_by


async def _serve_stdio(server: Server[Any], on_ready: Callable[[str], None] | None) -> str:
    stopped: list[str] = []
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_signal, group.cancel_scope, stopped, None)
        async with stdio_server() as (read_stream, write_stream):
            if on_ready is not None:
                on_ready("serving over stdio")
            await server.run(read_stream, write_stream, server.create_initialization_options())
        group.cancel_scope.cancel()
    return stopped[0] if stopped else "client"


async def _serve_http(
    server: Server[Any],
    audit: AuditLog,
    endpoint: HttpEndpoint,
    token: str | None,
    on_ready: Callable[[str], None] | None,
) -> str:
    verifier = StaticToken(token) if token is not None else None
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=endpoint.host,
        # The SDK's bearer middleware wants OAuth settings; a shared secret has no
        # authorization server, so the issuer is this server and no OAuth route is added.
        auth=AuthSettings(issuer_url=_base_url(endpoint), resource_server_url=None)
        if verifier
        else None,
        token_verifier=verifier,
    )
    sock = listening_socket(endpoint)
    bound = HttpEndpoint(endpoint.host, sock.getsockname()[1])
    config = uvicorn.Config(
        _AuditedRefusals(app, audit), log_level="warning", access_log=False, lifespan="on"
    )
    web = _Uvicorn(config)
    stopped: list[str] = []
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_signal, None, stopped, web)
        if on_ready is not None:
            on_ready(f"serving over streamable HTTP at {bound.url}")
        with contextlib.closing(sock):
            await web.serve(sockets=[sock])
        group.cancel_scope.cancel()
    return stopped[0] if stopped else "client"


class _AuditedRefusals:
    """ASGI wrapper writing each request refused for its token (401) to the audit log."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def audited(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                sent = any(name.lower() == b"authorization" for name, _ in scope["headers"])
                client = scope.get("client") or ("?", 0)
                self.audit.write(
                    "http/unauthorized",
                    outcome="refused",
                    error_kind="invalid_token" if sent else "missing_token",
                    detail={"client": f"{client[0]}:{client[1]}"},
                )
            await send(message)

        await self.app(scope, receive, audited)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the serve loop stops it, and logs the stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _cancel_on_signal(
    scope: anyio.CancelScope | None, stopped: list[str], web: uvicorn.Server | None
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for received in signals:
            stopped.append(signal.Signals(received).name)
            if web is not None:
                web.should_exit = True
            if scope is not None:
                scope.cancel()
            return


def listening_socket(endpoint: HttpEndpoint) -> socket.socket:
    """A socket listening at ``endpoint`` (port 0: a free one), replies sent without delay.

    Raises:
        UserError: The address cannot be bound (taken, not this machine's, not permitted).
    """
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it. Without it a reply written in two parts (headers, then
    # body) waits for the client's delayed ACK: some 40 ms on every call (tools/bench_mcp.py).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((endpoint.host, endpoint.port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"--http {endpoint.host}:{endpoint.port}: cannot listen there ({exc.strerror or exc})"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _base_url(endpoint: HttpEndpoint) -> str:
    return endpoint.url.removesuffix(MCP_PATH)
