"""Helpers of the chat tests: scripted sessions on patient A, consoles that record, headers."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from recordagent.chat import ChatSession
from recordagent.llm.mock import MockModel
from recordagent.records.db import RecordStore
from recordagent.settings import Settings

PLAN = {"json": {"needs": ["date of the ASCT"]}}
MET = {"json": {"needs": [{"need": "date of the ASCT", "status": "met", "evidence": ["EA3"]}]}}


def final(value: Any, citations: list[str], status: str = "answered") -> dict[str, Any]:
    return {
        "json": {
            "status": status,
            "value": value,
            "text": f"answer {value}",
            "citations": citations,
        }
    }


def asct_script() -> list[Any]:
    """Plan, one search, one timeline call and finish, reflection, final answer."""
    return [
        PLAN,
        {"tool_calls": [("search_documents", {"query": "stem cell transplantation"})]},
        {"tool_calls": [("get_timeline", {"kinds": ["transplant"]}), ("finish", {})]},
        MET,
        final("2020-06-15", ["EA3", "A-D3:0", "A-D3", "LA2"]),
    ]


def make_session(store: RecordStore, script: Any, runner: str = "agent") -> ChatSession:
    return ChatSession(store.scope("A"), Settings(), MockModel(script), runner=runner)


def recording_console() -> Console:
    return Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)


def output(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def header_blocks(text: str) -> dict[str, list[str]]:
    """The header's titled blocks: each title line, then its indented rows (stripped)."""
    blocks: dict[str, list[str]] = {}
    rows: list[str] = []
    for line in text.splitlines():
        if line.startswith("  ") and line.strip():
            rows.append(line.strip())
        else:
            rows = blocks.setdefault(line.strip(), [])
    return blocks
