"""The model a run uses when its caller names none: the configured one, or the dry-run mock.

Every front end (``ask``, ``eval``, ``chat``, ``demo``) and the library's own conveniences
(:func:`recordagent.ask`, :func:`recordagent.answer_many`) decide the same way: settings whose
``model.provider`` is 'mock' (the default: nothing configured) get the scripted dry-run model,
with a warning that says so and what to set; anything else gets the configured endpoint.
"""

from __future__ import annotations

import logging

from recordagent.llm import build_model
from recordagent.llm.client import ChatModel
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings

__all__ = ["NO_MODEL_CONFIGURED", "configured_model"]

log = logging.getLogger(__name__)

NO_MODEL_CONFIGURED = (
    "no model is configured (model.provider is 'mock'): answering with the scripted dry-run "
    "mock, which reads no record — its answers are NOT a model's. To use a model, set "
    "model.provider, model.base_url and model.model (RECORDAGENT_MODEL__PROVIDER=openai, "
    "RECORDAGENT_MODEL__BASE_URL, RECORDAGENT_MODEL__MODEL, or a preset)"
)


def configured_model(settings: Settings) -> ChatModel:
    """The model ``settings`` configure, or the dry-run mock when they configure none.

    Choosing the mock logs :data:`NO_MODEL_CONFIGURED` as a warning (the command line shows
    it as a ``warning:`` line; a notebook shows it under the cell).
    """
    if settings.model.provider == "mock":
        log.warning(NO_MODEL_CONFIGURED)
        return dry_run_model()
    return build_model(settings.model)
