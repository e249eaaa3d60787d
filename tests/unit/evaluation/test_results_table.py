"""Per-item results as a DataFrame: one typed row per item and run, rescored on demand, written
whole as Parquet, CSV, JSONL or JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, ReferenceLabel
from recordagent.evaluation.log import ItemError, RunLog, RunLogWarning, RunManifest, RunRecord
from recordagent.evaluation.results_table import (
    RESULT_COLUMNS,
    columns_markdown,
    records_frame,
    results,
    write_results,
)
from recordagent.evaluation.scorers import Score
from recordagent.questions import AnswerSpec, EvalItem, ScoringSpec
from recordagent.runners import Answer, AnswerUsage
from recordagent.tools.base import SourceRef
from tests.helpers import REPO

LONG_PATIENT = "PATIENT-WITH-A-RATHER-LONG-IDENTIFIER-0000000000001"
LONG_ITEM = f"a-template-whose-name-goes-on-and-on-about-the-question/{LONG_PATIENT}/line=1"
LONG_MODEL = "an-organisation/a-model-with-a-long-name-70B-instruct-q4_k_m-2026-12-05"

ITEMS = {
    "asct": EvalItem(
        id="asct/A",
        patient_id="A",
        question="When was the ASCT?",
        answer=AnswerSpec(type="date"),
        template_id="asct",
        level=1,
        as_of=dt.date(2021, 1, 1),
        scoring=ScoringSpec(tolerance_days=3),
    ),
    "drugs": EvalItem(
        id="drugs/A",
        patient_id="A",
        question="Which drugs is the myeloma refractory to?",
        answer=AnswerSpec(type="list", allowed=("lenalidomide", "bortezomib")),
        level=3,
    ),
    "mprotein": EvalItem(
        id="mprotein/B",
        patient_id="B",
        question="What was the M-protein at diagnosis?",
        answer=AnswerSpec(type="number", unit="g/dL"),
        level=1,
    ),
    "long": EvalItem(
        id=LONG_ITEM,
        patient_id=LONG_PATIENT,
        question="Was t(4;14) detected?",
        answer=AnswerSpec(type="boolean"),
        level=2,
    ),
}
LABELS = [
    Label(item_id="asct/A", annotator="md1", value="2020-06-15"),
    Label(item_id="drugs/A", annotator="md1", value=["lenalidomide"]),
    Label(item_id="mprotein/B", annotator="md1", value=None),  # the record does not say
    # LONG_ITEM has no label
]


def manifest(runner: str, model: str = "mock-a", *, run_id: str | None = None) -> RunManifest:
    return RunManifest(
        run_id=run_id or f"run-{runner}",
        created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        runner=runner,
        model=model,
        mock=True,
        settings_hash="s",
        data_fingerprint="d",
        package_version="0.1.0",
        prompt_version="p1",
    )


def record(
    item: EvalItem,
    runner: str,
    value: Any,
    *,
    model: str = "mock-a",
    status: str = "answered",
    score: tuple[str, str] | None = None,
    citations: tuple[SourceRef, ...] = (),
    **extra: Any,
) -> RunRecord:
    answer = Answer(
        item_id=item.id,
        runner=runner,
        prompt_version="p1",
        model=model,
        mock=True,
        status=status,  # type: ignore[arg-type]
        value=value,
        text=f"said {value}",
        citations=list(citations),
        failure=extra.pop("failure", None),
        usage=AnswerUsage(
            prompt_tokens=900,
            completion_tokens=40,
            cost_usd=extra.pop("cost", None),
            model_calls=2,
            requests=3,
            tool_calls=4,
            max_prompt_tokens=600,
            wall_s=1.25,
            model_s=0.75,
        ),
    )
    graded = (
        None if score is None else Score(state=score[0], explanation="stored", scorer=score[1])  # type: ignore[arg-type]
    )
    return RunRecord(
        item=item, answer=answer, score=graded, record_tokens=5000, record_documents=7, **extra
    )


def agent_records(model: str = "mock-a") -> list[RunRecord]:
    lab = SourceRef(kind="lab", id="L-12")
    chunk = SourceRef(kind="chunk", id="A-D3#2", document_id="A-D3")
    return [
        record(
            ITEMS["asct"],
            "agent",
            "2020-06-16",
            model=model,
            score=("correct", "date"),
            citations=(chunk, lab),
            cost=0.0125,
        ),
        record(ITEMS["drugs"], "agent", ["lenalidomide", "bortezomib"], model=model),
        record(
            ITEMS["mprotein"],
            "agent",
            None,
            model=model,
            status="failed",
            failure="timeout",
            score=("incorrect", "failed"),
        ),
        record(
            ITEMS["long"],
            "agent",
            None,
            model=model,
            status="failed",
            error=ItemError(kind="ZeroDivisionError", at="x.py:1 in f"),
        ),
    ]


def write_log(path: Path, runner: str, records: list[RunRecord], model: str = "mock-a") -> Path:
    log = RunLog.open(path, manifest(runner, model))
    for entry in records:
        log.append(entry)
    return path


def two_logs(folder: Path, model: str = "mock-a") -> list[Path]:
    """An agent log (four items, see agent_records) and a full-context log of two items."""
    folder.mkdir(parents=True, exist_ok=True)
    full = [
        record(
            ITEMS["asct"], "full_context", "2019-01-01", model=model, score=("incorrect", "date")
        ),
        record(ITEMS["long"], "full_context", True, model=model),
    ]
    return [
        write_log(folder / "agent.jsonl", "agent", agent_records(model), model),
        write_log(folder / "full_context.jsonl", "full_context", full, model),
    ]


@pytest.fixture
def logs(tmp_path: Path) -> list[Path]:
    return two_logs(tmp_path)


def _by(frame: pl.DataFrame, runner: str, item_id: str) -> dict[str, Any]:
    rows = frame.filter((pl.col("runner") == runner) & (pl.col("item_id") == item_id))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_one_typed_row_per_item_and_run_in_the_documented_column_order(logs: list[Path]):
    frame = results(logs)
    assert frame.columns == [c.name for c in RESULT_COLUMNS]
    assert list(frame.schema.values()) == [c.dtype for c in RESULT_COLUMNS]
    assert frame.height == 6
    assert frame.select("runner", "item_id").rows() == [
        ("agent", "asct/A"),
        ("agent", "drugs/A"),
        ("agent", "mprotein/B"),
        ("agent", LONG_ITEM),
        ("full_context", "asct/A"),
        ("full_context", LONG_ITEM),
    ]
    asct = _by(frame, "agent", "asct/A")
    assert asct["run_id"] == "run-agent" and asct["log"] == str(logs[0])
    assert (asct["patient_id"], asct["template_id"], asct["level"]) == ("A", "asct", 1)
    assert asct["as_of"] == dt.date(2021, 1, 1) and asct["answer_type"] == "date"
    assert json.loads(asct["value"]) == "2020-06-16" and asct["value_text"] == "2020-06-16"
    assert asct["citations"] == ["chunk:A-D3#2", "lab:L-12"]
    assert (asct["score"], asct["correct"], asct["scorer"]) == ("correct", True, "date")
    assert asct["text"] == "said 2020-06-16" and asct["mock"] is True
    assert asct["cost_usd"] == 0.0125 and asct["latency_s"] == 1.25 and asct["model_s"] == 0.75
    assert (asct["prompt_tokens"], asct["completion_tokens"], asct["total_tokens"]) == (
        900,
        40,
        940,
    )
    assert (asct["model_calls"], asct["requests"], asct["tool_calls"]) == (2, 3, 4)
    assert (asct["record_tokens"], asct["record_documents"]) == (5000, 7)
    # Without labels there is no reference.
    assert asct["reference"] is None and asct["reference_source"] is None

    drugs = _by(frame, "agent", "drugs/A")
    assert json.loads(drugs["value"]) == ["lenalidomide", "bortezomib"]
    assert drugs["value_text"] == "lenalidomide; bortezomib"
    assert drugs["score"] is None and drugs["correct"] is None  # logged unscored

    failed = _by(frame, "agent", "mprotein/B")
    assert (failed["status"], failed["failure"], failed["value"]) == ("failed", "timeout", None)
    assert failed["unit"] == "g/dL" and failed["cost_usd"] is None
    crashed = _by(frame, "agent", LONG_ITEM)
    assert crashed["error"] == "ZeroDivisionError" and crashed["patient_id"] == LONG_PATIENT
    assert _by(frame, "full_context", LONG_ITEM)["value_text"] == "true"


def test_rescoring_against_labels_grades_every_answer_and_fills_the_reference(logs: list[Path]):
    frame = results(logs, labels=LABELS, rescore=True)
    asct = _by(frame, "agent", "asct/A")
    assert (asct["score"], asct["correct"], asct["scorer"]) == ("correct", True, "date")
    assert asct["reference_text"] == "2020-06-15" and asct["reference_source"] == "single"
    assert "2020-06-16 vs 2020-06-15" in asct["explanation"]
    # Exact list match by default: an extra drug is wrong.
    drugs = _by(frame, "agent", "drugs/A")
    assert (drugs["score"], drugs["correct"]) == ("incorrect", False)
    assert drugs["reference_text"] == "lenalidomide"
    # The record is silent: the reference is null but there is one (its source says so).
    silent = _by(frame, "agent", "mprotein/B")
    assert silent["reference"] is None and silent["reference_source"] == "single"
    assert silent["score"] == "incorrect" and silent["scorer"] == "failed"
    # No label: ungraded, counted neither way.
    unlabelled = _by(frame, "full_context", LONG_ITEM)
    assert (unlabelled["score"], unlabelled["correct"]) == ("ungraded", None)
    assert frame["correct"].mean() == pytest.approx(1 / 4)  # 1 of 4 graded rows


def test_labels_rescore_by_default_so_each_score_is_made_against_the_reference_beside_it(
    logs: list[Path],
):
    # The log holds drugs/A unscored: a reference beside that stored score would contradict it.
    assert _by(results(logs), "agent", "drugs/A")["score"] is None
    by_default = results(logs, labels=LABELS)
    assert by_default.equals(results(logs, labels=LABELS, rescore=True))
    drugs = _by(by_default, "agent", "drugs/A")
    assert (drugs["reference_text"], drugs["score"]) == ("lenalidomide", "incorrect")
    # Every graded row's explanation compares the answer with the reference in the same row.
    for row in by_default.filter(pl.col("scorer") == "date").iter_rows(named=True):
        assert f"vs {row['reference_text']}" in row["explanation"]


def test_labels_with_rescore_false_are_refused_rather_than_mixing_two_sets_of_labels(
    logs: list[Path],
):
    with pytest.raises(UserError, match="labels with rescore=False would put references"):
        results(logs, labels=LABELS, rescore=False)
    assert results(logs, rescore=False).equals(results(logs))


def test_labels_may_be_a_file_or_references_and_logs_may_be_read_already(
    logs: list[Path], tmp_path: Path
):
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("".join(label.model_dump_json() + "\n" for label in LABELS))
    from_file = results([str(p) for p in logs], labels=labels_file, rescore=True)
    references = {
        "asct/A": ReferenceLabel(
            item_id="asct/A", value="2020-06-15", source="adjudicated", annotators=["x"]
        )
    }
    read = [RunLog.read(p) for p in logs]
    from_read = results(read, labels=references, rescore=True)
    assert from_read["log"].null_count() == from_read.height
    assert (
        from_file.drop("log")
        .select("item_id", "runner")
        .equals(from_read.drop("log").select("item_id", "runner"))
    )
    assert _by(from_read, "agent", "asct/A")["reference_source"] == "adjudicated"
    assert _by(from_read, "agent", "drugs/A")["score"] == "ungraded"  # no reference given
    # A single log is a single source, whatever form it comes in.
    assert results(logs[1]).height == results(read[1]).height == 2


def test_records_without_a_manifest_take_runner_and_model_from_their_answers():
    frame = records_frame(agent_records(model=LONG_MODEL))
    assert frame.columns == [c.name for c in RESULT_COLUMNS]
    assert frame["run_id"].null_count() == frame.height
    assert set(frame["model"]) == {LONG_MODEL} and set(frame["runner"]) == {"agent"}


def test_bad_logs_and_arguments_are_user_errors_naming_the_file(tmp_path: Path, logs):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(UserError, match=f"no run log at {missing}"):
        results(missing)
    not_a_log = tmp_path / "items.jsonl"
    not_a_log.write_text('{"id": "x"}\n')
    with pytest.raises(UserError, match=rf"{not_a_log}, line 1"):
        results([logs[0], not_a_log])
    with pytest.raises(UserError, match="is a folder"):
        results(tmp_path)
    with pytest.raises(UserError, match="rescore needs labels"):
        results(logs, rescore=True)


def test_a_half_written_last_line_is_left_out_with_a_warning(logs: list[Path]):
    with logs[1].open("a") as out:
        out.write('{"kind": "record", "item": {"id": "cut')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = results(logs[1])
    assert frame.height == 2
    assert [str(w.message) for w in caught if w.category is RunLogWarning] == [
        f"{logs[1]}: line 4 is half-written (the run was interrupted) and was left out"
    ]


def test_written_files_read_back_with_the_same_rows(logs: list[Path], tmp_path: Path):
    frame = results(logs, labels=LABELS, rescore=True)
    parquet = write_results(frame, tmp_path / "out" / "results.parquet")
    assert pl.read_parquet(parquet).equals(frame)
    plain = tmp_path / "plain"
    plain.write_text("")
    assert parquet.stat().st_mode == plain.stat().st_mode  # not private to the writer

    csv = pl.read_csv(write_results(frame, tmp_path / "results.csv"), infer_schema=False)
    assert csv.columns == frame.columns and csv.height == frame.height
    # CSV cannot hold lists: citations are joined with ';'.
    assert csv["citations"][0] == "chunk:A-D3#2;lab:L-12"
    assert csv["citations"][1] is None or csv["citations"][1] == ""

    lines = (write_results(frame, tmp_path / "results.jsonl")).read_text().splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == frame["item_id"].to_list()
    assert json.loads(lines[0])["as_of"] == "2021-01-01"
    whole = json.loads(write_results(frame, tmp_path / "results.json").read_text())
    assert [row["citations"] for row in whole] == frame["citations"].to_list()
    # The format may be given for a suffix that names none.
    forced = write_results(frame, tmp_path / "results.txt", format="jsonl")
    assert forced.read_text() == "\n".join(lines) + "\n"
    assert write_results(frame, tmp_path / "again.csv", format="csv").read_text() == (
        (tmp_path / "results.csv").read_text()
    )


def test_a_format_the_suffix_contradicts_is_refused_naming_both(logs: list[Path], tmp_path: Path):
    frame = results(logs)
    target = tmp_path / "x.parquet"
    with pytest.raises(
        UserError, match=rf"cannot write csv to {target}: its suffix '\.parquet' names parquet"
    ):
        write_results(frame, target, format="csv")
    with pytest.raises(UserError, match="give a file ending in .json or leave out the format"):
        write_results(frame, tmp_path / "x.JSONL", format="json")
    assert not target.exists()


def test_results_are_never_written_over_a_log_they_were_read_from(logs: list[Path], tmp_path: Path):
    frame = results(logs)
    before = logs[1].read_bytes()
    with pytest.raises(UserError, match=rf"it is the run log {logs[1]} they were read from"):
        write_results(frame, logs[1].with_suffix(".jsonl"), format="jsonl")
    # The same file by another name: a symbolic link, a hard link, a path through '..'.
    linked = tmp_path / "linked.jsonl"
    linked.symlink_to(logs[1])
    hard = tmp_path / "hard.jsonl"
    os.link(logs[1], hard)
    roundabout = logs[1].parent / ".." / logs[1].parent.name / logs[1].name
    for other in (linked, hard, roundabout):
        with pytest.raises(UserError, match="they were read from; give another file"):
            write_results(frame, other)
    assert logs[1].read_bytes() == before
    # Files in keep (the labels) are kept too; other files are written as usual.
    labels = tmp_path / "labels.csv"
    labels.write_text("item_id,annotator,value\n")
    with pytest.raises(UserError, match=f"it is the input {labels}"):
        write_results(frame, labels, keep=[labels])
    assert labels.read_text() == "item_id,annotator,value\n"
    assert write_results(frame, tmp_path / "results.jsonl", keep=[labels]).exists()


def test_a_bad_results_path_is_a_user_error_and_leaves_nothing(
    logs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    frame = results(logs)
    with pytest.raises(UserError, match=r"unknown format '\.xlsx'"):
        write_results(frame, tmp_path / "results.xlsx")
    with pytest.raises(UserError, match="unknown results format 'xml'"):
        write_results(frame, tmp_path / "results.csv", format="xml")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(UserError, match="is a folder"):
        write_results(frame, folder)
    folder.rmdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write the results file"):
        write_results(frame, blocker / "results.csv")
    # A write that fails half-way leaves the file that was there, and no temporary file.
    existing = tmp_path / "kept.csv"
    existing.write_text("old")

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", full_disk)
    with pytest.raises(UserError, match="cannot write the results file .*No space left"):
        write_results(frame, existing)
    assert existing.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file",
        "agent.jsonl",
        "full_context.jsonl",
        "kept.csv",
    ]


def test_to_pandas_gives_the_same_rows(logs: list[Path]):
    pytest.importorskip("pandas")
    frame = results(logs)
    pandas_frame = frame.to_pandas()
    assert list(pandas_frame.columns) == frame.columns
    assert pandas_frame["item_id"].tolist() == frame["item_id"].to_list()


def test_the_documented_column_table_is_the_one_the_code_has():
    docs = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    assert columns_markdown() in docs
