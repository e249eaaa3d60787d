"""Structured output constrained by the server's grammar, and the window the server reports."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

from recordagent.llm import Message
from tests.realmodel.conftest import RealModel

pytestmark = pytest.mark.realmodel


class LabReading(BaseModel):
    """A lab value as a small model might extract it."""

    analyte: str = Field(max_length=30)
    value: float
    unit: str = Field(max_length=10)
    abnormal: bool


def test_response_format_comes_back_parsed_and_valid_through_the_servers_grammar(
    real_model: RealModel,
) -> None:
    messages = [
        Message(role="system", content="Extract the lab reading as JSON."),
        Message(role="user", content="Haemoglobin 9.1 g/dL on 2021-03-04 (low)."),
    ]

    async def ask():  # type: ignore[no-untyped-def]
        async with real_model.model() as model:
            return await model.complete(
                messages, response_format=LabReading, temperature=0.0, max_tokens=120
            )

    mark = len(real_model.wire.exchanges)
    completion = asyncio.run(ask())
    assert completion.parsed is not None
    LabReading.model_validate(completion.parsed)
    # The server enforced the schema itself: valid at the first attempt, no repair asked.
    assert completion.attempts == 1
    (sent, received), *_ = real_model.wire.since(mark)
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "LabReading"
    assert received["choices"][0]["finish_reason"] == "stop"
    assert completion.usage.reported and completion.model == real_model.server_model


def test_the_client_learns_the_per_slot_window_from_the_server(real_model: RealModel) -> None:
    async def window() -> int | None:
        async with real_model.model(context_window=None) as model:
            return await model.context_window()

    # llama.cpp splits --ctx-size across the --parallel slots; one request gets one slot.
    assert asyncio.run(window()) == real_model.server.slot_context
    assert real_model.server.props()["default_generation_settings"]["n_ctx"] == (
        real_model.server.ctx_size // real_model.server.parallel
    )
