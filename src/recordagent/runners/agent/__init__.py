"""The agent: a LangGraph graph that plans, calls record tools, reflects and answers.

The shared runner machinery (:mod:`recordagent.runners.base`, ``trace``, ``answering``,
``common``) sits below it; the registry above. ``build_graph`` and ``recursion_limit`` live in
:mod:`recordagent.runners.agent.graph`, imported on its own so that importing the runners does
not import LangGraph.
"""

from recordagent.runners.agent.prompts import PROMPT_VERSION
from recordagent.runners.agent.runner import AgentRunner
from recordagent.runners.agent.skeleton import record_skeleton
from recordagent.runners.agent.state import AgentContext, AgentState, EvidenceNeed, Plan, Reflection

__all__ = [
    "PROMPT_VERSION",
    "AgentContext",
    "AgentRunner",
    "AgentState",
    "EvidenceNeed",
    "Plan",
    "Reflection",
    "record_skeleton",
]
