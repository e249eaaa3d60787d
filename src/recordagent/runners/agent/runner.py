"""AgentRunner: the agent graph behind the Runner protocol.

LangGraph takes about half a second to import, so :mod:`~recordagent.runners.agent.graph` (and
LangGraph with it) is imported when a runner builds its first graph, not with ``recordagent``.
"""

from __future__ import annotations

from typing import Any

from recordagent.llm.client import ChatModel
from recordagent.questions.items import EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners.agent import prompts
from recordagent.runners.agent.state import AgentContext
from recordagent.runners.base import Answer, EventSink
from recordagent.runners.common import TracedRunner, step_params
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.trace import Tracer
from recordagent.settings import Settings
from recordagent.tools import default_registry, lab_catalogue
from recordagent.tools.base import ToolRegistry

__all__ = ["AgentRunner"]


class AgentRunner(TracedRunner):
    """Skeleton → plan → act (tool loop) → reflect → answer, within budgets."""

    name = "agent"
    prompt_version = prompts.PROMPT_VERSION

    def __init__(self, settings: Settings, tools: ToolRegistry | None = None) -> None:
        super().__init__(settings)
        self.tools = tools or default_registry(lab_catalogue(settings.tools.lab_catalogue_paths))
        # The graph for the model last used: a run uses one model, and keeping every model
        # ever passed would keep their clients (and a mock's recorded prompts) alive.
        self._graph: tuple[ChatModel, Any] | None = None

    def graph(self, model: ChatModel) -> Any:
        """The compiled graph for ``model`` (built when the model changes)."""
        if self._graph is None or self._graph[0] is not model:
            # Imported on first use: see the module's docstring.
            from recordagent.runners.agent.graph import build_graph

            self._graph = (model, build_graph(self.settings, model, self.tools, name=self.name))
        return self._graph[1]

    async def run(
        self,
        item: EvalItem,
        scope: PatientScope,
        model: ChatModel,
        on_event: EventSink | None = None,
    ) -> Answer:
        """Answer ``item``; the graph is built first, outside the run's wall time.

        The first graph of a process imports LangGraph (about a second): a cost of the
        process, not of the item, which must not eat into ``max_wall_s``.
        """
        self.graph(model)
        return await super().run(item, scope, model, on_event)

    async def answer(
        self, item: EvalItem, scope: PatientScope, model: ChatModel, tracer: Tracer
    ) -> Answer:
        """Run the agent graph for ``item``; the final state holds the answer."""
        context = AgentContext(
            runner=self,
            item=item,
            scope=scope,
            tracer=tracer,
            book=EvidenceBook(),
            params=step_params(self.settings.runners),
        )
        final = await self.graph(model).ainvoke({}, context=context)
        answer: Answer = final["answer"]
        return answer
