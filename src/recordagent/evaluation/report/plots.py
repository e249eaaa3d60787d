"""The plots of the HTML report: matplotlib figures on the Agg canvas, saved as inline SVG.

No display and no pyplot: each figure gets its own canvas, and the SVG is trimmed to embed in the
page (no metadata block, stable element ids, CSS-scalable size).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from recordagent.evaluation.report.formats import percent, usd
from recordagent.evaluation.report.model import LEVEL_NAMES, EvaluationReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["report_plots"]

_COLOURS = ("#2b59c3", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d6a9f", "#30638e", "#b5651d")
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller files, the browser's font
    "svg.hashsalt": "recordagent-report",  # stable element ids, so reports diff cleanly
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ec",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.frameon": False,
}


def report_plots(report: EvaluationReport) -> dict[str, str]:
    """Inline SVG of each plot by the key tables name it with (``Table.plot``).

    Drawn with matplotlib's Agg canvas: no display, no pyplot.
    """
    import matplotlib

    if not report.runners:
        return {}
    with matplotlib.rc_context(_RC):
        return {
            "runners": _svg(_plot_runners(report), "Concordance by runner"),
            "levels": _svg(_plot_levels(report), "Concordance by question level"),
            "deciles": _svg(_plot_deciles(report), "Concordance by record-length decile"),
            "usage": _svg(_plot_usage(report), "Tokens, cost and latency by runner"),
        }


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _svg(figure: Figure, label: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    # The RDF metadata block (creator, format) means nothing inline and names outside URLs.
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.DOTALL)
    # Drawn at its natural size (points to CSS pixels), shrunk by CSS on narrow pages; without
    # a fixed height the viewBox keeps the aspect ratio.
    width = re.search(r'\swidth="([\d.]+)pt"', svg)
    svg = re.sub(r'\s(width|height)="[\d.]+pt"', "", svg, count=2)
    if width is not None:
        svg = svg.replace("<svg", f'<svg width="{float(width.group(1)) * 96 / 72:.0f}"', 1)
    aria = escape(label, quote=True)
    return svg.replace("<svg", f'<svg class="plot" role="img" aria-label="{aria}"', 1)


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))


def _plot_runners(report: EvaluationReport) -> Figure:
    runners = report.runners
    figure = _figure(8.0, 0.55 * len(runners) + 1.3)
    ax = figure.add_subplot()
    level = f"{100 * (1 - report.alpha):g}%"
    for k, r in enumerate(runners):
        c = r.concordance
        colour = _COLOURS[k % len(_COLOURS)]
        ax.hlines(
            k,
            *c.bootstrap,
            colors=colour,
            linewidth=7,
            alpha=0.22,
            label=f"patient bootstrap {level} CI" if k == 0 else "_nolegend_",
        )
        ax.errorbar(
            c.rate,
            k,
            xerr=[[c.rate - c.wilson[0]], [c.wilson[1] - c.rate]],
            fmt="o",
            color=colour,
            capsize=4,
            markersize=7,
            label=f"Wilson {level} CI" if k == 0 else "_nolegend_",
        )
        ax.annotate(
            f"{percent(c.rate)}  ({c.correct}/{c.n})",
            (max(c.wilson[1], c.bootstrap[1]), k),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(range(len(runners)), [r.name for r in runners])
    ax.set_ylim(len(runners) - 0.4, -0.6)
    ax.set_xlim(0, 1.18)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    _percent_axis(ax.xaxis)
    ax.spines.bottom.set_bounds(0, 1)
    ax.grid(axis="y", visible=False)
    ax.set_title("Concordance by runner")
    figure.legend(loc="outside lower center", fontsize=8.5, ncols=2)
    return figure


def _grouped(ax: Any, report: EvaluationReport, attribute: str, keys: Sequence[str]) -> None:
    """Points with Wilson error bars per stratum (x) and runner (offset, colour)."""
    count = len(report.runners)
    width = 0.6 / max(count, 1)
    position = {key: x for x, key in enumerate(keys)}
    for k, r in enumerate(report.runners):
        xs, ys, lows, highs = [], [], [], []
        for stratum in getattr(r, attribute):
            c = stratum.concordance
            if c.n == 0 or stratum.key not in position:
                continue
            xs.append(position[stratum.key] + (k - (count - 1) / 2) * width)
            ys.append(c.rate)
            lows.append(c.rate - c.wilson[0])
            highs.append(c.wilson[1] - c.rate)
        ax.errorbar(
            xs,
            ys,
            yerr=[lows, highs],
            fmt="o",
            capsize=3,
            color=_COLOURS[k % len(_COLOURS)],
            label=r.name,
            markersize=6,
        )
    ax.set_ylim(-0.03, 1.05)
    _percent_axis(ax.yaxis)
    ax.grid(axis="x", visible=False)


def _plot_levels(report: EvaluationReport) -> Figure:
    keys = sorted(
        {s.key for r in report.runners for s in r.by_level}, key=lambda k: (k == "none", k)
    )
    figure = _figure(8.0, 3.0)
    ax = figure.add_subplot()
    _grouped(ax, report, "by_level", keys)
    ax.set_xticks(range(len(keys)), [LEVEL_NAMES[k].replace(" · ", "\n") for k in keys])
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.set_title("Concordance by question level")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    return figure


def _plot_deciles(report: EvaluationReport) -> Figure:
    figure = _figure(10.0, 3.2)
    axes = figure.subplots(1, 2, sharey=True)
    keys = [str(d) for d in range(1, 11)]
    for ax, attribute, what in (
        (axes[0], "by_document_decile", "documents"),
        (axes[1], "by_token_decile", "tokens"),
    ):
        _grouped(ax, report, attribute, keys)
        ax.set_xticks(range(10), keys)
        ax.set_xlim(-0.6, 9.6)
        ax.set_xlabel(f"decile of record length in {what}")
        ax.set_title(f"By record length ({what})")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    return figure


def _plot_usage(report: EvaluationReport) -> Figure:
    from matplotlib.ticker import MaxNLocator

    runners = report.runners
    figure = _figure(10.0, 0.45 * len(runners) + 1.6)
    axes = figure.subplots(1, 3, sharey=True)
    names = [r.name for r in runners]
    colours = [_COLOURS[k % len(_COLOURS)] for k in range(len(runners))]
    ys = list(range(len(runners)))
    panels: list[tuple[str, list[float | None], Any]] = [
        (
            "Median tokens per answer",
            [r.usage.median_tokens for r in runners],
            lambda v: f"{v:,.0f}",
        ),
        ("Total cost (USD)", [r.usage.cost_usd for r in runners], usd),
        (
            "Median latency per answer (s)",
            [r.usage.median_latency_s for r in runners],
            lambda v: f"{v:.2f} s",
        ),
    ]
    for ax, (title, values, shown) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", visible=False)
        if all(v is None for v in values):
            # An empty axis with a 0-1 scale would read as "free": say there is no price.
            ax.text(
                0.5,
                0.5,
                "no priced model",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#5b6475",
            )
            ax.tick_params(axis="x", labelbottom=False, length=0)
            ax.grid(visible=False)
            continue
        drawn = [0.0 if v is None else v for v in values]
        ax.barh(ys, drawn, color=colours, height=0.6)
        top = max(drawn) if any(drawn) else 1.0
        ax.set_xlim(0, top * 1.35)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        for y, v in zip(ys, values, strict=True):
            ax.annotate(
                "unpriced" if v is None else shown(v),
                (0.0 if v is None else v, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8.5,
            )
    axes[0].set_yticks(ys, names)
    axes[0].set_ylim(len(runners) - 0.5, -0.5)
    return figure
