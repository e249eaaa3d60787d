"""The agent graph over the tool fixture with the scripted mock model: control flow, citations,
budgets, recovery from bad tool calls, streaming."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.llm import Completion, Message, MockModel, ToolCall
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners import AgentRunner, Answer, TraceEvent, stream_run
from recordagent.runners.agent import record_skeleton
from recordagent.runners.agent.graph import build_graph
from recordagent.settings import Settings
from recordagent.tools import default_registry
from tests.helpers import asct_item, final

PLAN = {"json": {"needs": ["date of the ASCT"]}}
MET = {"json": {"needs": [{"need": "date of the ASCT", "status": "met", "evidence": ["EA3"]}]}}


def tools(*calls: tuple[str, object]) -> dict[str, object]:
    return {"tool_calls": list(calls)}


def tool_messages(model: MockModel, k: int) -> list[str]:
    return [m.content or "" for m in model.requests[k].messages if m.role == "tool"]


async def test_plan_act_reflect_answer(scope_a: PatientScope, settings):
    model = MockModel(
        [
            PLAN,
            tools(("search_documents", {"query": "autologous stem cell transplantation"})),
            tools(("get_timeline", {"kinds": ["transplant"]}), ("finish", {"reason": "found"})),
            MET,
            final("2020-06-15", ["EA3", "A-D3:0", "A-D3"]),
        ]
    )
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    assert {(c.kind, c.id) for c in answer.citations} == {
        ("event", "EA3"),
        ("chunk", "A-D3:0"),
        ("document", "A-D3"),
    }
    assert [r.schema_name for r in model.requests] == [
        "Plan",
        None,
        None,
        "Reflection",
        "FinalAnswer",
    ]
    # The skeleton comes first; the tool loop sees every tool plus finish.
    first = model.requests[0].messages[1].content or ""
    assert "The record at a glance" in first and "[EA3]" in first
    assert {t["function"]["name"] for t in model.requests[1].tools or []} == {
        "get_timeline",
        "search_documents",
        "query_labs",
        "list_analytes",
        "read_document",
        "finish",
    }
    kinds = [(e.kind, e.name) for e in answer.trace]
    assert kinds == [
        ("context", "skeleton"),
        ("model_call", "plan"),
        ("plan", "plan"),
        ("model_call", "act 1"),
        ("tool_call", "search_documents"),
        ("model_call", "act 2"),
        ("tool_call", "get_timeline"),
        ("tool_call", "finish"),
        ("model_call", "reflect"),
        ("reflect", "reflect"),
        ("model_call", "answer"),
        ("answer", "answer"),
    ]
    search = next(e for e in answer.trace if e.name == "search_documents")
    # Free text a model wrote may quote the record: traces keep its length only.
    assert search.arguments == {"query": "<36 characters>"}
    assert "A-D3:0" in search.refs and search.result_tokens and search.duration_s > 0
    assert answer.details["stop"] == "reflected" and answer.details["steps"] == 2
    assert answer.usage.model_calls == 5 and answer.usage.tool_calls == 2
    # Every tool result ends with the status line.
    assert all("[status:" in text for text in tool_messages(model, 2))
    assert answer.prompt_version.startswith("agent-")


async def test_only_ids_seen_in_tool_results_can_be_cited(scope_a: PatientScope, settings):
    model = MockModel(
        [
            PLAN,
            tools(("search_documents", {"query": "ASCT"}), ("finish", {})),
            MET,
            # EA3 was in the skeleton; A-D4 and patient B's ids were never shown.
            final("2020-06-15", ["EA3", "A-D4", "B-D1", "EB1", "LB1"]),
        ]
    )
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    assert [c.id for c in answer.citations] == ["EA3"]
    removed = next(e for e in answer.trace if e.kind == "citation_removed")
    assert removed.refs == ["A-D4", "B-D1", "EB1", "LB1"]


async def test_a_step_budget_ends_in_truncated_with_the_best_answer(scope_a: PatientScope):
    small = Settings(runners={"agent": {"max_steps": 3}})

    def script(request):
        if request.schema_name == "Plan":
            return PLAN
        if request.schema_name == "FinalAnswer":
            return final("2020-06-15", ["EA3"])
        return tools(("search_documents", {"query": "transplant"}))  # never finishes

    model = MockModel(script)
    answer = await AgentRunner(small).run(asct_item(), scope_a, model)
    assert answer.status == "truncated"
    assert answer.value == dt.date(2020, 6, 15)
    assert answer.details["stop"] == "budget:steps" and answer.details["steps"] == 3
    budget = [e for e in answer.trace if e.kind == "budget"]
    assert budget and "budget:steps" in budget[0].summary
    assert "budget for this question is spent" in (model.requests[-1].messages[-1].content or "")


async def test_a_long_step_budget_never_hits_the_recursion_limit(scope_a: PatientScope):
    many = Settings(
        runners={"agent": {"max_steps": 40, "max_replans": 5, "max_tokens": 10_000_000}}
    )

    def script(request):
        if request.schema_name == "Plan":
            return PLAN
        if request.schema_name == "Reflection":
            return {"json": {"needs": [{"need": "date of the ASCT", "status": "open"}]}}
        if request.schema_name == "FinalAnswer":
            return final(None, [], "insufficient_evidence")
        return tools(("get_timeline", {}))

    answer = await AgentRunner(many).run(asct_item(), scope_a, MockModel(script))
    assert answer.status == "truncated" and answer.details["steps"] == 40
    assert answer.details["stop"] == "budget:steps"


async def test_token_and_time_budgets(scope_a: PatientScope):
    def script(request):
        if request.schema_name == "Plan":
            return PLAN
        if request.schema_name == "FinalAnswer":
            return final(None, [], "insufficient_evidence")
        return tools(("get_timeline", {}))

    tight = Settings(runners={"agent": {"max_tokens": 4_000}})
    answer = await AgentRunner(tight).run(asct_item(), scope_a, MockModel(script))
    assert answer.status == "truncated" and answer.details["stop"] == "budget:tokens"
    assert answer.details["steps"] < 12

    hurried = Settings(runners={"agent": {"max_wall_s": 1e-9}})
    answer = await AgentRunner(hurried).run(asct_item(), scope_a, MockModel(script))
    assert answer.status == "truncated" and answer.details["stop"] == "budget:time"
    assert answer.details["steps"] == 0


async def test_bad_tool_calls_and_tool_errors_go_back_as_corrective_text(scope_a, settings):
    model = MockModel(
        [
            PLAN,
            tools(
                ("query_labs", {"analyte": "Mprot"}),
                ("query_labs", '{"analyte": "M-protein",'),  # malformed JSON
                ("delete_record", {}),
                ("read_document", {"document_id": "B-D1"}),  # another patient's document
            ),
            tools(("query_labs", {"analyte": "M-protein"}), ("finish", {})),
            MET,
            final("2020-06-15", ["LA3"]),
        ]
    )
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered"
    corrective = tool_messages(model, 2)
    assert "closest in this record: 'M-protein'" in corrective[0]
    assert "not valid JSON" in corrective[1]
    assert "unknown tool 'delete_record'" in corrective[2]
    assert "B-D1" in corrective[3] and "Patient B" not in corrective[3]
    assert "FISH" not in corrective[3]  # nothing of patient B's document leaks
    errors = [e for e in answer.trace if e.kind == "tool_call" and e.error]
    assert len(errors) == 4
    # The corrected call then worked and its lab rows became citable.
    assert [c.id for c in answer.citations] == ["LA3"]


async def test_reflection_sends_the_agent_back_while_needs_are_open(scope_a, settings):
    open_need = {
        "json": {
            "needs": [{"need": "date of the ASCT", "status": "open"}],
            "next_step": "search for melphalan",
        }
    }
    model = MockModel(
        [
            PLAN,
            tools(("finish", {})),
            open_need,
            tools(("search_documents", {"query": "melphalan"}), ("finish", {})),
            MET,
            final("2020-06-15", ["EA3"]),
        ]
    )
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered" and answer.details["replans"] == 1
    continued = model.requests[3].messages[-1].content or ""
    assert "Still open" in continued and "search for melphalan" in continued
    needs = answer.details["needs"]
    assert needs[0]["status"] == "met"


async def test_replans_are_bounded(scope_a: PatientScope):
    none = Settings(runners={"agent": {"max_replans": 0}})
    model = MockModel(
        [
            PLAN,
            tools(("finish", {})),
            {"json": {"needs": [{"need": "date of the ASCT", "status": "open"}]}},
            final(None, [], "insufficient_evidence"),
        ]
    )
    answer = await AgentRunner(none).run(asct_item(), scope_a, model)
    assert answer.status == "insufficient_evidence" and answer.details["replans"] == 0


async def test_a_text_reply_without_tools_goes_to_reflection(scope_a, settings):
    model = MockModel([PLAN, "I think I know.", MET, final("2020-06-15", ["EA3"])])
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    assert answer.details["stop"] == "reflected" and answer.status == "answered"
    assert model.requests[2].schema_name == "Reflection"


async def test_a_checklist_seeds_the_plan_and_unparseable_plans_fall_back(scope_a, settings):
    item = asct_item(checklist=("serum M-protein", "bone marrow plasma cells"))
    silent = final(None, [], "insufficient_evidence")
    model = MockModel(["no plan here", tools(("finish", {})), MET, silent])
    answer = await AgentRunner(settings).run(item, scope_a, model)
    plan_prompt = model.requests[1].messages[-1].content or ""
    assert "1. serum M-protein" in plan_prompt and "2. bone marrow plasma cells" in plan_prompt
    assert any(e.kind == "error" and e.name == "plan" for e in answer.trace)


async def test_model_failure_is_a_failed_answer(scope_a: PatientScope, settings):
    answer = await AgentRunner(settings).run(asct_item(), scope_a, MockModel([PLAN]))
    assert answer.status == "failed" and "model error" in answer.text
    assert answer.trace[-1].kind == "error"


async def test_events_stream_as_they_happen(scope_a: PatientScope, settings):
    model = MockModel(
        [PLAN, tools(("get_timeline", {}), ("finish", {})), MET, final("2020-06-15", ["EA3"])]
    )
    seen: list[TraceEvent | Answer] = []
    async for event in stream_run(AgentRunner(settings), asct_item(), scope_a, model):
        seen.append(event)
    assert isinstance(seen[-1], Answer)
    events = [e for e in seen if isinstance(e, TraceEvent)]
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.kind for e in events] == [e.kind for e in seen[-1].trace]
    assert any(e.kind == "tool_call" and "get_timeline" in e.summary for e in events)

    callback: list[TraceEvent] = []
    model = MockModel([PLAN, tools(("finish", {})), MET, final("2020-06-15", ["EA3"])])
    await AgentRunner(settings).run(asct_item(), scope_a, model, on_event=callback.append)
    assert [e.kind for e in callback][:3] == ["context", "model_call", "plan"]


async def test_trace_and_answer_hold_ids_not_record_text(scope_a: PatientScope, settings):
    quoted = "del(17p) detected in 45% of nuclei"
    model = MockModel(
        [
            PLAN,
            tools(
                ("read_document", {"document_id": "A-D1"}),
                ("search_documents", {"query": quoted}),
                ("finish", {"reason": f"FISH: {quoted}"}),
            ),
            MET,
            final("2020-06-15", ["A-D1"]),
        ]
    )
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    dumped = "".join(e.model_dump_json() for e in answer.trace)
    assert quoted not in dumped and "45%" not in dumped
    document = scope_a.document("A-D1")
    assert document is not None
    for line in document.text.splitlines():
        if len(line) > 20:
            assert line not in dumped


def test_build_graph_is_a_langgraph_graph(settings):
    graph = build_graph(settings, MockModel([]), default_registry())
    nodes = set(graph.get_graph().nodes)
    assert {"skeleton", "plan", "act", "tools", "reflect", "answer"} <= nodes


def test_the_skeleton_shows_what_exists_and_when(scope_a: PatientScope):
    text, refs = record_skeleton(scope_a, Tokenizer(), 2_500)
    assert "Patient A: female, born 1950-01-01." in text
    assert "4 document(s), 11 lab value(s) of 3 analyte(s), 4 event(s)" in text
    assert "- outpatient visit note ×2 (2020-09-01 … 2021-06-01)" in text
    assert "- M-protein ×6 (2020-01-04 … 2021-06-01)" in text
    assert "2020-01-20 → 2020-05-10 therapy: VRd (line 1) [EA2]" in text
    assert [r.id for r in refs] == ["EA1", "EA2", "EA3", "EA4"]
    early, early_refs = record_skeleton(scope_a, Tokenizer(), 2_500, until=dt.date(2020, 2, 1))
    assert [r.id for r in early_refs] == ["EA1", "EA2"] and "Dara-Pd" not in early
    short, short_refs = record_skeleton(scope_a, Tokenizer(), 200)
    assert Tokenizer().count(short) <= 260 and len(short_refs) <= 4


async def test_a_model_with_a_bad_tool_call_object_is_handled(scope_a, settings):
    # A ready Completion whose tool call could not be parsed upstream.
    broken = Completion(
        message=Message(
            role="assistant",
            tool_calls=(
                ToolCall(id="c1", name="search_documents", raw_arguments="{", error="bad JSON"),
            ),
        ),
        model="mock",
    )
    silent = final(None, [], "insufficient_evidence")
    model = MockModel([PLAN, broken, tools(("finish", {})), MET, silent])
    answer = await AgentRunner(settings).run(asct_item(), scope_a, model)
    reply = tool_messages(model, 2)[0]
    assert reply.startswith("Error: bad JSON\n[status:")
    assert answer.status == "insufficient_evidence"


@pytest.mark.parametrize("name", ["agent", "single_pass_rag", "iterative_rag", "full_context"])
async def test_every_runner_runs_the_dry_run_policy(name, scope_a, settings):
    from recordagent.runners import build_runner
    from recordagent.runners.dry_run import DRY_RUN_TEXT, dry_run_model

    answer = await build_runner(name, settings).run(asct_item(), scope_a, dry_run_model(steps=3))
    assert answer.runner == name and answer.mock
    assert answer.status == "insufficient_evidence" and answer.text == DRY_RUN_TEXT
    assert len(answer.citations) >= 1  # the dry run cites the first id it was shown
    assert answer.usage.prompt_tokens > 0 and not answer.usage.tokens_reported
    # The trace accounts for every model and tool call, with tokens and timings.
    calls = [e for e in answer.trace if e.kind == "model_call"]
    tools_run = [e for e in answer.trace if e.kind == "tool_call" and e.name != "finish"]
    assert len(calls) == answer.usage.model_calls
    assert sum(e.prompt_tokens or 0 for e in calls) == answer.usage.prompt_tokens
    assert sum(e.completion_tokens or 0 for e in calls) == answer.usage.completion_tokens
    assert len(tools_run) == answer.usage.tool_calls
    assert all(e.result_tokens and e.duration_s > 0 for e in tools_run)
    assert all(e.duration_s >= 0 and e.started_s >= 0 for e in answer.trace)
    assert [e.seq for e in answer.trace] == list(range(len(answer.trace)))


async def test_a_consumer_that_stops_early_cancels_the_run(scope_a, settings):
    from recordagent.runners.dry_run import dry_run_model

    stream = stream_run(AgentRunner(settings), asct_item(), scope_a, dry_run_model(steps=5))
    first = await anext(stream)
    assert isinstance(first, TraceEvent) and first.kind == "context"
    await stream.aclose()  # must not leave the run going or raise


async def test_as_of_bounds_every_tool_call(scope_a: PatientScope, settings):
    item = asct_item(as_of=dt.date(2020, 3, 1))
    model = MockModel(
        [
            PLAN,
            tools(
                ("search_documents", {"query": "ASCT Revlimid relapse"}),
                ("query_labs", {"analyte": "M-protein", "end": "2022-01-01"}),
                ("get_timeline", {}),
                ("read_document", {"document_id": "A-D3"}),
                ("read_document", {"document_id": "A-D2"}),
            ),
            tools(("finish", {})),
            MET,
            final(None, ["A-D3:0", "EA3", "LA1"], "insufficient_evidence"),
        ]
    )
    answer = await AgentRunner(settings).run(item, scope_a, model)
    search, labs, timeline, later, earlier = tool_messages(model, 2)
    assert "A-D3" not in search and "A-D4" not in search
    assert "2020-01-04" in labs and "2020-03-01" in labs and "2020-06-01" not in labs
    assert "EA2" in timeline and "EA3" not in timeline and "A-D3" not in timeline
    assert "written on 2020-09-01, after 2020-03-01" in later
    assert "Tumour board" in earlier or "tumour board" in earlier
    calls = [e for e in answer.trace if e.kind == "tool_call" and e.name == "query_labs"]
    # The log keeps the date bound and only the length of the model-written analyte.
    assert calls[0].arguments == {"analyte": "<9 characters>", "end": "2020-03-01"}
    # Nothing after the as-of day was shown, so nothing after it can be cited.
    assert [c.id for c in answer.citations] == ["LA1"]


async def test_rows_cut_from_a_tool_result_cannot_be_cited(scope_a: PatientScope):
    tight = Settings(runners={"agent": {"tool_result_tokens": 160}})
    model = MockModel(
        [
            PLAN,
            tools(
                ("search_documents", {"query": "FISH tumour board ASCT transplant"}), ("finish", {})
            ),
            MET,
            final("2020-06-15", ["A-D1:0", "A-D2:0", "A-D3:0", "A-D3"]),
        ]
    )
    answer = await AgentRunner(tight).run(asct_item(), scope_a, model)
    shown = tool_messages(model, 2)[0]
    assert "more line(s) not shown" in shown
    # Only the first hit (the tumour board protocol) was shown; the others were cut.
    assert [c.id for c in answer.citations] == ["A-D2:0"]
    removed = next(e for e in answer.trace if e.kind == "citation_removed")
    assert removed.refs == ["A-D1:0", "A-D3:0", "A-D3"]


async def test_a_finish_on_the_last_allowed_step_is_not_truncated(scope_a: PatientScope):
    two = Settings(runners={"agent": {"max_steps": 2}})
    model = MockModel(
        [
            PLAN,
            tools(("get_timeline", {})),
            tools(("finish", {})),
            MET,
            final("2020-06-15", ["EA3"]),
        ]
    )
    answer = await AgentRunner(two).run(asct_item(), scope_a, model)
    assert answer.status == "answered" and answer.details["stop"] == "reflected"
    assert model.requests[3].schema_name == "Reflection"


async def test_the_wall_budget_cuts_a_slow_model_call(scope_a: PatientScope):
    import asyncio

    from recordagent.llm import MockRequest

    class Slow(MockModel):
        async def complete(self, messages, tools=None, response_format=None, **params):
            if tools:  # the tool loop's calls hang
                await asyncio.sleep(5)
            return await super().complete(messages, tools, response_format, **params)

    def script(request: MockRequest):
        if request.schema_name == "Plan":
            return PLAN
        return final(None, [], "insufficient_evidence")

    hurried = Settings(runners={"agent": {"max_wall_s": 0.3}})
    answer = await asyncio.wait_for(
        AgentRunner(hurried).run(asct_item(), scope_a, Slow(script)), timeout=3
    )
    assert answer.status == "truncated" and answer.details["stop"] == "budget:time"
    assert answer.usage.wall_s < 1.0


async def test_as_of_cannot_be_bypassed_with_a_timestamp(scope_a: PatientScope, settings):
    item = asct_item(as_of=dt.date(2020, 3, 1))
    model = MockModel(
        [
            PLAN,
            tools(
                ("get_timeline", {"end": 1735689600}),
                ("search_documents", {"query": "relapse visit", "end": "1735689600"}),
                ("query_labs", {"analyte": "M-protein", "end": "2030-01-01T00:00:00"}),
            ),
            tools(("finish", {})),
            MET,
            final(None, [], "insufficient_evidence"),
        ]
    )
    await AgentRunner(settings).run(item, scope_a, model)
    timeline, search, labs = tool_messages(model, 2)
    assert "EA3" not in timeline and "A-D3" not in timeline
    assert "A-D4" not in search and "A-D3" not in search
    assert "2020-06-01" not in labs and "2021-06-01" not in labs
    # The therapy line running past the as-of day does not give its later stop date away.
    assert "2020-05-10" not in timeline and "2020-05-10" not in (
        model.requests[0].messages[1].content or ""
    )
