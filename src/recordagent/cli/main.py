"""The ``recordagent`` command line: thin wrappers over the library."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.markup import escape

from recordagent.cli import ask, audit, chat, demo, load, questions, summary, synth
from recordagent.cli import eval as eval_cli
from recordagent.cli import report as report_cli
from recordagent.errors import UserError
from recordagent.records.db import damaged_store_error, error_chain
from recordagent.settings import Settings, load_settings

__all__ = ["INTERRUPTED_EXIT_CODE", "app", "run"]

INTERRUPTED_EXIT_CODE = 130
"""Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""

app = typer.Typer(
    name="recordagent",
    help="LLM reasoning over longitudinal patient records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    preset: Annotated[
        str | None,
        typer.Option(
            help="Settings preset: a packaged name (default, small-chunks) or a YAML file."
        ),
    ] = None,
) -> None:
    """Set up the settings every subcommand receives."""
    ctx.obj = command_settings(preset)


def command_settings(preset: str | None) -> Settings:
    """Settings for a command: the preset, and chunking on every core unless set otherwise.

    The command's entry point is import-safe, so worker processes may be used; a library caller
    keeps the in-process default.
    """
    settings = load_settings(preset)
    if settings.chunking.workers is None:
        chunking = settings.chunking.model_copy(update={"workers": os.cpu_count() or 1})
        settings = settings.model_copy(update={"chunking": chunking})
    return settings


app.command("ask")(ask.ask)
app.command("audit")(audit.audit)
app.command("chat")(chat.chat)
app.command("demo")(demo.demo)
app.command("eval")(eval_cli.eval_command)
app.command("load")(load.load)
app.command("report")(report_cli.report)
app.command("summary")(summary.summary)
app.command("synth")(synth.synth)
app.add_typer(questions.app, name="questions")


def run(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, showing UserErrors without a traceback."""
    try:
        app(args=argv, prog_name="recordagent")
    except UserError as exc:
        _exit_with(exc)
    except SystemExit as exc:
        # Ctrl-C that no command reported: typer exits 130 without a word.
        if any(isinstance(e, KeyboardInterrupt) for e in error_chain(exc)):
            _exit_with(UserError("interrupted", exit_code=INTERRUPTED_EXIT_CODE))
        raise
    except duckdb.Error as exc:
        # DuckDB finds a damaged block when a command first reads it, long after the store was
        # opened: that is the store file's problem, not a bug.
        damaged = damaged_store_error(exc)
        if damaged is None:
            raise
        _exit_with(damaged)


def _exit_with(exc: UserError) -> NoReturn:
    # Escaped: a message quoting a path or an id such as '[/x]' is text, not rich markup.
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    sys.exit(exc.exit_code)
