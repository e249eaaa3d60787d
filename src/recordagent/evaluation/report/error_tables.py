"""The report's errors: each incorrect answer, and error counts by severity per source.

A source is a runner (its incorrect answers) or the annotators (their disagreements).
Severities come from the labels, overridden by a re-imported error review.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from recordagent.evaluation.labels import Label, ReferenceLabel, Severity
from recordagent.evaluation.report.model import (
    EXPERTS,
    Agreement,
    ErrorItem,
    ErrorRow,
    RunnerResult,
)
from recordagent.evaluation.report.runs import ScoredRun

__all__ = ["error_items", "expert_errors", "item_severities", "system_errors"]

_SEVERITY_RANK = {"minor": 1, "clinically_significant": 2}


def item_severities(labels: Sequence[Label]) -> dict[str, Severity | None]:
    """The most severe severity any label of an item gives, by item id."""
    grouped: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        grouped[label.item_id].append(label)
    return {item_id: _worst(lab.severity for lab in group) for item_id, group in grouped.items()}


def _worst(severities: Iterable[Severity | None]) -> Severity | None:
    """The most severe of the given severities (clinically significant over minor)."""
    worst: Severity | None = None
    for severity in severities:
        if severity is not None and (
            worst is None or _SEVERITY_RANK[severity] > _SEVERITY_RANK[worst]
        ):
            worst = severity
    return worst


def error_items(
    runs: Sequence[ScoredRun],
    references: Mapping[str, ReferenceLabel] | None,
    review: Mapping[tuple[str, str], Severity],
    item_severity: Mapping[str, Severity | None],
) -> list[ErrorItem]:
    """Every incorrect answer of the scored runs, with its severity (the review's first)."""
    out = []
    for run in runs:
        for record, score in zip(run.records, run.scores, strict=True):
            if score is None or score.state != "incorrect":
                continue
            item, answer = record.item, record.answer
            reference = references.get(item.id) if references is not None else None
            severity = review.get((item.id, run.name), item_severity.get(item.id))
            out.append(
                ErrorItem(
                    item_id=item.id,
                    patient_id=item.patient_id,
                    runner=run.name,
                    question=item.question,
                    level=item.level,
                    reference=_jsonable(reference.value) if reference is not None else None,
                    answer=_jsonable(answer.value),
                    status=answer.status,
                    citations=[c.id for c in answer.citations],
                    explanation=score.explanation,
                    severity=severity,
                )
            )
    return out


def _jsonable(value: Any) -> Any:
    """A value as JSON would carry it (dates as ISO strings)."""
    return json.loads(json.dumps(value, default=str))


def system_errors(result: RunnerResult, errors: Sequence[ErrorItem]) -> ErrorRow:
    """The error row of one runner, from its incorrect answers."""
    severities = Counter(e.severity or "unrated" for e in errors)
    n = result.concordance.n
    return ErrorRow(
        source=result.name,
        kind="system",
        items=n,
        errors=len(errors),
        rate=len(errors) / n if n else 0.0,
        clinically_significant=severities["clinically_significant"],
        minor=severities["minor"],
        unrated=severities["unrated"],
    )


def expert_errors(
    agreement: Agreement, disagreeing: Sequence[str], item_severity: Mapping[str, Severity | None]
) -> ErrorRow:
    """The error row of the annotators, from the items they disagree on."""
    severities = Counter(item_severity.get(i) or "unrated" for i in disagreeing)
    return ErrorRow(
        source=EXPERTS,
        kind="expert",
        items=agreement.labelled_items,
        errors=agreement.disagreeing_items,
        rate=agreement.disagreement_rate,
        clinically_significant=severities["clinically_significant"],
        minor=severities["minor"],
        unrated=severities["unrated"],
    )
