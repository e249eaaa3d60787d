"""iterative_rag: retrieve, let the model judge sufficiency or write the next query, repeat.

Evidence accumulates over the rounds without duplicates. After each round the model either
answers or asks for another search; when it still asks after the last round, it is made to
answer from what it has and the answer is marked 'truncated'. A decision that does not parse,
or is cut off at ``max_tokens``, ends the rounds: the model answers from what it has.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from recordagent.errors import ModelError
from recordagent.llm.client import ChatModel
from recordagent.llm.types import Message
from recordagent.questions.answers import final_answer_model
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners import rag_prompts as prompts
from recordagent.runners.answering import answer_from_parsed, question_block
from recordagent.runners.base import Answer
from recordagent.runners.common import RetrievingRunner, step_params
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.passages import Passage, cite_passages
from recordagent.runners.single_pass import passages_message
from recordagent.runners.trace import Tracer

__all__ = ["MAX_QUERY_CHARS", "IterativeRag", "IterativeStep", "step_model"]

MAX_QUERY_CHARS = 300
"""Characters of a search query the model writes (bounded in the schema it is sent)."""


def step_model(item: EvalItem) -> type[BaseModel]:
    """The per-round decision: answer now (with the final answer) or search again (a query)."""
    return _step_model(final_answer_model(item.answer))


@functools.lru_cache(maxsize=1024)
def _step_model(answer: Any) -> type[BaseModel]:
    # One class per final-answer class (itself one per answer spec), not one per question.
    fields: dict[str, Any] = dict(
        action=(
            Literal["answer", "search"],
            Field(description="'answer' if the passages suffice, else 'search'."),
        ),
        query=(
            str | None,
            Field(
                default=None,
                max_length=MAX_QUERY_CHARS,
                description="For 'search': the next search query.",
            ),
        ),
        answer=(
            answer | None,
            Field(default=None, description="For 'answer': the final answer."),
        ),
    )
    model: type[BaseModel] = create_model(IterativeStep.__name__, __base__=IterativeStep, **fields)
    return model


class IterativeStep(BaseModel):
    """Base of every per-round decision schema: accepts 'Search' as well as 'search'.

    Stray keys are ignored. :func:`step_model` adds the fields, typed by the item's answer.
    """

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _lower_action(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("action"), str):
            return {**data, "action": data["action"].strip().lower()}
        return data


class IterativeRag(RetrievingRunner):
    """Up to N rounds of retrieve → judge → re-query, then answer."""

    name = "iterative_rag"
    prompt_version = prompts.PROMPT_VERSION

    async def answer(
        self, item: EvalItem, scope: PatientScope, model: ChatModel, tracer: Tracer
    ) -> Answer:
        """Retrieval rounds until the model answers or the rounds run out."""
        config = self.settings.runners.iterative_rag
        params = step_params(self.settings.runners)
        started = time.perf_counter()  # the first round's time includes opening the index
        retriever = await self.retriever(scope, item.as_of)
        book = EvidenceBook()
        passages: list[Passage] = []
        queries = [item.question]
        schema = step_model(item)
        details: dict[str, Any] = {"queries": queries, "rounds": 0}
        for round_number in range(1, config.max_rounds + 1):
            if round_number > 1:
                started = time.perf_counter()
            budget = config.context_tokens - sum(p.tokens for p in passages)
            new = await asyncio.to_thread(
                retriever.retrieve,
                queries[-1],
                config.k_per_round,
                budget,
                exclude={p.id for p in passages},
            )
            cite_passages(book, new)
            passages.extend(new)
            details["rounds"] = round_number
            tracer.record(
                "retrieval",
                f"round {round_number}",
                started=started,
                step="retrieve",
                result_tokens=sum(p.tokens for p in new),
                refs=[p.id for p in new],
                summary=f"round {round_number}: {len(new)} new passage(s), {len(passages)} in all",
            )
            messages = self._messages(item, passages)
            messages.append(
                Message(
                    role="user",
                    content=prompts.ITERATIVE_STEP.format(
                        queries="; ".join(f"'{q}'" for q in queries),
                        round=round_number,
                        rounds=config.max_rounds,
                    ),
                )
            )
            try:
                completion = await tracer.complete(
                    model, messages, name=f"decide {round_number}", response_format=schema, **params
                )
            except ModelError as exc:
                if exc.cause != "output_length":
                    raise
                step = None
            else:
                step = completion.parsed
            if step is None:
                tracer.record("error", f"decide {round_number}", error="decision_unparsed")
                break
            if step["action"] == "answer" and step.get("answer") is not None:
                details["passages"] = [p.id for p in passages]
                return answer_from_parsed(
                    step["answer"],
                    completion.text,
                    item,
                    book,
                    tracer,
                    runner=self,
                    details=details,
                )
            query = (step.get("query") or "").strip()
            if not query or query.lower() in {q.lower() for q in queries}:
                tracer.record("reflect", "decide", summary="no new query: answering now")
                break
            if round_number < config.max_rounds:
                queries.append(query)
        else:
            # The model still asked for more evidence after the last round.
            details["rounds_exhausted"] = True
        truncated = bool(details.get("rounds_exhausted"))
        if truncated:
            tracer.record("budget", "rounds", summary=f"{config.max_rounds} round(s) used")
        messages = self._messages(item, passages)
        messages.append(Message(role="user", content=prompts.FORCED_ANSWER))
        details["passages"] = [p.id for p in passages]
        return await self.answer_now(
            messages, item, model, tracer, book, truncated=truncated, details=details
        )

    @staticmethod
    def _messages(item: EvalItem, passages: list[Passage]) -> list[Message]:
        return [
            Message(role="system", content=prompts.SYSTEM),
            Message(role="user", content=f"{question_block(item)}\n\n{passages_message(passages)}"),
        ]
