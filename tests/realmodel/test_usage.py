"""The server's prompt-token counts against the local cl100k count of the same requests."""

from __future__ import annotations

import pytest

from recordagent.llm import Message, count_request_tokens
from recordagent.records.tokens import Tokenizer
from recordagent.settings import ModelSettings
from tests.realmodel.conftest import Answers, record_figure

pytestmark = pytest.mark.realmodel

LOW, HIGH = 0.8, 2.0
"""SmolLM2's 49k-token vocabulary against cl100k on clinical text: a little over 1 server
token per local token is expected (digits and dates split finer); outside this band the
usage reading or the local count is broken, not the tokenizers."""


def test_server_prompt_tokens_stay_within_a_sane_band_of_the_local_count(
    answers: Answers,
) -> None:
    tokenizer = Tokenizer(ModelSettings().encoding)
    server = local = 0
    for runner in ("single_pass_rag", "full_context"):
        for sent, received in answers.get(runner).exchanges:
            if sent.get("tools") or "usage" not in received:
                continue
            messages = [Message(role=m["role"], content=m.get("content")) for m in sent["messages"]]
            server += received["usage"]["prompt_tokens"]
            local += count_request_tokens(tokenizer, messages)
    assert local > 0
    ratio = server / local
    record_figure("usage_ratio", f"{ratio:.3f} server/local over {local} local prompt tokens")
    assert LOW <= ratio <= HIGH, ratio
