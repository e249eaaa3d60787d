"""Ctrl-C before any command runs is an interrupt too: exit 130, one line, no traceback."""

from __future__ import annotations

import pytest

from recordagent.cli import main


def test_an_interrupt_while_the_commands_are_built_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as SIGINT lands while typer inspects the commands

    monkeypatch.setattr(main, "app", interrupted)
    with pytest.raises(SystemExit) as exited:
        main.run(["load", "bundle", "--db", "store.duckdb"])
    assert exited.value.code == main.INTERRUPTED_EXIT_CODE
    err = capsys.readouterr().err
    assert err.strip() == "error: interrupted"
