"""``recordagent report``: the evaluation report from run logs, without calling any model.

Two kinds of output, chosen by ``--format``: the report (``table`` in the terminal,
``markdown``), which compares the runners; and the per-item results (``csv``, ``json``,
``jsonl``, ``parquet``), one row per item and runner, for analysis
(:func:`recordagent.evaluation.results_table.results`). Output goes to stdout, or to ``--out``;
stdout then holds that output alone, and warnings and notices go to stderr, so that
``recordagent report run.jsonl --format csv > results.csv`` is a clean file.

With ``--labels`` every answer is scored again against them (``--no-rescore`` keeps the stored
scores for the report; the per-item results then refuse, since their reference column would sit
beside scores made against other labels). No output may be a log, the labels or another output.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from recordagent.cli.costs import print_costs
from recordagent.cli.render import (
    OutputFormat,
    chosen_format,
    output_console,
    output_file,
    refuse_overwriting,
)
from recordagent.errors import UserError
from recordagent.evaluation.labels import read_labels, reference_labels
from recordagent.evaluation.log import RunLog, read_contents
from recordagent.evaluation.report import (
    EvaluationReport,
    build_report,
    render_html,
    render_markdown,
    render_terminal,
)
from recordagent.evaluation.results_table import frame_bytes, results, write_results
from recordagent.paths import path_kind, shown, write_text

__all__ = ["report"]


_RESULTS = {OutputFormat.csv, OutputFormat.json, OutputFormat.jsonl, OutputFormat.parquet}
"""Formats of the per-item results; the others are the summary report."""


def report(
    logs: Annotated[list[Path], typer.Argument(help="Run logs (JSONL), one per runner.")],
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labels file (.csv, .jsonl, .parquet): the references every answer is scored "
            "again against, and the annotators' agreement."
        ),
    ] = None,
    rescore: Annotated[
        bool | None,
        typer.Option(
            "--rescore/--no-rescore",
            help="Score every answer again against --labels (the default with --labels). "
            "--no-rescore: the report keeps the scores stored in the logs and takes only the "
            "agreement from --labels (not for the per-item results).",
        ),
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the report as HTML here.")] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            help="table (the report, for a terminal) or markdown: the report comparing the "
            "runners. csv, json, jsonl or parquet: the per-item results, one row per item and "
            "runner. Default: by the suffix of --out (.txt table, .md, .csv, .json, .jsonl, "
            ".parquet), else table; a format the suffix contradicts is refused.",
            case_sensitive=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write to this file instead of stdout (required for parquet)."),
    ] = None,
) -> None:
    """Print the report of the run logs (stored scores, or rescored against --labels)."""
    chosen = chosen_format(output_format, out)
    if rescore is None:
        rescore = labels is not None
    if rescore and labels is None:
        raise UserError("--rescore needs --labels (the labels to score against)")
    if not rescore and labels is not None and chosen in _RESULTS:
        raise UserError(
            f"--no-rescore with --labels and --format {chosen}: each row's reference (from "
            "--labels) would sit beside a score made against the run's labels; leave out "
            "--labels for the stored scores, or drop --no-rescore to score against --labels"
        )
    inputs = [("run log", path) for path in logs]
    if labels is not None:
        inputs.append(("--labels file", labels))
    refuse_overwriting([("--out", out), ("--html", html)], inputs)
    if html is not None and path_kind(html, "--html") == "folder":
        raise UserError(f"--html {html} is a folder; give the HTML file to write")
    if out is not None:
        output_file(out, "--out")
    notices = output_console(stderr=True)
    runs = [_read_log(path, notices) for path in logs]
    label_rows = read_labels(labels) if labels is not None else []
    references = None
    if labels is not None:
        items = {r.item.id: r.item for run in runs for r in run.records}
        references, unresolved = reference_labels(label_rows, items)
        if unresolved and rescore:
            notices.print(
                f"{len(unresolved)} labelled items have no reference (unresolved)",
                highlight=False,
            )

    if chosen in _RESULTS:
        frame = results(runs, labels=references, rescore=rescore)
        if out is not None:
            write_results(frame, out, format=chosen.value, keep=[labels] if labels else [])
            notices.print(f"written: {escape(shown(out))} ({frame.height} rows)", highlight=False)
        else:
            sys.stdout.buffer.write(frame_bytes(frame, chosen.value))
            sys.stdout.flush()
        result = None
    else:
        result = build_report(runs, references if rescore else None, labels=label_rows)
        if chosen is OutputFormat.markdown:
            text = render_markdown(result)
            if out is not None:
                write_text(out, text, "Markdown report")
                notices.print(f"written: {escape(shown(out))}", highlight=False)
            else:
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
                sys.stdout.flush()
        elif out is not None:
            _write_table(result, out)
            notices.print(f"written: {escape(shown(out))}", highlight=False)
        else:
            console = output_console()
            render_terminal(result, console)
            print_costs(console, result)
    if html is not None:
        if result is None:
            result = build_report(runs, references if rescore else None, labels=label_rows)
        write_text(html, render_html(result), "HTML report")
        notices.print(f"written: {escape(shown(html))}", highlight=False)


def _read_log(path: Path, notices: Console) -> RunLog:
    """The run log at ``path``; a half-written last line is left out with a warning."""
    contents = read_contents(path)
    if contents.truncated_line is not None:
        notices.print(
            f"warning: {escape(shown(path))}: line {contents.truncated_line} is half-written "
            "(the run was interrupted) and was left out",
            highlight=False,
        )
    return RunLog(path, contents)


def _write_table(result: EvaluationReport, out: Path) -> None:
    """The terminal report as plain text in ``out`` (at natural width, no colour)."""
    text = io.StringIO()
    console = output_console(file=text)
    render_terminal(result, console)
    print_costs(console, result)
    write_text(out, text.getvalue(), "report")
