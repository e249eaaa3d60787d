"""Gold labels of a synthetic cohort: each item's gold value as an adjudicated label.

The gold values come from the question templates' derivations over the cohort's gold tables
(``recordagent.questions.sampling.instances``); here they become :class:`Label` rows with
annotator ``gold-synthetic`` — labels belong to the evaluation layer, items to the questions
layer below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label
from recordagent.questions.items import EvalItem
from recordagent.questions.sampling import GOLD_ANNOTATOR, GoldSource, Instance, instances
from recordagent.questions.templates import TemplateSet

__all__ = ["gold_labels", "instance_labels"]


def gold_labels(
    items: Iterable[EvalItem],
    gold: GoldSource,
    template_set: TemplateSet,
    bundle_dir: str | Path | None = None,
) -> list[Label]:
    """The gold label of each item, in the order given.

    Labels are :class:`recordagent.evaluation.labels.Label` objects with annotator
    ``gold-synthetic``, ``adjudicated=True``, the gold value (JSON: dates as YYYY-MM-DD, lists
    as lists; None when the record does not say) and the evidence ids of the gold tables.

    Raises:
        UserError: an item is not an instance of ``template_set`` on this cohort.
    """
    wanted = list(items)
    by_id = {i.item.id: i for i in instances(template_set, gold, bundle_dir)}
    missing = [item.id for item in wanted if item.id not in by_id]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(
            f"{len(missing)} item(s) are not instances of template set {template_set.version} "
            f"on this cohort: {shown}"
        )
    return instance_labels(by_id[item.id] for item in wanted)


def instance_labels(chosen: Iterable[Instance]) -> list[Label]:
    """The gold label of each instance (annotator ``gold-synthetic``, adjudicated)."""
    return [
        Label(
            item_id=instance.item.id,
            annotator=GOLD_ANNOTATOR,
            value=instance.value,
            evidence=list(instance.evidence),
            adjudicated=True,
        )
        for instance in chosen
    ]
