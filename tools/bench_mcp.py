"""Benchmark of the MCP server: latency per tool call through MCP against a direct call.

Per source (the MIMIC-IV demo and Synthea FHIR from ../shared/data when present, else the
two-patient fixture), the patient with the most lab values is served, and each tool is called
``CALLS`` times with the same arguments, after one warm-up call (the first call of a patient
copies its rows into its scope database; both paths meet a warm scope):

a. direct: ``PatientService.call_tool`` in this process — the agent's registry call and its
   render within the tool-result budget, which is what the agent itself pays;
b. stdio: the SDK's client starting ``recordagent mcp`` as a subprocess (JSON-RPC over pipes,
   a worker thread per call, the audit line written);
c. http: the SDK's client against ``recordagent mcp --http 127.0.0.1:0`` with a bearer token
   (streamable HTTP on loopback: the token check, the session, the audit line).

Figures are medians and 90th percentiles in milliseconds; the overhead is the median of (b) or
(c) minus that of (a). Calls are sequential: latency, not throughput.

``python tools/bench_mcp.py`` prints the JSON; ``tools/bench.py --only mcp`` keeps it.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # tests.mcp_support lives in the repository
    sys.path.insert(0, str(REPO_ROOT))

import anyio  # noqa: E402
import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from tests.mcp_support import TOKEN, busiest_patient, http_server, stdio_server  # noqa: E402

from recordagent.mcp import PatientService  # noqa: E402
from recordagent.records.db import connect  # noqa: E402
from recordagent.records.load import load_bundle  # noqa: E402
from recordagent.settings import Settings  # noqa: E402
from recordagent.sources.fhir import load_fhir  # noqa: E402
from recordagent.sources.mimic_iv import load_mimic_iv  # noqa: E402

__all__ = ["bench_mcp", "mcp_summary"]

Json = dict[str, Any]
CALLS = 50
SHARED = REPO_ROOT.parent / "shared" / "data"
SOURCES: dict[str, tuple[Path, Callable[..., object]]] = {
    "mimic_demo": (SHARED / "mimic-iv-demo", load_mimic_iv),
    "fhir_ny": (SHARED / "synthea-fhir-ny" / "fhir", load_fhir),
}


def _store(folder: Path, name: str, source: Path, load: Callable[..., object]) -> Path:
    path = folder / f"{name}.duckdb"
    with connect(path) as store:
        load(store, source)
    return path


def _calls(store_path: Path) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The patient with the most lab values, and one call of each tool over its record."""
    with connect(store_path, read_only=True) as store:
        patient, analyte = busiest_patient(store)
        document = store.connection.execute(
            "SELECT document_id FROM documents WHERE patient_id = $p ORDER BY date DESC LIMIT 1",
            {"p": patient},
        ).fetchall()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_timeline", {}),
        ("list_analytes", {}),
        ("query_labs", {"analyte": analyte}),
        ("search_documents", {"query": "history of present illness"}),
    ]
    if document:
        calls.append(("read_document", {"document_id": document[0][0]}))
    return patient, calls


def _figures(samples: list[float]) -> Json:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 3),
        "calls": len(ordered),
    }


def _direct(store_path: Path, patient: str, calls: list[tuple[str, dict[str, Any]]]) -> Json:
    with connect(store_path, read_only=True) as store:
        service = PatientService(store, patient, Settings(), template_folders=[])
        out: Json = {}
        for name, arguments in calls:
            service.call_tool(name, arguments)  # warm-up
            samples = []
            for _ in range(CALLS):
                clock = time.perf_counter()
                served = service.call_tool(name, arguments)
                samples.append(time.perf_counter() - clock)
            out[name] = {**_figures(samples), "result_tokens": served.tokens}
    return out


async def _through(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> Json:
    out: Json = {}
    async with client as c:
        for name, arguments in calls:
            await c.call_tool(name, arguments)  # warm-up
            samples = []
            for _ in range(CALLS):
                clock = time.perf_counter()
                result = await c.call_tool(name, arguments)
                samples.append(time.perf_counter() - clock)
            if result.is_error:
                raise RuntimeError(f"{name} failed through MCP: {result.content}")
            out[name] = _figures(samples)
    return out


def _run(make: Callable[[], Awaitable[Json]]) -> Json:
    result: Json = anyio.run(make)
    return result


def bench_source(folder: Path, name: str, source: Path, load: Callable[..., object]) -> Json:
    """Direct, stdio and HTTP latency of each tool on one source's busiest patient."""
    store_path = _store(folder, name, source, load)
    patient, calls = _calls(store_path)
    direct = _direct(store_path, patient, calls)
    audit = folder / f"{name}-audit.jsonl"
    stdio = _run(lambda: _through(Client(stdio_server(store_path, patient, audit)), calls))
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    with http_server(store_path, patient, audit, "--token-file", str(token_file)) as server:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        over_http = _run(
            lambda: _through(Client(streamable_http_client(server.url, http_client=http)), calls)
        )
    tools: Json = {}
    for tool, _ in calls:
        base = direct[tool]["median_ms"]
        tools[tool] = {
            "direct": direct[tool],
            "stdio": stdio[tool],
            "http": over_http[tool],
            "stdio_overhead_ms": round(stdio[tool]["median_ms"] - base, 3),
            "http_overhead_ms": round(over_http[tool]["median_ms"] - base, 3),
        }
    return {"patient": patient, "tools": tools}


def bench_mcp() -> Json:
    """Every available source's figures (the two-patient fixture when none is)."""
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        folder = Path(tmp)
        out: Json = {"calls_per_tool": CALLS, "sources": {}}
        available = {n: s for n, s in SOURCES.items() if s[0].exists()}
        if not available:
            fixture = REPO_ROOT / "tests" / "fixtures" / "two_patients"
            available = {"two_patients": (fixture, load_bundle)}
        for name, (source, load) in available.items():
            out["sources"][name] = bench_source(folder, name, source, load)
    return out


def mcp_summary(result: Json) -> list[str]:
    """Lines for humans: per source and tool, direct vs stdio vs HTTP medians."""
    lines = [f"MCP latency per tool call (median of {result['calls_per_tool']}, ms):"]
    for source, figures in result["sources"].items():
        lines.append(f"  {source} (patient {figures['patient']}):")
        for tool, f in figures["tools"].items():
            lines.append(
                f"    {tool:<17} direct {f['direct']['median_ms']:7.2f}  "
                f"stdio {f['stdio']['median_ms']:7.2f} (+{f['stdio_overhead_ms']:.2f})  "
                f"http {f['http']['median_ms']:7.2f} (+{f['http_overhead_ms']:.2f})"
            )
    return lines


if __name__ == "__main__":
    figures = bench_mcp()
    print(json.dumps(figures, indent=1))
    print("\n".join(mcp_summary(figures)), file=sys.stderr)
