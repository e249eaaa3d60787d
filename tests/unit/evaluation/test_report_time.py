"""The report's 'Where the time went' and 'Model failures by cause' tables, from run records
whose answers carry traces and failures."""

from __future__ import annotations

import pytest
from rich.console import Console

from recordagent.evaluation.log import RunRecord
from recordagent.evaluation.report import (
    build_report,
    render_html,
    render_markdown,
    render_terminal,
)
from recordagent.runners import TraceEvent
from tests.unit.evaluation.report_data import ITEMS, REFERENCES, make_record, manifest


def _event(seq: int, kind: str, name: str, step: str, duration: float, **fields) -> TraceEvent:
    return TraceEvent(
        seq=seq, kind=kind, name=name, started_s=0.0, duration_s=duration, step=step, **fields
    )


def _traced(record: RunRecord, *events: TraceEvent, failure: str | None = None) -> RunRecord:
    update = {"trace": list(events), "failure": failure}
    return record.model_copy(update={"answer": record.answer.model_copy(update=update)})


def _records() -> list[RunRecord]:
    call = {"prompt_tokens": 1_000, "completion_tokens": 50, "attempts": 1}
    plan = _event(0, "model_call", "plan", "plan", 1.0, **call)
    act = _event(1, "model_call", "act 1", "act", 2.0, **(call | {"attempts": 2}))
    tool = _event(2, "tool_call", "get_timeline", "tool", 0.25)
    answer = _event(3, "model_call", "answer", "answer", 0.5, **call)
    timeout = _event(3, "error", "answer", "answer", 0.5, error="timeout", attempts=1)
    return [
        _traced(make_record(ITEMS[0], "agent", 0, wall=4.0), plan, act, tool, answer),
        _traced(make_record(ITEMS[1], "agent", 1, wall=4.0), plan, act, tool, answer),
        _traced(
            make_record(ITEMS[2], "agent", None, status="failed", wall=4.0),
            plan,
            act,
            tool,
            timeout,
            failure="timeout",
        ),
        _traced(
            make_record(ITEMS[3], "agent", None, status="failed", wall=1.0),
            _event(0, "error", "plan", "plan", 1.0, error="context_overflow", attempts=1),
            failure="context_overflow",
        ),
    ]


def test_each_runner_says_where_its_time_went():
    report = build_report([(manifest("agent"), _records())], REFERENCES, n_boot=20)
    agent = report.runner("agent")
    steps = {s.step: s for s in agent.time_by_step}
    assert list(steps) == ["plan", "act", "tool", "answer", "other"]
    assert (steps["act"].calls, steps["act"].requests, steps["act"].seconds) == (3, 6, 6.0)
    assert steps["act"].prompt_tokens == 3_000 and steps["act"].wall_share == pytest.approx(6 / 13)
    assert (steps["plan"].items, steps["plan"].median_item_s) == (4, 1.0)
    assert steps["tool"].requests == 0 and not steps["tool"].model
    # 3 × (4 − 3.75) seconds no step accounts for.
    assert steps["other"].seconds == pytest.approx(0.75) and steps["other"].items == 3
    assert agent.failures == {"timeout": 1, "context_overflow": 1}


def test_the_time_and_failure_tables_in_every_rendering():
    report = build_report([(manifest("agent"), _records())], REFERENCES, n_boot=20)
    markdown = render_markdown(report)
    assert "## Where the time went" in markdown
    assert "| agent | act | 3 | 3 | 6 | 3,000 | 150 | 6.0 | 2.00 | 46.2% |" in markdown
    assert "| agent | tool | 3 | 3 | — | — | — | 0.8 | 0.25 | 5.8% |" in markdown
    assert "## Model failures by cause" in markdown
    assert "| runner | failed | timeout | context overflow |" in markdown
    assert "| agent | 2 | 1 | 1 |" in markdown
    page = render_html(report)
    assert "<h2>Where the time went</h2>" in page and "<h2>Model failures by cause</h2>" in page
    console = Console(record=True, width=220)
    render_terminal(report, console)
    text = console.export_text()
    assert "Where the time went" in text and "Model failures by cause" in text


def test_runs_without_traces_or_failures_show_neither_table():
    records = [make_record(item, "agent", k) for k, item in enumerate(ITEMS[:3])]
    report = build_report([(manifest("agent"), records)], REFERENCES, n_boot=20)
    agent = report.runner("agent")
    assert agent.failures == {}
    assert agent.time_by_step == []
    markdown = render_markdown(report)
    assert "Model failures by cause" not in markdown and "Where the time went" not in markdown


def test_the_usage_table_counts_http_requests_beside_model_calls():
    records = []
    for k, item in enumerate(ITEMS[:3]):
        record = make_record(item, "agent", k)
        usage = record.answer.usage.model_copy(update={"requests": 3})
        records.append(
            record.model_copy(update={"answer": record.answer.model_copy(update={"usage": usage})})
        )
    report = build_report([(manifest("agent"), records)], REFERENCES, n_boot=20)
    assert report.runner("agent").usage.requests == 9
    assert "| 3 / 9 / 6 |" in render_markdown(report)
