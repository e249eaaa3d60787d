"""The model a run uses when none is named: the configured endpoint, or the labelled mock."""

from __future__ import annotations

import logging

import pytest

from recordagent.llm.openai_compat import OpenAICompatModel
from recordagent.runners import configured_model
from recordagent.settings import ModelSettings, Settings


def test_no_configured_model_gives_the_dry_run_mock_and_a_warning_naming_what_to_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="recordagent"):
        model = configured_model(Settings())
    assert model.is_mock and model.name == "mock-dry-run"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "NOT a model's" in warning and "model.base_url" in warning


def test_a_configured_endpoint_is_the_model() -> None:
    settings = Settings(
        model=ModelSettings(provider="openai", base_url="http://127.0.0.1:9/v1", model="m")
    )
    model = configured_model(settings)
    assert isinstance(model, OpenAICompatModel) and not model.is_mock and model.name == "m"
