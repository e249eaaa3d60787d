"""A whole evaluation: two runners on scripted mock models over the tool fixture, logged,
reported and rescored — every number checked against a hand count and statsmodels/scipy."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binom, binomtest
from statsmodels.stats.proportion import proportion_confint

from recordagent.errors import UserError
from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.log import RunLog, RunManifest, rescore
from recordagent.evaluation.manifest import store_data_fingerprint
from recordagent.evaluation.report import build_report, render_html, render_markdown
from recordagent.evaluation.run import run_items
from recordagent.evaluation.stats import cluster_bootstrap_ci
from recordagent.llm import MockModel, MockRequest
from recordagent.questions import AnswerSpec, EvalItem, ScoringSpec
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.runners import AgentRunner, Runner, build_runner
from recordagent.settings import Settings
from tests.helpers import FIXTURES

CATEGORIES = ("CR", "VGPR", "PR", "SD", "PD")
DRUGS = ("lenalidomide", "bortezomib", "daratumumab", "pomalidomide")


def _item(item_id: str, question: str, answer: AnswerSpec, level: int, **extra: Any) -> EvalItem:
    patient = item_id.rsplit("/", 1)[1]
    return EvalItem(
        id=item_id, patient_id=patient, question=question, answer=answer, level=level, **extra
    )


ITEMS = [
    _item(
        "asct/A", "When was the autologous stem cell transplantation?", AnswerSpec(type="date"), 1
    ),
    _item(
        "diagnosis/A",
        "When was multiple myeloma diagnosed?",
        AnswerSpec(type="date"),
        1,
        scoring=ScoringSpec(tolerance_days=7),
    ),
    _item("del17p/A", "Was del(17p) detected on FISH?", AnswerSpec(type="boolean"), 1),
    _item("t414/B", "Was t(4;14) detected on FISH?", AnswerSpec(type="boolean"), 1),
    _item(
        "mprotein_march/A",
        "What was the M-protein in March 2020?",
        AnswerSpec(type="number", unit="g/dL"),
        1,
        scoring=ScoringSpec(abs_tol=0.05),
    ),
    _item("lines/A", "How many lines of therapy were given?", AnswerSpec(type="count"), 2),
    _item(
        "refractory/A",
        "Which drugs is the myeloma refractory to?",
        AnswerSpec(type="list", allowed=DRUGS),
        3,
    ),
    _item(
        "iss/A",
        "What was the ISS stage at diagnosis?",
        AnswerSpec(type="category", allowed=("I", "II", "III")),
        1,
    ),
    _item(
        "response/A",
        "What was the best response to induction?",
        AnswerSpec(type="category", allowed=CATEGORIES),
        2,
    ),
    _item("course/B", "Summarise the course of the disease.", AnswerSpec(type="text"), 3),
    _item(
        "mprotein_dx/B",
        "What was the M-protein at diagnosis?",
        AnswerSpec(type="number", unit="g/dL"),
        1,
    ),
    _item("asct/B", "When did this patient have a transplant?", AnswerSpec(type="date"), 2),
]

REFERENCE_VALUES: dict[str, Any] = {
    "asct/A": "2020-06-15",
    "diagnosis/A": "2020-01-05",
    "del17p/A": True,
    "t414/B": True,
    "mprotein_march/A": 1.5,
    "lines/A": 2,
    "refractory/A": ["lenalidomide"],
    "iss/A": "II",
    "response/A": "VGPR",
    "course/B": "Newly diagnosed myeloma with t(4;14); no treatment recorded yet.",
    "mprotein_dx/B": 4.1,
    "asct/B": None,  # the record does not say: "insufficient evidence" is the right answer
}
REFERENCES = {
    item_id: ReferenceLabel(item_id=item_id, value=value, source="single", annotators=["md1"])
    for item_id, value in REFERENCE_VALUES.items()
}

# What each runner's mock answers: (value, status); "garbage" is a reply that is not JSON.
RIGHT = "right"
SINGLE_PASS: dict[str, Any] = {
    "asct/A": RIGHT,
    "diagnosis/A": ("2020-01-08", "answered"),  # 3 days off, within the 7-day tolerance
    "del17p/A": RIGHT,
    "t414/B": RIGHT,
    "mprotein_march/A": (0.3, "answered"),  # wrong
    "lines/A": RIGHT,
    "refractory/A": (["Lenalidomide"], "answered"),  # right (case-insensitive)
    "iss/A": RIGHT,
    "response/A": "garbage",  # failed: incorrect
    "course/B": ("Myeloma with t(4;14).", "answered"),  # free text: ungraded
    "mprotein_dx/B": RIGHT,
    "asct/B": (None, "insufficient_evidence"),  # right
}
FULL_CONTEXT: dict[str, Any] = {
    "asct/A": RIGHT,
    "diagnosis/A": ("2020-02-01", "answered"),  # 27 days off: wrong
    "del17p/A": (False, "answered"),  # wrong
    "t414/B": RIGHT,
    "mprotein_march/A": RIGHT,
    "lines/A": RIGHT,
    "refractory/A": (["lenalidomide", "bortezomib"], "answered"),  # wrong (exact sets)
    "iss/A": RIGHT,
    "response/A": RIGHT,
    "course/B": ("Newly diagnosed, t(4;14).", "answered"),
    "mprotein_dx/B": RIGHT,
    "asct/B": ("2020-03-01", "answered"),  # wrong: the record says nothing
}
#                     single_pass right    full_context right
# asct/A              yes                  yes
# diagnosis/A         yes                  no     -> b
# del17p/A            yes                  no     -> b
# t414/B              yes                  yes
# mprotein_march/A    no                   yes    -> c
# lines/A             yes                  yes
# refractory/A        yes                  no     -> b
# iss/A               yes                  yes
# response/A          no (failed)          yes    -> c
# course/B            ungraded             ungraded
# mprotein_dx/B       yes                  yes
# asct/B              yes                  no     -> b
SP_CORRECT, FC_CORRECT, GRADED = 9, 7, 11
B, C = 4, 2


def _policy(answers: dict[str, Any]) -> Any:
    by_question = {item.question: item.id for item in ITEMS}

    def reply(request: MockRequest) -> Any:
        item_id = by_question[_question(request)]
        scripted = answers[item_id]
        if scripted == "garbage":
            return "I am not able to answer in the requested format."
        value, status = (REFERENCE_VALUES[item_id], "answered") if scripted == RIGHT else scripted
        return {
            "json": {"status": status, "value": value, "text": f"scripted {value}", "citations": []}
        }

    return reply


@pytest.fixture(scope="module")
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        load_bundle(opened, FIXTURES / "tool_patients")
        yield opened


async def _run(
    store: RecordStore, runner_name: str, answers: dict[str, Any], log_path: Path
) -> tuple[RunLog, MockModel]:
    settings = Settings()
    runner = build_runner(runner_name, settings)
    model = MockModel(_policy(answers), name=f"mock-{runner_name}")
    manifest = RunManifest.create(
        runner, model, settings, data_fingerprint=store_data_fingerprint(store)
    )
    log = RunLog.open(log_path, manifest)
    progress: list[tuple[int, int]] = []
    await run_items(
        ITEMS,
        runner,
        model,
        store,
        log=log,
        references=REFERENCES,
        concurrency=3,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert progress[0] == (0, len(ITEMS)) and progress[-1] == (len(ITEMS), len(ITEMS))
    return log, model


@pytest.fixture(scope="module")
def logs(store: RecordStore, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import asyncio

    folder = tmp_path_factory.mktemp("runs")
    paths = {
        "single_pass_rag": folder / "single_pass_rag.jsonl",
        "full_context": folder / "full_context.jsonl",
    }

    async def both() -> None:
        await _run(store, "single_pass_rag", SINGLE_PASS, paths["single_pass_rag"])
        await _run(store, "full_context", FULL_CONTEXT, paths["full_context"])

    asyncio.run(both())
    return paths


def test_the_logs_hold_every_item_with_its_record_length(logs: dict[str, Path], store):
    for name, path in logs.items():
        manifest, records = RunLog.read(path)
        assert manifest.runner == name and manifest.mock is True
        assert manifest.model == f"mock-{name}"
        assert manifest.settings_hash == Settings().fingerprint()
        assert manifest.data_fingerprint == store_data_fingerprint(store)
        assert sorted(r.item.id for r in records) == sorted(i.id for i in ITEMS)
        tokens = dict(
            store.connection.execute(
                "SELECT patient_id, sum(token_count) FROM chunks GROUP BY patient_id"
            ).fetchall()
        )
        for record in records:
            patient = record.item.patient_id
            assert record.record_documents == {"A": 4, "B": 1}[patient]
            assert record.record_tokens == tokens[patient] > 0
            assert record.answer.mock and record.score is not None
        by_id = {r.item.id: r for r in records}
        # Values come back typed from the JSON log.
        assert by_id["asct/A"].answer.value == dt.date(2020, 6, 15)
        assert by_id["response/A"].answer.status == (
            "failed" if name == "single_pass_rag" else "answered"
        )


def test_the_report_numbers_are_exact(logs: dict[str, Path]):
    runs = [RunLog.read(logs["single_pass_rag"]), RunLog.read(logs["full_context"])]
    report = build_report(runs, REFERENCES, n_boot=500, seed=3)
    assert report.mock and report.items == 12 and report.patients == 2
    assert report.referenced_items == 12

    sp, fc = report.runner("single_pass_rag"), report.runner("full_context")
    for result, correct in ((sp, SP_CORRECT), (fc, FC_CORRECT)):
        c = result.concordance
        assert (c.n, c.correct, c.ungraded) == (GRADED, correct, 1)
        assert c.rate == pytest.approx(correct / GRADED)
        low, high = proportion_confint(correct, GRADED, alpha=0.05, method="wilson")
        assert c.wilson == pytest.approx((low, high), abs=1e-12)
        # The bootstrap resamples patients: the same draws as the statistics module's own.
        _, records = runs[0] if result is sp else runs[1]
        graded = [
            (r.item.patient_id, r.score.state == "correct")
            for r in records
            if r.score is not None and r.score.state != "ungraded"
        ]
        expected = cluster_bootstrap_ci(
            [g for _, g in graded], [p for p, _ in graded], n_boot=500, seed=3
        )
        assert c.bootstrap == pytest.approx(expected)
    assert sp.score_counts == {"correct": 9, "incorrect": 2, "ungraded": 1, "unscored": 0}
    assert fc.score_counts == {"correct": 7, "incorrect": 4, "ungraded": 1, "unscored": 0}
    assert sp.status_counts == {
        "answered": 10,
        "insufficient_evidence": 1,
        "truncated": 0,
        "failed": 1,
    }

    (pair,) = report.comparisons
    assert (pair.runner_a, pair.runner_b, pair.n) == ("single_pass_rag", "full_context", GRADED)
    assert (pair.test.b, pair.test.c) == (B, C)
    exact = binomtest(C, B + C, 0.5).pvalue
    assert pair.test.p_exact == pytest.approx(exact) == pytest.approx(44 / 64)
    assert pair.test.p_midp == pytest.approx(exact - binom.pmf(C, B + C, 0.5))
    assert pair.test.p_midp == pytest.approx(29 / 64)
    assert pair.p_exact_holm == pytest.approx(pair.test.p_exact)  # one pair: nothing to adjust

    levels = {s.key: s.concordance for s in sp.by_level}
    # level 1: asct, diagnosis, del17p, t414, mprotein_march, iss, mprotein_dx -> 6 of 7
    assert (levels["1"].correct, levels["1"].n) == (6, 7)
    # level 2: lines, response (failed), asct/B -> 2 of 3; level 3: refractory (+ text) -> 1 of 1
    assert (levels["2"].correct, levels["2"].n) == (2, 3)
    assert (levels["3"].correct, levels["3"].n, levels["3"].ungraded) == (1, 1, 1)
    # Two patients ranked by record length, each once: B (1 document) -> decile 1, A (4
    # documents) -> decile 6 (floor(10 * 1 / 2) + 1); their items take their decile.
    assert [(d.decile, d.low, d.high, d.items) for d in report.document_deciles] == [
        (1, 1, 1, 4),
        (6, 4, 4, 8),
    ]
    fc_deciles = {s.key: s.concordance for s in fc.by_document_decile}
    assert (fc_deciles["1"].correct, fc_deciles["1"].n) == (2, 3)  # asct/B wrong
    assert (fc_deciles["6"].correct, fc_deciles["6"].n) == (5, 8)
    assert [s.key for s in fc.by_token_decile] == ["1", "6"]

    assert sp.usage.answers == 12 and not sp.usage.tokens_reported
    assert sp.usage.cost_usd is None and sp.usage.prompt_tokens > 0
    # full context sends the whole record: more prompt tokens per answer than the retrieval.
    assert fc.usage.median_tokens >= sp.usage.median_tokens

    errors = {e.source: e for e in report.errors}
    assert (errors["single_pass_rag"].errors, errors["single_pass_rag"].items) == (2, 11)
    assert errors["full_context"].unrated == 4
    assert sorted(e.item_id for e in report.error_items if e.runner == "full_context") == [
        "asct/B",
        "del17p/A",
        "diagnosis/A",
        "refractory/A",
    ]


def test_rescoring_the_logs_gives_the_same_report(logs: dict[str, Path]):
    runs = [RunLog.read(path) for path in logs.values()]
    for _, records in runs:
        again = rescore(records, REFERENCES)
        assert [r.score for r in again] == [r.score for r in records]
        assert [r.answer for r in again] == [r.answer for r in records]
    scored = build_report(runs, REFERENCES, n_boot=200)
    stored = build_report(runs, None, n_boot=200)
    assert stored.runners == scored.runners and stored.comparisons == scored.comparisons


async def test_a_resumed_run_answers_only_what_is_missing(store: RecordStore, tmp_path: Path):
    settings = Settings()
    runner = build_runner("single_pass_rag", settings)
    model = MockModel(_policy(SINGLE_PASS))
    manifest = RunManifest.create(runner, model, settings, data_fingerprint="fixture")
    path = tmp_path / "resume.jsonl"
    first = await run_items(ITEMS[:5], runner, model, store, log=RunLog.open(path, manifest))
    assert len(first) == 5 and all(r.score is None for r in first)  # no references: unscored
    calls = len(model.requests)
    later = RunManifest.create(runner, model, settings, data_fingerprint="fixture")
    log = RunLog.open(path, later)
    assert log.manifest.run_id == manifest.run_id and log.done_item_ids() == {
        i.id for i in ITEMS[:5]
    }
    records = await run_items(ITEMS, runner, model, store, log=log, references=REFERENCES)
    assert [r.item.id for r in records] == [i.id for i in ITEMS]
    # single_pass_rag makes one model call per item (two for the unparseable reply's repair)
    assert len(model.requests) - calls >= len(ITEMS) - 5
    asked = {_question(r) for r in model.requests[calls:]}
    assert asked == {i.question for i in ITEMS[5:]}
    _, logged = RunLog.read(path)
    assert len(logged) == len(ITEMS)


def _question(request: MockRequest) -> str:
    text = "\n".join(m.content or "" for m in request.messages)
    match = re.search(r"^Question: (.+)$", text, flags=re.M)
    assert match, "the runner's prompt carries the question"
    return match.group(1)


async def test_a_run_without_a_log_returns_its_scored_records_and_writes_nothing(
    store: RecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    runner = build_runner("single_pass_rag", Settings())
    records = await run_items(
        ITEMS, runner, MockModel(_policy(SINGLE_PASS)), store, references=REFERENCES
    )
    assert [r.item.id for r in records] == [i.id for i in ITEMS]
    assert all(r.answer.patient_id == r.item.patient_id for r in records)
    assert all(r.score is not None for r in records if r.item.id in REFERENCES)
    assert list(tmp_path.iterdir()) == []


async def test_a_run_refuses_a_log_or_items_that_do_not_fit(store: RecordStore, tmp_path: Path):
    settings = Settings()
    runner = build_runner("single_pass_rag", settings)
    model = MockModel(_policy(SINGLE_PASS))
    other = build_runner("full_context", settings)
    manifest = RunManifest.create(other, model, settings, data_fingerprint="fixture")
    log = RunLog.open(tmp_path / "fc.jsonl", manifest)
    with pytest.raises(UserError, match="is for runner 'full_context'"):
        await run_items(ITEMS, runner, model, store, log=log)
    mine = RunLog.open(
        tmp_path / "sp.jsonl",
        RunManifest.create(runner, model, settings, data_fingerprint="fixture"),
    )
    stranger = ITEMS[0].model_copy(update={"id": "x/Z", "patient_id": "Z"})
    with pytest.raises(UserError, match="no patient 'Z'"):
        await run_items([*ITEMS, stranger], runner, model, store, log=mine)
    with pytest.raises(ValueError, match="repeated: asct/A"):
        await run_items([ITEMS[0], ITEMS[0]], runner, model, store, log=mine)
    assert model.requests == [] and mine.done_item_ids() == set()


class _Balance(HTMLParser):
    """Checks that every opened element is closed in order (void elements excepted)."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def test_the_html_report_is_self_contained_with_plots_and_the_mock_banner(logs):
    runs = [RunLog.read(path) for path in logs.values()]
    page = render_html(build_report(runs, REFERENCES, n_boot=200))
    checker = _Balance()
    checker.feed(page)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    assert checker.counts["svg"] == 4 and checker.counts["table"] >= 8
    assert 'class="mock"' in page and "MOCK RUN" in page
    # Self-contained: no external stylesheet, script or image.
    assert not re.search(r"<(link|script|img)\b", page)
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "single_pass_rag" in page and "full_context" in page
    markdown = render_markdown(build_report(runs, REFERENCES, n_boot=200))
    assert (
        "MOCK RUN" in markdown
        and "| single_pass_rag | full_context | 11 | 9 | 7 | 4 | 2 |" in markdown
    )


