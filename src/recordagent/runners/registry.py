"""Runners by name: what run logs record and the command line accepts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from recordagent.errors import UserError
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners._base import Answer, Runner, TraceEvent
from recordagent.runners.full_context import FullContext
from recordagent.runners.iterative import IterativeRag
from recordagent.runners.single_pass import SinglePassRag
from recordagent.settings import Settings
from recordagent.tools.base import ToolRegistry

__all__ = ["RUNNER_NAMES", "build_runner", "stream_run"]

RUNNER_NAMES: tuple[str, ...] = ("agent", "single_pass_rag", "iterative_rag", "full_context")


def _agent(settings: Settings, tools: ToolRegistry | None) -> Runner:
    from recordagent.runners.agent import AgentRunner  # the graph imports this package

    return AgentRunner(settings, tools)


_FACTORIES: dict[str, Callable[[Settings, ToolRegistry | None], Runner]] = {
    "agent": _agent,
    "single_pass_rag": lambda settings, _: SinglePassRag(settings),
    "iterative_rag": lambda settings, _: IterativeRag(settings),
    "full_context": lambda settings, _: FullContext(settings),
}


def build_runner(name: str, settings: Settings, tools: ToolRegistry | None = None) -> Runner:
    """The runner registered as ``name`` (``tools`` applies to the agent).

    Raises:
        UserError: No runner has that name (the message lists those there are).
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise UserError(f"unknown runner '{name}'; runners: {', '.join(RUNNER_NAMES)}")
    return factory(settings, tools)


async def stream_run(
    runner: Runner, item: EvalItem, scope: PatientScope, model: ChatModel
) -> AsyncIterator[TraceEvent | Answer]:
    """Run ``runner`` and yield its trace events as they happen, then the Answer.

    For progress displays and the interactive session; the answer is the last item.
    """
    queue: asyncio.Queue[TraceEvent] = asyncio.Queue()
    task = asyncio.create_task(runner.run(item, scope, model, on_event=queue.put_nowait))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                continue
            getter.cancel()
            break
        while not queue.empty():
            yield queue.get_nowait()
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
