"""``recordagent chat`` driven in a pseudo-terminal, against the loopback fake OpenAI server.

One tiny synthetic store per module; each test spawns the real program with pexpect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.fake_openai import FakeOpenAI, ok, status

PATIENT = "MM-001"
PROMPT = f"{PATIENT}> "
TIMEOUT = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chat")
    cohort, db = folder / "cohort", folder / "store.duckdb"
    for args in (
        ["synth", "--preset", "tiny", "--seed", "0", "--out", str(cohort)],
        ["load", str(cohort), "--db", str(db)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "recordagent", *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    return db


def spawn(db: Path, *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    environment = {
        **os.environ,
        "TERM": "dumb",
        "NO_COLOR": "1",
        "COLUMNS": "120",
        "LINES": "50",
        **(env or {}),
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "recordagent", "chat", *args, "--db", str(db)],
        env=environment,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 120),
    )
    transcript = os.environ.get("CHAT_PTY_TRANSCRIPT")
    if transcript:  # keep what the terminal showed (for looking at a session)
        child.logfile_read = open(transcript, "a", encoding="utf-8")  # noqa: SIM115
    return child


def command(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Send ``line``, wait for each expected text in turn and the next prompt; the output."""
    child.sendline(line)
    seen = []
    for text in expected:
        child.expect_exact(text)
        seen.append(child.before + text)
    child.expect_exact(PROMPT)
    return "".join([*seen, child.before])


def control(child: pexpect.spawn, key: str) -> None:
    """Send Ctrl-KEY once the prompt has the terminal (it prints the prompt first)."""
    time.sleep(0.5)
    child.sendcontrol(key)


def answer_json(value: object, citations: list[str], text: str) -> str:
    return json.dumps({"status": "answered", "value": value, "text": text, "citations": citations})


