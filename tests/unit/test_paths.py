"""Paths given by the user: same-file checks and whole-or-nothing writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.paths import replace_file, same_file, write_text


def test_same_file_sees_links_and_files_yet_to_be_written(tmp_path: Path):
    real = tmp_path / "real.txt"
    real.write_text("x")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert same_file(real, link) and same_file(str(link), real)
    assert not same_file(real, tmp_path / "other.txt")
    # A link to a file not there yet names that file; a loop of links is only itself.
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "later.txt")
    assert same_file(dangling, tmp_path / "later.txt")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert same_file(loop, loop) and not same_file(loop, real)


def test_a_replaced_file_is_whole_or_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "report.md"
    write_text(target, "old", "report")
    calls = []

    def failing_replace(source: object, destination: object) -> None:
        calls.append(destination)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(UserError, match="cannot write the report .*No space left on device"):
        write_text(target, "new", "report")
    assert target.read_text() == "old" and calls == [target]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]  # no temporary left


def test_a_replaced_file_gets_the_mode_of_a_new_file_and_writes_through_a_link(tmp_path: Path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    real = tmp_path / "real.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    replace_file(link, b"through", "file")
    assert link.is_symlink() and real.read_bytes() == b"through"
    assert real.stat().st_mode == plain.stat().st_mode  # not private to the writer
