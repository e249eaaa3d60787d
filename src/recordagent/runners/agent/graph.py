"""build_graph: the agent as a LangGraph StateGraph. Nothing is built at import time.

skeleton → plan → act ⇄ tools
↓ (finish, no tool call)   ↓ (budget spent)
reflect → act (needs open, replans left)
↓                          ↓
answer ←─────────────────────┘
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from recordagent.llm.client import ChatModel
from recordagent.runners.agent.nodes import Nodes
from recordagent.runners.agent.state import AgentContext, AgentState
from recordagent.settings import AgentSettings, Settings
from recordagent.tools.base import ToolRegistry

__all__ = ["build_graph", "recursion_limit"]


def recursion_limit(budget: AgentSettings) -> int:
    """A LangGraph recursion limit the budgets always reach first.

    Every act step is at most two supersteps (act, tools); reflection adds one per round; the
    skeleton, plan, budget exit and answer add four. The margin keeps GraphRecursionError for
    real bugs (a routing loop), never for a long question.
    """
    return 2 * budget.max_steps + 2 * (budget.max_replans + 1) + 10


def build_graph(
    settings: Settings, model: ChatModel, tools: ToolRegistry, *, name: str = "agent"
) -> Any:
    """The compiled agent graph for ``model`` and ``tools``, with its :func:`recursion_limit`.

    Invoke it with ``context=AgentContext(...)`` per run; the final state holds ``answer``.
    """
    budget = settings.runners.agent
    nodes = Nodes(model, tools, budget)
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("skeleton", nodes.skeleton)
    graph.add_node("plan", nodes.plan)
    graph.add_node("act", nodes.act)
    graph.add_node("tools", nodes.run_tools)
    graph.add_node("reflect", nodes.reflect)
    graph.add_node("answer", nodes.answer)
    graph.add_edge(START, "skeleton")
    graph.add_edge("skeleton", "plan")
    graph.add_edge("plan", "act")
    graph.add_conditional_edges("act", _after_act, ["tools", "reflect", "answer"])
    graph.add_conditional_edges("tools", _after_tools, ["act", "reflect"])
    graph.add_conditional_edges("reflect", _after_reflect, ["act", "answer"])
    graph.add_edge("answer", END)
    return graph.compile(name=name).with_config(recursion_limit=recursion_limit(budget))


def _budget_stop(state: AgentState) -> bool:
    return (state.get("stop") or "").startswith("budget:")


def _after_act(state: AgentState) -> str:
    if _budget_stop(state):
        return "answer"
    if state.get("stop") == "no_tool_calls":
        return "reflect"
    return "tools"


def _after_tools(state: AgentState) -> str:
    return "reflect" if state.get("stop") == "finished" else "act"


def _after_reflect(state: AgentState) -> str:
    return "act" if state.get("stop") is None else "answer"
