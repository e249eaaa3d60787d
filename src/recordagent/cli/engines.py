"""Where a command answers its items: this process, or a Ray cluster (``--engine``)."""

from __future__ import annotations

from enum import StrEnum

from recordagent.errors import UserError
from recordagent.evaluation.run import ItemEngine
from recordagent.evaluation.study import EngineFactory
from recordagent.extraction.run import RAY_MISSING
from recordagent.records.db import RecordStore
from recordagent.settings import Settings

__all__ = ["Engine", "ray_engine_factory"]


class Engine(StrEnum):
    """Where the items are answered."""

    local = "local"
    ray = "ray"


def ray_engine_factory(address: str | None) -> EngineFactory:
    """The Ray engine for a study's store (imported when asked for: Ray is an optional extra).

    Raises:
        UserError: Ray is not installed.
    """
    try:
        from recordagent.extraction.ray_engine import ray_engine
    except ImportError as exc:
        raise UserError(RAY_MISSING) from exc

    def make(store: RecordStore, settings: Settings) -> ItemEngine:
        return ray_engine(store, settings, address=address)

    return make
