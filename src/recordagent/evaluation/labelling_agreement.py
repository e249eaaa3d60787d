"""Agreement of labelling annotators: % agreement and kappa, overall and per type and template.

Two labels *agree* when :func:`~recordagent.evaluation.scorers.values_match` says so under the
item's scoring rules — the rule that decides whether an item's annotators give it a reference
(:func:`~recordagent.evaluation.labels.reference_labels`): dates within the item's tolerance,
numbers within its tolerance (either way round), categories and list elements through their
synonyms, lists as sets, booleans and counts equal, free text equal after case and spacing,
"the record does not say" only with itself.

Statistics are over the items at least two annotators labelled (a skipped item is not a
label); adjudications do not vote:

* percent agreement — the share of those items on which every annotator pair agrees;
* Cohen's kappa per annotator pair over the items both labelled (the report's
  :func:`~recordagent.evaluation.report.agreement.annotator_agreement`: a value the scorer
  matches with the first annotator's counts as the first annotator's category);
* with two annotators, that pair's kappa; with three or more, the mean of the pairwise kappas
  and Fleiss' kappa over the items every annotator labelled (each label's category is the
  first of the item's labels, in annotator order, that it matches).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from recordagent.evaluation.labels import Label
from recordagent.evaluation.report.agreement import annotator_agreement
from recordagent.evaluation.report.model import AnnotatorPair
from recordagent.evaluation.scorers import values_match
from recordagent.questions.items import EvalItem

__all__ = ["AgreementRow", "agreement_rows", "fleiss_kappa", "group_agreement"]


class AgreementRow(BaseModel):
    """Agreement over one group of items (all of them, one answer type, one template)."""

    group: Literal["overall", "answer_type", "template"] = Field(description="How grouped.")
    key: str = Field(description="The answer type or template ('all' for overall).")
    items: int = Field(description="Items labelled by at least two annotators.")
    agreeing: int = Field(description="Of those, items on which every annotator pair agrees.")
    percent_agreement: float | None = Field(
        description="agreeing / items; None without such items."
    )
    cohen_kappa: float | None = Field(
        description="Two annotators: Cohen's kappa on the items both labelled."
    )
    mean_pairwise_kappa: float | None = Field(
        description="Mean Cohen's kappa over the annotator pairs that share items."
    )
    fleiss_kappa: float | None = Field(
        description="Three or more annotators: Fleiss' kappa on the items all labelled."
    )
    fleiss_items: int = Field(description="Items every annotator labelled (Fleiss' kappa).")
    pairs: list[AnnotatorPair] = Field(description="Per annotator pair: items, % agreement, κ.")


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa of a subjects × categories table of rating counts.

    Every row holds how many raters put the subject in each category and sums to the same
    number of raters ``n >= 2``. ``kappa = (P - Pe) / (1 - Pe)`` with ``P`` the mean per-subject
    agreement ``(sum n_ij² - n) / (n(n - 1))`` and ``Pe`` the sum of squared category shares
    (Fleiss 1971; statsmodels ``fleiss_kappa(method="fleiss")``). When ``Pe == 1`` (every
    rating in one category) kappa is 0/0: 1.0 is returned, as for Cohen's kappa in
    :func:`~recordagent.evaluation.stats.cohen_kappa`.

    Raises:
        ValueError: No subjects, fewer than two raters, or rows of different sums.
    """
    if not table:
        raise ValueError("fleiss_kappa needs at least one subject")
    raters = sum(table[0])
    if raters < 2:
        raise ValueError(f"fleiss_kappa needs at least two raters per subject, got {raters}")
    if any(sum(row) != raters for row in table):
        raise ValueError("fleiss_kappa: every subject needs the same number of ratings")
    subjects = len(table)
    width = max(len(row) for row in table)
    totals = [sum(row[j] for row in table if j < len(row)) for j in range(width)]
    shares = [t / (subjects * raters) for t in totals]
    expected = sum(p * p for p in shares)
    observed = sum((sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in table)
    observed /= subjects
    if expected >= 1.0 - 1e-12:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def group_agreement(
    labels: Sequence[Label],
    items: Mapping[str, EvalItem],
    group: Literal["overall", "answer_type", "template"] = "overall",
    key: str = "all",
) -> tuple[AgreementRow, list[str]]:
    """Agreement of the annotators' own labels of ``items``, and the items they disagree on."""
    own = [label for label in labels if not label.adjudicated and label.item_id in items]
    annotators = sorted({label.annotator for label in own})
    agreement, disagreeing = annotator_agreement(own, items)
    pairs = agreement.pairs if agreement is not None else []
    labelled = agreement.labelled_items if agreement is not None else 0
    kappas = [pair.kappa for pair in pairs]
    fleiss, fleiss_items = None, 0
    if len(annotators) >= 3:
        fleiss, fleiss_items = _fleiss(own, items, annotators)
    return (
        AgreementRow(
            group=group,
            key=key,
            items=labelled,
            agreeing=labelled - len(disagreeing),
            percent_agreement=(labelled - len(disagreeing)) / labelled if labelled else None,
            cohen_kappa=pairs[0].kappa if len(annotators) == 2 and pairs else None,
            mean_pairwise_kappa=sum(kappas) / len(kappas) if kappas else None,
            fleiss_kappa=fleiss,
            fleiss_items=fleiss_items,
            pairs=pairs,
        ),
        disagreeing,
    )


def agreement_rows(
    labels: Sequence[Label], items: Mapping[str, EvalItem]
) -> tuple[list[AgreementRow], list[str]]:
    """Agreement overall, per answer type and per template; and the disagreeing items.

    Groups without an item labelled twice are left out (the overall row is always there).
    """
    overall, disagreeing = group_agreement(labels, items)
    rows = [overall]
    keys: list[tuple[Literal["answer_type", "template"], Callable[[EvalItem], str | None]]] = [
        ("answer_type", lambda item: item.answer.type),
        ("template", lambda item: item.template_id),
    ]
    for group, key_of in keys:
        by_key: dict[str, dict[str, EvalItem]] = defaultdict(dict)
        for item in items.values():
            key = key_of(item)
            if key is not None:
                by_key[key][item.id] = item
        for key in sorted(by_key):
            row, _ = group_agreement(labels, by_key[key], group, key)
            if row.items:
                rows.append(row)
    return rows, disagreeing


def _fleiss(
    labels: Sequence[Label], items: Mapping[str, EvalItem], annotators: Sequence[str]
) -> tuple[float | None, int]:
    value: dict[tuple[str, str], Any] = {(lab.item_id, lab.annotator): lab.value for lab in labels}
    complete = sorted(
        item_id for item_id in items if all((item_id, a) in value for a in annotators)
    )
    if not complete:
        return None, 0
    categories: dict[str, int] = {}
    counts: list[Counter[int]] = []
    for item_id in complete:
        item = items[item_id]
        firsts: list[Any] = []
        counted: Counter[int] = Counter()
        for annotator in annotators:
            label = value[(item_id, annotator)]
            # A value of None (the record does not say) is a category too: match by position.
            found = next((k for k, f in enumerate(firsts) if values_match(item, f, label)), None)
            if found is None:
                firsts.append(label)
                found = len(firsts) - 1
            key = json.dumps(firsts[found], default=str, sort_keys=True)
            counted[categories.setdefault(key, len(categories))] += 1
        counts.append(counted)
    table = [[c.get(j, 0) for j in range(len(categories))] for c in counts]
    return fleiss_kappa(table), len(complete)
