"""The evaluation report as one self-contained HTML page: inline CSS, plots as inline SVG."""

from __future__ import annotations

from html import escape

from recordagent.evaluation.report.model import EvaluationReport
from recordagent.evaluation.report.plots import report_plots
from recordagent.evaluation.report.tables import MOCK_WARNING, Table, report_tables, summary_line

__all__ = ["render_html"]

_CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde1e8; --zebra: #f6f7f9; --accent: #2b59c3; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
p.summary { color: var(--muted); margin: 0 0 12px; }
p.note { color: var(--muted); font-size: 13px; margin: 4px 0 10px; }
ul.notes { color: #8a5a00; background: #fff8e6; border: 1px solid #f3d98b; border-radius: 6px;
  padding: 8px 12px 8px 30px; font-size: 14px; }
.mock { background: #c62828; color: #fff; font-weight: 700; font-size: 17px; padding: 14px 20px;
  border-radius: 6px; margin: 0 0 16px; letter-spacing: .01em; }
.mock span { display: block; font-weight: 400; font-size: 14px; margin-top: 2px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; margin: 6px 0 8px; min-width: 50%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--zebra); }
figure { margin: 12px 0 4px; }
svg.plot { max-width: 100%; height: auto; display: block; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
"""


def render_html(report: EvaluationReport) -> str:
    """The report as one self-contained HTML page (inline CSS, plots as inline SVG)."""
    plots = report_plots(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Evaluation report{' (MOCK)' if report.mock else ''}</title>",
        f"<style>{_CSS}</style></head><body><main>",
    ]
    if report.mock:
        head, _, rest = MOCK_WARNING.partition(" — ")
        parts.append(
            f'<div class="mock" role="alert">⚠ {escape(head)}<span>{escape(rest)}</span></div>'
        )
    parts += [
        "<h1>Evaluation report</h1>",
        f'<p class="summary">{escape(summary_line(report))}</p>',
    ]
    if report.notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>"
        )
    for spec in report_tables(report, with_items=True):
        parts.append(f"<section><h2>{escape(spec.title)}</h2>")
        if spec.note:
            parts.append(f'<p class="note">{escape(spec.note)}</p>')
        parts.append('<div class="scroll"><table><thead><tr>')
        parts += [f"<th{_num_class(k, spec)}>{escape(h)}</th>" for k, h in enumerate(spec.headers)]
        parts.append("</tr></thead><tbody>")
        for row in spec.rows:
            parts.append(
                "<tr>"
                + "".join(f"<td{_num_class(k, spec)}>{escape(c)}</td>" for k, c in enumerate(row))
                + "</tr>"
            )
        parts.append("</tbody></table></div>")
        if spec.plot and plots.get(spec.plot):
            parts.append(f"<figure>{plots[spec.plot]}</figure>")
        parts.append("</section>")
    parts.append(
        f"<footer>recordagent evaluation report · {escape(report.created.isoformat())}</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _num_class(k: int, spec: Table) -> str:
    return ' class="num"' if k in spec.numeric else ""
