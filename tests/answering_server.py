"""Replies for the fake OpenAI server that answer every runner's requests from the record shown.

    with FakeOpenAI(responder=answering_responder()) as server:
        ... OpenAICompatModel(ModelSettings(provider="openai", base_url=server.url, ...)) ...

The control flow is :class:`~recordagent.runners.dry_run.DryRunPolicy`'s, on the wire form of
each request: it plans, calls the record tools for ``steps`` steps and then ``finish``, reflects
with nothing left open, and in iterative RAG searches once more in round 1. The final answers
differ: instead of 'insufficient_evidence' they are answers of the requested type, derived from
the record text the request shows (user messages and tool results, without the question block):

* date: the latest YYYY-MM-DD shown (none shown: 'insufficient_evidence');
* count: the number of distinct ids shown in brackets; number: half of it;
* boolean: whether the question's keyword (its longest word) appears in the record text;
* category: the allowed value a stable hash of the distinct ids picks;
* list: the allowed values that appear in the record text (no allowed values: the first ids);
* text: a sentence naming the first id shown.

A request that shows no id at all gets 'insufficient_evidence'. The citations are the first two
ids shown. Every reply is a function of the request body alone, so that concurrent items may
interleave freely and two runs of one extraction can be compared value by value. A client set
not to send ``response_format`` (the schema goes in a system message) is answered alike; one
that writes tools into the prompt (``supports_tools: false``) is not.

``python -m tests.answering_server --delay 0.3`` serves these replies in a process of its own
(benchmarks): the URL is the first line on stdout, and the server runs until stdin closes or
the process gets SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pydantic import BaseModel

from recordagent.llm.mock import MockRequest
from recordagent.llm.types import Message, ToolCall
from recordagent.questions.answers import FinalAnswerBase
from recordagent.runners.agent.state import Plan, Reflection
from recordagent.runners.dry_run import DryRunPolicy
from recordagent.runners.iterative import IterativeStep
from tests.fake_openai import Action, FakeOpenAI, ok, status

__all__ = [
    "RequestNotUnderstood",
    "ShownRecord",
    "answering_responder",
    "derive_answer",
    "main",
    "serve",
    "shown_record",
]

# The response formats a runner asks for, by the name the client sends (the class name;
# every final-answer class is made by create_model under this one name).
_FINAL_ANSWER = "FinalAnswer"
_ITERATIVE_STEP = IterativeStep.__name__
_POLICY_SCHEMAS: dict[str, type[BaseModel]] = {
    Plan.__name__: Plan,
    Reflection.__name__: Reflection,
    _ITERATIVE_STEP: IterativeStep,
    _FINAL_ANSWER: FinalAnswerBase,
}
# How the client words the schema for a server without response_format (schema_instruction).
_SCHEMA_IN_PROMPT = "validates against this JSON schema:\n"
# question_block(): the question, its answer type, and the as-of line when there is one. One
# line each: a record line that opens with "Question: " must not swallow the record after it.
_QUESTION_BLOCK = re.compile(
    r"^Question: (?P<question>[^\n]*)\nAnswer type: [^\n]*"
    r"(?:\nAnswer as the record stood on [^\n]*)?",
    re.MULTILINE,
)
_ID = re.compile(r"\[([A-Za-z0-9][^\[\]\s]*)\]")  # as the runners show ids, e.g. [A-D3:0]
_DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_NOT_KEYWORDS = frozenset(
    {"when", "what", "which", "does", "did", "have", "has", "was", "were", "with", "from"}
    | {"that", "this", "there", "patient", "patients", "record", "ever", "been", "their"}
)
_CITED = 2


class RequestNotUnderstood(ValueError):
    """A request no runner sends (an unknown response format): the server refuses it."""


@dataclass(frozen=True)
class ShownRecord:
    """What a request shows of the record.

    Attributes:
        question: The question asked ('' when the request shows none).
        text: The record text: user messages and tool results without the question.
        ids: The distinct ids shown in brackets, in order of first appearance.
        dates: Every valid YYYY-MM-DD day in the text, in order.
    """

    question: str
    text: str
    ids: tuple[str, ...]
    dates: tuple[dt.date, ...]


def shown_record(messages: Sequence[Message]) -> ShownRecord:
    """The record text of ``messages``: user messages and tool results, minus the question.

    The question block (question, answer type with its allowed values, as-of day) and every
    repetition of the question (search queries, plans, tool headers echo it) are left out, so
    that what is derived from the text comes from the record, not from the question.
    """
    parts = [m.content or "" for m in messages if m.role in {"user", "tool"}]
    question = ""
    for part in parts:
        found = _QUESTION_BLOCK.search(part)
        if found:
            question = found["question"].strip()
            break
    text = "\n".join(_QUESTION_BLOCK.sub("", part) for part in parts)
    if question:
        text = text.replace(question, "")
    ids = tuple(dict.fromkeys(_ID.findall(text)))
    dates = tuple(day for day in (_day(d) for d in _DATE.findall(text)) if day is not None)
    return ShownRecord(question=question, text=text, ids=ids, dates=dates)


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def derive_answer(final_schema: dict[str, Any], shown: ShownRecord) -> dict[str, Any]:
    """A final answer valid for ``final_schema`` (the JSON schema sent), derived from ``shown``.

    Raises:
        RequestNotUnderstood: The schema's value is of no answer type known here.
    """
    kind, allowed = _value_kind(final_schema)
    empty: Any = [] if kind == "list" else None
    if not shown.ids:
        return _final("insufficient_evidence", empty, "No record id was shown.", [])
    value: Any
    if kind == "date":
        if not shown.dates:
            return _final("insufficient_evidence", None, "No day was shown.", [])
        value = max(shown.dates).isoformat()
    elif kind == "count":
        value = len(shown.ids)
    elif kind == "number":
        value = len(shown.ids) / 2
    elif kind == "boolean":
        keyword = _keyword(shown.question)
        value = keyword is not None and keyword in shown.text.lower()
    elif kind == "category":
        assert allowed
        digest = hashlib.sha256("\n".join(sorted(shown.ids)).encode()).digest()
        value = allowed[int.from_bytes(digest[:8], "big") % len(allowed)]
    elif kind == "list":
        lowered = shown.text.lower()
        value = [a for a in allowed if a.lower() in lowered] if allowed else list(shown.ids[:3])
    else:
        value = f"The record speaks to it at [{shown.ids[0]}]."
    text = f"Derived from {len(shown.ids)} id(s) shown."
    return _final("answered", value, text, list(shown.ids[:_CITED]))


def _final(status_: str, value: Any, text: str, citations: list[str]) -> dict[str, Any]:
    return {"status": status_, "value": value, "text": text, "citations": citations}


def _keyword(question: str) -> str | None:
    """The question's longest word that is not a question word (the first of equals)."""
    words = [w.lower() for w in _WORD.findall(question)]
    candidates = [w for w in words if len(w) >= 4 and w not in _NOT_KEYWORDS]
    return max(candidates, key=len) if candidates else None


