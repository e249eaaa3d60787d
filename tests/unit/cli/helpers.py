"""Helpers of the command-line tests: a runner that streams and returns what a test gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners import Answer, EventSink, TraceEvent


class ScriptedRunner:
    """A runner that streams the given events and returns ``answer(item, model)``."""

    prompt_version = "test-1"

    def __init__(
        self,
        name: str,
        answer: Callable[[EvalItem, ChatModel], Answer],
        events: list[TraceEvent] | None = None,
    ) -> None:
        self.name = name
        self._answer = answer
        self._events = events or []

    async def run(
        self,
        item: EvalItem,
        scope: PatientScope,
        model: ChatModel,
        on_event: EventSink | None = None,
    ) -> Answer:
        for event in self._events:
            if on_event is not None:
                on_event(event)
        return self._answer(item, model)


def scripted_answer(
    runner: str, status: str, **fields: Any
) -> Callable[[EvalItem, ChatModel], Answer]:
    """An answer of ``status`` to whatever item, by ``runner`` on the model asked."""

    def make(item: EvalItem, model: ChatModel) -> Answer:
        return Answer(
            item_id=item.id,
            runner=runner,
            prompt_version=ScriptedRunner.prompt_version,
            model=model.name,
            mock=model.is_mock,
            status=status,
            **fields,
        )

    return make
