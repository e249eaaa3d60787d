"""Run logs: manifest first, append-only records, validation by line, crash tolerance, resume."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.log import (
    ItemError,
    RunLog,
    RunLogMismatch,
    RunLogWarning,
    RunManifest,
    RunRecord,
    read_contents,
    rescore,
)
from recordagent.evaluation.manifest import (
    git_sha,
    item_fingerprint,
    item_set_fingerprint,
    store_data_fingerprint,
)
from recordagent.evaluation.scorers import Score
from recordagent.llm import MockModel
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.resources import package_version
from recordagent.runners import Answer, build_runner
from recordagent.settings import Settings
from tests.helpers import FIXTURES

ITEM = EvalItem(
    id="asct/A",
    patient_id="A",
    question="When was the ASCT?",
    answer=AnswerSpec(type="date"),
    level=1,
)


def manifest(**overrides: object) -> RunManifest:
    fields: dict[str, object] = {
        "run_id": "run-1",
        "created": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "runner": "single_pass_rag",
        "model": "mock",
        "mock": True,
        "settings_hash": "abc",
        "data_fingerprint": "data",
        "package_version": "0.1.0",
        "git_sha": None,
        "prompt_version": "rag-1",
    }
    return RunManifest.model_validate(fields | overrides)


def record(
    item_id: str = "asct/A", value: object = dt.date(2020, 6, 15), **score: str
) -> RunRecord:
    item = ITEM.model_copy(update={"id": item_id})
    answer = Answer(
        item_id=item_id,
        runner="single_pass_rag",
        prompt_version="rag-1",
        model="mock",
        mock=True,
        status="answered",
        value=value,
    )
    graded = Score(state=score["state"], explanation="x", scorer="date") if score else None
    return RunRecord(item=item, answer=answer, score=graded, record_tokens=120, record_documents=4)


def test_records_round_trip_with_typed_values(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    log = RunLog.open(path, manifest())
    first = record(state="correct")
    log.append(first)
    log.append(record("other/A", None))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["manifest", "record", "record"]
    read_manifest, records = RunLog.read(path)
    assert read_manifest == manifest()
    assert records[0] == first
    # JSON has no dates: the value comes back a date because the item asks for one.
    assert records[0].answer.value == dt.date(2020, 6, 15)
    assert records[1].answer.value is None and records[1].score is None
    assert log.done_item_ids() == {"asct/A", "other/A"}


def test_reopening_resumes_the_same_run(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    RunLog.open(path, manifest()).append(record())
    # A later start of the same run (new id and time, newer code) continues the log.
    again = RunLog.open(path, manifest(run_id="run-2", git_sha="f00", package_version="0.2"))
    assert again.manifest.run_id == "run-1"
    assert again.done_item_ids() == {"asct/A"} and again.recovered_line is None
    with pytest.raises(ValueError, match="already in the run log"):
        again.append(record())
    with pytest.raises(UserError, match=r"different run; it differs in model .*settings_hash"):
        RunLog.open(path, manifest(model="gpt", settings_hash="zzz"))


def test_append_refuses_another_runners_answer(tmp_path: Path):
    log = RunLog.open(tmp_path / "run.jsonl", manifest(runner="full_context"))
    with pytest.raises(
        ValueError, match="answer is by runner 'single_pass_rag', but this is the log of runner "
    ):
        log.append(record())


def test_a_half_written_last_line_is_tolerated_reported_and_cut(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    log = RunLog.open(path, manifest())
    log.append(record())
    full = path.read_text()
    path.write_text(full + '{"kind":"record","item":{"id":"b/A"')  # the crash
    with pytest.warns(RunLogWarning, match="line 3 is half-written"):
        _, records = RunLog.read(path)
    assert len(records) == 1
    assert read_contents(path).truncated_line == 3
    resumed = RunLog.open(path, manifest())
    assert resumed.recovered_line == 3 and path.read_text() == full
    resumed.append(record("b/A"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(RunLog.read(path)[1]) == 2


def test_a_complete_last_line_without_newline_gets_one_before_appending(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    RunLog.open(path, manifest()).append(record())
    path.write_text(path.read_text().rstrip("\n"))
    RunLog.open(path, manifest()).append(record("b/A"))
    assert len(RunLog.read(path)[1]) == 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: lines[:1] + ["not json"] + lines[1:], r"line 2: not JSON"),
        (
            lambda lines: [lines[1], lines[0]],
            r"line 1: field 'kind' is 'record'; expected 'manifest'",
        ),
        (
            lambda lines: lines + [lines[0]],
            r"line 3: field 'kind' is 'manifest'; expected 'record'",
        ),
        (lambda lines: lines + [lines[1]], r"line 3: item 'asct/A' is already on line 2"),
        (lambda lines: lines + ["[1, 2]"], r"line 3: not a run log line"),
        (
            lambda lines: [lines[0], lines[1].replace('"record_tokens":120', '"record_tokens":-1')],
            r"line 2: invalid record: field 'record_tokens'",
        ),
        (
            lambda lines: [lines[0], lines[1].replace('"2020-06-15"', '"June"')],
            r"line 2: invalid record: .*answer value: 'June' is not a date",
        ),
        (
            lambda lines: [lines[0].replace('"mock":true', '"mock":"maybe"')],
            r"line 1: invalid manifest: field 'mock'",
        ),
    ],
)
def test_every_bad_line_is_named(tmp_path: Path, damage, message):
    path = tmp_path / "run.jsonl"
    RunLog.open(path, manifest()).append(record())
    lines = path.read_text().splitlines()
    path.write_text("\n".join(damage(lines)) + "\n")
    with pytest.raises(UserError, match=message) as caught:
        RunLog.read(path)
    assert str(path) in str(caught.value)


def test_missing_and_empty_logs(tmp_path: Path):
    with pytest.raises(UserError, match="no run log at"):
        RunLog.read(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="empty file, not a run log"):
        RunLog.read(tmp_path / "empty.jsonl")
    with pytest.raises(UserError, match="folder for the run log does not exist"):
        RunLog.open(tmp_path / "no" / "run.jsonl", manifest())


def test_rescore_recomputes_scores_without_running(tmp_path: Path):
    records = [record(state="incorrect"), record("b/A", dt.date(2020, 1, 1))]
    references = {
        "asct/A": ReferenceLabel(
            item_id="asct/A", value="2020-06-15", source="single", annotators=["x"]
        )
    }
    again = rescore(records, references)
    assert [r.score.state for r in again if r.score] == ["correct", "ungraded"]
    assert [r.answer for r in again] == [r.answer for r in records]
    assert records[0].score is not None and records[0].score.state == "incorrect"  # not mutated


def test_manifest_helpers(tmp_path: Path, store):
    from recordagent.records.load import load_bundle

    settings = Settings()
    runner = build_runner("full_context", settings)
    model = MockModel([])
    load_bundle(store, FIXTURES / "tool_patients")
    made = RunManifest.create(
        runner, model, settings, data_fingerprint=store_data_fingerprint(store), run_id="r"
    )
    assert made.runner == "full_context" and made.model == "mock" and made.mock
    assert made.settings_hash == settings.fingerprint()
    assert made.prompt_version == runner.prompt_version and made.run_id == "r"
    assert made.package_version == package_version() and made.created.tzinfo is not None
    assert len(made.data_fingerprint) == 16
    # The repository is a git checkout; a plain folder is not.
    assert made.git_sha is None or len(made.git_sha) == 40
    assert git_sha(tmp_path) is None
    other = RunManifest.create(
        runner,
        model,
        Settings(runners={"full_context": {"window_tokens": 9000}}),
        data_fingerprint="d",
    )
    assert other.settings_hash != made.settings_hash
    assert RunManifest.create(runner, model, settings, data_fingerprint="d").run_id != made.run_id


def test_a_line_cut_inside_a_character_is_a_half_written_line(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    log = RunLog.open(path, manifest())
    log.append(record())
    full = path.read_bytes()
    assert full.isascii()  # lines are written ASCII-only, so no write can split a character
    # A log from before: a non-ASCII line, cut by a crash one byte into "±".
    path.write_bytes(full + '{"kind":"record","item":{"id":"b/A","question":"±'.encode()[:-1])
    resumed = RunLog.open(path, manifest())
    assert resumed.recovered_line == 3 and path.read_bytes() == full
    assert resumed.done_item_ids() == {"asct/A"}


def test_a_crash_while_writing_the_manifest_starts_the_run_afresh(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"kind":"manifest","run_id":"ru')
    log = RunLog.open(path, manifest())
    assert log.done_item_ids() == set()
    assert RunLog.read(path)[0] == manifest()


# --- what a log is a run of ----------------------------------------------------------------------

SIXTY = [ITEM.model_copy(update={"id": f"q{k}/A"}) for k in range(60)]


def listed(items: list[EvalItem], **overrides: object) -> RunManifest:
    """A manifest that lists ``items`` as the run's item set."""
    fields = manifest().model_dump() | {"items": {i.id: item_fingerprint(i) for i in items}}
    return RunManifest.model_validate(fields | overrides)