async def test_free_text_items_are_judged_and_the_verdict_is_stored(tmp_path):
    from recordagent.evaluation.labels import ReferenceLabel
    from recordagent.evaluation.log import RunLog, RunManifest, rescore
    from recordagent.evaluation.run import run_items
    from recordagent.llm import MockModel
    from recordagent.questions import AnswerSpec, EvalItem
    from recordagent.records.db import connect
    from recordagent.records.load import load_bundle
    from recordagent.runners import build_runner
    from recordagent.settings import Settings
    from tests.helpers import FIXTURES

    item = EvalItem(
        id="plan/A",
        patient_id="A",
        question="What was the plan after the tumour board?",
        answer=AnswerSpec(type="text"),
    )
    reference = {
        "plan/A": ReferenceLabel(
            item_id="plan/A", value="VRd then ASCT", source="single", annotators=["x"]
        )
    }
    answer = {
        "json": {
            "status": "answered",
            "value": "VRd induction, then ASCT",
            "text": "t",
            "citations": [],
        }
    }
    verdict = {"json": {"correct": True, "rationale": "same plan"}}
    settings = Settings()
    runner = build_runner("single_pass_rag", settings)
    model, judge = MockModel([answer]), MockModel([verdict], name="mock-judge")
    with connect() as store:
        load_bundle(store, FIXTURES / "tool_patients")
        manifest = RunManifest.create(runner, model, settings, data_fingerprint="test")
        log = RunLog.open(tmp_path / "run.jsonl", manifest)
        [record] = await run_items(
            [item], runner, model, store, log=log, references=reference, judge=judge
        )
    assert record.judge is not None and record.judge.verdict is not None
    assert record.judge.mock and record.score is not None and record.score.state == "correct"
    assert "MOCK" in record.score.explanation
    # The stored verdict rescores the record without asking the judge again.
    _, records = RunLog.read(tmp_path / "run.jsonl")
    assert rescore(records, reference)[0].score == record.score
    assert len(judge.requests) == 1


