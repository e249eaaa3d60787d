"""A load that cannot write the store file or its folder says so in one line and changes nothing.

Read-only means read-only for the user running the tests: permission bits, or, for root whom
permission bits do not stop, the immutable attribute (see ``read_only_on_disk``). Reading such a
store still works.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.faults.stores import files_in, invoke, read_only_on_disk, store_content
from tests.helpers import FIXTURES

TWO = str(FIXTURES / "two_patients")


def test_a_load_into_a_read_only_store_file_is_refused_and_reading_it_works(
    existing_store: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    shutil.copy(existing_store, db)
    before = store_content(db)
    with read_only_on_disk(db):
        loaded = invoke("load", TWO, "--db", str(db), "--source", "other")
        summary = invoke("summary", "--db", str(db))
    assert loaded.returncode == 2, loaded.stderr
    assert loaded.errors == [
        f"error: the record store {db} is read-only on disk, so nothing can be loaded into it; "
        "make it writable (chmod u+w) or load into another store file"
    ]
    assert summary.returncode == 0, summary.stderr
    assert "2 patients in" in summary.stdout
    assert store_content(db) == before
    assert files_in(tmp_path) == ["store.duckdb"]


def test_a_load_into_a_store_in_a_read_only_folder_is_refused(existing_store: Path, tmp_path: Path):
    folder = tmp_path / "shared"
    folder.mkdir()
    db = folder / "store.duckdb"
    shutil.copy(existing_store, db)
    before = store_content(db)
    with read_only_on_disk(folder):
        loaded = invoke("load", TWO, "--db", str(db), "--source", "again", "--replace")
    assert loaded.returncode == 2, loaded.stderr
    assert len(loaded.errors) == 1, loaded.stderr
    assert loaded.errors[0].startswith(f"error: the folder {folder} is read-only")
    assert "(store.duckdb.wal)" in loaded.errors[0]
    assert store_content(db) == before
    assert files_in(folder) == ["store.duckdb"]


def test_a_first_load_into_a_read_only_folder_is_refused_and_creates_nothing(tmp_path: Path):
    folder = tmp_path / "shared"
    folder.mkdir()
    db = folder / "new.duckdb"
    with read_only_on_disk(folder):
        loaded = invoke("load", TWO, "--db", str(db))
    assert loaded.returncode == 2, loaded.stderr
    assert loaded.errors == [
        f"error: cannot create the record store {db}: the folder {folder} is read-only"
    ]
    assert files_in(folder) == []
