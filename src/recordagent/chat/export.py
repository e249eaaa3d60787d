"""The session as Markdown: every question, its answer and its numbered citations."""

from __future__ import annotations

import json

from recordagent.chat.session import ChatSession
from recordagent.evaluation.failures import failure_line, shown_text, truncation_line

__all__ = ["session_markdown"]


def session_markdown(session: ChatSession) -> str:
    """The session's questions and answers with citations, as a Markdown document."""
    out = [f"# Session on patient {session.patient_id}", ""]
    if session.model.is_mock:
        out += ["> Mock model: the answers below are scripted, not a model's answers.", ""]
    if not session.turns:
        out += ["No questions were asked.", ""]
    conversation = 0
    for number, turn in enumerate(session.turns, start=1):
        if turn.conversation != conversation:
            conversation = turn.conversation
            if conversation > 1:
                out += ["---", "", f"*New conversation ({conversation}).*", ""]
        answer = turn.answer
        out += [f"## {number}. {turn.question}", ""]
        status = f"**Status:** {answer.status.replace('_', ' ')}"
        if answer.value is not None:
            status += f" · **value:** `{json.dumps(answer.value, default=str)}`"
        out += [status, ""]
        for note in (failure_line(answer), truncation_line(answer)):
            if note is not None:
                out += [f"> {note}", ""]
        text = shown_text(answer)  # never the model's raw output
        if text or answer.status != "failed":
            out += [text or "-", ""]
        if turn.sources:
            out += ["**Citations**", ""]
            out += [f"{s.number}. {s.label}" for s in turn.sources]
            out.append("")
        out += [
            f"*{answer.runner} · {answer.model} · {answer.usage.model_calls} model call(s), "
            f"{answer.usage.tool_calls} tool call(s), {answer.usage.total_tokens} tokens*",
            "",
        ]
    return "\n".join(out)
