"""Each of the four runners answers one question end to end through the real llama-server.

SmolLM2-135M answers badly: these tests pin the wire path (documented statuses, the server's
model name and usage, a failure cause when it failed), never the answer's quality.
"""

from __future__ import annotations

import pytest

from recordagent.errors import MODEL_FAILURES
from recordagent.runners import RUNNER_NAMES
from recordagent.runners.trace import ERROR_KINDS
from tests.realmodel.conftest import STATUSES, Answers, RealModel

pytestmark = pytest.mark.realmodel


@pytest.mark.parametrize("runner", RUNNER_NAMES)
def test_each_runner_ends_in_a_documented_status_with_the_servers_model_and_usage(
    answers: Answers, real_model: RealModel, runner: str
) -> None:
    result = answers.get(runner)
    answer = result.answer
    assert answer.status in STATUSES
    assert answer.runner == runner and not answer.mock
    # The model that answered is the one the server lists (its --alias), not a local label.
    assert answer.model == real_model.server_model
    assert result.sent, "no request was sent"
    answered = [received for _, received in result.exchanges if "choices" in received]
    assert answered, "no request was answered"
    assert {received["model"] for received in answered} == {real_model.server_model}
    # Usage is the server's own count, summed over the responses that came back.
    assert answer.usage.model_calls >= 1 and answer.usage.requests >= 1
    assert answer.usage.tokens_reported
    reported = [received["usage"] for _, received in result.exchanges if "usage" in received]
    assert answer.usage.prompt_tokens == sum(u["prompt_tokens"] for u in reported)
    assert answer.usage.completion_tokens == sum(u["completion_tokens"] for u in reported)
    assert answer.usage.cost_usd is None  # a local model has no price


@pytest.mark.parametrize("runner", RUNNER_NAMES)
def test_each_runner_fails_only_with_a_cause_and_traces_no_exception(
    answers: Answers, runner: str
) -> None:
    answer = answers.get(runner).answer
    if answer.status == "failed":
        assert answer.failure in MODEL_FAILURES, answer.failure_message
        assert answer.failure_message
    else:
        assert answer.failure is None
    # Every error in the trace is a documented kind, never an exception class name (a bug).
    errors = {event.error for event in answer.trace if event.error is not None}
    assert errors <= ERROR_KINDS, errors
    assert "Traceback" not in answer.text
