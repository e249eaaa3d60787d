"""single_pass_rag: one retrieval with the question, the top passages in one prompt, one call."""

from __future__ import annotations

import asyncio
import time

from recordagent.llm.client import ChatModel
from recordagent.llm.types import Message
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners import rag_prompts as prompts
from recordagent.runners.answering import question_block
from recordagent.runners.base import Answer
from recordagent.runners.common import RetrievingRunner
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.passages import Passage, cite_passages, render
from recordagent.runners.trace import Tracer

__all__ = ["SinglePassRag", "passages_message"]


def passages_message(passages: list[Passage]) -> str:
    """The retrieved passages as one block of the prompt."""
    if not passages:
        return prompts.NO_PASSAGES
    header = prompts.PASSAGES_HEADER.format(count=len(passages))
    return "\n\n".join([header, *(render(p) for p in passages)])


class SinglePassRag(RetrievingRunner):
    """Retrieve k passages for the question (documents and labs), answer in one call."""

    name = "single_pass_rag"
    prompt_version = prompts.PROMPT_VERSION

    async def answer(
        self, item: EvalItem, scope: PatientScope, model: ChatModel, tracer: Tracer
    ) -> Answer:
        """One retrieval with the question, one model call."""
        config = self.settings.runners.single_pass_rag
        started = time.perf_counter()
        retriever = await self.retriever(scope, item.as_of)
        passages = await asyncio.to_thread(
            retriever.retrieve, item.question, config.k, config.context_tokens
        )
        book = EvidenceBook()
        cite_passages(book, passages)
        tracer.record(
            "retrieval",
            "retrieve",
            started=started,
            step="retrieve",
            result_tokens=sum(p.tokens for p in passages),
            refs=[p.id for p in passages],
            summary=f"retrieved {len(passages)} passage(s) for the question",
        )
        messages = [
            Message(role="system", content=prompts.SYSTEM),
            Message(
                role="user",
                content="\n\n".join(
                    [question_block(item), passages_message(passages), prompts.ANSWER_NOW]
                ),
            ),
        ]
        return await self.answer_now(
            messages,
            item,
            model,
            tracer,
            book,
            details={
                "passages": [p.id for p in passages],
                "lab_passages": sum(1 for p in passages if p.kind == "labs"),
                "event_passages": sum(1 for p in passages if p.kind == "events"),
                "passage_tokens": sum(p.tokens for p in passages),
            },
        )
