"""The evaluation report from hand-built run records: every number checked, then the renderings."""

from __future__ import annotations

import itertools

import pytest
from rich.console import Console
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label
from recordagent.evaluation.log import RunManifest, RunRecord
from recordagent.evaluation.report import (
    build_report,
    render_html,
    render_markdown,
    render_terminal,
)
from recordagent.evaluation.stats import mcnemar
from recordagent.questions import AnswerSpec, EvalItem, ScoringSpec
from tests.unit.evaluation.report_data import (
    ITEMS,
    REFERENCES,
    RIGHT,
    make_record,
    manifest,
    run_of,
)


@pytest.fixture
def runs() -> list[tuple[RunManifest, list[RunRecord]]]:
    return [run_of(name) for name in RIGHT]


def test_concordance_and_wilson_per_runner(runs):
    report = build_report(runs, REFERENCES, n_boot=300)
    assert [r.name for r in report.runners] == list(RIGHT)
    assert report.items == 10 and report.patients == 3 and report.referenced_items == 10
    for name, right in RIGHT.items():
        c = report.runner(name).concordance
        assert (c.n, c.correct, c.ungraded) == (10, len(right), 0)
        expected = proportion_confint(len(right), 10, alpha=0.05, method="wilson")
        assert c.wilson == pytest.approx(expected, abs=1e-12)
        assert c.bootstrap[0] <= c.rate <= c.bootstrap[1]


def test_mcnemar_for_every_pair_with_holm(runs):
    report = build_report(runs, REFERENCES, n_boot=100)
    pairs = list(itertools.combinations(RIGHT, 2))
    assert [(c.runner_a, c.runner_b) for c in report.comparisons] == pairs
    for comparison, (a, b) in zip(report.comparisons, pairs, strict=True):
        right_a = [k in RIGHT[a] for k in range(10)]
        right_b = [k in RIGHT[b] for k in range(10)]
        assert comparison.test == mcnemar(right_a, right_b)
        assert comparison.test.b == len(RIGHT[a] - RIGHT[b])
        assert comparison.test.c == len(RIGHT[b] - RIGHT[a])
        assert (comparison.a_correct, comparison.b_correct, comparison.n) == (
            len(RIGHT[a]),
            len(RIGHT[b]),
            10,
        )
    exact = [c.test.p_exact for c in report.comparisons]
    midp = [c.test.p_midp for c in report.comparisons]
    assert [c.p_exact_holm for c in report.comparisons] == pytest.approx(
        list(multipletests(exact, method="holm")[1])
    )
    assert [c.p_midp_holm for c in report.comparisons] == pytest.approx(
        list(multipletests(midp, method="holm")[1])
    )
    # agent vs single_pass_rag: b = {1, 3, 5, 7}, c = {} -> exact p = 2 / 16
    first = report.comparisons[0]
    assert (first.test.b, first.test.c) == (4, 0)
    assert first.test.p_exact == pytest.approx(0.125)
    assert first.test.p_midp == pytest.approx(0.0625)


def test_strata_by_level_and_record_length(runs):
    report = build_report(runs, REFERENCES, n_boot=100)
    sp = report.runner("single_pass_rag")
    by_level = {s.key: (s.concordance.correct, s.concordance.n) for s in sp.by_level}
    # levels: k % 3 + 1 -> level 1: 0,3,6,9; level 2: 1,4,7; level 3: 2,5,8
    assert by_level == {"1": (2, 4), "2": (1, 3), "3": (2, 3)}
    # Patients ranked by record length, each once (floor(10 * rank / 3) + 1): P1 -> decile 1,
    # P2 -> 4, P3 -> 7; their items (4, 3, 3) take their decile.
    assert [(d.decile, d.low, d.high, d.items) for d in report.document_deciles] == [
        (1, 3, 3, 4),
        (4, 10, 10, 3),
        (7, 30, 30, 3),
    ]
    assert [(d.decile, d.low) for d in report.token_deciles] == [(1, 300), (4, 2_000), (7, 9_000)]
    by_decile = {s.key: (s.concordance.correct, s.concordance.n) for s in sp.by_token_decile}
    assert by_decile == {"1": (2, 4), "4": (2, 3), "7": (1, 3)}
    assert [s.label for s in sp.by_document_decile] == ["decile 1", "decile 4", "decile 7"]