def _value_kind(final_schema: dict[str, Any]) -> tuple[str, list[str] | None]:
    """The answer type of the schema's ``value`` and its allowed values, if any."""
    value = final_schema.get("properties", {}).get("value")
    if not isinstance(value, dict):
        raise RequestNotUnderstood("the final-answer schema has no 'value' property")
    if value.get("type") == "array":
        items = value.get("items", {})
        return "list", items.get("enum")
    variants = [v for v in value.get("anyOf", [value]) if v.get("type") != "null"]
    if len(variants) == 1:
        only = variants[0]
        if "enum" in only:
            return "category", list(only["enum"])
        if only.get("format") == "date":
            return "date", None
        kinds = {"integer": "count", "number": "number", "boolean": "boolean", "string": "text"}
        if only.get("type") in kinds:
            return kinds[only["type"]], None
    raise RequestNotUnderstood(f"no answer type has this value schema: {json.dumps(value)[:300]}")


def _step_answer_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The final answer's schema inside an iterative step's schema (its 'answer')."""
    answer = schema.get("properties", {}).get("answer", {})
    for variant in answer.get("anyOf", [answer]):
        ref = variant.get("$ref", "")
        if ref.startswith("#/$defs/"):
            found: dict[str, Any] = schema.get("$defs", {})[ref.removeprefix("#/$defs/")]
            return found
    raise RequestNotUnderstood("the IterativeStep schema has no final answer")


def _requested_schema(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The response format's name and JSON schema: sent as such, or in a system message."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt["json_schema"]["name"], fmt["json_schema"]["schema"]
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "system" and isinstance(content, str):
            at = content.find(_SCHEMA_IN_PROMPT)
            if at >= 0:
                start = at + len(_SCHEMA_IN_PROMPT)
                schema, _ = json.JSONDecoder().raw_decode(content, start)
                return str(schema.get("title", "")), schema
    return None


def _messages(wire: list[dict[str, Any]]) -> list[Message]:
    """The wire messages as the runners built them."""
    out = []
    for message in wire:
        calls = tuple(
            ToolCall(
                id=call["id"],
                name=call["function"]["name"],
                arguments=_arguments(call["function"].get("arguments")),
                raw_arguments=call["function"].get("arguments") or "",
            )
            for call in message.get("tool_calls") or ()
        )
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "".join(str(part.get("text", "")) for part in content)
        out.append(
            Message(
                role=message["role"],
                content=content,
                tool_calls=calls,
                tool_call_id=message.get("tool_call_id"),
                name=message.get("name"),
            )
        )
    return out


def _arguments(raw: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _reply(
    body: dict[str, Any], policy: DryRunPolicy
) -> tuple[str | None, list[tuple[str, str, str]]]:
    """The reply's content and tool calls (id, name, arguments JSON)."""
    requested = _requested_schema(body)
    name, schema = requested if requested is not None else (None, {})
    if name is not None and name not in _POLICY_SCHEMAS:
        raise RequestNotUnderstood(f"no reply for the response format {name!r}")
    messages = _messages(body.get("messages", []))
    params = {k: v for k, v in body.items() if k not in {"messages", "tools", "response_format"}}
    request = MockRequest(
        messages=messages,
        tools=body.get("tools"),
        schema_class=_POLICY_SCHEMAS[name] if name is not None else None,
        params=params,
    )
    reply = policy(request)
    if isinstance(reply, str):
        return reply, []
    if not isinstance(reply, dict):
        raise RequestNotUnderstood(f"the dry-run policy replied {type(reply).__name__}")
    if "tool_calls" in reply:
        turn = sum(1 for m in messages if m.role == "assistant" and m.tool_calls)
        calls = [
            (f"call_{turn}_{k}", tool, json.dumps(arguments))
            for k, (tool, arguments) in enumerate(reply["tool_calls"])
        ]
        return None, calls
    payload: dict[str, Any] = reply["json"]
    if name == _FINAL_ANSWER:
        payload = derive_answer(schema, shown_record(messages))
    elif name == _ITERATIVE_STEP and payload.get("action") == "answer":
        answer = derive_answer(_step_answer_schema(schema), shown_record(messages))
        payload = {**payload, "answer": answer}
    return json.dumps(payload), []


