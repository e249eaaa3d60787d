"""Ctrl-C stops a load: exit code 130, one error line saying what the store holds, nothing lost.

SIGINT goes to the load's whole process group, as a terminal sends it, after delays drawn
(seeded) from each stretch of a complete load's time. DuckDB turns an interrupt that arrives while
a statement runs into an error of its own, and the loaders' cleanup can turn that into yet
another error: whatever the moment, the command must say it was interrupted, and the store must
be as it was (no file, for a first load) unless the message says the load had committed.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

from tests.faults.stores import Command, CompleteLoad, Finished, files_in, store_content

SEED = 1130
FIRST_LOAD_INTERRUPTS = 2
EXISTING_STORE_INTERRUPTS = 2


def interrupt_delays(seconds: float, count: int, seed: int) -> list[float]:
    """One delay from each of ``count`` stretches of ``seconds``, shorter ones early on.

    A load commits well before its command ends (closing the store, printing the report and
    leaving Python take the rest), so the stretches grow with the square of their number.
    """
    rng = random.Random(seed)
    return [seconds * ((i + rng.random()) / count) ** 2 for i in range(count)]


def interrupted_load(bundle: Path, db: Path, delay: float) -> Finished:
    command = Command("load", str(bundle), "--db", str(db))
    command.wait_until_imported()
    time.sleep(delay)
    command.signal(signal.SIGINT)
    return command.finish()


def assert_reported(finished: Finished, where: str) -> str:
    """The run said it loaded, or it exited 130 with one error line; which one."""
    assert "Traceback" not in finished.stderr, where + "\n" + finished.stderr
    if ": loaded" in finished.stdout:  # the interrupt came after the report, or as Python ended
        return "loaded"
    assert finished.returncode == 130, where + "\n" + finished.stderr
    assert len(finished.errors) == 1, where + "\n" + finished.stderr
    assert finished.errors[0].startswith("error: interrupted"), finished.errors
    return finished.errors[0]


def test_an_interrupted_first_load_exits_130_and_creates_no_store(
    load_cohort: Path, first_load: CompleteLoad, tmp_path: Path
):
    delays = interrupt_delays(first_load.seconds, FIRST_LOAD_INTERRUPTS, SEED)
    interrupted = 0
    for i, delay in enumerate(delays):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        db = folder / "store.duckdb"
        finished = interrupted_load(load_cohort, db, delay)
        where = f"SIGINT {delay:.2f}s into a {first_load.seconds:.2f}s load"
        outcome = assert_reported(finished, where)
        content = store_content(db)
        if outcome == "loaded" or "its data is in" in outcome:
            assert content == first_load.content, where
        else:
            # "interrupted" alone: Ctrl-C before the load command began
            assert outcome.startswith("error: interrupted; nothing was written") or (
                outcome == "error: interrupted"
            ), outcome
            assert content is None, where
            interrupted += 1
        # An interrupted load removes its temporary store: nothing but the store may be left.
        assert files_in(folder) in ([], ["store.duckdb"]), where
    assert interrupted, "no interrupt landed inside a load"


def test_an_interrupted_load_into_an_existing_store_exits_130_and_leaves_it_unchanged(
    load_cohort: Path, existing_store: Path, added_load: CompleteLoad, tmp_path: Path
):
    before = store_content(existing_store)
    delays = interrupt_delays(added_load.seconds, EXISTING_STORE_INTERRUPTS, SEED + 1)
    interrupted = 0
    for i, delay in enumerate(delays):
        db = tmp_path / f"store{i}.duckdb"
        shutil.copy(existing_store, db)
        finished = interrupted_load(load_cohort, db, delay)
        where = f"SIGINT {delay:.2f}s into a {added_load.seconds:.2f}s load"
        outcome = assert_reported(finished, where)
        content = store_content(db)
        if outcome == "loaded" or "its data is in" in outcome:
            assert content == added_load.content, where
        else:
            assert outcome in (
                f"error: interrupted; the store {db} is unchanged",
                "error: interrupted",  # Ctrl-C before the load command began
            ), outcome
            assert content == before, where
            interrupted += 1
    assert interrupted, "no interrupt landed inside a load"