def test_usage_statuses_and_ungraded_counts():
    items = ITEMS[:4]
    records = [
        make_record(items[0], "agent", 0, tokens=100, cost=0.01, wall=2.0),
        make_record(items[1], "agent", 1, tokens=300, cost=0.03, wall=4.0),
        make_record(items[2], "agent", None, status="failed", tokens=50, wall=1.0),
        make_record(items[3], "agent", None, status="insufficient_evidence", tokens=200),
    ]
    # No reference for q3: ungraded, out of n.
    references = {k: v for k, v in REFERENCES.items() if k != items[3].id}
    report = build_report([(manifest("agent"), records)], references, n_boot=50)
    agent = report.runner("agent")
    assert agent.status_counts == {
        "answered": 2,
        "insufficient_evidence": 1,
        "truncated": 0,
        "failed": 1,
    }
    assert agent.score_counts == {"correct": 2, "incorrect": 1, "ungraded": 1, "unscored": 0}
    assert (agent.concordance.n, agent.concordance.correct, agent.concordance.ungraded) == (3, 2, 1)
    usage = agent.usage
    assert usage.answers == 4 and usage.total_tokens == 650 and usage.median_tokens == 150
    assert usage.prompt_tokens == 610 and usage.completion_tokens == 40
    assert usage.priced_answers == 2
    assert usage.cost_usd == pytest.approx(0.04) and usage.median_cost_usd == pytest.approx(0.02)
    assert usage.median_latency_s == 1.5 and usage.total_latency_s == 8.0
    assert (usage.model_calls, usage.tool_calls) == (4, 8)
    assert report.comparisons == [] and report.agreement is None


def test_stored_scores_are_used_without_references(runs):
    scored = build_report(runs, REFERENCES, n_boot=50)
    unscored = build_report(runs, None, n_boot=50)
    agent = unscored.runner("agent")
    # Records built without a score: nothing graded, all counted as unscored.
    assert agent.concordance.n == 0 and agent.score_counts["unscored"] == 10
    assert unscored.referenced_items is None and "No reference labels" in unscored.notes[0]
    assert scored.runner("agent").concordance.n == 10


def test_labels_given_for_agreement_only_say_the_stored_scores_are_used(runs):
    item = runs[0][1][0].item
    labels = [Label(item_id=item.id, annotator="md1", value=None)]
    report = build_report(runs, None, labels=labels, n_boot=50)
    assert "not scored again against the labels given" in report.notes[0]
    assert not any("No reference labels" in note for note in report.notes)


def test_agreement_kappa_and_expert_disagreement_rate():
    boolean = [
        EvalItem(
            id=f"b{k}/P1", patient_id="P1", question=f"B{k}?", answer=AnswerSpec(type="boolean")
        )
        for k in range(4)
    ]
    dated = EvalItem(
        id="d/P1",
        patient_id="P1",
        question="When?",
        answer=AnswerSpec(type="date"),
        scoring=ScoringSpec(tolerance_days=3),
    )
    items = [*boolean, dated]
    records = [make_record(i, "agent", None, status="insufficient_evidence") for i in items]
    md1 = [True, True, False, False]
    md2 = [True, False, False, False]
    labels = [
        Label(item_id=i.id, annotator="md1", value=v) for i, v in zip(boolean, md1, strict=True)
    ]
    labels += [
        Label(item_id=i.id, annotator="md2", value=v) for i, v in zip(boolean, md2, strict=True)
    ]
    labels += [
        Label(
            item_id="d/P1", annotator="md1", value="2020-01-01", severity="clinically_significant"
        ),
        Label(item_id="d/P1", annotator="md2", value="2020-01-03"),  # within tolerance: agree
        Label(item_id="d/P1", annotator="chief", value="2020-01-01", adjudicated=True),
        Label(item_id="b1/P1", annotator="chief", value=True, adjudicated=True, severity="minor"),
        Label(item_id="elsewhere", annotator="md3", value=1),  # not in the runs: ignored
    ]
    report = build_report([(manifest("agent"), records)], None, labels=labels, n_boot=20)
    agreement = report.agreement
    assert agreement is not None and agreement.annotators == ["md1", "md2"]
    (pair,) = agreement.pairs
    assert (pair.annotator_a, pair.annotator_b, pair.items) == ("md1", "md2", 5)
    assert pair.percent_agreement == pytest.approx(4 / 5)
    # categories md1: T,T,F,F,d  md2: T,F,F,F,d  -> p_o = 4/5
    # p_e = (2*1 + 2*3 + 1*1) / 25 = 9/25; kappa = (4/5 - 9/25) / (1 - 9/25) = 11/16
    assert pair.kappa == pytest.approx(11 / 16)
    assert (agreement.labelled_items, agreement.disagreeing_items) == (5, 1)
    assert agreement.disagreement_rate == pytest.approx(0.2)
    expert = report.errors[-1]
    assert (expert.source, expert.kind, expert.items, expert.errors) == (
        "annotators",
        "expert",
        5,
        1,
    )
    assert (expert.minor, expert.clinically_significant, expert.unrated) == (1, 0, 0)


