"""Runners by name: what run logs record and the command line accepts.

One table (:data:`RUNNERS`) names every runner; the names, the help texts and the error for an
unknown name all come from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType

from recordagent.errors import UserError
from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners.agent import AgentRunner
from recordagent.runners.base import Answer, Runner, TraceEvent
from recordagent.runners.full_context import FullContext
from recordagent.runners.iterative import IterativeRag
from recordagent.runners.single_pass import SinglePassRag
from recordagent.settings import Settings
from recordagent.tools.base import ToolRegistry

__all__ = [
    "RUNNERS",
    "RUNNER_NAMES",
    "RunnerFactory",
    "build_runner",
    "runner_factory",
    "stream_run",
]

RunnerFactory = Callable[[Settings, ToolRegistry | None], Runner]
"""Builds a runner from the settings (and the agent's tool registry, when one is given)."""

RUNNERS: Mapping[str, RunnerFactory] = MappingProxyType(
    {
        "agent": AgentRunner,
        "single_pass_rag": lambda settings, _: SinglePassRag(settings),
        "iterative_rag": lambda settings, _: IterativeRag(settings),
        "full_context": lambda settings, _: FullContext(settings),
    }
)
"""Every runner by its registered name, in the order help texts and reports list them.

Read-only: a runner is added in this table, so that its name reaches RUNNER_NAMES, the command
line and the error messages together.
"""

RUNNER_NAMES: tuple[str, ...] = tuple(RUNNERS)


def runner_factory(name: str) -> RunnerFactory:
    """The factory registered as ``name``.

    Raises:
        UserError: No runner has that name (the message lists those there are).
    """
    factory = RUNNERS.get(name)
    if factory is None:
        raise UserError(f"unknown runner '{name}'; runners: {', '.join(RUNNER_NAMES)}")
    return factory


def build_runner(name: str, settings: Settings, tools: ToolRegistry | None = None) -> Runner:
    """The runner registered as ``name`` (``tools`` applies to the agent).

    Raises:
        UserError: No runner has that name (the message lists those there are).
    """
    return runner_factory(name)(settings, tools)


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
