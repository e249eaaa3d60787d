"""The evaluation report: runners compared on the same items, as data first, then rendered.

:func:`build_report` turns run logs (one per runner) and the reference labels into an
:class:`EvaluationReport` — concordance with Wilson and patient-bootstrap intervals, paired
McNemar tests with Holm adjustment, strata by level and record length, usage, annotator
agreement and error tables. This module holds that model and puts it together; the pieces are
computed in :mod:`~recordagent.evaluation.report_parts`.

The renderers only format the model, so tests check numbers, not strings: terminal and Markdown
in :mod:`~recordagent.evaluation.render`, a self-contained HTML page with inline SVG plots in
:mod:`~recordagent.evaluation.render_html` and :mod:`~recordagent.evaluation.plots`. They are
re-exported here, imported on first use (they import this module).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, ReferenceLabel, Severity
from recordagent.evaluation.log import RunLog, RunManifest, RunRecord
from recordagent.evaluation.scorers import score_answer
from recordagent.evaluation.stats import Concordance, McNemar, deciles

if TYPE_CHECKING:
    from recordagent.evaluation.render import MOCK_WARNING as MOCK_WARNING
    from recordagent.evaluation.render import render_markdown, render_terminal
    from recordagent.evaluation.render_html import render_html

__all__ = [
    "Agreement",
    "AnnotatorPair",
    "DecileRange",
    "ErrorItem",
    "ErrorRow",
    "EvaluationReport",
    "PairedComparison",
    "RunInfo",
    "RunnerResult",
    "Stratum",
    "UsageSummary",
    "build_report",
    "render_html",
    "render_markdown",
    "render_terminal",
]

RunInput = RunLog | tuple[RunManifest, Sequence[RunRecord]]
"""A run as :func:`build_report` takes it: an open log, or what :meth:`RunLog.read` returns."""

EXPERTS = "annotators"
"""Source name of the expert-disagreement row of the error table."""

_LEVEL_NAMES = {
    "1": "level 1 · fact retrieval",
    "2": "level 2 · temporal reasoning / aggregation",
    "3": "level 3 · criteria synthesis",
    "none": "no level",
}
_STATUSES = ("answered", "insufficient_evidence", "truncated", "failed")


# --------------------------------------------------------------------------- report data


class RunInfo(BaseModel):
    """The manifest of one runner's run, as the report shows it."""

    run_id: str
    runner: str
    model: str
    mock: bool
    prompt_version: str
    settings_hash: str
    data_fingerprint: str
    template_set_version: str | None
    package_version: str
    git_sha: str | None
    created: dt.datetime
    records: int = Field(description="Records in the log.")


class UsageSummary(BaseModel):
    """Tokens, cost and latency of one runner's answers."""

    answers: int
    prompt_tokens: int = Field(description="Total prompt tokens.")
    completion_tokens: int = Field(description="Total completion tokens.")
    total_tokens: int
    median_tokens: float = Field(description="Median prompt + completion tokens per answer.")
    tokens_reported: bool = Field(description="False if any count was made locally.")
    priced_answers: int = Field(description="Answers with a cost (priced models).")
    cost_usd: float | None = Field(description="Total cost; None when nothing was priced.")
    median_cost_usd: float | None = Field(description="Median cost of the priced answers.")
    median_latency_s: float = Field(description="Median wall time per answer.")
    total_latency_s: float = Field(description="Sum of wall times (not the run's duration).")
    model_calls: int
    tool_calls: int


class Stratum(BaseModel):
    """Concordance of one runner on one subset of the items."""

    key: str = Field(description="'1'..'3'/'none' for levels, '1'..'10' for deciles.")
    label: str
    concordance: Concordance


