"""The MCP server's audit log: one JSON line per request, ids and sizes, never record text.

What a client asked and what it got, for the operator who must answer "who read what": the
method, the tool, resource kind or prompt, the argument *field paths* (never their values: a
search query or an analyte name may quote the record), the result's size, and the ids of the
rows it showed. A name the server does not know (a tool, a prompt, an argument) came from the
client and may be anything, so it is logged by its length only.

Lines are appended with one ``write`` each to a file opened with ``O_APPEND``: several servers
may share one audit file, and a reader never sees half a line of a finished request.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recordagent.errors import UserError

__all__ = [
    "MAX_LOGGED_IDS",
    "MAX_LOGGED_PATHS",
    "SERVER_EVENTS",
    "AuditLog",
    "AuditRecord",
    "Outcome",
    "argument_paths",
    "read_audit",
    "unknown_name",
]

MAX_LOGGED_PATHS = 64
"""Argument field paths logged per request at most (the rest are counted)."""
MAX_LOGGED_IDS = 500
"""Row ids logged per request at most (the rest are counted)."""
_MAX_DEPTH = 8  # argument nesting logged; no tool takes more than a list of values
_COUNT_LIMIT = 100_000  # paths past the cap are counted up to this, then "over"

SERVER_EVENTS = ("server/start", "server/stop", "http/refused")
"""What the log holds besides MCP requests: the server's start and stop, refused HTTP requests."""
Outcome = Literal["ok", "tool_error", "refused", "cancelled", "error"]


class AuditRecord(BaseModel):
    """One request of one client, as the audit file keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: dt.datetime = Field(description="When the request finished (UTC).")
    server: str = Field(description="This server process's id (one per start).")
    patient_id: str = Field(description="The patient the server serves.")
    method: str = Field(
        description="The MCP method of the request ('tools/call'; a method the protocol does "
        "not have as its length only), or one of SERVER_EVENTS: the server's start and stop, "
        "an HTTP request refused before MCP saw it (a missing or wrong token, a foreign Host "
        "or Origin, a body too large), with the client's address."
    )
    name: str | None = Field(
        default=None,
        description="The tool, the resource kind or the prompt; a name the server does not "
        "know as its length only.",
    )
    arguments: list[str] = Field(
        default_factory=list, description="Field paths of the arguments given, never values."
    )
    outcome: Outcome = Field(
        default="ok",
        description="ok; tool_error (the tool refused the arguments, told the client why); "
        "refused (no such resource or prompt, or not this patient's; a malformed or unknown "
        "request; an HTTP refusal); cancelled (the client cancelled it, or the server stopped, "
        "before the reply); error (a bug: the client was told 'internal error'; an HTTP 5xx).",
    )
    error_kind: str | None = Field(default=None, description="What kind of refusal or error.")
    result_chars: int = Field(default=0, ge=0, description="Characters of text returned.")
    result_tokens: int | None = Field(
        default=None, description="Tokens of the tool result text (the agent's tokenizer)."
    )
    ids: list[str] = Field(
        default_factory=list,
        description="Ids of the record rows the result showed (documents, chunks, labs, events).",
    )
    ids_not_logged: int = Field(default=0, ge=0, description="Ids beyond MAX_LOGGED_IDS.")
    duration_ms: float = Field(default=0.0, ge=0, description="Time spent serving the request.")
    detail: dict[str, str] = Field(
        default_factory=dict,
        description="Server facts for start/stop (transport, address, store file, version); "
        "the client's address of a refused HTTP request, and how many refusals were not "
        "logged before it (at most REFUSALS_PER_MINUTE are).",
    )


def unknown_name(name: str) -> str:
    """A client's name the server does not know, as the log keeps it: its length."""
    return f"<unknown: {len(name)} characters>"


def argument_paths(
    arguments: Mapping[str, Any] | None, known: Mapping[str, Any] | None = None
) -> list[str]:
    """The field paths of ``arguments`` ('types[0]', 'range.start'), never their values.

    ``known`` is the tool's JSON schema ``properties``: a top-level name it lacks came from
    the client and is logged by position and length. Nested object keys are the client's too
    (no tool takes nested objects) and are logged the same way. At most
    :data:`MAX_LOGGED_PATHS` paths, then a count of the rest.
    """
    if not arguments:
        return []
    properties = known or {}
    paths: list[str] = []
    more = 0

    def add(path: str) -> None:
        nonlocal more
        if len(paths) < MAX_LOGGED_PATHS:
            paths.append(path)
        else:
            more += 1

    def walk(value: Any, path: str, depth: int) -> None:
        # Past the cap only the count grows; a deep value is cut where no tool would look.
        if more > _COUNT_LIMIT:
            return
        if depth > _MAX_DEPTH and isinstance(value, Mapping | list):
            add(path + "<deeper>")
        elif isinstance(value, Mapping):
            if not value:
                add(path + "{}")
            for position, key in enumerate(value, start=1):
                walk(value[key], f"{path}.<key {position}: {len(str(key))} characters>", depth + 1)
        elif isinstance(value, list):
            if not value:
                add(path + "[]")
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", depth + 1)
        else:
            add(path)

    for position, key in enumerate(arguments, start=1):
        name = key if key in properties else f"<argument {position}: {len(key)} characters>"
        walk(arguments[key], name, 1)
    if more:
        counted = f"{more:,}" if more <= _COUNT_LIMIT else f"over {_COUNT_LIMIT:,}"
        paths.append(f"<{counted} more>")
    return paths


class AuditLog:
    """An append-only JSON-lines file of :class:`AuditRecord`; safe from several threads.

    Args:
        path: The audit file; created (with its folder) when missing, appended to otherwise.
        server: This server's id, written on every record.
        patient_id: The patient the server serves.

    Raises:
        UserError: The file cannot be opened for appending (it names the file and why).
    """

    def __init__(self, path: str | Path, server: str, patient_id: str) -> None:
        self.path = Path(path)
        self.server = server
        self.patient_id = patient_id
        self._lock = threading.Lock()
        try:
            if self.path.is_dir():
                raise IsADirectoryError(f"{self.path} is a folder")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd: int | None = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise UserError(
                f"audit log {self.path}: cannot open it for appending ({exc.strerror or exc})"
            ) from exc

    def write(self, method: str, **fields: Any) -> AuditRecord:
        """Append one record (time, server and patient filled in) and return it.

        Raises:
            OSError: The line could not be written (a full disk): an unaudited request must
                not be served as if it were audited.
        """
        ids = list(fields.pop("ids", []) or [])
        record = AuditRecord(
            time=dt.datetime.now(dt.UTC),
            server=self.server,
            patient_id=self.patient_id,
            method=method,
            ids=ids[:MAX_LOGGED_IDS],
            ids_not_logged=max(0, len(ids) - MAX_LOGGED_IDS),
            **fields,
        )
        line = (record.model_dump_json() + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise OSError(f"audit log {self.path} is closed")
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"audit log {self.path}: wrote {written} of {len(line)} bytes")
        return record

    def close(self) -> None:
        """Close the file (records after this raise)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_audit(path: str | Path) -> list[AuditRecord]:
    """Every record of an audit file, in order (for checks and reports)."""
    with open(path, encoding="utf-8") as handle:
        return [AuditRecord.model_validate_json(line) for line in handle if line.strip()]