class _Faulty:
    """A runner wrapper whose bug surfaces on chosen items (a RuntimeError, or ``error``)."""

    def __init__(self, inner: Runner, fail_on: set[str], error: Exception | None = None) -> None:
        self.inner, self.fail_on = inner, fail_on
        self.error = error or RuntimeError("secret record text in the message")
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def prompt_version(self) -> str:
        return self.inner.prompt_version

    async def run(self, item, scope, model, on_event=None):  # type: ignore[no-untyped-def]
        self.calls.append(item.id)
        if item.id in self.fail_on:
            raise self.error
        return await self.inner.run(item, scope, model, on_event)


async def test_an_item_whose_runner_raises_is_logged_failed_and_the_run_goes_on(
    store: RecordStore, tmp_path: Path
):
    settings = Settings()
    inner = build_runner("single_pass_rag", settings)
    model = MockModel(_policy(SINGLE_PASS))
    faulty = _Faulty(inner, {"lines/A"})
    manifest = RunManifest.create(faulty, model, settings, data_fingerprint="f", items=ITEMS)
    path = tmp_path / "run.jsonl"
    records = await run_items(
        ITEMS, faulty, model, store, log=RunLog.open(path, manifest), references=REFERENCES
    )
    by_id = {r.item.id: r for r in records}
    crashed = by_id["lines/A"]
    assert crashed.error is not None and crashed.error.kind == "RuntimeError"
    assert crashed.error.at is not None and crashed.error.at.startswith("test_evaluation_run.py:")
    assert crashed.answer.status == "failed" and crashed.score is not None
    assert crashed.score.state == "incorrect"  # a failed answer, as any other
    assert all(r.error is None for i, r in by_id.items() if i != "lines/A")
    assert "secret record text" not in path.read_text()  # the kind, never the message
    assert RunLog.open(path, manifest).failed_item_ids() == {"lines/A"}

    # A resume retries only the failed item; its new record supersedes the failure.
    fixed = _Faulty(inner, set())
    again = await run_items(
        ITEMS, fixed, model, store, log=RunLog.open(path, manifest), references=REFERENCES
    )
    assert fixed.calls == ["lines/A"]
    assert [r.item.id for r in again] == [i.id for i in ITEMS]
    assert again[ITEMS.index(next(i for i in ITEMS if i.id == "lines/A"))].error is None
    _, logged = RunLog.read(path)
    assert sorted(r.item.id for r in logged) == sorted(i.id for i in ITEMS)
    assert all(r.error is None for r in logged)


