"""Evaluation: scorers, labels, statistics, run logs and reports.

Labels (:mod:`.labels`) give each item a reference; :mod:`.scorers` compares answers with it
(:mod:`.judge` for free text only); :mod:`.run` answers items with a runner into a
:mod:`.log` (its manifest and records defined in :mod:`.manifest`); :mod:`.report` computes
the statistics of :mod:`.stats` over logs and renders them; :mod:`.review` exports errors for
experts and reads their severities back; :mod:`.audit` checks, without a model, whether
retrieval and the full-context window reach the gold evidence.
"""

from recordagent.evaluation.audit import EvidenceAudit, audit_evidence, evidence_from_labels
from recordagent.evaluation.gold_labels import gold_labels
from recordagent.evaluation.judge import (
    JUDGE_PROMPT_VERSION,
    JudgeResult,
    JudgeVerdict,
    judge_answer,
)
from recordagent.evaluation.labels import (
    Label,
    ReferenceLabel,
    read_labels,
    reference_labels,
    write_labels,
)
from recordagent.evaluation.log import (
    ItemError,
    RunLog,
    RunLogMismatch,
    RunManifest,
    RunRecord,
    rescore,
)
from recordagent.evaluation.report import EvaluationReport, build_report
from recordagent.evaluation.review import import_review, write_review
from recordagent.evaluation.run import run_items
from recordagent.evaluation.scorers import Score, score_answer, score_value, values_match

__all__ = [
    "JUDGE_PROMPT_VERSION",
    "EvaluationReport",
    "EvidenceAudit",
    "ItemError",
    "JudgeResult",
    "JudgeVerdict",
    "Label",
    "ReferenceLabel",
    "RunLog",
    "RunLogMismatch",
    "RunManifest",
    "RunRecord",
    "Score",
    "audit_evidence",
    "build_report",
    "evidence_from_labels",
    "gold_labels",
    "import_review",
    "judge_answer",
    "read_labels",
    "reference_labels",
    "rescore",
    "run_items",
    "score_answer",
    "score_value",
    "values_match",
    "write_labels",
    "write_review",
]
