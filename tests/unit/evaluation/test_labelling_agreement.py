"""Agreement of labelling annotators, checked against statsmodels' kappas."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as reference_fleiss

from recordagent.evaluation.labelling_agreement import agreement_rows, fleiss_kappa, group_agreement
from recordagent.evaluation.labels import Label
from recordagent.evaluation.report.agreement import annotator_agreement
from recordagent.questions.answers import AnswerSpec, ScoringSpec
from recordagent.questions.items import EvalItem

CATEGORIES = ("IgG", "IgA", "light chain")


def _category_items(n: int) -> dict[str, EvalItem]:
    return {
        f"iso/{k}": EvalItem(
            id=f"iso/{k}",
            patient_id=f"P{k}",
            question="Isotype?",
            answer=AnswerSpec(type="category", allowed=CATEGORIES),
            template_id="isotype",
        )
        for k in range(n)
    }


def _labels(ratings: dict[str, list[Any]], items: dict[str, EvalItem]) -> list[Label]:
    return [
        Label(item_id=item_id, annotator=annotator, value=values[k])
        for annotator, values in ratings.items()
        for k, item_id in enumerate(items)
    ]


def _codes(values: list[Any]) -> list[int]:
    return [CATEGORIES.index(v) for v in values]


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_kappa_equals_statsmodels(seed: int):
    rng = np.random.default_rng(seed)
    ratings = rng.integers(0, 4, size=(30, 5))
    ratings[:12, 1] = ratings[:12, 0]  # some agreement beyond chance
    table, _ = aggregate_raters(ratings)
    assert fleiss_kappa(table.tolist()) == pytest.approx(reference_fleiss(table, method="fleiss"))


def test_fleiss_kappa_refuses_ragged_tables():
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 0], [1, 2]])
    with pytest.raises(ValueError, match="two raters"):
        fleiss_kappa([[1, 0]])


@pytest.mark.parametrize("seed", range(4))
def test_two_annotators_cohen_kappa_equals_statsmodels(seed: int):
    rng = random.Random(seed)
    items = _category_items(40)
    alice = [rng.choice(CATEGORIES) for _ in items]
    bob = [a if rng.random() < 0.6 else rng.choice(CATEGORIES) for a in alice]
    row, disagreeing = group_agreement(_labels({"alice": alice, "bob": bob}, items), items)
    table = np.zeros((3, 3))
    for a, b in zip(_codes(alice), _codes(bob), strict=True):
        table[a, b] += 1
    assert row.cohen_kappa == pytest.approx(cohens_kappa(table).kappa)
    agree = sum(a == b for a, b in zip(alice, bob, strict=True))
    assert row.agreeing == agree
    assert row.percent_agreement == pytest.approx(agree / 40)
    assert len(disagreeing) == 40 - agree
    assert row.fleiss_kappa is None


def test_three_annotators_get_fleiss_and_the_mean_of_the_pairwise_kappas():
    rng = random.Random(7)
    items = _category_items(30)
    truth = [rng.choice(CATEGORIES) for _ in items]
    ratings = {
        name: [t if rng.random() < 0.7 else rng.choice(CATEGORIES) for t in truth]
        for name in ("a", "b", "c")
    }
    row, _ = group_agreement(_labels(ratings, items), items)
    matrix = np.array([_codes(ratings[name]) for name in ("a", "b", "c")]).T
    table, _ = aggregate_raters(matrix)
    assert row.fleiss_kappa == pytest.approx(reference_fleiss(table, method="fleiss"))
    assert row.fleiss_items == 30
    pairwise = []
    for first, second in (("a", "b"), ("a", "c"), ("b", "c")):
        cross = np.zeros((3, 3))
        for x, y in zip(_codes(ratings[first]), _codes(ratings[second]), strict=True):
            cross[x, y] += 1
        pairwise.append(cohens_kappa(cross).kappa)
    assert row.mean_pairwise_kappa == pytest.approx(sum(pairwise) / 3)
    assert row.cohen_kappa is None


def test_agreement_follows_the_items_scoring_rules():
    item = EvalItem(
        id="d/1",
        patient_id="A",
        question="When?",
        answer=AnswerSpec(type="date"),
        scoring=ScoringSpec(tolerance_days=3),
    )
    items = {item.id: item}
    within = [
        Label(item_id="d/1", annotator="a", value="2020-01-10"),
        Label(item_id="d/1", annotator="b", value="2020-01-12"),
    ]
    outside = [within[0], Label(item_id="d/1", annotator="b", value="2020-01-20")]
    silent = [within[0], Label(item_id="d/1", annotator="b", value=None)]
    both_silent = [Label(item_id="d/1", annotator=a, value=None) for a in "ab"]
    assert group_agreement(within, items)[0].agreeing == 1
    assert group_agreement(outside, items)[1] == ["d/1"]
    assert group_agreement(silent, items)[1] == ["d/1"]
    assert group_agreement(both_silent, items)[0].agreeing == 1


def test_items_one_annotator_labelled_do_not_count_and_adjudications_do_not_vote():
    items = _category_items(3)
    labels = [
        Label(item_id="iso/0", annotator="a", value="IgG"),
        Label(item_id="iso/0", annotator="b", value="IgG"),
        Label(item_id="iso/1", annotator="a", value="IgA"),
        Label(item_id="iso/0", annotator="adjudicator", value="IgA", adjudicated=True),
    ]
    row, disagreeing = group_agreement(labels, items)
    assert (row.items, row.agreeing, disagreeing) == (1, 1, [])


def test_rows_come_overall_then_per_answer_type_and_template():
    items = _category_items(4) | {
        "b/0": EvalItem(id="b/0", patient_id="P0", question="?", answer=AnswerSpec(type="boolean"))
    }
    labels = [Label(item_id=i, annotator=a, value="IgG") for i in list(items)[:4] for a in "ab"] + [
        Label(item_id="b/0", annotator="a", value=True),
        Label(item_id="b/0", annotator="b", value=False),
    ]
    rows, disagreeing = agreement_rows(labels, items)
    keys = [(r.group, r.key, r.items, r.agreeing) for r in rows]
    assert keys == [
        ("overall", "all", 5, 4),
        ("answer_type", "boolean", 1, 0),
        ("answer_type", "category", 4, 4),
        ("template", "isotype", 4, 4),
    ]
    assert disagreeing == ["b/0"]


def test_finding_the_disagreeing_items_grows_linearly_with_the_items():
    """4,000 items × 3 annotators took seconds when each item scanned every pair's result."""
    rng = random.Random(0)

    def fastest(n: int) -> float:
        items = _category_items(n)
        ratings = {a: [rng.choice(CATEGORIES) for _ in items] for a in ("x", "y", "z")}
        labels = _labels(ratings, items)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            _, disagreeing = annotator_agreement(labels, items)
            times.append(time.perf_counter() - started)
        expected = [i for k, i in enumerate(items) if len({r[k] for r in ratings.values()}) > 1]
        assert disagreeing == sorted(expected)
        return min(times)

    # Four times the items: about four times the time (a scan per item would be sixteen; the
    # bound leaves room for a loaded machine).
    assert fastest(4000) / fastest(1000) < 10
