"""The agent: a LangGraph graph that plans, calls record tools, reflects and answers."""

from recordagent.agent.graph import build_graph, recursion_limit
from recordagent.agent.prompts import PROMPT_VERSION
from recordagent.agent.skeleton import record_skeleton
from recordagent.agent.state import AgentContext, AgentState, EvidenceNeed, Plan, Reflection

__all__ = [
    "PROMPT_VERSION",
    "AgentContext",
    "AgentState",
    "EvidenceNeed",
    "Plan",
    "Reflection",
    "build_graph",
    "record_skeleton",
    "recursion_limit",
]
