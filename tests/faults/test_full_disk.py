"""A load that runs out of disk space says so in one line and loses nothing.

A real out-of-space failure comes from a file size limit (RLIMIT_FSIZE) on the load's process:
every write past it fails with EFBIG in DuckDB's own write path, as writes fail on a full disk.
ENOSPC itself is injected where recordagent writes the store's name into its folder (the link
that publishes a first load) and where it flushes the new store to disk.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path

import pytest

from tests.faults.stores import (
    CompleteLoad,
    files_in,
    invoke,
    run_command,
    store_content,
    temporaries,
)
from tests.helpers import FIXTURES

SEED = 28
TWO = str(FIXTURES / "two_patients")
NO_SPACE = os.strerror(errno.ENOSPC)


def test_a_first_load_that_fills_the_disk_creates_no_store(
    load_cohort: Path, first_load: CompleteLoad, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    limit = random.Random(SEED).randrange(300_000, 4_000_000)  # a whole store takes ~5 MB
    loaded = run_command("load", str(load_cohort), "--db", str(db), file_size_limit=limit)
    assert loaded.returncode == 2, (limit, loaded.stderr)
    assert loaded.errors == [
        f"error: cannot write the record store {db} (File too large); no store was created: "
        "free some disk space and load again"
    ], limit
    assert files_in(tmp_path) == [], "neither a store nor a temporary file is left"

    again = invoke("load", str(load_cohort), "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert store_content(db) == first_load.content


def test_a_load_that_fills_the_disk_leaves_the_existing_store_unchanged(
    load_cohort: Path, existing_store: Path, added_load: CompleteLoad, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    shutil.copy(existing_store, db)
    before = store_content(db)
    limit = db.stat().st_size + 1_000_000  # room to start writing, not to finish
    loaded = run_command("load", str(load_cohort), "--db", str(db), file_size_limit=limit)
    assert loaded.returncode == 2, loaded.stderr
    assert loaded.errors == [
        f"error: cannot write the record store {db} (File too large); the store is unchanged: "
        "free some disk space and load again"
    ]
    assert store_content(db) == before

    again = invoke("load", str(load_cohort), "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert store_content(db) == added_load.content


@pytest.mark.parametrize("where", ["link", "fsync"])
def test_no_space_while_publishing_a_first_load_creates_no_store(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real = getattr(os, where)
    calls: list[object] = []

    def no_space(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(os, where, no_space)
    db = tmp_path / "store.duckdb"
    loaded = invoke("load", TWO, "--db", str(db))
    monkeypatch.setattr(os, where, real)
    assert calls, f"os.{where} was never called"
    assert loaded.returncode == 2, loaded.stderr
    assert loaded.errors == [
        f"error: cannot write the record store {db} ({NO_SPACE}); no store was created: "
        "free some disk space and load again"
    ]
    assert not temporaries(tmp_path)
    assert files_in(tmp_path) == []
