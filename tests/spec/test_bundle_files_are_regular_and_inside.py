"""A bundle load reads only regular files inside the bundle folder, and never blocks on one.

Named pipes, sockets and folders where a table or document file should be are refused without
being opened; symbolic links are followed while they stay inside the bundle folder, and a link
out of it (a table, the manifest, the documents folder, as documents already were) is refused
naming where it leads.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recordagent.errors import LoadProblem
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import load_problems, only, use_document_folder

ONE_DOCUMENT = "document_id,patient_id,date,type,file\nD1,A,2020-01-01,note,d1.txt\n"


def problems_without_blocking(store: RecordStore, bundle: Path, pipe: Path) -> list[LoadProblem]:
    """The load's problems; a load still waiting on ``pipe`` after 30 s fails the test."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["problems"] = load_problems(store, bundle)
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        # Opening the pipe's other end and closing it gives the blocked reader an end of file.
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(30)
        pytest.fail(f"the load blocked on the named pipe {pipe.name}")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["problems"]  # type: ignore[return-value]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_a_named_pipe_as_a_document_is_refused_without_blocking(
    store: RecordStore, two_patients: Path
):
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    os.mkfifo(folder / "d1.txt")
    problem = only(problems_without_blocking(store, two_patients, folder / "d1.txt"))
    assert (problem.file, problem.row, problem.column) == ("documents/manifest.csv", 1, "file")
    assert "named pipe (FIFO), not a regular file" in problem.message


@pytest.mark.parametrize("name", ["events.csv", "labs.csv.gz", "patients.parquet"])
def test_a_named_pipe_as_a_table_is_refused_without_blocking(
    store: RecordStore, two_patients: Path, name: str
):
    table = name.split(".")[0]
    for old in two_patients.glob(f"{table}.*"):
        old.unlink()
    os.mkfifo(two_patients / name)
    problem = only(problems_without_blocking(store, two_patients, two_patients / name))
    assert problem.file == name
    assert "named pipe (FIFO), not a regular file" in problem.message


def test_a_named_pipe_as_the_manifest_is_refused(store: RecordStore, two_patients: Path):
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    (folder / "manifest.csv").unlink()
    os.mkfifo(folder / "manifest.csv")
    problem = only(problems_without_blocking(store, two_patients, folder / "manifest.csv"))
    assert problem.file == "documents/manifest.csv"
    assert "named pipe" in problem.message


@pytest.fixture
def unix_socket(two_patients: Path) -> Iterator[Path]:
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    path = folder / "d1.txt"
    with socket.socket(socket.AF_UNIX) as bound:
        try:
            bound.bind(str(path))
        except OSError as exc:  # a path too long for a socket address
            pytest.skip(f"cannot bind a unix socket here: {exc}")
        yield path


def test_a_socket_as_a_document_is_refused(
    store: RecordStore, two_patients: Path, unix_socket: Path
):
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "file")
    assert "'d1.txt' is a socket, not a regular file" in problem.message


def test_a_folder_named_like_a_document_or_a_table_is_refused(
    store: RecordStore, two_patients: Path
):
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    (folder / "d1.txt").mkdir()
    problem = only(load_problems(store, two_patients))
    assert "'d1.txt' is a folder, not a regular file" in problem.message

    shutil.rmtree(folder)
    (two_patients / "events.csv").unlink()
    (two_patients / "events.csv").mkdir()
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.message) == ("events.csv", "is a folder, not a regular file")


def test_a_documents_folder_linked_out_of_the_bundle_is_refused(
    store: RecordStore, two_patients: Path, outside: Path
):
    (outside / "manifest.csv").write_text(ONE_DOCUMENT)
    (outside / "d1.txt").write_text("A note.")
    (two_patients / "documents.csv").unlink()
    (two_patients / "documents").symlink_to(outside)
    problem = only(load_problems(store, two_patients))
    assert problem.file == "documents/"
    assert f"leads to '{outside.resolve()}', outside the bundle folder" in problem.message


def test_a_table_link_is_followed_inside_the_bundle_and_refused_out_of_it(
    store: RecordStore, two_patients: Path, outside: Path
):
    (two_patients / "exports").mkdir()
    shutil.move(two_patients / "events.csv", two_patients / "exports" / "events-2024.csv")
    (two_patients / "events.csv").symlink_to(two_patients / "exports" / "events-2024.csv")
    assert load_bundle(store, two_patients, source="inside").counts["events"] == 3

    shutil.move(two_patients / "exports" / "events-2024.csv", outside / "events.csv")
    (two_patients / "events.csv").unlink()
    (two_patients / "events.csv").symlink_to(outside / "events.csv")
    with connect() as fresh:
        problem = only(load_problems(fresh, two_patients))
    assert problem.file == "events.csv"
    assert f"leads to '{(outside / 'events.csv').resolve()}'" in problem.message


@pytest.mark.parametrize(
    ("target", "message"),
    [("missing.csv", "which does not exist"), ("events.csv", "cannot be read")],
)
def test_a_broken_or_looping_link_as_a_table_is_refused(
    store: RecordStore, two_patients: Path, target: str, message: str
):
    (two_patients / "events.csv").unlink()
    (two_patients / "events.csv").symlink_to(two_patients / target)
    problem = only(load_problems(store, two_patients))
    assert problem.file == "events.csv"
    assert message in problem.message


def test_a_file_swapped_for_a_named_pipe_after_the_check_fails_at_once(tmp_path: Path):
    from recordagent.records.bundle import read_regular_bytes

    os.mkfifo(tmp_path / "d1.txt")
    with pytest.raises(OSError, match="is a named pipe"):
        read_regular_bytes(tmp_path / "d1.txt")  # opened without waiting for a writer
