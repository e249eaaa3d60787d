"""ChatSession: one patient's conversation, answered question by question by a runner.

Conversation memory: the agent graph's state is one question's working memory (messages,
evidence needs, step and replan budgets) and every runner starts from an empty state, so the
session keeps the question/answer pairs of the current conversation and hands the latest of
them to the runner as context with each new question. That works the same for all four
runners (``/runner`` can switch mid-conversation); ``/new`` starts a new conversation.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from recordagent.chat.citations import CitedSource, resolve_citations
from recordagent.evaluation.failures import shown_text
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners import Answer, EventSink, Runner, build_runner
from recordagent.settings import Settings
from recordagent.tools import default_registry, lab_catalogue
from recordagent.tools.base import ToolRegistry

__all__ = ["CONTEXT_TURNS", "ChatSession", "Turn"]

CONTEXT_TURNS = 4
"""How many earlier turns of the conversation go with a new question."""
_CONTEXT_ANSWER_CHARS = 400

log = logging.getLogger(__name__)


class Turn(BaseModel):
    """One question and its answer."""

    conversation: int = Field(description="Which conversation of the session (1, 2, … after /new).")
    question: str
    answer: Answer
    sources: list[CitedSource] = Field(description="The answer's citations, numbered.")


class ChatSession:
    """One patient's session: the scope, the runner and model, and the conversation so far."""

    def __init__(
        self,
        scope: PatientScope,
        settings: Settings,
        model: ChatModel,
        runner: str = "agent",
        tools: ToolRegistry | None = None,
    ) -> None:
        """Open a session on ``scope``.

        Raises:
            UserError: ``runner`` is not a registered runner.
        """
        self.scope = scope
        self.settings = settings
        self.model = model
        self.tools = tools or default_registry(lab_catalogue(settings.tools.lab_catalogue_paths))
        self.runner: Runner = build_runner(runner, settings, self.tools)
        self.conversation = 1
        self.turns: list[Turn] = []

    @property
    def patient_id(self) -> str:
        """The patient this session is about."""
        return self.scope.patient_id

    @property
    def current(self) -> list[Turn]:
        """The turns of the current conversation."""
        return [t for t in self.turns if t.conversation == self.conversation]

    @property
    def last(self) -> Turn | None:
        """The latest turn of the session, if any."""
        return self.turns[-1] if self.turns else None

    def analytes(self) -> list[str]:
        """The lab analytes this record has values of, by name."""
        return [
            str(r[0]) for r in self.scope.fetch("SELECT DISTINCT analyte_name FROM labs ORDER BY 1")
        ]

    def set_runner(self, name: str) -> None:
        """Answer from now on with runner ``name``.

        Raises:
            UserError: No runner has that name.
        """
        self.runner = build_runner(name, self.settings, self.tools)

    def new_conversation(self) -> None:
        """Start over: later questions do not see the earlier ones."""
        self.conversation += 1

    def item_for(self, question: str) -> EvalItem:
        """The item a runner answers: the question, then the conversation's latest turns."""
        text = question.strip()
        earlier = self.current[-CONTEXT_TURNS:]
        if earlier:
            lines = [
                text,
                "",
                "Earlier in this conversation (context only; answer the question above from "
                "the record):",
            ]
            for turn in earlier:
                # A failed answer's text is no answer (at most the model's unusable output).
                usable = turn.answer.status != "failed" and shown_text(turn.answer) == (
                    turn.answer.text
                )
                answer = (turn.answer.text if usable else "") or "-"
                if len(answer) > _CONTEXT_ANSWER_CHARS:
                    answer = answer[: _CONTEXT_ANSWER_CHARS - 1] + "…"
                lines.append(f"Q: {turn.question}")
                lines.append(f"A ({turn.answer.status}): {answer}")
            text = "\n".join(lines)
        return EvalItem.ad_hoc(self.patient_id, text)

    async def ask(self, question: str, on_event: EventSink | None = None) -> Turn:
        """Answer ``question`` with the current runner, streaming its steps to ``on_event``.

        Model faults come back as a 'failed' answer; cancelling the task stops the run and
        keeps no turn.
        """
        item = self.item_for(question)
        log.info("chat question item=%s runner=%s", item.id, self.runner.name)
        answer = await self.runner.run(item, self.scope, self.model, on_event=on_event)
        turn = Turn(
            conversation=self.conversation,
            question=question.strip(),
            answer=answer,
            sources=resolve_citations(self.scope, answer.citations),
        )
        self.turns.append(turn)
        log.info("chat answer item=%s status=%s", item.id, answer.status)
        return turn
