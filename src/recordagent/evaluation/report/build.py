"""Run logs to an :class:`~recordagent.evaluation.report.model.EvaluationReport`.

:func:`build_report` checks and scores the runs (:mod:`.runs`), computes each runner's figures
and the paired comparisons (:mod:`.results`), annotator agreement (:mod:`.agreement`) and the
error tables (:mod:`.error_tables`), and puts them together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, ReferenceLabel, Severity
from recordagent.evaluation.report.agreement import annotator_agreement
from recordagent.evaluation.report.error_tables import (
    error_items,
    expert_errors,
    item_severities,
    system_errors,
)
from recordagent.evaluation.report.model import EvaluationReport
from recordagent.evaluation.report.results import (
    level_order,
    paired_comparisons,
    record_lengths,
    runner_result,
)
from recordagent.evaluation.report.runs import (
    RunInput,
    items_by_id,
    named_runs,
    run_notes,
    score_runs,
)

__all__ = ["build_report"]


def build_report(
    runs: Sequence[RunInput],
    references: Mapping[str, ReferenceLabel] | None = None,
    *,
    labels: Sequence[Label] = (),
    review: Mapping[tuple[str, str], Severity] | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> EvaluationReport:
    """Compare the runs of several runners over the same items.

    Args:
        runs: One run per runner (logs, or ``RunLog.read`` results).
        references: Reference labels by item id: every answer is scored again against them.
            Without them the scores stored in the logs are used.
        labels: All annotators' labels: agreement (two or more annotators) and severities.
        review: Severities from a re-imported error review, by (item id, runner name); they
            take precedence over severities in the labels.
        alpha: One minus the coverage of every interval.
        n_boot: Bootstrap resamples of the patient-clustered intervals.
        seed: Seed of the bootstrap.

    Raises:
        UserError: No runs, the same runner and model twice, or one item id standing for
            different items in two runs.
    """
    if not runs:
        raise UserError("a report needs at least one run log")
    loaded = named_runs(runs)
    items = items_by_id(loaded)
    score_runs(loaded, references)
    lengths = record_lengths(loaded, items)
    stats = {"alpha": alpha, "n_boot": n_boot, "seed": seed}
    levels = level_order(items)
    results = [runner_result(run, lengths, stats, levels) for run in loaded]

    item_severity = item_severities(labels)
    errors_found = error_items(loaded, references, review or {}, item_severity)
    agreement, disagreeing = annotator_agreement(labels, items)
    errors = [
        system_errors(result, [e for e in errors_found if e.runner == result.name])
        for result in results
    ]
    if agreement is not None:
        errors.append(expert_errors(agreement, disagreeing, item_severity))

    return EvaluationReport(
        created=dt.datetime.now(dt.UTC).replace(microsecond=0),
        mock=any(run.manifest.mock or any(r.answer.mock for r in run.records) for run in loaded),
        alpha=alpha,
        n_boot=n_boot,
        seed=seed,
        items=len(items),
        patients=len({item.patient_id for item in items.values()}),
        referenced_items=(None if references is None else sum(1 for i in items if i in references)),
        runners=results,
        comparisons=paired_comparisons(loaded),
        document_deciles=lengths.document_ranges(),
        token_deciles=lengths.token_ranges(),
        agreement=agreement,
        errors=errors,
        error_items=errors_found,
        notes=run_notes(loaded, len(items), rescored=references is not None, labelled=bool(labels)),
    )
