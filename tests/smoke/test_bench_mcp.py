"""The MCP latency benchmark runs end to end (plumbing only; timings are reported, not asserted)."""

from __future__ import annotations

import pytest
from tools import bench_mcp


def test_the_mcp_benchmark_measures_every_tool_on_each_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_mcp, "CALLS", 3)
    monkeypatch.setattr(bench_mcp, "SOURCES", {})  # the two-patient fixture: seconds, not minutes
    result = bench_mcp.bench_mcp()
    figures = result["sources"]["two_patients"]
    assert figures["patient"] == "A"
    assert set(figures["tools"]) == {
        "get_timeline",
        "list_analytes",
        "query_labs",
        "search_documents",
        "read_document",
    }
    for tool in figures["tools"].values():
        for path in ("direct", "stdio", "http"):
            assert tool[path]["calls"] == 3
            assert tool[path]["median_ms"] > 0
    assert "direct" in "\n".join(bench_mcp.mcp_summary(result))
