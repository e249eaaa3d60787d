"""The report as tables: the rows and cells every renderer shows.

The terminal, Markdown and HTML renderers format the same :class:`Table` specs, so a table
changes in one place. A new statistic becomes a column or row here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from recordagent.errors import MODEL_FAILURES
from recordagent.evaluation.report.formats import (
    concordance_cell,
    interval,
    p_value,
    percent,
    short,
    usd,
)
from recordagent.evaluation.report.model import (
    SCORE_STATES,
    STATUSES,
    DecileRange,
    EvaluationReport,
)

__all__ = ["MOCK_WARNING", "Table", "report_tables", "summary_line"]

MOCK_WARNING = (
    "MOCK RUN — Answers came from a scripted mock model, not a language model. These numbers "
    "test the evaluation plumbing; they say nothing about any model."
)
"""The banner of a report with any mock run; the HTML page splits it at the dash."""


@dataclass
class Table:
    """One table of the report, as text cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    """Indexes of the right-aligned (numeric) columns."""
    note: str = ""
    plot: str | None = None
    """Which plot follows the table in HTML (a key of ``report_plots``)."""


def report_tables(report: EvaluationReport, *, with_items: bool) -> list[Table]:
    """The tables of the report, in order; ``with_items`` adds the list of incorrect answers."""
    level = f"{100 * (1 - report.alpha):g}%"
    tables = [
        Table(
            "Runs",
            ["runner", "model", "run", "prompts", "settings", "data", "code", "records"],
            [
                [
                    r.name,
                    r.run.model + (" (MOCK)" if r.run.mock else ""),
                    r.run.run_id,
                    r.run.prompt_version,
                    r.run.settings_hash,
                    r.run.data_fingerprint[:16],
                    (r.run.git_sha or "")[:10] or r.run.package_version,
                    str(r.run.records),
                ]
                for r in report.runners
            ],
            numeric={7},
        ),
        Table(
            "Concordance",
            [
                "runner",
                "graded",
                "correct",
                "concordance",
                f"Wilson {level} CI",
                f"patient bootstrap {level} CI",
                "ungraded",
            ],
            [
                [
                    r.name,
                    str(r.concordance.n),
                    str(r.concordance.correct),
                    percent(r.concordance.rate) if r.concordance.n else "—",
                    interval(r.concordance.wilson),
                    interval(r.concordance.bootstrap),
                    str(r.concordance.ungraded),
                ]
                for r in report.runners
            ],
            numeric={1, 2, 3, 4, 5, 6},
            note=(
                f"Concordance: share of graded items answered correctly. The bootstrap resamples "
                f"patients ({report.n_boot} resamples), since items about one patient are not "
                "independent."
            ),
            plot="runners",
        ),
    ]
    if report.comparisons:
        tables.append(
            Table(
                "Paired comparisons (McNemar)",
                [
                    "A",
                    "B",
                    "items",
                    "A correct",
                    "B correct",
                    "b: A only",
                    "c: B only",
                    "p exact",
                    "p mid-p",
                    "Holm exact",
                    "Holm mid-p",
                ],
                [
                    [
                        c.runner_a,
                        c.runner_b,
                        str(c.n),
                        str(c.a_correct),
                        str(c.b_correct),
                        str(c.test.b),
                        str(c.test.c),
                        p_value(c.test.p_exact),
                        p_value(c.test.p_midp),
                        p_value(c.p_exact_holm),
                        p_value(c.p_midp_holm),
                    ]
                    for c in report.comparisons
                ],
                numeric=set(range(2, 11)),
                note="Items graded for both runners. Holm adjusts over every pair of runners.",
            )
        )
    names = [r.name for r in report.runners]
    tables.append(_strata_table("By question level", report, "by_level", None, names, "levels"))
    tables.append(
        _strata_table(
            "By record length: documents (deciles)",
            report,
            "by_document_decile",
            report.document_deciles,
            names,
            None,
        )
    )
    tables.append(
        _strata_table(
            "By record length: tokens (deciles)",
            report,
            "by_token_decile",
            report.token_deciles,
            names,
            "deciles",
        )
    )
    tables.append(
        Table(
            "Answers by status and score",
            ["runner", *STATUSES, *SCORE_STATES],
            [
                [
                    r.name,
                    *(str(r.status_counts.get(s, 0)) for s in STATUSES),
                    *(str(r.score_counts.get(s, 0)) for s in SCORE_STATES),
                ]
                for r in report.runners
            ],
            numeric=set(range(1, 9)),
        )
    )
    failures = _failures_table(report)
    if failures is not None:
        tables.append(failures)
    tables.append(
        Table(
            "Tokens, cost and latency",
            [
                "runner",
                "answers",
                "median tokens",
                "total tokens",
                "prompt / completion",
                "median cost",
                "total cost",
                "latency median / total",
                "calls: model / requests / tool",
            ],
            [
                [
                    r.name,
                    str(u.answers),
                    f"{u.median_tokens:,.0f}",
                    f"{u.total_tokens:,}" + ("" if u.tokens_reported else "*"),
                    f"{u.prompt_tokens:,} / {u.completion_tokens:,}",
                    usd(u.median_cost_usd),
                    usd(u.cost_usd),
                    f"{u.median_latency_s:.2f} s / {u.total_latency_s:.1f} s",
                    f"{u.model_calls:,} / {u.requests:,} / {u.tool_calls:,}",
                ]
                for r in report.runners
                for u in [r.usage]
            ],
            numeric=set(range(1, 9)),
            note="Tokens are prompt + completion per answer. * some counts were made locally (the "
            "server reported none). Cost is shown for priced models only. Requests are the HTTP "
            "requests the model calls took, retries and repairs included.",
            plot="usage",
        )
    )
    if any(r.time_by_step for r in report.runners):
        tables.append(_time_table(report))
    if report.agreement is not None:
        a = report.agreement
        tables.append(
            Table(
                "Inter-annotator agreement",
                ["annotator A", "annotator B", "items", "agreement", "Cohen's κ"],
                [
                    [
                        p.annotator_a,
                        p.annotator_b,
                        str(p.items),
                        percent(p.percent_agreement),
                        f"{p.kappa:.3f}",
                    ]
                    for p in a.pairs
                ],
                numeric={2, 3, 4},
                note=(
                    f"{a.labelled_items} item(s) labelled by two or more of {len(a.annotators)} "
                    f"annotators; {a.disagreeing_items} with a disagreement (expert "
                    f"disagreement rate {percent(a.disagreement_rate)}). Labels agree when the "
                    "scorer matches them (tolerances and synonyms apply); adjudications are "
                    "left out."
                ),
            )
        )
    tables.append(
        Table(
            "Errors by severity: system errors vs expert disagreements",
            [
                "source",
                "kind",
                "items",
                "errors",
                "rate",
                "clinically significant",
                "minor",
                "unrated",
            ],
            [
                [
                    e.source,
                    e.kind,
                    str(e.items),
                    str(e.errors),
                    percent(e.rate),
                    str(e.clinically_significant),
                    str(e.minor),
                    str(e.unrated),
                ]
                for e in report.errors
            ],
            numeric={2, 3, 4, 5, 6, 7},
            note="System errors are incorrect answers; expert disagreements are items whose "
            "annotators disagree. Severities come from the labels or an imported error review.",
        )
    )
    if with_items and report.error_items:
        tables.append(
            Table(
                "Incorrect answers",
                ["item", "runner", "question", "reference", "answer", "status", "severity"],
                [
                    [
                        e.item_id,
                        e.runner,
                        short(e.question, 90),
                        short(e.reference),
                        short(e.answer),
                        e.status,
                        (e.severity or "").replace("_", " "),
                    ]
                    for e in report.error_items
                ],
            )
        )
    return tables


