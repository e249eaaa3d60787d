"""Evaluation: studies, scorers, labels, statistics, run logs and reports.

:func:`evaluate` (:mod:`.study`) runs a suite (:mod:`.suite`): it reads the items and labels
(:mod:`.study_inputs`), opens the store and answers the items with each runner into a
:mod:`.log` (:mod:`.run`; manifest and records defined in :mod:`.manifest`). Labels
(:mod:`.labels`, derived by :mod:`.gold_labels` and :mod:`.silver_labels`) give each item a
reference; :mod:`.scorers` compares answers with it (:mod:`.judge` for free text only);
:mod:`.report` computes the statistics of :mod:`.stats` over logs and renders them, and its
:mod:`.report.review` exports errors for experts and reads their severities back;
:mod:`.audit` checks, without a model, whether retrieval and the full-context window reach the
gold evidence.
"""

from recordagent.evaluation.audit import EvidenceAudit, audit_evidence, evidence_from_labels
from recordagent.evaluation.failures import (
    FAILURE_ADVICE,
    RunFailures,
    answer_failure,
    failure_line,
    run_failures,
)
from recordagent.evaluation.gold_labels import gold_labels
from recordagent.evaluation.judge import (
    JUDGE_PROMPT_VERSION,
    JudgeResult,
    JudgeVerdict,
    judge_answer,
)
from recordagent.evaluation.labelling import (
    AnnotatorCounts,
    LabellingExport,
    LabellingImport,
    export_labelling,
    import_labelling,
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
from recordagent.evaluation.report.review import import_review, write_review
from recordagent.evaluation.results_table import (
    RESULT_COLUMNS,
    records_frame,
    results,
    write_results,
)
from recordagent.evaluation.run import run_items
from recordagent.evaluation.scorers import Score, score_answer, score_value, values_match
from recordagent.evaluation.silver_labels import silver_labels, write_silver
from recordagent.evaluation.study import (
    RunSummary,
    Study,
    StudyFailures,
    StudyProgress,
    evaluate,
    evaluate_async,
    prepare_study,
    run_study,
    study_failures,
)
from recordagent.evaluation.study_inputs import StudyInputs
from recordagent.evaluation.suite import Suite, load_suite

__all__ = [
    "FAILURE_ADVICE",
    "JUDGE_PROMPT_VERSION",
    "RESULT_COLUMNS",
    "AnnotatorCounts",
    "EvaluationReport",
    "EvidenceAudit",
    "ItemError",
    "JudgeResult",
    "JudgeVerdict",
    "Label",
    "LabellingExport",
    "LabellingImport",
    "ReferenceLabel",
    "RunFailures",
    "RunLog",
    "RunLogMismatch",
    "RunManifest",
    "RunRecord",
    "RunSummary",
    "Score",
    "Study",
    "StudyFailures",
    "StudyInputs",
    "StudyProgress",
    "Suite",
    "answer_failure",
    "audit_evidence",
    "build_report",
    "evaluate",
    "evaluate_async",
    "evidence_from_labels",
    "export_labelling",
    "failure_line",
    "gold_labels",
    "import_labelling",
    "import_review",
    "judge_answer",
    "load_suite",
    "prepare_study",
    "read_labels",
    "records_frame",
    "reference_labels",
    "rescore",
    "results",
    "run_failures",
    "run_items",
    "run_study",
    "score_answer",
    "score_value",
    "silver_labels",
    "study_failures",
    "values_match",
    "write_labels",
    "write_results",
    "write_review",
    "write_silver",
]
