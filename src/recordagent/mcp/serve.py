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
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings

from recordagent.errors import UserError
from recordagent.mcp.audit_log import AuditLog
from recordagent.mcp.server import AUDITED_SCOPE_KEY, build_server
from recordagent.mcp.service import PatientService
from recordagent.paths import same_file
from recordagent.records.db import connect
from recordagent.resources import package_version
from recordagent.settings import Settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MIN_TOKEN_CHARS",
    "REFUSALS_PER_MINUTE",
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
REFUSALS_PER_MINUTE = 60
"""Refused HTTP requests logged a minute at most (the next line counts the rest)."""
MCP_PATH = "/mcp"
STDIN_FD = 0
GRACE_S = 3
"""Seconds a stop waits for clients that hold their connection or stopped reading."""


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
    if not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise UserError(
            f"--http {text!r}: expected PORT, HOST:PORT or [IPv6]:PORT (e.g. 127.0.0.1:8765)"
        )
    if not _valid_host(host):
        raise UserError(
            f"--http {text!r}: {host!r} is neither an IP address nor a host name (IPv6 "
            "addresses go in brackets, without a zone: [::1]:8765)"
        )
    return HttpEndpoint(host, int(port))


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")  # fmt: skip


def _valid_host(host: str) -> bool:
    if "%" in host:
        return False  # an IPv6 zone ('fe80::1%eth0') cannot be written in the endpoint's URL
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ":" not in host and bool(_HOST_NAME.match(host))
    return True


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

    Over stdio the server owns the process's stdin and stdout: serve once per process. A
    stdio client that stopped reading cannot hold a stop: after GRACE_S the process ends (the
    stop line marked 'forced').

    Returns:
        What stopped the server: 'client' (stdin closed), 'SIGINT' or 'SIGTERM' (the audit
        log's stop line says so too; 'error' there when it failed).

    Raises:
        UserError: No such store or patient, a bad template folder or token, an audit file
            that cannot be written, an address that cannot be bound.
    """
    token = check_token(token, endpoint)
    if same_file(audit_path, store_path):
        raise UserError(f"--audit {audit_path} is the store file: give the audit log its own")
    server_id = uuid.uuid4().hex[:12]
    with (
        connect(store_path, settings=settings.store, read_only=True) as store,
        contextlib.ExitStack() as stack,
    ):
        service = PatientService(store, patient_id, settings, template_folders=template_folders)
        # Listening before the log opens: an address that cannot be bound starts no server.
        sock = None if endpoint is None else stack.enter_context(listening_socket(endpoint))
        audit = stack.enter_context(AuditLog(audit_path, server_id, service.patient_id))
        detail = {
            "transport": "stdio" if endpoint is None else "http",
            "store": str(store_path),
            "version": package_version(),
        }
        if endpoint is not None and sock is not None:
            endpoint = HttpEndpoint(endpoint.host, sock.getsockname()[1])
            detail["address"] = endpoint.url
        audit.write("server/start", detail=detail)
        stopped_by = "error"
        refusals: _AuditedRefusals | None = None
        try:
            server = build_server(service, audit)
            if endpoint is None or sock is None:
                stopped_by = anyio.run(_serve_stdio, server, audit, on_ready)
            else:
                app = _http_app(server, audit, endpoint, token)
                refusals = app
                stopped_by = anyio.run(_serve_http, app, sock, endpoint, on_ready)
        except KeyboardInterrupt:
            stopped_by = "SIGINT"  # before the server's own signal handling was up
            raise
        finally:
            detail = {"stopped_by": stopped_by}
            if refusals is not None and refusals.not_logged():
                detail["refusals_not_logged"] = str(refusals.not_logged())
            audit.write("server/stop", detail=detail)
    return stopped_by


class _StdinLines:
    """Standard input's lines, read by a daemon thread.

    The SDK reads stdin in a worker thread that neither a cancel nor the interpreter's exit
    can interrupt: a SIGTERM would wait for an idle client's next message. A daemon thread
    ends with the process.
    """

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[str](1)

    async def __aiter__(self) -> AsyncIterator[str]:
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), daemon=True, name="mcp-stdin").start()
        async with self._receive:
            async for line in self._receive:
                yield line

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        # os.read on the descriptor, not sys.stdin's buffered reader: a daemon thread blocked
        # holding that reader's lock aborts the interpreter's exit.
        pending = bytearray()
        try:
            while chunk := os.read(STDIN_FD, 1 << 16):
                start = 0
                # Only the new chunk is searched: a long line costs its length, not its square.
                while (end := chunk.find(b"\n", start)) != -1:
                    pending += chunk[start:end]
                    line = pending.decode("utf-8", errors="replace") + "\n"
                    pending.clear()
                    anyio.from_thread.run(self._send.send, line, token=token)
                    start = end + 1
                pending += chunk[start:]
            if pending:
                text = pending.decode("utf-8", errors="replace")
                anyio.from_thread.run(self._send.send, text, token=token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError, OSError):
            return  # the server stopped first (nobody is reading), or stdin is gone


async def _serve_stdio(
    server: Server[Any], audit: AuditLog, on_ready: Callable[[str], None] | None
) -> str:
    stopped: list[str] = []
    done = threading.Event()
    try:
        async with anyio.create_task_group() as group:
            await group.start(_on_signals, stopped, group.cancel_scope, None, (audit, done))
            stdin = cast("anyio.AsyncFile[str]", _StdinLines())  # stdio_server only iterates it
            async with stdio_server(stdin=stdin) as (read_stream, write_stream):
                if on_ready is not None:
                    on_ready("serving over stdio")
                options = server.create_initialization_options()
                await server.run(read_stream, write_stream, options)
            group.cancel_scope.cancel()
    finally:
        done.set()
    return stopped[0] if stopped else "client"


def _http_app(
    server: Server[Any], audit: AuditLog, endpoint: HttpEndpoint, token: str | None
) -> _AuditedRefusals:
    """The streamable HTTP app: the token check, DNS-rebinding protection, refusals audited."""
    verifier = StaticToken(token) if token is not None else None
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=endpoint.host,
        transport_security=_rebinding_protection(endpoint),
        # The SDK's bearer middleware wants OAuth settings; a shared secret has no
        # authorization server, so the issuer is this server and no OAuth route is added.
        auth=AuthSettings(issuer_url=_base_url(endpoint), resource_server_url=None)
        if verifier
        else None,
        token_verifier=verifier,
    )
    return _AuditedRefusals(app, audit)


def _rebinding_protection(endpoint: HttpEndpoint) -> TransportSecuritySettings | None:
    """On loopback, only this machine's names may reach the server (DNS rebinding)."""
    if not is_loopback(endpoint.host):
        return None  # a token is required there; Host is whatever a proxy in front says
    names = {"127.0.0.1", "localhost", "[::1]"}
    names.add(f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host.lower())
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(f"{name}:*" for name in names),
        allowed_origins=sorted(f"http://{name}:*" for name in names),
    )