def answering_responder(
    *, delay_s: float = 0.0, steps: int = 2
) -> Callable[[dict[str, Any]], Action]:
    """A FakeOpenAI responder: each request body → the reply a model following the dry run gives.

    Args:
        delay_s: How long each reply takes (a model's latency).
        steps: Tool steps of the agent before it calls ``finish`` (as in the dry run).

    A request it cannot answer (a response format no runner sends) gets HTTP 400 with a message
    saying why, which the client reports as a refused request.
    """
    policy = DryRunPolicy(steps=steps)

    def respond(body: dict[str, Any]) -> Action:
        try:
            content, calls = _reply(body, policy)
        except RequestNotUnderstood as exc:
            return status(400, message=f"answering_responder: {exc}", delay_s=delay_s)
        sent = len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("tools", [])))
        written = len(content or "") + sum(len(name) + len(args) for _, name, args in calls)
        return ok(
            content,
            tool_calls=calls,
            usage=(sent // 4, max(1, written // 4)),
            delay_s=delay_s,
        )

    return respond


class _Terminated(Exception):
    """SIGTERM arrived: the server stops."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def serve(delay_s: float = 0.0, host: str = "127.0.0.1", *, steps: int = 2) -> None:
    """Serve answering replies until stdin closes or SIGTERM; the URL goes to stdout first.

    Must run in the main thread (it handles SIGTERM).
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        replies = answering_responder(delay_s=delay_s, steps=steps)
        with FakeOpenAI(responder=replies, host=host) as server:
            sys.stdout.write(f"{server.url}\n")
            sys.stdout.flush()
            # Whoever started the server holds stdin open for as long as it wants it.
            sys.stdin.read()
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.answering_server [--delay S] [--steps N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--steps", type=int, default=2, help="agent tool steps before finish")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    args = parser.parse_args(argv)
    serve(args.delay, args.host, steps=args.steps)


if __name__ == "__main__":
    main()
