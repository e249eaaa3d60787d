"""Fixtures of the store fault tests: a cohort to load, and what complete loads of it write.

Session-scoped: each pytest worker builds them once for every module that uses them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.conftest import FIXTURES
from tests.faults.stores import StoreContent, invoke, store_content

LOAD_COHORT_SEED = 5


@dataclass(frozen=True)
class CompleteLoad:
    """What a complete load writes, and how long it runs once the command's imports are done."""

    content: StoreContent
    seconds: float


def timed_load(bundle: Path, db: Path) -> CompleteLoad:
    """Load ``bundle`` into ``db`` as the command line does; what it wrote, how long it took.

    In this process: the same command without a child's start (seconds of imports), and the
    same work a child process does once its imports are done.
    """
    start = time.perf_counter()
    finished = invoke("load", str(bundle), "--db", str(db))
    seconds = time.perf_counter() - start
    assert finished.returncode == 0, finished.stderr
    content = store_content(db)
    assert content is not None
    return CompleteLoad(content, seconds)


@pytest.fixture(scope="session")
def load_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic cohort (5 patients, 280 documents) as a bundle."""
    out = tmp_path_factory.mktemp("load_cohort") / "cohort"
    generate_cohort(load_preset("tiny"), LOAD_COHORT_SEED, out)
    return out


@pytest.fixture(scope="session")
def first_load(load_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> CompleteLoad:
    """The cohort loaded into a new store."""
    return timed_load(load_cohort, tmp_path_factory.mktemp("first_load") / "store.duckdb")


@pytest.fixture(scope="session")
def existing_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the two-patient fixture (copy it before writing to it)."""
    db = tmp_path_factory.mktemp("existing_store") / "base.duckdb"
    loaded = invoke("load", str(FIXTURES / "two_patients"), "--db", str(db))
    assert loaded.returncode == 0, loaded.stderr
    return db


@pytest.fixture(scope="session")
def added_load(
    load_cohort: Path, existing_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> CompleteLoad:
    """The cohort loaded into a copy of the existing store."""
    db = tmp_path_factory.mktemp("added_load") / "store.duckdb"
    shutil.copy(existing_store, db)
    return timed_load(load_cohort, db)
