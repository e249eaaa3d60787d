"""Renderings: the header, step lines, answers, sparklines, the mock loop end to end."""

from __future__ import annotations

import asyncio
import os
import signal

from recordagent.chat import ChatSession
from recordagent.chat.loop import ask_cancellable, run_loop
from recordagent.chat.render import render_header, render_step, sparkline
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.runners import TraceEvent
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings
from tests.conftest import write_csv
from tests.unit.chat.conftest import asct_script, make_session, output, recording_console


def test_header_shows_demographics_span_counts_and_therapy_lines(store):
    console = recording_console()
    console.print(render_header(store.scope("A")))
    text = output(console)
    assert "Patient A" in text and "female, born 1950-01-01" in text
    assert "documents" in text and "labs" in text and "events" in text
    assert "VRd (line 1)" in text and "Dara-Pd (line 2)" in text
    assert "Autologous stem cell transplantation" in text


def test_header_of_an_empty_record(tmp_path):
    bundle = tmp_path / "bundle"
    write_csv(bundle, "patients", [{"patient_id": "E", "sex": "male", "birth_date": None}])
    with connect() as store:
        load_bundle(store, bundle)
        console = recording_console()
        console.print(render_header(store.scope("E")))
    text = output(console)
    assert "record empty" in text and "This record is empty" in text


def test_step_lines_are_compact_and_model_calls_stay_in_the_trace():
    tool = TraceEvent(seq=1, kind="tool_call", name="query_labs", started_s=0, summary="q → 3 rows")
    assert str(render_step(tool)).strip().startswith("· tool")
    failed = TraceEvent(seq=2, kind="error", name="plan", started_s=0, error="bad json")
    assert str(render_step(failed)) == "  ! plan: bad json"
    call = TraceEvent(seq=3, kind="model_call", name="act 1", started_s=0)
    assert render_step(call) is None


def test_sparkline():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([2, 2]) == "▄▄" and sparkline([]) == ""


async def test_an_answer_is_printed_with_status_and_numbered_citations(store):
    session = make_session(store, asct_script())
    console = recording_console()
    await ask_cancellable(session, "When was the ASCT?", console)
    text = output(console)
    assert "· plan" in text and "· tool      search_documents(" in text and "· reflect" in text
    assert "Answer [answered]" in text
    assert "[1] transplant Autologous stem cell transplantation 2020-06-15 (event EA3)" in text
    assert "mock model: not a model's answer" in text


async def test_cancelling_a_run_returns_to_the_session(store):
    started = asyncio.Event()

    async def slow(*args, **kwargs):
        started.set()
        await asyncio.sleep(30)

    session = make_session(store, [])
    session.runner.run = slow  # type: ignore[method-assign]
    console = recording_console()
    task = asyncio.create_task(ask_cancellable(session, "slow?", console))
    await started.wait()
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: cancels the run's task, not the session's
    assert await task is None
    assert "cancelled" in output(console) and session.turns == []


async def test_the_loop_on_the_dry_run_mock(store, tmp_path):
    session = ChatSession(store.scope("A"), Settings(), dry_run_model())
    lines = iter(["When was the ASCT?", "/cite 1", f"/export {tmp_path / 's.md'}"])

    async def read() -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    console = recording_console()
    assert await run_loop(session, console, read) == 0
    text = output(console)
    assert "Answer [insufficient evidence]" in text and "bye" in text
    assert "## 1. When was the ASCT?" in (tmp_path / "s.md").read_text()


async def test_a_broken_runner_is_one_error_line_and_no_turn(store):
    async def broken(*args, **kwargs):
        raise RuntimeError("[bold]bug[/]")

    session = make_session(store, [])
    session.runner.run = broken  # type: ignore[method-assign]
    console = recording_console()
    assert await ask_cancellable(session, "q?", console) is None
    assert "error: the run failed: RuntimeError: [bold]bug[/]" in output(console)
    assert session.turns == []