class RunnerResult(BaseModel):
    """Everything the report says about one runner."""

    name: str = Field(description="The runner's name in this report (runner, or runner@model).")
    run: RunInfo
    concordance: Concordance
    by_level: list[Stratum]
    by_document_decile: list[Stratum]
    by_token_decile: list[Stratum]
    status_counts: dict[str, int] = Field(description="Answers per status.")
    score_counts: dict[str, int] = Field(
        description="Answers per score: correct, incorrect, ungraded, unscored (no score)."
    )
    usage: UsageSummary


class PairedComparison(BaseModel):
    """McNemar test of two runners on the items both have graded answers for."""

    runner_a: str
    runner_b: str
    n: int = Field(description="Items graded for both runners.")
    a_correct: int
    b_correct: int
    test: McNemar = Field(description="b: A right and B wrong; c: A wrong and B right.")
    p_exact_holm: float = Field(description="Exact p, Holm-adjusted over all pairs.")
    p_midp_holm: float = Field(description="Mid-p, Holm-adjusted over all pairs.")


class AnnotatorPair(BaseModel):
    """Agreement of two annotators on the items both labelled."""

    annotator_a: str
    annotator_b: str
    items: int
    percent_agreement: float
    kappa: float


class Agreement(BaseModel):
    """Inter-annotator agreement (labels from two or more annotators; adjudications left out)."""

    annotators: list[str]
    labelled_items: int = Field(description="Items labelled by at least two annotators.")
    disagreeing_items: int = Field(
        description="Of those, items on which some two annotators disagree."
    )
    disagreement_rate: float = Field(
        description="Expert disagreement rate: disagreeing_items / labelled_items."
    )
    pairs: list[AnnotatorPair]


class ErrorRow(BaseModel):
    """Errors of one runner, or the annotators' disagreements, by severity."""

    source: str
    kind: Literal["system", "expert"]
    items: int = Field(description="Graded items (system) or items with two labels (expert).")
    errors: int
    rate: float
    clinically_significant: int
    minor: int
    unrated: int


class ErrorItem(BaseModel):
    """One incorrect answer, for the error list and the review export."""

    item_id: str
    patient_id: str
    runner: str
    question: str
    level: int | None
    reference: Any = Field(description="The reference value (JSON).")
    answer: Any = Field(description="The runner's value (JSON).")
    status: str
    citations: list[str]
    explanation: str
    severity: Severity | None


class DecileRange(BaseModel):
    """The record lengths one decile covers."""

    decile: int
    low: int
    high: int
    items: int


class EvaluationReport(BaseModel):
    """The whole comparison; renderers format it."""

    created: dt.datetime
    mock: bool = Field(description="True when any run was made on a mock model.")
    alpha: float
    n_boot: int
    seed: int
    items: int = Field(description="Distinct items over all runs.")
    patients: int
    referenced_items: int | None = Field(
        description="Items with a reference label; None when the stored scores were used."
    )
    runners: list[RunnerResult]
    comparisons: list[PairedComparison]
    document_deciles: list[DecileRange]
    token_deciles: list[DecileRange]
    agreement: Agreement | None
    errors: list[ErrorRow]
    error_items: list[ErrorItem]
    notes: list[str] = Field(default_factory=list)

    def runner(self, name: str) -> RunnerResult:
        """The result of the runner called ``name`` in this report."""
        for result in self.runners:
            if result.name == name:
                return result
        raise KeyError(f"no runner {name!r} in the report: {[r.name for r in self.runners]}")


