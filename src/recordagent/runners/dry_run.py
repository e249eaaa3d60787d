"""A dry-run policy for the mock model: walks every runner's control flow without an LLM.

It plans, calls the record tools in turn for a set number of steps, asks for another search
once in iterative RAG, and ends every question with status 'insufficient_evidence' and a text
that says no model read the record. Answers made with it are marked ``mock`` like every mock
output; they show the plumbing (retrieval, tools, citations, tokens), never a model's judgment.
Used by ``--model mock`` runs, the examples and the runner benchmark.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from recordagent.llm.mock import MockModel, MockRequest, ScriptedReply
from recordagent.questions.answers import FinalAnswerBase
from recordagent.runners.agent.state import MAX_NEED_CHARS, Plan, Reflection
from recordagent.runners.iterative import MAX_QUERY_CHARS, IterativeStep

__all__ = ["DRY_RUN_MODEL_NAME", "DRY_RUN_TEXT", "DryRunPolicy", "dry_run_model"]

DRY_RUN_TEXT = "Dry run on the mock model: no language model read this record."

_CHUNK_ID = re.compile(r"\[([^\[\]\s]+:\d+)\]")
_ANY_ID = re.compile(r"\[([A-Za-z0-9][^\[\]\s]*)\]")
_ROUND = re.compile(r"round (\d+) of (\d+)")


class DryRunPolicy:
    """Replies to each request by what it asks for (plan, tool step, decision, answer)."""

    def __init__(self, steps: int = 2, analyte: str = "M-protein") -> None:
        self.steps = steps
        self.analyte = analyte

    def __call__(self, request: MockRequest) -> ScriptedReply:
        """The reply for ``request``."""
        question = _question(request)
        schema = request.schema_class or BaseModel
        if issubclass(schema, Plan):
            return {"json": {"needs": [f"evidence for: {question}"[:MAX_NEED_CHARS]]}}
        if issubclass(schema, Reflection):
            return {"json": {"needs": [], "next_step": None}}
        if issubclass(schema, IterativeStep):
            round_of = _ROUND.search(_last_user(request))
            if round_of and int(round_of.group(1)) == 1 and int(round_of.group(2)) > 1:
                query = f"{question[: MAX_QUERY_CHARS - 12]} date result"
                return {"json": {"action": "search", "query": query}}
            return {"json": {"action": "answer", "answer": self._answer(request)}}
        if issubclass(schema, FinalAnswerBase):
            return {"json": self._answer(request)}
        if request.tools:
            return self._tool_step(request, question)
        return DRY_RUN_TEXT

    def _tool_step(self, request: MockRequest, question: str) -> dict[str, Any]:
        done = sum(1 for m in request.messages if m.role == "assistant" and m.tool_calls)
        if done >= self.steps:
            return {"tool_calls": [("finish", {"reason": "dry run"})]}
        seen = "\n".join(m.content or "" for m in request.messages if m.role == "tool")
        chunk = _CHUNK_ID.findall(seen)
        turn = done % 4
        if turn == 0:
            return {"tool_calls": [("search_documents", {"query": question})]}
        if turn == 1 and chunk:
            return {"tool_calls": [("read_document", {"document_id": chunk[0].rsplit(":", 1)[0]})]}
        if turn == 2:
            return {"tool_calls": [("query_labs", {"analyte": self.analyte})]}
        return {"tool_calls": [("get_timeline", {})]}

    @staticmethod
    def _answer(request: MockRequest) -> dict[str, Any]:
        shown = "\n".join(m.content or "" for m in request.messages if m.role in {"user", "tool"})
        ids = _ANY_ID.findall(shown)
        return {
            "status": "insufficient_evidence",
            "value": None,
            "text": DRY_RUN_TEXT,
            "citations": ids[:1],
        }


DRY_RUN_MODEL_NAME = "mock-dry-run"
"""The dry-run model's name, as run logs record it."""


def dry_run_model(steps: int = 2, name: str = DRY_RUN_MODEL_NAME) -> MockModel:
    """A MockModel following :class:`DryRunPolicy`."""
    return MockModel(DryRunPolicy(steps=steps), name=name)


def _question(request: MockRequest) -> str:
    for message in request.messages:
        if message.role == "user" and message.content and "Question: " in message.content:
            return message.content.split("Question: ", 1)[1].split("\n", 1)[0].strip()
    return "record"


def _last_user(request: MockRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content or ""
    return ""
