"""Inter-annotator agreement: which labelled items the annotators disagree on, kappa per pair."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from recordagent.evaluation.labels import Label
from recordagent.evaluation.report.model import Agreement, AnnotatorPair
from recordagent.evaluation.scorers import values_match
from recordagent.evaluation.stats import cohen_kappa, percent_agreement
from recordagent.questions.items import EvalItem

__all__ = ["annotator_agreement"]


def annotator_agreement(
    labels: Sequence[Label], items: Mapping[str, EvalItem]
) -> tuple[Agreement | None, list[str]]:
    """Agreement of the annotators' own labels (adjudications resolve, they do not vote).

    Two labels agree when the scorer matches them (``values_match``: tolerances and synonyms
    apply). For kappa, a value the scorer matches with the first annotator's is given the first
    annotator's category, so that kappa and percent agreement count the same agreements.

    Returns:
        The agreement (None with fewer than two annotators) and the ids of the items on which
        some two annotators disagree.
    """
    own = [lab for lab in labels if not lab.adjudicated and lab.item_id in items]
    annotators = sorted({lab.annotator for lab in own})
    if len(annotators) < 2:
        return None, []
    value: dict[tuple[str, str], Any] = {(lab.item_id, lab.annotator): lab.value for lab in own}
    by_item: dict[str, set[str]] = defaultdict(set)
    for item_id, annotator in value:
        by_item[item_id].add(annotator)
    agree: dict[tuple[str, str, str], bool] = {}
    split: set[str] = set()  # items some pair disagrees on, noted once per item
    for item_id, who in by_item.items():
        for a, b in itertools.combinations(sorted(who), 2):
            same = values_match(items[item_id], value[(item_id, a)], value[(item_id, b)])
            agree[(item_id, a, b)] = same
            if not same:
                split.add(item_id)

    pairs = []
    for a, b in itertools.combinations(annotators, 2):
        shared = sorted(i for i, who in by_item.items() if a in who and b in who)
        if not shared:
            continue
        first = [_category(value[(i, a)]) for i in shared]
        second = [
            first[k] if agree[(i, a, b)] else _category(value[(i, b)]) for k, i in enumerate(shared)
        ]
        pairs.append(
            AnnotatorPair(
                annotator_a=a,
                annotator_b=b,
                items=len(shared),
                percent_agreement=percent_agreement(first, second),
                kappa=cohen_kappa(first, second),
            )
        )
    labelled = sorted(i for i, who in by_item.items() if len(who) >= 2)
    disagreeing = [i for i in labelled if i in split]
    return (
        Agreement(
            annotators=annotators,
            labelled_items=len(labelled),
            disagreeing_items=len(disagreeing),
            disagreement_rate=len(disagreeing) / len(labelled) if labelled else 0.0,
            pairs=pairs,
        ),
        disagreeing,
    )


def _category(value: Any) -> str:
    """A hashable stand-in for a label value (lists compared as sets)."""
    if isinstance(value, list):
        value = sorted(json.dumps(v, default=str, sort_keys=True) for v in value)
    return json.dumps(value, default=str, sort_keys=True)
