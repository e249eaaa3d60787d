"""The agent graph's nodes: skeleton → plan → act ⇄ tools → reflect → answer.

Each node is an async function of the state and the run's :class:`AgentContext`; the model and
the tools come from the graph builder. Budgets are checked before every model call of the loop,
so a spent budget routes to the answer node (status 'truncated') instead of running into the
graph's recursion limit.

``max_wall_s`` is a hard limit on the whole run: the loop (plan, act, reflect) may use all but
``answer_reserve`` of it — a loop call still waiting when that runs out is cut off — and the
final answer gets what is left as its timeout. A plan, tool-loop reply or reflection cut off at
``max_tokens`` is treated like one that did not parse: the run goes on without it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from langgraph.runtime import Runtime

from recordagent.errors import ModelError
from recordagent.llm.client import ChatModel
from recordagent.llm.types import Completion, Message
from recordagent.runners.agent import prompts
from recordagent.runners.agent.as_of import bound_call
from recordagent.runners.agent.skeleton import record_skeleton
from recordagent.runners.agent.state import (
    AgentContext,
    AgentState,
    EvidenceNeed,
    Plan,
    Reflection,
    StopReason,
)
from recordagent.runners.answering import question_block
from recordagent.runners.trace import WallTimeSpent, traced_arguments
from recordagent.settings import AgentSettings
from recordagent.tools.base import ToolRegistry

__all__ = ["Nodes", "budget_spent", "loop_time_left"]

# The finish tool's argument schema: its 'reason' is the model's words, kept as a length.
_FINISH_PARAMETERS: dict[str, Any] = cast(dict[str, Any], prompts.FINISH_TOOL["function"])[
    "parameters"
]


def budget_spent(
    state: AgentState, context: AgentContext, budget: AgentSettings, *, steps: bool = True
) -> StopReason | None:
    """Which budget is spent, if any: steps (unless ``steps`` is False), tokens or wall time."""
    if steps and state.get("steps", 0) >= budget.max_steps:
        return "budget:steps"
    if context.tracer.usage.total_tokens >= budget.max_tokens:
        return "budget:tokens"
    if loop_time_left(context, budget) <= 0:
        return "budget:time"
    return None


def loop_time_left(context: AgentContext, budget: AgentSettings) -> float:
    """Seconds the tool loop has left: the wall time less the final answer's reserve."""
    return budget.max_wall_s * (1.0 - budget.answer_reserve) - context.tracer.elapsed_s


def _cut_off(exc: ModelError) -> bool:
    """True for a reply cut off at max_tokens: the loop goes on as if it had not parsed."""
    return exc.cause == "output_length"


def _asking(state: AgentState, prompt: str) -> list[Message]:
    """The conversation so far and ``prompt``: what a one-off question (not kept) sends."""
    return [*state["messages"], Message(role="user", content=prompt)]


