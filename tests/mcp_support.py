"""Starting ``recordagent mcp`` as a client would: a subprocess over stdio, or an HTTP server."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mcp.client.stdio import StdioServerParameters

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES

TOKEN = "test-token-0123456789abcdef"
_SERVING = re.compile(r"serving over streamable HTTP at (http://\S+/mcp)")


def two_patient_store(folder: Path) -> Path:
    """Patients A and B (tests/fixtures/two_patients) in a store file."""
    path = folder / "two.duckdb"
    with connect(path) as store:
        load_bundle(store, FIXTURES / "two_patients")
    return path


def busiest_patient(store: RecordStore) -> tuple[str, str]:
    """The patient with the most lab values, and that patient's most frequent analyte."""
    con = store.connection
    patient = con.execute(
        "SELECT patient_id FROM labs GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    ).fetchone()[0]
    analyte = con.execute(
        "SELECT analyte_name FROM labs WHERE patient_id = $p GROUP BY 1 "
        "ORDER BY count(*) DESC, 1 LIMIT 1",
        {"p": patient},
    ).fetchone()[0]
    return str(patient), str(analyte)


def serve_until_eof(store: Path, patient: str, audit: Path) -> subprocess.CompletedProcess[str]:
    """``recordagent mcp`` over stdio whose client sends nothing and closes stdin."""
    return subprocess.run(
        [sys.executable, "-m", "recordagent", *mcp_args(store, patient, audit)],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mcp_args(store: Path, patient: str, audit: Path, *more: str) -> list[str]:
    """The arguments of ``recordagent mcp`` serving ``patient`` of ``store``."""
    return ["mcp", "--db", str(store), "--patient", patient, "--audit", str(audit), *more]


def stdio_server(store: Path, patient: str, audit: Path, *more: str) -> StdioServerParameters:
    """How an MCP client is told to start the server (its own process, talking over stdio)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "recordagent", *mcp_args(store, patient, audit, *more)],
        env={"COLUMNS": "100", "NO_COLOR": "1"},
    )


@dataclass
class HttpServer:
    """A running ``recordagent mcp --http`` process and what it said on stderr."""

    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def http_server(
    store: Path,
    patient: str,
    audit: Path,
    *more: str,
    env: dict[str, str] | None = None,
    address: str = "127.0.0.1:0",
) -> Iterator[HttpServer]:
    """``recordagent mcp --http 127.0.0.1:0`` (any free port), until the block ends."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recordagent",
            *mcp_args(store, patient, audit, "--http", address, *more),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )
    assert process.stderr is not None
    lines: list[str] = []
    url = _wait_for_url(process, process.stderr, lines)
    drain = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    drain.start()
    server = HttpServer(process, url, lines)
    try:
        yield server
    finally:
        server.stop()
        drain.join(timeout=5)


def _wait_for_url(process: subprocess.Popen[str], stderr: IO[str], lines: list[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stderr.readline()
        if not line:
            break
        lines.append(line)
        found = _SERVING.search(line)
        if found:
            return found.group(1)
    process.kill()
    raise AssertionError(f"the server did not start: {''.join(lines)}{stderr.read()}")