def met(need: str, evidence: str) -> str:
    return json.dumps({"needs": [{"need": need, "status": "met", "evidence": [evidence]}]})


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def test_a_scripted_session_with_the_agent_over_the_fake_server(store, server, tmp_path):
    server.script(
        # 1: the agent answers, citing the first therapy line it saw on the timeline
        ok(json.dumps({"needs": ["first therapy line"]})),
        ok(None, tool_calls=[("c1", "get_timeline", '{"kinds": ["therapy"]}')]),
        ok(
            None,
            tool_calls=[
                ("c2", "query_labs", '{"analyte": "Hemoglobin", "aggregate": "last"}'),
                ("c3", "finish", "{}"),
            ],
        ),
        ok(met("first therapy line", "MM-001-E0002")),
        ok(answer_json("Rd", ["MM-001-E0002"], "The first line was Rd.")),
        # 2: a slow plan, cancelled with Ctrl-C
        ok(json.dumps({"needs": ["never used"]}), delay_s=8),
        # 3: a follow-up; the conversation goes with it
        ok(json.dumps({"needs": ["second therapy line"]})),
        ok(None, tool_calls=[("c4", "finish", "{}")]),
        ok(met("second therapy line", "MM-001-E0003")),
        ok(answer_json("Vd", ["MM-001-E0003"], "The second line was Vd.")),
        # 4: the endpoint fails
        status(503),
    )
    child = spawn(
        store,
        PATIENT,
        "--model",
        "settings",
        env={
            "RECORDAGENT_MODEL__PROVIDER": "openai",
            "RECORDAGENT_MODEL__BASE_URL": server.url,
            "RECORDAGENT_MODEL__MODEL": "gpt-4o-mini",
            "RECORDAGENT_MODEL__MAX_RETRIES": "0",
            "OPENAI_API_KEY": "x",
        },
    )
    # The header: demographics, span, counts, therapy lines; no mock banner.
    child.expect_exact(PROMPT)
    header = child.before
    assert "Patient MM-001" in header and "female, born 1946-11-07" in header
    assert "Record contents: 132 documents, 4,057 lab values of 17 analytes, 8 events" in header
    assert "Events by kind: 6 therapies, 1 admission, 1 diagnosis" in header
    assert "Rd (line 1)" in header and "DVd (line 6)" in header
    assert "MOCK MODEL" not in header and "model gpt-4o-mini" in header

    # A question: the steps stream, then the answer with numbered citations.
    out = command(child, "Which was the first therapy line?", "Answer [answered]", "Citations:")
    assert "· plan      plan: 1 evidence need(s)" in out
    assert "· tool      get_timeline(kinds=['therapy']) → " in out
    assert "· tool      query_labs(analyte='<10 characters>', aggregate='last') → " in out
    assert "· reflect   1 met, 0 absent, 0 open" in out
    assert 'value: "Rd"' in out and "The first line was Rd." in out
    assert "[1] therapy Rd 2019-04-27 (event MM-001-E0002)" in out

    # Ctrl-C during the slow step cancels it; the session lives on.
    child.sendline("What happened next?")
    child.expect_exact("· context")
    control(child, "c")
    child.expect_exact("cancelled")
    child.expect_exact(PROMPT)

    # A follow-up: the runner gets the earlier turn (not the cancelled one) as context.
    command(child, "And the second line?", "Answer [answered]", "[1] therapy Vd 2021-04-19")
    follow_up = json.dumps(server.requests[6]["messages"])
    assert (
        "And the second line?" in follow_up and "Q: Which was the first therapy line?" in follow_up
    )
    assert "What happened next?" not in follow_up

    # Every slash command.
    out = command(child, "/cite 1", "[1] therapy Vd 2021-04-19 (event MM-001-E0003)")

    # A model error is a clear, failed answer; the session stays usable.
    out = command(child, "Any relapse?", "Answer [failed]", "failed: server_error")
    out = command(child, "/timeline therapy", "Timeline: 6 entries", "DVd (line 6) [MM-001-E0007]")
    out = command(child, "/labs Hemoglobin 2020-01-01 2020-03-31", "Hemoglobin (g/dL)", "min ")
    assert "2020-01-" in out and "2021-" not in out
    out = command(child, "/search multiple myeloma diagnosis", "passage(s) for")
    out = command(child, "/doc MM-001-D0001", "MM-001-D0001 | ")
    out = command(child, "/trace", "trace", "skeleton", "server_error")
    out = command(child, "/runner single_pass_rag", "runner: single_pass_rag")
    out = command(child, "/runner agent", "runner: agent")
    out = command(child, "/new", "new conversation")
    out = command(child, "/help", "/export FILE", "Ctrl-C")
    out = command(child, "/nope", "error: unknown command '/nope'")
    out = command(child, "/doc nope", "tool error: read_document: no document 'nope'")
    target = tmp_path / "session.md"
    command(child, f"/export {target}", "exported 3 question(s)")
    markdown = target.read_text()
    assert "## 1. Which was the first therapy line?" in markdown
    assert "1. therapy Rd 2019-04-27 (event MM-001-E0002)" in markdown
    assert "**Status:** failed" in markdown

    # Ctrl-C at the prompt clears the line; /quit exits 0.
    child.send("half a question")
    control(child, "c")
    child.expect_exact(PROMPT)
    child.sendline("/quit")
    child.expect_exact("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_offline_on_the_mock_model_with_the_banner_and_ctrl_d(store):
    child = spawn(store, PATIENT, "--model", "mock")
    child.expect_exact("MOCK MODEL")
    child.expect_exact(PROMPT)
    command(child, "When was the diagnosis?", "Answer [insufficient evidence]", "mock model")
    control(child, "d")
    child.expect_exact("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_an_unknown_patient_is_one_clear_error(store):
    child = spawn(store, "NOPE")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "error: no patient 'NOPE' in the store (5 patients: MM-001" in child.before
    assert "Traceback" not in child.before
