"""Shared fixtures: tiny readable bundles and fresh stores."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES


@pytest.fixture
def two_patients(tmp_path: Path) -> Path:
    """A writable copy of the two-patient bundle (patients A and B)."""
    target = tmp_path / "two_patients"
    shutil.copytree(FIXTURES / "two_patients", target)
    return target


@pytest.fixture(scope="module")
def open_world_store() -> Iterator[RecordStore]:
    """Labs named the way real exports name them (tests/fixtures/open_world_labs), loaded."""
    with connect() as opened:
        load_bundle(opened, FIXTURES / "open_world_labs")
        yield opened


@pytest.fixture
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        yield opened


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster of 2 CPUs for the session (the ``ray`` module); skipped without Ray.

    The tests that use it are in the xdist group "ray" (one worker runs them all, so one
    cluster at a time shares this machine's 2 cores with the rest of the suite).
    """
    ray = pytest.importorskip(
        "ray", reason="the Ray engine needs ray (pip install 'recordagent[ray]')"
    )
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        object_store_memory=100 * 1024 * 1024,
    )
    yield ray
    ray.shutdown()