async def test_a_tool_that_raises_for_one_patient_fails_only_that_patients_items(
    store: RecordStore, tmp_path: Path
):
    from recordagent.tools import default_registry
    from recordagent.tools.base import Tool, ToolRegistry

    base = default_registry()
    timeline = base.get("get_timeline")

    def broken(scope, args):  # type: ignore[no-untyped-def]
        if scope.patient_id == "B":
            raise KeyError("patient B's row")  # a bug in the tool, not a ToolError
        return timeline.fn(scope, args)

    tools = ToolRegistry(
        [Tool(timeline.name, timeline.description, timeline.input_model, broken)]
        + [base.get(n) for n in base.names if n != "get_timeline"]
    )
    settings = Settings()
    runner = AgentRunner(settings, tools=tools)

    def script(request: MockRequest) -> Any:
        if request.schema_name == "Plan":
            return {"json": {"needs": ["the date"]}}
        if request.schema_name == "Reflection":
            return {"json": {"needs": [], "next_step": None}}
        if request.schema_name == "FinalAnswer":
            return {"json": {"status": "insufficient_evidence", "value": None, "text": "-"}}
        steps = sum(1 for m in request.messages if m.role == "assistant" and m.tool_calls)
        return {"tool_calls": [("get_timeline", {})] if steps == 0 else [("finish", {})]}

    model = MockModel(script)
    chosen = [i for i in ITEMS if i.id in {"asct/A", "asct/B", "t414/B"}]
    manifest = RunManifest.create(runner, model, settings, data_fingerprint="f", items=chosen)
    records = await run_items(
        chosen, runner, model, store, log=RunLog.open(tmp_path / "agent.jsonl", manifest)
    )
    kinds = {r.item.id: r.error.kind if r.error else None for r in records}
    assert kinds == {"asct/A": None, "asct/B": "KeyError", "t414/B": "KeyError"}