def _strata_table(
    title: str,
    report: EvaluationReport,
    attribute: str,
    ranges: Sequence[DecileRange] | None,
    names: Sequence[str],
    plot: str | None,
) -> Table:
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    labels: dict[str, str] = {}
    for result in report.runners:
        for stratum in getattr(result, attribute):
            cells[stratum.key][result.name] = concordance_cell(stratum.concordance)
            labels[stratum.key] = stratum.label
    span = {
        str(r.decile): f"{r.low:,}–{r.high:,}" if r.low != r.high else f"{r.low:,}"
        for r in ranges or ()
    }
    headers = ["stratum", *(["range"] if ranges is not None else []), *names]
    rows = [
        [
            labels[key],
            *([span.get(key, "")] if ranges is not None else []),
            *(cells[key].get(n, "—") for n in names),
        ]
        for key in sorted(cells, key=lambda k: (k == "none", int(k) if k.isdigit() else 0))
    ]
    first = 2 if ranges is not None else 1
    return Table(
        title,
        headers,
        rows,
        numeric=set(range(first, len(headers))),
        note=f"Cells: concordance ({100 * (1 - report.alpha):g}% Wilson CI), graded items.",
        plot=plot,
    )


def _failures_table(report: EvaluationReport) -> Table | None:
    """Failed answers by the cause of the model's failure; None when no answer has one."""
    causes = [c for c in MODEL_FAILURES if any(r.failures.get(c) for r in report.runners)]
    if not causes:
        return None
    return Table(
        "Model failures by cause",
        ["runner", "failed", *(c.replace("_", " ") for c in causes)],
        [
            [
                r.name,
                str(r.status_counts.get("failed", 0)),
                *(str(r.failures.get(c, 0)) for c in causes),
            ]
            for r in report.runners
        ],
        numeric=set(range(1, len(causes) + 2)),
        note="Why the model failed the failed answers: timeout (no answer in time), context "
        "overflow (the prompt does not fit the window), output length (cut off at max_tokens), "
        "invalid output (no valid answer after one repair), and the server's faults.",
    )


