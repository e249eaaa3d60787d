"""``recordagent chat`` in a pseudo-terminal, answering one real question through the server."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

from tests.realmodel.conftest import RealModel, TinyStudy

pytestmark = pytest.mark.realmodel

PATIENT = "MM-001"
PROMPT = f"{PATIENT}> "
ANSWER = r"Answer \[(answered|insufficient evidence|truncated|failed)\]"


def test_a_chat_session_answers_one_question_from_the_real_model(
    real_model: RealModel, tiny_study: TinyStudy
) -> None:
    env = {**real_model.env(), "TERM": "dumb", "LINES": "50"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "recordagent", "chat", PATIENT, "--db", str(tiny_study.db),
         "--runner", "single_pass_rag"],
        env=env, encoding="utf-8", timeout=60, dimensions=(50, 120),
    )  # fmt: skip
    transcript = os.environ.get("CHAT_PTY_TRANSCRIPT")
    if transcript:  # keep what the terminal showed
        child.logfile_read = open(transcript, "a", encoding="utf-8")  # noqa: SIM115
    try:
        child.expect_exact(PROMPT)
        header = child.before
        assert f"model {real_model.server.alias}" in header
        assert "MOCK MODEL" not in header

        child.sendline("When was the multiple myeloma diagnosed?")
        child.expect(ANSWER, timeout=240)
        status = child.match.group(1)
        child.expect_exact(PROMPT, timeout=30)
        shown = child.before
        assert "Traceback" not in shown
        if status == "failed":
            assert "model" in shown.lower()  # the failure is said in words, not a traceback

        child.sendline("/quit")
        child.expect_exact("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
