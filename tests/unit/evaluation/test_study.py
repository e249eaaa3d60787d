"""``evaluate()`` called from Python: no command line, the mock model, the example bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, write_labels
from recordagent.evaluation.study import RunSummary, Study, StudyProgress, evaluate
from recordagent.evaluation.suite import Suite
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.questions.items import write_items
from recordagent.resources import example_bundle_path
from recordagent.settings import Settings

RUNNERS = ["single_pass_rag", "full_context"]
ITEMS = [
    EvalItem(
        id=f"asct/{patient}",
        patient_id=patient,
        question="When was the autologous stem cell transplantation?",
        answer=AnswerSpec(type="date"),
        level=1,
    )
    for patient in ("MM-001", "MM-002", "MM-003")
]


class Recorder(StudyProgress):
    """Keeps what the study reports."""

    def __init__(self) -> None:
        self.studies: list[Study] = []
        self.summaries: list[RunSummary] = []

    def planned(self, study: Study) -> None:
        self.studies.append(study)

    def finished(self, summary: RunSummary) -> None:
        self.summaries.append(summary)


def _suite(tmp_path: Path, *, labels: Path | None = None) -> Suite:
    items = tmp_path / "items.jsonl"
    write_items(items, ITEMS)
    return Suite(
        name="tiny",
        bundle=example_bundle_path(),
        items=items,
        labels=labels,
        runners=RUNNERS,
        model="mock",
        concurrency=2,
        output=tmp_path / "run",
    )


def test_evaluate_writes_one_log_per_runner_with_every_item(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    recorder = Recorder()

    logs = evaluate(suite, Settings(), progress=recorder)

    assert [log.manifest.runner for log in logs] == RUNNERS
    for log in logs:
        assert log.path == suite.output / f"{log.manifest.runner}.jsonl"
        assert log.manifest.mock is True
        assert sorted(log.done_item_ids()) == sorted(item.id for item in ITEMS)
        assert all(record.score is None for record in log.records)  # no labels: unscored
    assert [s.new for s in recorder.summaries] == [len(ITEMS)] * len(RUNNERS)
    assert recorder.studies[0].inputs.references is None


def test_labels_make_the_answers_scored(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    write_labels([Label(item_id=item.id, annotator="a", value=None) for item in ITEMS], labels)

    logs = evaluate(_suite(tmp_path, labels=labels), Settings())

    assert all(record.score is not None for log in logs for record in log.records)


def test_a_rerun_is_refused_without_resume_and_resumes_with_it(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    evaluate(suite, Settings())
    first = suite.output / f"{RUNNERS[0]}.jsonl"
    lines = first.read_text(encoding="utf-8").splitlines(keepends=True)
    first.write_text("".join(lines[:2]), encoding="utf-8")  # the manifest and one record
    untouched = (suite.output / f"{RUNNERS[1]}.jsonl").read_bytes()

    with pytest.raises(UserError, match="pass --resume"):
        evaluate(suite, Settings())

    recorder = Recorder()
    logs = evaluate(suite, Settings(), resume=True, progress=recorder)

    assert [(s.new, s.already) for s in recorder.summaries] == [(2, 1), (0, len(ITEMS))]
    assert all(len(log.records) == len(ITEMS) for log in logs)
    assert first.read_text(encoding="utf-8").startswith("".join(lines[:2]))
    assert (suite.output / f"{RUNNERS[1]}.jsonl").read_bytes() == untouched


def test_a_resume_with_other_items_is_refused_before_any_work(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    evaluate(suite, Settings())
    before = {p.name: p.read_bytes() for p in suite.output.glob("*.jsonl")}
    assert suite.items is not None
    write_items(suite.items, ITEMS[:2])

    with pytest.raises(UserError, match="is the log of a different run; it differs in items"):
        evaluate(suite, Settings(), resume=True)

    assert {p.name: p.read_bytes() for p in suite.output.glob("*.jsonl")} == before