def _time_table(report: EvaluationReport) -> Table:
    """Where the time went: per runner and kind of step, calls, requests, tokens, seconds."""
    rows = []
    for result in report.runners:
        for s in result.time_by_step:
            rows.append(
                [
                    result.name,
                    s.step,
                    str(s.items),
                    f"{s.calls:,}" if s.calls else "—",
                    f"{s.requests:,}" if s.model else "—",
                    f"{s.prompt_tokens:,}" if s.model else "—",
                    f"{s.completion_tokens:,}" if s.model else "—",
                    f"{s.seconds:,.1f}",
                    f"{s.median_item_s:.2f}",
                    percent(s.wall_share),
                ]
            )
    return Table(
        "Where the time went",
        [
            "runner",
            "step",
            "answers",
            "calls",
            "requests",
            "prompt",
            "completion",
            "s",
            "median s",
            "share",
        ],
        rows,
        numeric=set(range(2, 10)),
        note="Per kind of step over each runner's answers: model calls (plan, act, reflect, "
        "decide, answer), tool calls (tool) and record work (skeleton, retrieve, pack); 'other' "
        "is wall time no step accounts for (waiting for the event loop or a concurrency slot, "
        "graph bookkeeping). Requests: HTTP requests, retries and repairs included. Prompt, "
        "completion: tokens. s: seconds in all; median s: per answer with that step; share: "
        "of the answers' summed wall time.",
    )


def summary_line(report: EvaluationReport) -> str:
    """One sentence: items, patients, runners, interval level and creation time."""
    referenced = (
        "stored scores"
        if report.referenced_items is None
        else f"{report.referenced_items} with a reference"
    )
    return (
        f"{report.items} items ({referenced}) about {report.patients} patients, "
        f"{len(report.runners)} runner(s); intervals at {100 * (1 - report.alpha):g}%; "
        f"created {report.created:%Y-%m-%d %H:%M} UTC."
    )