# --------------------------------------------------------------------------- building


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
    # The parts build this module's models, so they import it: import them on first use.
    from recordagent.evaluation.report_parts import (
        _agreement,
        _comparisons,
        _decile_ranges,
        _error_items,
        _expert_errors,
        _items,
        _labels_by_item,
        _level_order,
        _named_runs,
        _runner_result,
        _system_errors,
        _worst,
    )

    if not runs:
        raise UserError("a report needs at least one run log")
    loaded = _named_runs(runs)
    items = _items(loaded)
    for run in loaded:
        run.scores = (
            [
                score_answer(r.item, r.answer, references.get(r.item.id), judge_verdict=r.judge)
                for r in run.records
            ]
            if references is not None
            else [r.score for r in run.records]
        )
    lengths = {
        r.item.id: (r.record_documents, r.record_tokens) for run in loaded for r in run.records
    }
    # Record length belongs to the patient: deciles rank patients (each once, however many
    # items they have), and each item takes its patient's decile.
    patient_of = {item_id: items[item_id].patient_id for item_id in lengths}
    by_patient = {patient_of[i]: length for i, length in lengths.items()}
    patients = sorted(by_patient)
    doc_rank = dict(zip(patients, deciles([by_patient[p][0] for p in patients]), strict=True))
    tok_rank = dict(zip(patients, deciles([by_patient[p][1] for p in patients]), strict=True))
    doc_decile = {i: doc_rank[patient_of[i]] for i in lengths}
    tok_decile = {i: tok_rank[patient_of[i]] for i in lengths}
    stats = {"alpha": alpha, "n_boot": n_boot, "seed": seed}

    results = [
        _runner_result(run, doc_decile, tok_decile, stats, _level_order(items)) for run in loaded
    ]
    by_label = _labels_by_item(labels)
    item_severity = {
        item_id: _worst(lab.severity for lab in lbls) for item_id, lbls in by_label.items()
    }
    error_items = _error_items(loaded, references, review or {}, item_severity)
    agreement, disagreeing = _agreement(labels, items)
    errors = [
        _system_errors(result, [e for e in error_items if e.runner == result.name])
        for result in results
    ]
    if agreement is not None:
        errors.append(_expert_errors(agreement, disagreeing, item_severity))

    notes = []
    if references is None:
        notes.append("No reference labels were given: the scores stored in the run logs are used.")
    item_sets = {run.name: {r.item.id for r in run.records} for run in loaded}
    for name, answered in item_sets.items():
        if len(answered) < len(items):
            notes.append(f"{name} answered {len(answered)} of the {len(items)} items.")
    for run in loaded:
        notes.extend(_run_notes(run.name, run.manifest, run.records))
    fingerprints = {run.manifest.items_fingerprint for run in loaded} - {None}
    if len(fingerprints) > 1:
        notes.append(
            "The runs are runs of different item sets: each runner's concordance is over its "
            "own items, and paired comparisons over the items both answered."
        )
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
        comparisons=_comparisons(loaded),
        document_deciles=_decile_ranges(doc_decile, {i: v[0] for i, v in lengths.items()}),
        token_deciles=_decile_ranges(tok_decile, {i: v[1] for i, v in lengths.items()}),
        agreement=agreement,
        errors=errors,
        error_items=error_items,
        notes=notes,
    )


def _run_notes(name: str, manifest: RunManifest, records: Sequence[RunRecord]) -> list[str]:
    """What the report must say about one run that is not finished or has failed items."""
    notes = []
    crashed = Counter(r.error.kind for r in records if r.error is not None)
    if crashed:
        kinds = ", ".join(f"{kind} ×{n}" for kind, n in crashed.most_common())
        notes.append(
            f"{name}: {sum(crashed.values())} answer(s) failed by an unexpected error ({kinds}) "
            "and count as failed answers; resume the run to retry them."
        )
    if manifest.items is not None:
        missing = len(set(manifest.items) - {r.item.id for r in records})
        if missing:
            notes.append(
                f"{name}: {missing} of the run's {len(manifest.items)} items have no answer "
                "(the run did not finish; resume it)."
            )
    return notes


# --------------------------------------------------------------------------- renderers

_RENDERERS = {
    "render_terminal": "recordagent.evaluation.render",
    "render_markdown": "recordagent.evaluation.render",
    "render_html": "recordagent.evaluation.render_html",
    "MOCK_WARNING": "recordagent.evaluation.render",
}


def __getattr__(name: str) -> Any:
    """The renderers, re-exported lazily: they import this module, so it cannot import them."""
    module = _RENDERERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