class Nodes:
    """The node functions, bound to one model, one tool registry and the agent's budgets.

    Each returns only what it changes; the messages it returns are appended to the state's.
    """

    def __init__(
        self,
        model: ChatModel,
        tools: ToolRegistry,
        budget: AgentSettings,
    ) -> None:
        self.model = model
        self.tools = tools
        self.budget = budget
        self.tool_schemas: Sequence[dict[str, Any]] = [*tools.schemas(), prompts.FINISH_TOOL]

    async def _complete(
        self, context: AgentContext, messages: list[Message], *, name: str, **options: Any
    ) -> Completion:
        """One loop call within the loop's wall time (WallTimeSpent when it runs out)."""
        return await context.tracer.complete(
            self.model,
            messages,
            name=name,
            timeout_s=max(0.0, loop_time_left(context, self.budget)),
            **options,
            **context.params,
        )

    async def skeleton(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """Open the conversation with the question and the record's skeleton."""
        context = runtime.context
        started = time.perf_counter()
        text, refs = record_skeleton(
            context.scope,
            context.tracer.tokenizer,
            self.budget.skeleton_tokens,
            until=context.item.as_of,
        )
        context.book.add(refs)
        context.tracer.record(
            "context",
            "skeleton",
            started=started,
            step="skeleton",
            result_tokens=context.tracer.tokenizer.count(text),
            refs=[r.id for r in refs],
            summary=f"record skeleton with {len(refs)} event(s)",
        )
        messages = [
            Message(role="system", content=prompts.SYSTEM),
            Message(
                role="user",
                content=prompts.SKELETON.format(
                    question=question_block(context.item), skeleton=text
                ),
            ),
        ]
        return {"messages": messages, "steps": 0, "replans": 0, "stop": None}

    async def plan(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """Decompose the question into evidence needs (a template's checklist comes first)."""
        context = runtime.context
        try:
            completion = await self._complete(
                context, _asking(state, prompts.PLAN), name="plan", response_format=Plan
            )
            parsed = completion.parsed
        except WallTimeSpent:
            parsed = None  # act notices the spent budget next
        except ModelError as exc:
            if not _cut_off(exc):
                raise
            parsed = None
        needs = list(context.item.checklist)
        if parsed is not None:
            needs.extend(n for n in parsed["needs"] if n not in needs)
        else:
            # Planning then starts from the question itself.
            context.tracer.record("error", "plan", error="plan_unparsed")
        if not needs:
            needs = [context.item.question]
        context.tracer.record("plan", "plan", summary=f"plan: {len(needs)} evidence need(s)")
        listed = "\n".join(f"{k}. {need}" for k, need in enumerate(needs, start=1))
        return {
            "needs": [EvidenceNeed(need=n) for n in needs],
            "messages": [Message(role="user", content=prompts.ACT.format(needs=listed))],
        }

    async def act(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """One model call with the tools, unless a budget is spent."""
        context = runtime.context
        spent = budget_spent(state, context, self.budget)
        if spent is not None:
            context.tracer.record("budget", "act", summary=f"{spent}: answering now")
            return {"stop": spent}
        step = state.get("steps", 0) + 1
        try:
            completion = await self._complete(
                context, state["messages"], name=f"act {step}", tools=self.tool_schemas
            )
        except WallTimeSpent:
            return {"stop": "budget:time"}
        except ModelError as exc:
            if not _cut_off(exc):
                raise
            # Nothing usable came: as a reply without tool calls, on to reflection.
            return {"steps": step, "stop": "no_tool_calls"}
        return {
            "messages": [completion.message],
            "steps": step,
            "stop": None if completion.tool_calls else "no_tool_calls",
        }

    async def run_tools(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """Run the tool calls of the last message; errors go back to the model as text."""
        context = runtime.context
        last = state["messages"][-1]
        replies: list[Message] = []
        stop: StopReason | None = None
        for call in last.tool_calls:
            if call.name == "finish":
                stop = "finished"
                context.tracer.record(
                    "tool_call",
                    "finish",
                    arguments=traced_arguments(call.arguments, _FINISH_PARAMETERS),
                    summary="finish",
                )
                replies.append(Message(role="tool", tool_call_id=call.id, content="Finished."))
                continue
            call = bound_call(call, self.tools, context.scope, context.item.as_of)
            outcome = context.tracer.call_tool(
                self.tools, context.scope, call, self.budget.tool_result_tokens
            )
            context.book.add(outcome.refs)
            status = prompts.STATUS.format(
                citable=len(context.book),
                tokens=context.tracer.usage.total_tokens,
                max_tokens=self.budget.max_tokens,
                steps_left=max(0, self.budget.max_steps - state.get("steps", 0)),
            )
            replies.append(
                Message(role="tool", tool_call_id=call.id, content=f"{outcome.text}\n{status}")
            )
        return {"messages": replies, "stop": stop}

    async def reflect(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """Check each evidence need; send the agent back to act while some are open."""
        context = runtime.context
        # The step budget is not checked here: a model that finished on its last allowed
        # step finished within budget. Open needs send it back to act, which checks it.
        if (spent := budget_spent(state, context, self.budget, steps=False)) is not None:
            context.tracer.record("budget", "reflect", summary=f"{spent}: answering now")
            return {"stop": spent}
        needs = state.get("needs", [])
        listed = "\n".join(f"{k}. {n.need}" for k, n in enumerate(needs, start=1))
        try:
            completion = await self._complete(
                context,
                _asking(state, prompts.REFLECT.format(needs=listed)),
                name="reflect",
                response_format=Reflection,
            )
        except WallTimeSpent:
            return {"stop": "budget:time"}
        except ModelError as exc:
            if not _cut_off(exc):
                raise
            context.tracer.record("error", "reflect", error="reflection_unparsed")
            return {"stop": "reflected"}
        if completion.parsed is None:
            context.tracer.record("error", "reflect", error="reflection_unparsed")
            return {"stop": "reflected"}
        reflection = Reflection.model_validate(completion.parsed)
        open_needs = [n for n in reflection.needs if n.status == "open"]
        met = sum(1 for n in reflection.needs if n.status == "met")
        absent = sum(1 for n in reflection.needs if n.status == "absent")
        context.tracer.record(
            "reflect",
            "reflect",
            summary=f"{met} met, {absent} absent, {len(open_needs)} open",
        )
        replans = state.get("replans", 0)
        if not open_needs or replans >= self.budget.max_replans:
            return {"needs": reflection.needs, "stop": "reflected"}
        listed_open = "\n".join(f"- {n.need}" for n in open_needs)
        next_step = f"Next: {reflection.next_step}\n" if reflection.next_step else ""
        return {
            "needs": reflection.needs,
            "replans": replans + 1,
            "stop": None,
            "messages": [
                Message(
                    role="user",
                    content=prompts.CONTINUE.format(needs=listed_open, next_step=next_step),
                )
            ],
        }

    async def answer(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        """The structured final answer; a spent budget makes it 'truncated'."""
        context = runtime.context
        stop = state.get("stop") or "finished"
        truncated = stop.startswith("budget:")
        instruction = (
            prompts.BUDGET_SPENT.format(reason=stop.removeprefix("budget:"))
            if truncated
            else prompts.ANSWER
        )
        answer = await context.runner.answer_now(
            _asking(state, instruction),
            context.item,
            self.model,
            context.tracer,
            context.book,
            truncated=truncated,
            # The rest of the wall time: when it runs out, the answer is 'truncated'.
            timeout_s=max(0.0, self.budget.max_wall_s - context.tracer.elapsed_s),
            details={
                "stop": stop,
                "steps": state.get("steps", 0),
                "replans": state.get("replans", 0),
                # The needs are the model's words: the answer keeps their statuses and lengths.
                "needs": [n.model_dump() for n in state.get("needs", [])],
            },
        )
        return {"answer": answer}
