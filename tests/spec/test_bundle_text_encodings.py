"""CSV files and document files that are not plain UTF-8 text say so, or load correctly.

UTF-8 with a byte order mark, CRLF line ends and a header-only table load; old Mac line ends,
UTF-16, Latin-1 bytes, NUL bytes and an empty file each get one problem that names the file (and
the row and column where there is one) and says what to do.
"""

from __future__ import annotations

import codecs
import gzip
from pathlib import Path

import pytest

from recordagent.records.db import RecordStore
from recordagent.records.load import load_bundle
from tests.helpers import load_problems, only, use_document_folder

ONE_DOCUMENT = "document_id,patient_id,date,type,file\nD1,A,2020-01-01,note,d1.txt\n"


def document_texts(store: RecordStore) -> list[str]:
    return [r[0] for r in store.connection.execute("SELECT text FROM documents").fetchall()]


def test_a_manifest_with_cr_only_line_ends_says_so(store: RecordStore, two_patients: Path):
    folder = use_document_folder(two_patients, ONE_DOCUMENT.replace("\n", "\r"))
    (folder / "d1.txt").write_text("A note.")
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("documents/manifest.csv", None, None)
    assert "CR-only line endings" in problem.message
    assert "save it with LF or CRLF" in problem.message


def test_a_gzipped_table_with_cr_only_line_ends_says_so(store: RecordStore, two_patients: Path):
    text = (two_patients / "events.csv").read_bytes().replace(b"\n", b"\r")
    (two_patients / "events.csv").unlink()
    (two_patients / "events.csv.gz").write_bytes(gzip.compress(text))
    problem = only(load_problems(store, two_patients))
    assert problem.file == "events.csv.gz"
    assert "CR-only line endings" in problem.message

    (two_patients / "events.csv.gz").write_bytes(gzip.compress(text.replace(b"\r", b"\r\n")))
    assert load_bundle(store, two_patients).counts["events"] == 3  # CRLF is fine


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_table_says_so(store: RecordStore, two_patients: Path, encoding: str):
    path = two_patients / "patients.csv"
    text = path.read_text()
    bom = {"utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    path.write_bytes(bom + text.encode(encoding))
    problem = only(load_problems(store, two_patients))
    assert problem.file == "patients.csv"
    assert "UTF-16 (or UTF-32) text; save it as UTF-8" in problem.message


def test_utf16_without_a_byte_order_mark_is_named_by_its_nul_bytes(
    store: RecordStore, two_patients: Path
):
    path = two_patients / "patients.csv"
    path.write_bytes(path.read_text().encode("utf-16-le"))
    problem = only(load_problems(store, two_patients))
    assert problem.file == "patients.csv"
    assert "NUL bytes" in problem.message and "UTF-16" in problem.message


def test_latin1_bytes_are_located_by_row_and_column(store: RecordStore, two_patients: Path):
    path = two_patients / "events.csv"
    path.write_bytes(path.read_bytes().replace(b"Line 1", b"L\xefgne 1"))
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("events.csv", 2, "detail")
    assert "not UTF-8 text (byte 0xEF)" in problem.message


def test_a_nul_byte_in_a_value_is_located(store: RecordStore, two_patients: Path):
    path = two_patients / "events.csv"
    path.write_bytes(path.read_bytes().replace(b"Line 1", b"Li\x00ne 1"))
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("events.csv", 2, "detail")
    assert "NUL byte" in problem.message


@pytest.mark.parametrize("content", [b"", b"\n\n", codecs.BOM_UTF8])
def test_an_empty_table_file_says_it_is_empty(
    store: RecordStore, two_patients: Path, content: bytes
):
    (two_patients / "events.csv").write_bytes(content)
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("events.csv", None, None)
    assert "the file is empty" in problem.message

    (two_patients / "events.csv").write_bytes(
        content + b"event_id,patient_id,start_time,kind,label"
    )
    assert load_bundle(store, two_patients).counts["events"] == 0  # a header alone is no rows


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name_or_a_document(
    store: RecordStore, two_patients: Path
):
    path = two_patients / "patients.csv"
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    (folder / "d1.txt").write_bytes(codecs.BOM_UTF8 + "Première note.".encode())
    load_bundle(store, two_patients)
    assert store.patient_ids() == ["A", "B"]
    assert document_texts(store) == ["Première note."]


def test_a_document_file_that_is_not_utf8_names_its_manifest_row(
    store: RecordStore, two_patients: Path
):
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    (folder / "d1.txt").write_bytes("Première".encode("utf-16"))
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("documents/manifest.csv", 1, "file")
    assert "UTF-16" in problem.message

    (folder / "d1.txt").write_bytes("Première".encode("latin-1"))
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "file")
    assert "not UTF-8 text (byte 0xE8 at offset 5)" in problem.message


def test_a_document_file_with_a_nul_byte_is_refused(store: RecordStore, two_patients: Path):
    folder = use_document_folder(two_patients, ONE_DOCUMENT)
    (folder / "d1.txt").write_bytes(b"Binary\x00data")
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("documents/manifest.csv", 1, "text")
    assert "NUL byte" in problem.message


def test_a_truncated_gzip_table_is_a_problem_not_a_traceback(
    store: RecordStore, two_patients: Path
):
    data = gzip.compress((two_patients / "events.csv").read_bytes())
    (two_patients / "events.csv").unlink()
    (two_patients / "events.csv.gz").write_bytes(data[:-10])
    problem = only(load_problems(store, two_patients))
    assert problem.file == "events.csv.gz"
    assert "cannot read the file" in problem.message
