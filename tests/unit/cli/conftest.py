"""A store file of the example bundle, and the command line run in this process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from recordagent.cli.main import run
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.resources import example_bundle_path
from recordagent.settings import Settings


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def flat_out(self) -> str:
        return " ".join(self.out.split())

    @property
    def flat_err(self) -> str:
        return " ".join(self.err.split())


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """``cli("ask", ...)``: the command line in this process (wide, no colour)."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")

    def invoke(*args: str) -> Ran:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            run(list(args))
        captured = capsys.readouterr()
        code = exited.value.code
        return Ran(code if isinstance(code, int) else 1, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def example_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example bundle (patients MM-001 to MM-003) in a store file."""
    db = tmp_path_factory.mktemp("cli_store") / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, example_bundle_path(), settings=Settings(), source="example")
    return db
