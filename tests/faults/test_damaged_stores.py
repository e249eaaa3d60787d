"""A damaged store file: every command works or says the store is damaged and what to do.

A real store is truncated (as by a full disk or an interrupted copy) or has bytes flipped (as by
failing storage) at seeded positions. ``summary``, ``ask`` and ``load`` each either succeed,
when the damage lies where they do not read, or exit 2 with one error line naming the damage and
the remedy, never a traceback; a load that fails leaves the damaged file as it was.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from tests.faults.stores import Finished, invoke
from tests.helpers import FIXTURES

SEED = 404
REMEDY = "restore it from a backup, or delete it and load the data again"


@pytest.fixture(scope="module")
def intact(load_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a store holding the tiny cohort."""
    db = tmp_path_factory.mktemp("intact") / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, load_cohort)
    return db.read_bytes()


def damaged_variants(data: bytes) -> dict[str, bytes]:
    rng = random.Random(SEED)
    size = len(data)
    variants = {
        "truncated-after-the-header": data[:5000],
        "truncated-to-half": data[: size // 2],
        "header-block-flipped": data[:4096]
        + bytes(b ^ 0xFF for b in data[4096:4160])
        + data[4160:],
    }
    for _ in range(3):
        at = rng.randrange(size // 8, size * 7 // 8)
        flipped = bytes(b ^ 0x5A for b in data[at : at + 512])
        variants[f"bytes-flipped-at-{at}"] = data[:at] + flipped + data[at + 512 :]
    return variants


VARIANT_NAMES = [
    "truncated-after-the-header",
    "truncated-to-half",
    "header-block-flipped",
    "flipped-0",
    "flipped-1",
    "flipped-2",
]


def damaged_store(intact: bytes, index: int, folder: Path) -> tuple[str, Path]:
    name, data = list(damaged_variants(intact).items())[index]
    db = folder / "damaged.duckdb"
    db.write_bytes(data)
    return name, db


def assert_works_or_says_damaged(result: Finished, db: Path, what: str) -> bool:
    """True when the command reported the damage, False when it worked."""
    assert "Traceback" not in result.stderr, f"{what}\n{result.stderr}"
    if result.returncode == 0:
        return False
    assert result.returncode == 2, f"{what}\n{result.stderr}"
    assert len(result.errors) == 1, f"{what}\n{result.stderr}"
    message = result.errors[0]
    assert "is damaged and cannot be read" in message, message
    assert message.endswith(REMEDY), message
    return True


@pytest.mark.parametrize("index", range(len(VARIANT_NAMES)), ids=VARIANT_NAMES)
def test_commands_on_a_damaged_store_work_or_say_it_is_damaged(
    intact: bytes, index: int, tmp_path: Path
):
    name, db = damaged_store(intact, index, tmp_path)
    damaged = db.read_bytes()
    said = {
        "summary": assert_works_or_says_damaged(
            invoke("summary", "--db", str(db)), db, f"summary, {name}"
        ),
        "ask": assert_works_or_says_damaged(
            invoke(
                "ask", "MM-001", "What is the latest M-protein?", "--db", str(db), "--model", "mock"
            ),
            db,
            f"ask, {name}",
        ),
    }
    loaded = invoke("load", str(FIXTURES / "two_patients"), "--db", str(db))
    said["load"] = assert_works_or_says_damaged(loaded, db, f"load, {name}")
    if said["load"]:
        assert f"the record store {db} is damaged" in loaded.errors[0]
        assert db.read_bytes() == damaged, "a failed load leaves the file as it was"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.duckdb"]
    if name != "truncated-to-half" and not name.startswith("bytes-flipped"):
        # Damage DuckDB meets while opening the file: every command must report it.
        assert all(said.values()), said
