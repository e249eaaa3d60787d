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
from tests.helpers import write_csv
from tests.unit.chat.helpers import (
    asct_script,
    header_blocks,
    make_session,
    output,
    recording_console,
)


def test_header_shows_demographics_span_counts_and_therapy_lines(store):
    console = recording_console()
    console.print(render_header(store.scope("A")))
    text = output(console)
    assert "Patient A" in text and "female, born 1950-01-01" in text
    assert "Record contents: 4 documents, 11 lab values of 3 analytes, 4 events" in text
    assert "Events by kind: 2 therapies, 1 diagnosis, 1 transplant" in text
    blocks = header_blocks(text)
    assert blocks["Diagnoses (most recent):"] == ["2020-01-05  Multiple myeloma"]
    assert blocks["Therapy lines:"] == [
        "2020-01-20 → 2020-05-10  VRd (line 1)",
        "2021-06-20 → ongoing     Dara-Pd (line 2)",
    ]
    assert blocks["Milestones:"] == [
        "2020-06-15  transplant  Autologous stem cell transplantation (high-dose melphalan)"
    ]


def row(event_id: str, start: str, kind: str, label: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "patient_id": "G",
        "start_time": start,
        "kind": kind,
        "label": label,
    }


def test_a_general_record_header_names_its_blocks_and_caps_them(tmp_path):
    bundle = tmp_path / "bundle"
    write_csv(bundle, "patients", [{"patient_id": "G", "sex": "female", "birth_date": None}])
    events = [
        row(f"C{n}", f"2010-01-{n:02d}", "diagnosis", f"Social finding {n} (finding)")
        for n in range(1, 29)
    ]
    events += [
        row(f"R{n}", f"2011-0{n}-01", "diagnosis", "Hypertension (disorder)") for n in (1, 2, 3)
    ]
    events += [row(f"M{n}", f"2012-01-{n:02d}", "medication", "Lisinopril") for n in range(1, 21)]
    write_csv(bundle, "events", events)
    with connect() as store:
        load_bundle(store, bundle)
        console = recording_console()
        console.print(render_header(store.scope("G")))
    text = output(console)
    assert "Events by kind: 31 diagnoses, 20 medications" in text
    assert "Therapy" not in text and "Milestones" not in text and "Lisinopril" not in text
    blocks = header_blocks(text)
    diagnoses = blocks["Diagnoses (most recent):"]
    assert diagnoses[0] == "2011-03-01  Hypertension (disorder) ×3"
    assert diagnoses[1] == "2010-01-28  Social finding 28 (finding)"
    assert "… and 23 more diagnoses (/timeline diagnosis)" in diagnoses
    assert len(text.splitlines()) <= 15


def test_the_header_shows_the_latest_lines_and_milestones_and_counts_the_earlier(tmp_path):
    bundle = tmp_path / "bundle"
    write_csv(bundle, "patients", [{"patient_id": "G", "sex": "male", "birth_date": None}])
    events = [row(f"T{n}", f"201{n}-01-01", "therapy", f"Regimen {n}") for n in range(8)]
    events += [row(f"X{n}", f"202{n}-01-01", "transplant", f"Transplant {n}") for n in range(4)]
    write_csv(bundle, "events", events)
    with connect() as store:
        load_bundle(store, bundle)
        console = recording_console()
        console.print(render_header(store.scope("G")))
    blocks = header_blocks(output(console))
    lines = blocks["Therapy lines:"]
    assert lines[0] == "2012-01-01 → ongoing  Regimen 2" and len(lines) == 7
    assert lines[-1] == "… and 2 earlier therapy lines (/timeline therapy)"
    milestones = blocks["Milestones:"]
    assert milestones[0].startswith("2021-01-01  transplant  Transplant 1")
    note = "… and 1 earlier milestone (/timeline transplant progression death)"
    assert milestones[-1] == note


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
