"""Fixtures of the store fault tests: a cohort to load, and what complete loads of it write.

Session-scoped: each pytest worker builds them once for every module that uses them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.faults.stores import CompleteLoad, invoke, timed_load
from tests.helpers import FIXTURES

LOAD_COHORT_SEED = 5


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
