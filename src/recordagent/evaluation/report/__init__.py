"""The evaluation report: runners compared on the same items, as data first, then rendered.

:func:`build_report` turns run logs (one per runner) and the reference labels into an
:class:`EvaluationReport` — concordance with Wilson and patient-bootstrap intervals, paired
McNemar tests with Holm adjustment, strata by level and record length, usage, annotator
agreement and error tables. The renderers only format that model, so tests check numbers, not
strings: :func:`render_terminal`, :func:`render_markdown`, and :func:`render_html` (one
self-contained page with inline SVG plots). The error review exports the incorrect answers for
clinicians to rate and reads their ratings back.

Imports run one way, from the data up:

- ``model``: the report's data and the names it uses;
- ``runs``, ``results``, ``agreement``, ``error_tables``: its parts, computed from the runs
  (statistics from :mod:`recordagent.evaluation.stats`); ``build``: puts them together;
- ``formats``, ``tables``: the rows and cells every renderer shows;
- ``terminal``, ``markdown``, ``html`` (with ``plots``): the renderers; ``review``: the
  error review.
"""

from recordagent.evaluation.report.build import build_report
from recordagent.evaluation.report.html import render_html
from recordagent.evaluation.report.markdown import render_markdown
from recordagent.evaluation.report.model import (
    Agreement,
    AnnotatorPair,
    DecileRange,
    ErrorItem,
    ErrorRow,
    EvaluationReport,
    PairedComparison,
    RunInfo,
    RunnerResult,
    Stratum,
    UsageSummary,
)
from recordagent.evaluation.report.review import (
    REVIEW_COLUMNS,
    SEVERITIES,
    import_review,
    render_review_html,
    review_table,
    write_review,
    write_review_csv,
)
from recordagent.evaluation.report.runs import RunInput
from recordagent.evaluation.report.tables import MOCK_WARNING
from recordagent.evaluation.report.terminal import render_terminal

__all__ = [
    "MOCK_WARNING",
    "REVIEW_COLUMNS",
    "SEVERITIES",
    "Agreement",
    "AnnotatorPair",
    "DecileRange",
    "ErrorItem",
    "ErrorRow",
    "EvaluationReport",
    "PairedComparison",
    "RunInfo",
    "RunInput",
    "RunnerResult",
    "Stratum",
    "UsageSummary",
    "build_report",
    "import_review",
    "render_html",
    "render_markdown",
    "render_review_html",
    "render_terminal",
    "review_table",
    "write_review",
    "write_review_csv",
]
