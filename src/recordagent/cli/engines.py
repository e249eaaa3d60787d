"""Where a command answers its items: this process, or a Ray cluster (``--engine``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from recordagent.errors import UserError
from recordagent.evaluation.run import ItemEngine
from recordagent.evaluation.study import EngineFactory
from recordagent.extraction.run import RAY_MISSING
from recordagent.records.db import RecordStore
from recordagent.settings import Settings

__all__ = ["Engine", "EngineOption", "RayAddressOption", "check_engine", "ray_engine_factory"]


class Engine(StrEnum):
    """Where the items are answered."""

    local = "local"
    ray = "ray"


EngineOption = Annotated[
    Engine, typer.Option(help="local (this process) or ray (items sharded by patient).")
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster to join (ray://host:10001, auto); default: a local one."),
]


def check_engine(engine: Engine, ray_address: str | None) -> None:
    """Refuse a cluster address without the Ray engine.

    Raises:
        UserError: ``--ray-address`` given with ``--engine local``.
    """
    if ray_address is not None and engine != Engine.ray:
        raise UserError("--ray-address goes with --engine ray")


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