async def _serve_http(
    app: ASGIApp,
    sock: socket.socket,
    endpoint: HttpEndpoint,
    on_ready: Callable[[str], None] | None,
) -> str:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Forwarded headers are not trusted: the logged client address is the peer's.
        proxy_headers=False,
        # A client holding its event stream open must not hold a stop: its connection is
        # closed after this many seconds.
        timeout_graceful_shutdown=GRACE_S,
    )
    web = _Uvicorn(config)
    stopped: list[str] = []
    async with anyio.create_task_group() as group:
        await group.start(_on_signals, stopped, None, web, None)
        if on_ready is not None:
            on_ready(f"serving over streamable HTTP at {endpoint.url}")
        await web.serve(sockets=[sock])
        group.cancel_scope.cancel()
    return stopped[0] if stopped else "client"


class _AuditedRefusals:
    """ASGI wrapper writing each HTTP request refused before MCP saw it to the audit log.

    A missing or wrong token (401), a foreign Host or Origin (421, 403), a body too large
    (413), a request that is not JSON-RPC (400), another path (404): what an operator needs to
    see probing. At most REFUSALS_PER_MINUTE lines a minute: a flood of refusals must not fill
    the disk and stop every audited request; the next line counts the ones left out.
    """

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit
        self._window = 0.0
        self._logged = 0
        self._left_out = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def audited(message: Message) -> None:
            status = message["status"] if message["type"] == "http.response.start" else 0
            if status >= 400 and not scope.get(AUDITED_SCOPE_KEY):
                self._refused(scope, int(status))
            await send(message)

        await self.app(scope, receive, audited)

    def _refused(self, scope: Scope, status: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._window >= 60:
                self._window, self._logged = now, 0
            if self._logged >= REFUSALS_PER_MINUTE:
                self._left_out += 1
                return
            self._logged += 1
            left_out, self._left_out = self._left_out, 0
        kind = f"status {status}"
        if status == 401:
            sent = any(name.lower() == b"authorization" for name, _ in scope["headers"])
            kind = "invalid_token" if sent else "missing_token"
        detail = {"client": _peer(scope)}
        if left_out:
            detail["refusals_not_logged"] = str(left_out)
        outcome = "error" if status >= 500 else "refused"
        self.audit.write("http/refused", outcome=outcome, error_kind=kind, detail=detail)

    def not_logged(self) -> int:
        """Refusals past the limit not yet counted on a line (the stop line counts them)."""
        with self._lock:
            return self._left_out


def _peer(scope: Scope) -> str:
    """The client's address as the socket gives it (never a header's text)."""
    client = scope.get("client")
    try:
        host, port = client  # type: ignore[misc]
        address = ipaddress.ip_address(host)
        return f"[{address}]:{int(port)}" if address.version == 6 else f"{address}:{int(port)}"
    except (TypeError, ValueError):
        return "<unknown>"


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the serve loop stops it, and logs the stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _on_signals(
    stopped: list[str],
    scope: anyio.CancelScope | None,
    web: uvicorn.Server | None,
    stdio: tuple[AuditLog, threading.Event] | None,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Stop on SIGINT or SIGTERM; a second signal stops at once.

    Over HTTP uvicorn closes the connections (held ones after GRACE_S). Over stdio the serve
    is cancelled; if the client stopped reading, the SDK's stdout writer cannot be cancelled,
    so after GRACE_S a watchdog logs the stop and ends the process.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for received in signals:
            name = signal.Signals(received).name
            if stopped:  # the second signal
                if web is not None:
                    web.force_exit = True
                if stdio is not None:
                    _end_process(stdio[0], stopped[0])
                continue
            stopped.append(name)
            if web is not None:
                web.should_exit = True
            if scope is not None:
                scope.cancel()
            if stdio is not None:
                _exit_unless_done(*stdio, name)


def _exit_unless_done(audit: AuditLog, done: threading.Event, stopped_by: str) -> None:
    """End the process after GRACE_S unless the serve returned by then (a daemon thread)."""

    def watch() -> None:
        if not done.wait(GRACE_S):
            _end_process(audit, stopped_by)

    threading.Thread(target=watch, daemon=True, name="mcp-stop-watchdog").start()


def _end_process(audit: AuditLog, stopped_by: str) -> None:
    """Log the stop and end the process now: a stdio server blocked on a client's pipe."""
    with contextlib.suppress(OSError):
        audit.write("server/stop", detail={"stopped_by": stopped_by, "forced": "true"})
    os._exit(0)


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
    return sock


def _base_url(endpoint: HttpEndpoint) -> str:
    return endpoint.url.removesuffix(MCP_PATH)
