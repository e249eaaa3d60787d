"""A fake OpenAI-compatible server: real HTTP on 127.0.0.1, scripted replies, injected faults.

    with FakeOpenAI() as server:
        server.script(ok("hello"), status(429, retry_after=1), ok("again"))
        ... OpenAICompatModel(ModelSettings(provider="openai", base_url=server.url, ...)) ...

Each request to ``/v1/chat/completions`` takes the action ``responder(body)`` gives, when a
responder is set, or else the next scripted action (the last one repeats
when the script runs out, or a plain "ok" reply if nothing was scripted). Requests are recorded.
Unless an action says otherwise, the reported prompt tokens grow with what was sent (a quarter
of the characters of the messages and tools), as a real server's do. ``GET /v1/models`` and
``GET /props`` answer with ``models`` and ``props`` when set (404 otherwise).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from recordagent.llm import OpenAICompatModel

__all__ = [
    "Action",
    "FakeOpenAI",
    "bounded",
    "drop",
    "empty",
    "fake_model",
    "model_preset",
    "ok",
    "status",
]


@dataclass(frozen=True)
class Action:
    """What the server does with one request."""

    kind: str  # ok, status, drop, empty
    content: str | None = "ok"
    tool_calls: tuple[tuple[str, str, str], ...] = ()
    usage: tuple[int, int] | Literal["sent"] | None = "sent"
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    finish_reason: str | None = None
    message: str | None = None
    ignore_tools: bool = False


def ok(
    content: str | None = "ok",
    *,
    tool_calls: list[tuple[str, str, str]] | None = None,
    usage: tuple[int, int] | Literal["sent"] | None = "sent",
    delay_s: float = 0.0,
    finish_reason: str | None = None,
    ignore_tools: bool = False,
) -> Action:
    """A normal completion (tool calls as (id, name, arguments JSON text)).

    ``usage`` 'sent' reports prompt tokens from what was sent and 5 completion tokens;
    ``ignore_tools`` reports them as a server that dropped the tools would.
    """
    return Action(
        "ok",
        content,
        tuple(tool_calls or ()),
        usage,
        200,
        {},
        delay_s,
        finish_reason,
        ignore_tools=ignore_tools,
    )


def status(
    code: int,
    *,
    retry_after: float | None = None,
    delay_s: float = 0.0,
    message: str | None = None,
) -> Action:
    """An HTTP error with an OpenAI-style error body (``message``: what the server says)."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Action("status", code=code, headers=headers, delay_s=delay_s, message=message)


def drop() -> Action:
    """Close the connection without answering."""
    return Action("drop")


def empty() -> Action:
    """200 with no choices."""
    return Action("empty")


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: more connections at once (several clients'
    # pools) stall a second while the kernel drops and the client resends their SYNs.
    request_queue_size = 128


class FakeOpenAI:
    """The server; use as a context manager."""

    def __init__(
        self,
        *,
        models: dict[str, Any] | None = None,
        props: dict[str, Any] | None = None,
        responder: Callable[[dict[str, Any]], Action] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.models = models
        self.props = props
        self.responder = responder
        self._actions: list[Action] = []
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each POST, in order of arrival
        self.paths: list[str] = []  # request paths with their query strings, in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm
                # and the client's delayed ACK add ~40 ms to every response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                server.paths.append(self.path)
                served = {"/v1/models": server.models, "/props": server.props}.get(self.path)
                if served is None:
                    self._send(404, {"error": {"message": "not found", "type": "not_found"}}, {})
                else:
                    self._send(200, served, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.paths.append(self.path)
                action = server._next(body)
                if action.delay_s:
                    time.sleep(action.delay_s)
                if action.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action.kind == "status":
                    said = action.message or f"injected {action.code}"
                    payload = {"error": {"message": said, "type": "fault"}}
                    self._send(action.code, payload, action.headers)
                    return
                self._send(200, _completion(body, action), {})

            def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away: that is the test

        self._server = _Server((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL for the client (``.../v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *actions: Action) -> None:
        """Replace the script."""
        with self._lock:
            self._actions = list(actions)

    def _next(self, body: dict[str, Any]) -> Action:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.requests.append(body)
            if self.responder is not None:
                return self.responder(body)
            if not self._actions:
                return ok()
            return self._actions.pop(0) if len(self._actions) > 1 else self._actions[0]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _completion(body: dict[str, Any], action: Action) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": action.content}
    if action.tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in action.tool_calls
        ]
    out: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": []
        if action.kind == "empty"
        else [
            {
                "index": 0,
                "message": message,
                "finish_reason": action.finish_reason
                or ("tool_calls" if action.tool_calls else "stop"),
            }
        ],
    }
    usage = action.usage
    if usage == "sent":
        sent = [body.get("messages", [])]
        if not action.ignore_tools:
            sent.append(body.get("tools", []))
        usage = (sum(len(json.dumps(part)) for part in sent) // 4, 5)
    if usage is not None:
        out["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    return out


def model_preset(path: Path, server: FakeOpenAI, **model: Any) -> Path:
    """A settings preset at ``path`` that sends the CLI's model calls to ``server``.

    ``model`` adds model settings (``max_retries=0``, ...) to the provider, name and URL.
    """
    fields = {"provider": "openai", "model": "fake", "base_url": server.url, **model}
    lines = "".join(f"  {name}: {value}\n" for name, value in fields.items())
    path.write_text(f"model:\n{lines}", encoding="utf-8")
    return path


def fake_model(server: FakeOpenAI, **overrides: Any) -> OpenAICompatModel:
    """A client of ``server`` that gives up fast: 0.5 s timeouts, 2 retries 10 ms apart."""
    from recordagent.llm import OpenAICompatModel
    from recordagent.settings import ModelSettings

    settings = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": server.url,
        "timeout_s": 0.5,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        **overrides,
    }
    return OpenAICompatModel(ModelSettings(**settings))


async def bounded(call: Awaitable[Any]) -> Any:
    """``call``'s result within 10 s: nothing in these tests may hang."""
    return await asyncio.wait_for(call, timeout=10)
