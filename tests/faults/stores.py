"""Helpers of the fault-injection tests: commands in child processes, what a store holds, and
what a complete load writes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from recordagent.cli.main import run

# Runs the command line as the installed entry point does, after saying that the imports are
# done: a fault injected after that line lands in the command's own work, not in Python's start.
# A file size limit (RLIMIT_FSIZE) makes every write past it fail with EFBIG, as on a full disk;
# SIGXFSZ is ignored so that the write fails instead of the process being killed.
# With a start file, the command waits for it to appear: commands started together then begin
# their work within milliseconds of each other.
_DRIVER = """
import os, resource, signal, sys, time
from recordagent.cli.main import run
limit, start_file = int(sys.argv.pop(1)), sys.argv.pop(1)
if limit >= 0:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
print("imported", flush=True)
while start_file and not os.path.exists(start_file):
    time.sleep(0.001)
run(sys.argv[1:])
"""
# Columns whose values say when a load ran, not what it wrote.
_VOLATILE_COLUMNS = {"loaded_at", "applied_at"}


@dataclass
class Finished:
    """A command that ended: its exit code (negative: killed by that signal) and output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        """The ``error:`` lines, each joined back from rich's wrapping."""
        text = " ".join(self.stderr.split())
        return ["error:" + part for part in text.split("error:")[1:]]


class Command:
    """``recordagent ARGS`` running in a child process of its own session."""

    def __init__(
        self, *args: str, file_size_limit: int | None = None, start_file: Path | None = None
    ) -> None:
        env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
        limit = -1 if file_size_limit is None else file_size_limit
        start = "" if start_file is None else str(start_file)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(limit), start, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # a group of its own, like a job a terminal started
        )

    def wait_until_imported(self, timeout: float = 60) -> float:
        """Block until the command's imports are done; the time that took."""
        start = time.perf_counter()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "imported", (line, self.finish(timeout).stderr)
        return time.perf_counter() - start

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the command and any worker process it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def finish(self, timeout: float = 120) -> Finished:
        """Wait for the command to end."""
        stdout, stderr = self.process.communicate(timeout=timeout)
        return Finished(self.process.returncode, stdout, stderr)


def run_command(*args: str, file_size_limit: int | None = None) -> Finished:
    """Run ``recordagent ARGS`` to its end in a child process."""
    return Command(*args, file_size_limit=file_size_limit).finish()


def invoke(*args: str) -> Finished:
    """Run ``recordagent ARGS`` in this process (milliseconds instead of a second's start).

    For commands that cannot hurt the test process; the exit code is SystemExit's (0 if the
    command returned), and an escaping exception is re-raised.
    """
    runner = CliRunner()
    code = 0
    with runner.isolation(env={"COLUMNS": "250", "NO_COLOR": "1"}) as (out, err, _):
        try:
            run(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace") if err is not None else ""
    return Finished(code, stdout, stderr)


StoreContent = dict[str, tuple[int, int]]


def store_content(path: Path) -> StoreContent | None:
    """Rows and an order-free digest of them per table; ``None`` when there is no store file.

    Opened read-only, so looking changes nothing; a WAL left by a killed process is read too.
    """
    if not path.exists():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]
        content: StoreContent = {}
        for table in tables:
            columns = [
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'main' AND table_name = $t ORDER BY ordinal_position",
                    {"t": table},
                ).fetchall()
                if row[0] not in _VOLATILE_COLUMNS
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows, digest = con.execute(
                f'SELECT count(*), coalesce(sum(hash({quoted})), 0)::VARCHAR FROM "{table}"'
            ).fetchall()[0]
            content[table] = (int(rows), int(digest))
        return content
    finally:
        con.close()


# How a first load names its temporary store (and DuckDB the WAL and spill folder next to it):
# hidden, after the store, the process id and a random part (records/store_file.py).
_TEMPORARY = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp(\.wal|\.tmp)?")


def temporaries(folder: Path) -> list[Path]:
    """First loads' temporary files in ``folder``."""
    return sorted(p for p in folder.iterdir() if _TEMPORARY.fullmatch(p.name))


def files_in(folder: Path) -> list[str]:
    """Names in ``folder``, sorted."""
    return sorted(p.name for p in folder.iterdir())


AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def read_only_on_disk(path: Path) -> Iterator[None]:
    """Make a file or folder read-only for this user, root included, for the block.

    Permission bits do not stop root, so as root the file is made immutable (``chattr +i``)
    instead; the test is skipped where neither is possible.
    """
    if not AS_ROOT:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: nothing can make a file read-only")
    made = subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"running as root and chattr +i is refused: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


@dataclass(frozen=True)
class CompleteLoad:
    """What a complete load writes, and how long it runs once the command's imports are done."""

    content: StoreContent
    seconds: float


def timed_load(bundle: Path, db: Path) -> CompleteLoad:
    """Load ``bundle`` into ``db`` as the command line does; what it wrote, how long it took.

    In this process: the same command without a child's start (seconds of imports), and the
    same work a child process does once its imports are done.
    """
    start = time.perf_counter()
    finished = invoke("load", str(bundle), "--db", str(db))
    seconds = time.perf_counter() - start
    assert finished.returncode == 0, finished.stderr
    content = store_content(db)
    assert content is not None
    return CompleteLoad(content, seconds)
