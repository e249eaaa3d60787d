"""A store opened read-only reads its data version once; a writable one at every ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordagent.records import db
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES


def test_a_read_only_store_reads_its_data_version_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.duckdb"
    with connect(path) as writable:
        load_bundle(writable, FIXTURES / "two_patients")
        expected = writable.data_version()
    reads: list[str] = []
    original = db.data_version

    def counted(connection: object) -> str:
        reads.append("read")
        return original(connection)  # type: ignore[arg-type]

    monkeypatch.setattr(db, "data_version", counted)
    with connect(path, read_only=True) as store:
        scope = store.scope("A")
        for _ in range(5):
            assert [r[0] for r in scope.fetch("SELECT lab_id FROM labs ORDER BY 1")] == [
                "LA1",
                "LA2",
                "LA3",
            ]
        assert scope.data_version() == store.data_version() == expected
    assert reads == ["read"]


def test_a_writable_store_sees_a_load_made_through_it(tmp_path: Path) -> None:
    with connect(tmp_path / "store.duckdb") as store:
        load_bundle(store, FIXTURES / "two_patients")
        scope = store.scope("A")
        before = scope.data_version()
        assert len(scope.fetch("SELECT * FROM labs")) == 3
        load_bundle(store, FIXTURES / "two_patients", replace=True)
        assert scope.data_version() != before
        assert len(scope.fetch("SELECT * FROM labs")) == 3
