"""Several first loads into one new store file at once: no load that said "loaded" loses its data.

The documented outcome (records/store_file.py): each load builds its own temporary store; the
first to finish moves it into place and succeeds; every other fails with one error line saying
that another load created the store, and wrote nothing to it. Each process here loads a bundle of
its own (its own source name and patient ids), all released at the same instant, so that the
final store shows whose data it holds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.faults.stores import Command, files_in, invoke
from tests.helpers import FIXTURES

LOADERS = 3
ROUNDS = 1
ANOTHER_LOAD = "another load created the record store"


def renamed_bundle(target: Path, prefix: str) -> Path:
    """The two-patient fixture with every id prefixed: a bundle no other one collides with."""
    target.mkdir(parents=True)
    for table in sorted((FIXTURES / "two_patients").glob("*.csv")):
        frame = pl.read_csv(table, infer_schema=False)
        ids = [c for c in frame.columns if c.endswith("_id")]
        frame.with_columns((pl.lit(prefix) + pl.col(c)).alias(c) for c in ids).write_csv(
            target / table.name
        )
    return target


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("bundles")
    return [renamed_bundle(root / f"bundle{i}", f"L{i}-") for i in range(LOADERS)]


def sources_and_patients(db: Path) -> tuple[set[str], set[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        sources = {row[0] for row in con.execute("SELECT name FROM sources").fetchall()}
        patients = {row[0] for row in con.execute("SELECT patient_id FROM patients").fetchall()}
    finally:
        con.close()
    return sources, patients


def test_concurrent_first_loads_end_with_one_store_holding_every_reported_load(
    bundles: list[Path], tmp_path: Path
):
    conflicts = 0
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        db = folder / "new.duckdb"
        start = folder / "start"
        commands = [
            Command("load", str(bundle), "--db", str(db), start_file=start) for bundle in bundles
        ]
        for command in commands:
            command.wait_until_imported()
        start.touch()
        finished = [command.finish() for command in commands]
        start.unlink()

        loaded = {b.name for b, f in zip(bundles, finished, strict=True) if f.returncode == 0}
        for bundle, result in zip(bundles, finished, strict=True):
            assert "Traceback" not in result.stderr, result.stderr
            if result.returncode == 0:
                assert f"source '{bundle.name}': loaded" in " ".join(result.stdout.split())
            else:
                assert result.returncode == 2, result.stderr
                assert result.errors == [
                    f"error: {ANOTHER_LOAD} {db} while this one ran, so this load wrote "
                    "nothing to it; run it again to load into that store"
                ], result.stderr
                conflicts += 1
        assert loaded, [f.stderr for f in finished]
        assert files_in(folder) == ["new.duckdb"], "one store, and no temporary file left"
        sources, patients = sources_and_patients(db)
        assert sources == loaded, "the store holds exactly the loads that said 'loaded'"
        prefixes = {f"L{bundles.index(b)}-" for b in bundles if b.name in loaded}
        assert patients == {p + letter for p in prefixes for letter in "AB"}

        # A load that lost the race loads when run again.
        lost = [b for b in bundles if b.name not in loaded]
        if lost:
            again = invoke("load", str(lost[0]), "--db", str(db))
            assert again.returncode == 0, again.stderr
            assert sources_and_patients(db)[0] == loaded | {lost[0].name}
        shutil.rmtree(folder)
    assert conflicts, "the loads never overlapped, so the race was not run"