def test_a_log_says_which_items_it_is_a_run_of(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    RunLog.open(path, listed(SIXTY[:3]))
    head = json.loads(path.read_text().splitlines()[0])
    assert sorted(head["items"]) == ["q0/A", "q1/A", "q2/A"]
    assert head["items_fingerprint"] == item_set_fingerprint(head["items"])
    # The set, not the order, is what the run is of.
    assert (
        RunLog.open(path, listed(SIXTY[2::-1])).manifest.items_fingerprint
        == (head["items_fingerprint"])
    )


def test_resuming_with_another_item_set_is_refused_with_what_differs(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    log = RunLog.open(path, listed(SIXTY))
    for item in SIXTY[:20]:
        log.append(record(item.id))
    before = path.read_bytes()
    other = [ITEM.model_copy(update={"id": f"new{k}/A"}) for k in range(20)]
    with pytest.raises(RunLogMismatch) as refused:
        RunLog.open(path, listed(other))
    message = str(refused.value)
    assert "differs in items" in message
    assert "the log's run has 60 items, this run 20" in message
    assert "20 of this run's items are not in the log's" in message
    assert "60 of the log's items are not in this run" in message
    assert "new log file" in message
    # A changed question under the same id is another item too.
    changed = [i.model_copy(update={"question": "When?"}) if i.id == "q0/A" else i for i in SIXTY]
    with pytest.raises(RunLogMismatch, match="1 items have the same id but another question"):
        RunLog.open(path, listed(changed))
    assert path.read_bytes() == before


def test_a_record_of_another_runner_or_of_an_item_outside_the_run_is_refused_on_read(
    tmp_path: Path,
):
    path = tmp_path / "run.jsonl"
    log = RunLog.open(path, listed(SIXTY[:2]))
    log.append(record("q0/A"))
    lines = path.read_text().splitlines()
    foreign = record("q1/A").model_copy(
        update={"answer": record("q1/A").answer.model_copy(update={"runner": "full_context"})}
    )
    stranger = record("q99/A")
    changed = record("q1/A")
    changed = changed.model_copy(
        update={"item": changed.item.model_copy(update={"question": "Other?"})}
    )
    cases = [
        (foreign, r"line 3: the answer is by runner 'full_context', but this is the log of "),
        (stranger, r"line 3: item 'q99/A' is not one of the run's 2 items"),
        (changed, r"line 3: item 'q1/A' is not the item the run was started with"),
    ]
    for bad, message in cases:
        line = json.dumps({"kind": "record", **bad.model_dump(mode="json")})
        path.write_text("\n".join([*lines, line]) + "\n")
        with pytest.raises(UserError, match=message) as caught:
            RunLog.read(path)
        assert str(path) in str(caught.value) and "another run's log" in str(caught.value)
        with pytest.raises(UserError, match=message):
            RunLog.open(path, listed(SIXTY[:2]))
    with pytest.raises(ValueError, match="item 'q99/A' is not one of the run's 2 items"):
        RunLog.open(tmp_path / "fresh.jsonl", listed(SIXTY[:2])).append(stranger)


def test_a_log_from_before_item_sets_continues_only_with_its_own_items(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    old = RunLog.open(path, manifest())  # no item set recorded
    old.append(record("q0/A"))
    assert RunLog.open(path, listed(SIXTY[:5])).done_item_ids() == {"q0/A"}
    with pytest.raises(RunLogMismatch, match="1 of the log's items are not in this run"):
        RunLog.open(path, listed(SIXTY[1:5]))


def test_a_failed_record_is_retried_and_its_retry_supersedes_it(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    log = RunLog.open(path, listed(SIXTY[:2]))
    crashed = record("q0/A", None).model_copy(
        update={"error": ItemError(kind="ZeroDivisionError", at="agent.py:12 in act")}
    )
    log.append(crashed)
    log.append(record("q1/A"))
    assert log.done_item_ids() == {"q1/A"} and log.failed_item_ids() == {"q0/A"}
    resumed = RunLog.open(path, listed(SIXTY[:2]))
    assert resumed.done_item_ids() == {"q1/A"} and resumed.failed_item_ids() == {"q0/A"}
    resumed.append(record("q0/A"))
    _, records = RunLog.read(path)
    assert [r.item.id for r in records] == ["q1/A", "q0/A"]
    assert all(r.error is None for r in records)
    assert len(path.read_text().splitlines()) == 4  # append-only: the failure stays on disk
    with pytest.raises(ValueError, match="already in the run log"):
        resumed.append(record("q0/A"))


def test_a_log_another_process_is_writing_is_refused(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    written = tmp_path / "written.jsonl"  # a log this process writes, to copy from
    RunLog.open(written, manifest()).append(record())
    path.write_bytes(written.read_bytes())
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time\n"
            "from recordagent.evaluation.log import RunLog\n"
            "RunLog.open(sys.argv[1], RunLog.read(sys.argv[1])[0])\n"
            "print('holding', flush=True)\n"
            "time.sleep(60)\n",
            str(path),
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(UserError, match="is being written by another process"):
            RunLog.open(path, manifest())
    finally:
        holder.kill()
        holder.communicate()
    # The lock went with the process: the log is free again.
    assert RunLog.open(path, manifest()).done_item_ids() == {"asct/A"}
