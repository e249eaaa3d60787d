"""The evaluation report's data: what it says about each runner, their comparisons and errors.

The bottom of the report package: plain pydantic models and the names they use, importing
nothing else of the package. :mod:`~recordagent.evaluation.report.build` fills them from run
logs; the renderers only format them, so tests check numbers, not strings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from recordagent.evaluation.labels import Severity
from recordagent.evaluation.stats import Concordance, McNemar
from recordagent.runners.timing import StepTime

__all__ = [
    "EXPERTS",
    "LEVEL_NAMES",
    "SCORE_STATES",
    "STATUSES",
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
]

EXPERTS = "annotators"
"""Source name of the expert-disagreement row of the error table."""

LEVEL_NAMES = {
    "1": "level 1 · fact retrieval",
    "2": "level 2 · temporal reasoning / aggregation",
    "3": "level 3 · criteria synthesis",
    "none": "no level",
}
"""Question levels by stratum key, in report order ('none': items without a level)."""

STATUSES = ("answered", "insufficient_evidence", "truncated", "failed")
"""Answer statuses, in the order the report counts them."""

SCORE_STATES = ("correct", "incorrect", "ungraded", "unscored")
"""Score states, in the order the report counts them ('unscored': the answer has no score)."""


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
    requests: int = Field(
        default=0, description="HTTP requests of the model calls, retries and repairs included."
    )
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
    failures: dict[str, int] = Field(
        default_factory=dict,
        description="Failed answers per cause of the model's failure (errors.ModelFailure); "
        "failed answers without a recorded cause are not counted.",
    )
    time_by_step: list[StepTime] = Field(
        default_factory=list,
        description="Where the time went: calls, requests, tokens and seconds per kind of "
        "step (runners.timing.time_by_step).",
    )


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