async def test_a_user_error_in_a_runner_ends_the_run_with_that_error_alone(
    store: RecordStore, tmp_path: Path
):
    settings = Settings()
    model = MockModel(_policy(SINGLE_PASS))
    faulty = _Faulty(
        build_runner("single_pass_rag", settings), {"iss/A"}, UserError("fix the settings")
    )
    manifest = RunManifest.create(faulty, model, settings, data_fingerprint="f", items=ITEMS)
    log = RunLog.open(tmp_path / "run.jsonl", manifest)
    with pytest.raises(UserError, match="^fix the settings$"):
        await run_items(ITEMS, faulty, model, store, log=log, concurrency=1)
    # Items answered before it stay in the log for a resume.
    assert log.done_item_ids() == {i.id for i in ITEMS[:7]}  # ITEMS[7] is iss/A


async def test_a_log_of_one_item_set_is_not_continued_with_another(
    store: RecordStore, tmp_path: Path
):
    settings = Settings()
    runner = build_runner("single_pass_rag", settings)
    model = MockModel(_policy(SINGLE_PASS))
    listed = RunManifest.create(runner, model, settings, data_fingerprint="f", items=ITEMS[:5])
    log = RunLog.open(tmp_path / "listed.jsonl", listed)
    with pytest.raises(UserError, match="is a run of 5 items; these are 12"):
        await run_items(ITEMS, runner, model, store, log=log)
    # A log without an item set (a library caller's) still takes no items from another set.
    unlisted = RunManifest.create(runner, model, settings, data_fingerprint="f")
    log = RunLog.open(tmp_path / "unlisted.jsonl", unlisted)
    await run_items(ITEMS[:2], runner, model, store, log=log)
    with pytest.raises(UserError, match=r"holds 2 item\(s\) that are not among the items given"):
        await run_items(ITEMS[5:], runner, model, store, log=log)
    assert model.requests and len(log.records) == 2


