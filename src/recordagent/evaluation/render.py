"""The evaluation report rendered as text: the shared tables, the terminal and Markdown.

Every rendering formats the same :class:`~recordagent.evaluation.report.EvaluationReport` through
the table specs of :func:`_tables`; the HTML page (with plots) is built in
:mod:`~recordagent.evaluation.render_html` from the same specs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from recordagent.evaluation.report import _STATUSES, DecileRange, EvaluationReport
from recordagent.evaluation.stats import Concordance

__all__ = ["MOCK_WARNING", "render_markdown", "render_terminal"]


# --------------------------------------------------------------------------- shared tables


@dataclass
class _Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    note: str = ""
    plot: str | None = None  # which plot follows the table in HTML


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(bounds: tuple[float, float]) -> str:
    return f"{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _usd(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def _cell(c: Concordance) -> str:
    if c.n == 0:
        return "— (n=0)"
    return f"{_pct(c.rate)} ({_ci(c.wilson)}) n={c.n}"


def _short(text: Any, limit: int = 60) -> str:
    if text is None or text == []:
        return "no value"
    shown = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _tables(report: EvaluationReport, *, with_items: bool) -> list[_Table]:
    level = f"{100 * (1 - report.alpha):g}%"
    tables = [
        _Table(
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
        _Table(
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
                    _pct(r.concordance.rate) if r.concordance.n else "—",
                    _ci(r.concordance.wilson),
                    _ci(r.concordance.bootstrap),
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
            _Table(
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
                        _p(c.test.p_exact),
                        _p(c.test.p_midp),
                        _p(c.p_exact_holm),
                        _p(c.p_midp_holm),
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
        _Table(
            "Answers by status and score",
            ["runner", *_STATUSES, "correct", "incorrect", "ungraded", "unscored"],
            [
                [
                    r.name,
                    *(str(r.status_counts.get(s, 0)) for s in _STATUSES),
                    *(str(v) for v in r.score_counts.values()),
                ]
                for r in report.runners
            ],
            numeric=set(range(1, 9)),
        )
    )
    tables.append(
        _Table(
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
                "calls: model / tool",
            ],
            [
                [
                    r.name,
                    str(u.answers),
                    f"{u.median_tokens:,.0f}",
                    f"{u.total_tokens:,}" + ("" if u.tokens_reported else "*"),
                    f"{u.prompt_tokens:,} / {u.completion_tokens:,}",
                    _usd(u.median_cost_usd),
                    _usd(u.cost_usd),
                    f"{u.median_latency_s:.2f} s / {u.total_latency_s:.1f} s",
                    f"{u.model_calls:,} / {u.tool_calls:,}",
                ]
                for r in report.runners
                for u in [r.usage]
            ],
            numeric=set(range(1, 9)),
            note="Tokens are prompt + completion per answer. * some counts were made locally (the "
            "server reported none). Cost is shown for priced models only.",
            plot="usage",
        )
    )
    if report.agreement is not None:
        a = report.agreement
        tables.append(
            _Table(
                "Inter-annotator agreement",
                ["annotator A", "annotator B", "items", "agreement", "Cohen's κ"],
                [
                    [
                        p.annotator_a,
                        p.annotator_b,
                        str(p.items),
                        _pct(p.percent_agreement),
                        f"{p.kappa:.3f}",
                    ]
                    for p in a.pairs
                ],
                numeric={2, 3, 4},
                note=(
                    f"{a.labelled_items} item(s) labelled by two or more of {len(a.annotators)} "
                    f"annotators; {a.disagreeing_items} with a disagreement (expert "
                    f"disagreement rate {_pct(a.disagreement_rate)}). Labels agree when the "
                    "scorer matches them (tolerances and synonyms apply); adjudications are "
                    "left out."
                ),
            )
        )
    tables.append(
        _Table(
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
                    _pct(e.rate),
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
            _Table(
                "Incorrect answers",
                ["item", "runner", "question", "reference", "answer", "status", "severity"],
                [
                    [
                        e.item_id,
                        e.runner,
                        _short(e.question, 90),
                        _short(e.reference),
                        _short(e.answer),
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
) -> _Table:
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    labels: dict[str, str] = {}
    for result in report.runners:
        for stratum in getattr(result, attribute):
            cells[stratum.key][result.name] = _cell(stratum.concordance)
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
    return _Table(
        title,
        headers,
        rows,
        numeric=set(range(first, len(headers))),
        note=f"Cells: concordance ({100 * (1 - report.alpha):g}% Wilson CI), graded items.",
        plot=plot,
    )


MOCK_WARNING = (
    "MOCK RUN — Answers came from a scripted mock model, not a language model. These numbers "
    "test the evaluation plumbing; they say nothing about any model."
)


# --------------------------------------------------------------------------- terminal


def render_terminal(report: EvaluationReport, console: Console) -> None:
    """Print the report's tables (the error list is left to the Markdown and HTML reports)."""
    if report.mock:
        console.print(Panel(MOCK_WARNING, style="bold white on red", title="MOCK"))
    console.print(
        f"[bold]Evaluation report[/bold] · {report.items} items · {report.patients} patients · "
        f"{len(report.runners)} runner(s)"
    )
    for spec in _tables(report, with_items=False):
        table = Table(
            title=spec.title,
            title_justify="left",
            header_style="bold",
            caption=spec.note or None,
            caption_justify="left",
        )
        for k, header in enumerate(spec.headers):
            # The first column names the row (a runner, a stratum): never cut it.
            table.add_column(
                header, justify="right" if k in spec.numeric else "left", no_wrap=k == 0
            )
        for row in spec.rows:
            table.add_row(*row)
        console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


# --------------------------------------------------------------------------- markdown


def render_markdown(report: EvaluationReport) -> str:
    """The report as Markdown (GitHub tables)."""
    lines = ["# Evaluation report", ""]
    if report.mock:
        lines += [f"> **⚠ {MOCK_WARNING}**", ""]
    lines += [_summary_line(report), ""]
    for note in report.notes:
        lines.append(f"- {note}")
    if report.notes:
        lines.append("")
    for spec in _tables(report, with_items=True):
        lines += [f"## {spec.title}", ""]
        if spec.note:
            lines += [spec.note, ""]
        lines.append("| " + " | ".join(_md(h) for h in spec.headers) + " |")
        lines.append(
            "|"
            + "|".join("---:" if k in spec.numeric else "---" for k in range(len(spec.headers)))
            + "|"
        )
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in spec.rows]
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _summary_line(report: EvaluationReport) -> str:
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
