"""Silver labels: each silver instance's SQL answer as one annotator's label.

The answers come from the silver templates' queries over a record store
(``recordagent.questions.silver``); here they become :class:`Label` rows with annotator
``silver-sql``, and files ``recordagent eval`` reads — labels belong to the evaluation layer,
items to the questions layer below it (as for the gold labels, :mod:`.gold_labels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from recordagent.evaluation.labels import Label, write_labels
from recordagent.questions.items import write_items
from recordagent.questions.silver import SILVER_ANNOTATOR, SilverInstance

__all__ = ["silver_labels", "write_silver"]


def silver_labels(instances: Iterable[SilverInstance]) -> list[Label]:
    """The silver label of each instance: annotator ``silver-sql``, evidence = the query's ids.

    The labels are not adjudicated: they are one annotator's (a query's) answers, so a human
    label that disagrees makes the item unresolved, and an adjudicated one overrides them.
    """
    return [
        Label(
            item_id=instance.item.id,
            annotator=SILVER_ANNOTATOR,
            value=instance.value,
            evidence=list(instance.evidence),
        )
        for instance in instances
    ]


def write_silver(instances: Sequence[SilverInstance], out: Path) -> tuple[Path, Path]:
    """Write ``out/items.jsonl`` (one EvalItem a line) and ``out/labels.jsonl``.

    These are the files a suite names as ``items:`` and ``labels:`` (``recordagent eval``).

    Returns:
        (items file, labels file).
    """
    out.mkdir(parents=True, exist_ok=True)
    items_file, labels_file = out / "items.jsonl", out / "labels.jsonl"
    write_items(items_file, [instance.item for instance in instances])
    write_labels(silver_labels(instances), labels_file)
    return items_file, labels_file