async def test_a_long_run_holds_as_many_coroutines_as_its_concurrency(store: RecordStore):
    from recordagent.runners.dry_run import dry_run_model

    items = [EvalItem.ad_hoc("A" if k % 2 else "B", f"question {k}") for k in range(300)]
    seen: list[int] = []

    def watch(done: int, total: int) -> None:
        seen.append(len(asyncio.all_tasks()))

    records = await run_items(
        items,
        build_runner("single_pass_rag", Settings()),
        dry_run_model(),
        store,
        concurrency=4,
        on_progress=watch,
    )
    assert len(records) == 300
    # The 4 workers, the test's own task and whatever the loop runs beside (not one per item).
    assert max(seen) <= 4 + 3


async def test_a_stop_that_says_so_starts_no_further_item(store: RecordStore):
    from recordagent.runners.dry_run import dry_run_model

    items = [EvalItem.ad_hoc("A", f"question {k}") for k in range(20)]
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 5

    records = await run_items(
        items,
        build_runner("single_pass_rag", Settings()),
        dry_run_model(),
        store,
        concurrency=3,
        stop=stop,
    )
    assert len(records) == 5
    assert [r.item.id for r in records] == [i.id for i in items[:5]]


async def test_a_patient_whose_record_cannot_be_opened_fails_its_items_only(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
):
    from recordagent.evaluation import run as run_module
    from recordagent.runners.dry_run import dry_run_model

    real = run_module.record_length

    def broken(scope):  # a bug met while opening one patient's record
        if scope.patient_id == "B":
            raise RuntimeError("cannot read")
        return real(scope)

    monkeypatch.setattr(run_module, "record_length", broken)
    items = [EvalItem.ad_hoc(p, f"question {k}") for p in ("A", "B") for k in range(3)]
    records = await run_items(
        items, build_runner("single_pass_rag", Settings()), dry_run_model(), store, concurrency=2
    )
    errors = {r.item.patient_id: r.error for r in records}
    assert len(records) == 6
    assert errors["A"] is None
    assert errors["B"] is not None and errors["B"].kind == "RuntimeError"
