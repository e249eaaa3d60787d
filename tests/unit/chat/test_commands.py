"""Slash commands: each one on patient A, and their mistakes as clear errors."""

from __future__ import annotations

import pytest

from recordagent.chat import COMMANDS, cited_passage, resolve_citations, run_command
from recordagent.chat.loop import ChatCompleter, handle_line
from recordagent.errors import ToolError, UserError
from recordagent.runners import Citation
from tests.unit.chat.helpers import asct_script, make_session, output, recording_console


def run(session, line: str) -> str:
    console = recording_console()
    outcome = run_command(session, line, console)
    assert not outcome.quit
    return output(console)


def test_timeline_all_and_by_kind(store):
    session = make_session(store, [])
    assert "[EA3]" in run(session, "/timeline") and "[EA1]" in run(session, "/timeline")
    therapy = run(session, "/timeline therapy")
    assert "VRd (line 1) [EA2]" in therapy and "[EA3]" not in therapy
    with pytest.raises(ToolError, match="unknown kind"):
        run(session, "/timeline bogus")


def test_labs_table_and_sparkline_with_a_range(store):
    session = make_session(store, [])
    text = run(session, "/labs m-protein")
    assert "M-protein (g/dL)" in text and "LA2" in text
    assert any(ch in text for ch in "▁▂▃▄▅▆▇█") and "min" in text
    ranged = run(session, "/labs M-protein 2020-02-01 2020-04-01")
    assert "LA2" in ranged and "LA1" not in ranged and "LA3" not in ranged
    with pytest.raises(UserError, match="usage: /labs"):
        run(session, "/labs")
    with pytest.raises(ToolError):
        run(session, "/labs unobtainium")


def test_search_and_doc(store):
    session = make_session(store, [])
    assert "A-D3:0" in run(session, "/search stem cell transplantation")
    doc = run(session, "/doc A-D3")
    assert doc.startswith("A-D3 | 2020-09-01 | outpatient visit note")
    assert "ASSESSMENT" in run(session, "/doc A-D3 ASSESSMENT")
    with pytest.raises(ToolError, match="no document"):
        run(session, "/doc nope")
    with pytest.raises(UserError, match="usage: /search"):
        run(session, "/search")


async def test_cite_trace_new_runner_and_export(store, tmp_path):
    session = make_session(store, asct_script())
    with pytest.raises(UserError, match="ask a question first"):
        run(session, "/cite 1")
    with pytest.raises(UserError, match="ask a question first"):
        run(session, "/trace")
    await session.ask("When was the ASCT?")
    assert "Autologous stem cell transplantation" in run(session, "/cite 1")
    chunk = run(session, "/cite 2")
    assert chunk.startswith("[2] outpatient visit note 2020-09-01 (chunk A-D3:0")
    with pytest.raises(UserError, match="no citation 7 \\(citations: 1-3\\)"):
        run(session, "/cite 7")
    trace = run(session, "/trace")
    assert "search_documents" in trace and "model_call" in trace and "reflect" in trace
    assert "runner: iterative_rag" in run(session, "/runner iterative_rag")
    with pytest.raises(UserError, match="unknown runner"):
        run(session, "/runner nope")
    assert "new conversation" in run(session, "/new") and session.conversation == 2
    target = tmp_path / "session.md"
    assert "exported 1 question(s)" in run(session, f"/export {target}")
    markdown = target.read_text()
    assert "# Session on patient A" in markdown and "## 1. When was the ASCT?" in markdown
    assert "1. transplant Autologous stem cell transplantation 2020-06-15 (event EA3)" in markdown
    assert "Mock model" in markdown
    with pytest.raises(UserError, match="cannot write"):
        run(session, f"/export {tmp_path / 'missing' / 'x.md'}")


def test_help_lists_every_command_and_quit_quits(store):
    session = make_session(store, [])
    text = run(session, "/help")
    assert all(name in text for name in COMMANDS)
    assert run_command(session, "/quit", recording_console()).quit
    with pytest.raises(UserError, match="unknown command '/nope'"):
        run(session, "/nope")


async def test_handle_line_prints_errors_and_keeps_going(store):
    session = make_session(store, [])
    console = recording_console()
    assert await handle_line(session, "/nope", console)
    assert await handle_line(session, "/doc missing", console)
    assert await handle_line(session, "   ", console)
    assert not await handle_line(session, "/quit", console)
    text = output(console)
    assert "error: unknown command '/nope'" in text and "tool error: read_document" in text


def test_passages_of_cited_rows(store):
    scope = make_session(store, []).scope
    refs = [
        Citation(kind="lab", id="LA2"),
        Citation(kind="document", id="A-D3"),
        Citation(kind="event", id="nope"),
    ]
    sources = resolve_citations(scope, refs)
    assert sources[0].label == "M-protein 2020-03-01 = 1.5 g/dL (lab LA2)"
    assert "outpatient visit note" in sources[1].label
    assert sources[2].label == "event nope (not in this record)"
    assert "ASSESSMENT" in cited_passage(scope, sources[1])


def test_completion_of_commands_analytes_and_runners():
    completer = ChatCompleter(["M-protein", "Hemoglobin"])
    assert [c for c, _ in completer.candidates("/la")] == ["/labs "]
    assert completer.candidates("/labs m-") == [("M-protein", -2)]
    assert [c for c, _ in completer.candidates("/runner it")] == ["iterative_rag"]
    assert [c for c, _ in completer.candidates("/timeline therapy tra")] == ["transplant"]
    assert completer.candidates("a question") == []
