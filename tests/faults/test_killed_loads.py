"""A load killed at any moment (SIGKILL) leaves the store as it was or as the whole load left it.

Each case starts ``recordagent load`` on a synthetic cohort in a child process, kills it with
SIGKILL after a delay, and opens what is left. A first load leaves either no store file or a
store equal, table by table, to the one a complete load writes; a load into an existing store
leaves it equal to before or to after. The delays are drawn (seeded) one from each stretch of the
time a complete load takes, so the kills fall into every phase: validating, writing, chunking,
indexing, committing, publishing.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

from tests.faults.stores import Command, CompleteLoad, files_in, invoke, store_content, temporaries

SEED = 20241204
FIRST_LOAD_KILLS = 4
EXISTING_STORE_KILLS = 2


def kill_delays(seconds: float, count: int, seed: int) -> list[float]:
    """One delay from each of ``count`` stretches of a complete load's ``seconds``.

    A load commits well before its command ends (closing the store, printing the report and
    leaving Python take the rest), so the stretches grow with the square of their number; the
    last reaches a little past the end.
    """
    rng = random.Random(seed)
    return [seconds * 1.1 * ((i + rng.random()) / count) ** 2 for i in range(count)]


def killed_load(bundle: Path, db: Path, delay: float) -> int:
    """Start a load into ``db``, SIGKILL it ``delay`` seconds after its imports; its exit code."""
    command = Command("load", str(bundle), "--db", str(db))
    command.wait_until_imported()
    time.sleep(delay)
    command.signal(signal.SIGKILL)
    return command.finish().returncode


def test_a_first_load_killed_at_any_moment_leaves_no_store_or_the_complete_one(
    load_cohort: Path, first_load: CompleteLoad, tmp_path: Path
):
    outcomes = []
    for i, delay in enumerate(kill_delays(first_load.seconds, FIRST_LOAD_KILLS, SEED)):
        folder = tmp_path / f"kill{i}"
        folder.mkdir()
        db = folder / "store.duckdb"
        code = killed_load(load_cohort, db, delay)
        content = store_content(db)
        where = f"killed {delay:.2f}s into a {first_load.seconds:.2f}s load (exit {code})"
        assert content is None or content == first_load.content, where
        if code == 0:  # ended before the kill: it said "loaded", so the data must be there
            assert content == first_load.content, where
        # Besides the store, only a killed load's temporary files may be left.
        assert set(files_in(folder)) - {"store.duckdb"} == {p.name for p in temporaries(folder)}
        outcomes.append("none" if content is None else "complete")
    assert "none" in outcomes, f"no kill landed inside a load: {outcomes}"


def test_a_load_after_a_killed_first_load_cleans_up_and_loads_everything(
    load_cohort: Path, first_load: CompleteLoad, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    command = Command("load", str(load_cohort), "--db", str(db))
    command.wait_until_imported()
    deadline = time.monotonic() + 60
    while not temporaries(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.005)
    command.signal(signal.SIGKILL)  # while the temporary store is being written
    assert command.finish().returncode == -signal.SIGKILL
    left = temporaries(tmp_path)
    assert left and not db.exists()

    again = invoke("load", str(load_cohort), "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert store_content(db) == first_load.content
    assert files_in(tmp_path) == ["store.duckdb"], "the dead load's temporary files are removed"


def test_a_load_into_an_existing_store_killed_at_any_moment_leaves_it_before_or_after(
    load_cohort: Path, existing_store: Path, added_load: CompleteLoad, tmp_path: Path
):
    before = store_content(existing_store)
    outcomes = []
    for i, delay in enumerate(kill_delays(added_load.seconds, EXISTING_STORE_KILLS, SEED + 1)):
        db = tmp_path / f"store{i}.duckdb"
        shutil.copy(existing_store, db)
        code = killed_load(load_cohort, db, delay)
        content = store_content(db)
        where = f"killed {delay:.2f}s into a {added_load.seconds:.2f}s load (exit {code})"
        assert content in (before, added_load.content), where
        if code == 0:
            assert content == added_load.content, where
        outcomes.append("before" if content == before else "after")
    assert "before" in outcomes, f"no kill landed inside a load: {outcomes}"
