"""The runs a report compares: named, checked against each other, scored, and noted on.

Every other part of the report reads runs through :class:`ScoredRun`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recordagent.errors import UserError
from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.log import RunLog, RunManifest, RunRecord
from recordagent.evaluation.scorers import Score, score_answer
from recordagent.questions.items import EvalItem

__all__ = ["RunInput", "ScoredRun", "items_by_id", "named_runs", "run_notes", "score_runs"]

RunInput = RunLog | tuple[RunManifest, Sequence[RunRecord]]
"""A run as ``build_report`` takes it: an open log, or what :meth:`RunLog.read` returns."""


@dataclass
class ScoredRun:
    """One run under its name in the report, with a score per record once scored."""

    name: str
    manifest: RunManifest
    records: list[RunRecord]
    scores: list[Score | None] = field(default_factory=list)

    def correct(self) -> list[bool | None]:
        """Per record, whether it was scored correct; None when ungraded or unscored."""
        return [
            None if s is None or s.state == "ungraded" else s.state == "correct"
            for s in self.scores
        ]


def named_runs(runs: Sequence[RunInput]) -> list[ScoredRun]:
    """Each run with its report name: the runner, or runner@model when a runner ran twice.

    Raises:
        UserError: The same runner and model twice, or runs over different data or templates.
    """
    pairs = [(r.manifest, r.records) if isinstance(r, RunLog) else (r[0], list(r[1])) for r in runs]
    runner_count = Counter(m.runner for m, _ in pairs)
    loaded = []
    seen: set[str] = set()
    for manifest, records in pairs:
        name = (
            manifest.runner
            if runner_count[manifest.runner] == 1
            else f"{manifest.runner}@{manifest.model}"
        )
        if name in seen:
            raise UserError(
                f"two runs of runner {manifest.runner!r} on model {manifest.model!r}: "
                "report each once (a resumed run continues its own log)"
            )
        seen.add(name)
        loaded.append(ScoredRun(name=name, manifest=manifest, records=list(records)))
    # Runs compared item by item must have read the same records and the same questions.
    for attribute in ("data_fingerprint", "template_set_version"):
        values = {getattr(m, attribute) for m, _ in pairs}
        if len(values) > 1:
            shown = ", ".join(sorted(str(v) for v in values))
            raise UserError(
                f"the runs differ in {attribute} ({shown}): they did not answer the same "
                "questions over the same data, so they cannot be compared item by item"
            )
    return loaded


def items_by_id(runs: Sequence[ScoredRun]) -> dict[str, EvalItem]:
    """Every item of the runs by id.

    Raises:
        UserError: An id stands for different items in two runs.
    """
    items: dict[str, EvalItem] = {}
    for run in runs:
        for record in run.records:
            known = items.setdefault(record.item.id, record.item)
            if known != record.item:
                raise UserError(
                    f"item {record.item.id!r} differs between the runs (run {run.manifest.run_id} "
                    "has another question or answer type): compare runs over the same items"
                )
    return items


def score_runs(runs: Sequence[ScoredRun], references: Mapping[str, ReferenceLabel] | None) -> None:
    """Score every answer against ``references``, or take the stored scores without them."""
    for run in runs:
        run.scores = (
            [
                score_answer(r.item, r.answer, references.get(r.item.id), judge_verdict=r.judge)
                for r in run.records
            ]
            if references is not None
            else [r.score for r in run.records]
        )


def run_notes(
    runs: Sequence[ScoredRun], items: int, *, rescored: bool, labelled: bool = False
) -> list[str]:
    """What the report must say about the runs: stored scores, missing and failed answers.

    ``labelled``: labels were given (for agreement) without scoring again against them.
    """
    notes = []
    if not rescored and labelled:
        notes.append(
            "The scores stored in the run logs are used (not scored again against the labels "
            "given)."
        )
    elif not rescored:
        notes.append("No reference labels were given: the scores stored in the run logs are used.")
    for run in runs:
        answered = {r.item.id for r in run.records}
        if len(answered) < items:
            notes.append(f"{run.name} answered {len(answered)} of the {items} items.")
    for run in runs:
        notes.extend(_unfinished(run))
    fingerprints = {run.manifest.items_fingerprint for run in runs} - {None}
    if len(fingerprints) > 1:
        notes.append(
            "The runs are runs of different item sets: each runner's concordance is over its "
            "own items, and paired comparisons over the items both answered."
        )
    return notes


def _unfinished(run: ScoredRun) -> list[str]:
    """What the report must say about one run that is not finished or has failed items."""
    notes = []
    crashed = Counter(r.error.kind for r in run.records if r.error is not None)
    if crashed:
        kinds = ", ".join(f"{kind} ×{n}" for kind, n in crashed.most_common())
        notes.append(
            f"{run.name}: {sum(crashed.values())} answer(s) failed by an unexpected error "
            f"({kinds}) and count as failed answers; resume the run to retry them."
        )
    if run.manifest.items is not None:
        missing = len(set(run.manifest.items) - {r.item.id for r in run.records})
        if missing:
            notes.append(
                f"{run.name}: {missing} of the run's {len(run.manifest.items)} items have no "
                "answer (the run did not finish; resume it)."
            )
    return notes