def test_error_severities_from_labels_and_a_review(runs):
    labels = [
        Label(item_id=ITEMS[1].id, annotator="md1", value=1, severity="clinically_significant"),
        Label(item_id=ITEMS[3].id, annotator="md1", value=3, severity="minor"),
    ]
    review = {
        (ITEMS[3].id, "single_pass_rag"): "clinically_significant",
        (ITEMS[5].id, "single_pass_rag"): "minor",
    }
    report = build_report(runs, REFERENCES, labels=labels, review=review, n_boot=50)
    assert report.agreement is None  # one annotator
    rows = {e.source: e for e in report.errors}
    sp = rows["single_pass_rag"]  # wrong on 1, 3, 5, 7, 9
    assert (sp.items, sp.errors, sp.rate) == (10, 5, 0.5)
    # 1: label says significant; 3: the review overrides the label's minor; 5: review minor.
    assert (sp.clinically_significant, sp.minor, sp.unrated) == (2, 1, 2)
    fc = rows["full_context"]  # wrong on 6, 7, 8, 9
    assert (fc.errors, fc.clinically_significant, fc.minor, fc.unrated) == (4, 0, 0, 4)
    wrong = [e for e in report.error_items if e.runner == "single_pass_rag"]
    assert [e.item_id for e in wrong] == [ITEMS[k].id for k in (1, 3, 5, 7, 9)]
    assert wrong[0].reference == 1 and wrong[0].answer == 2 and wrong[0].status == "answered"


def test_runner_names_and_mismatched_runs():
    first = run_of("agent")
    second = (manifest("agent", model="gpt-x", mock=False), run_of("agent", mock=False)[1])
    report = build_report([first, second], REFERENCES, n_boot=20)
    assert [r.name for r in report.runners] == ["agent@mock", "agent@gpt-x"]
    assert report.mock  # one of the two runs was a mock
    assert not build_report([second], REFERENCES, n_boot=20).mock
    with pytest.raises(UserError, match="two runs of runner 'agent' on model 'mock'"):
        build_report([first, first], REFERENCES)
    changed = [
        r.model_copy(update={"item": r.item.model_copy(update={"question": "?"})}) for r in first[1]
    ]
    with pytest.raises(UserError, match="item 'q0/P1' differs between the runs"):
        build_report([first, (manifest("full_context"), changed)], REFERENCES)
    with pytest.raises(UserError, match="at least one run log"):
        build_report([], REFERENCES)
    partial = (manifest("full_context"), first[1][:6])
    notes = build_report([first, partial], REFERENCES, n_boot=20).notes
    assert "full_context answered 6 of the 10 items." in notes


def test_renderings(runs):
    report = build_report(runs, REFERENCES, n_boot=50)
    markdown = render_markdown(report)
    assert markdown.startswith("# Evaluation report") and "MOCK RUN" in markdown
    assert "| agent | 10 | 9 | 90.0% | 59.6–98.2 |" in markdown
    assert "| agent | single_pass_rag | 10 | 9 | 5 | 4 | 0 | 0.125 | 0.062 |" in markdown
    console = Console(record=True, width=220)
    render_terminal(report, console)
    text = console.export_text()
    assert "MOCK" in text and "Paired comparisons (McNemar)" in text and "90.0%" in text
    page = render_html(report)
    assert page.count("<svg") == 4 and 'class="mock"' in page

    real = build_report([run_of("agent", mock=False)], REFERENCES, n_boot=20)
    assert not real.mock
    assert "MOCK" not in render_markdown(real) and 'class="mock"' not in render_html(real)


def test_html_escapes_record_text():
    item = ITEMS[0].model_copy(update={"question": "<script>alert(1)</script> & more?"})
    records = [make_record(item, "agent", 5)]
    page = render_html(build_report([(manifest("agent"), records)], REFERENCES, n_boot=20))
    assert (
        "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more?" in page
    )


def test_runs_over_different_data_or_templates_are_not_compared(runs):
    manifest, records = runs[1]
    other = [
        (runs[0][0], runs[0][1]),
        (manifest.model_copy(update={"data_fingerprint": "x"}), records),
    ]
    with pytest.raises(UserError, match="differ in data_fingerprint"):
        build_report(other, REFERENCES, n_boot=10)
    other = [
        (runs[0][0], runs[0][1]),
        (manifest.model_copy(update={"template_set_version": "v2"}), records),
    ]
    with pytest.raises(UserError, match="differ in template_set_version"):
        build_report(other, REFERENCES, n_boot=10)
