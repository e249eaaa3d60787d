"""The ``recordagent`` command line: thin wrappers over the library.

Exit codes (also in ``recordagent --help``):

- 0: done (a truncated answer of ``ask`` included: it says so);
- 1: ``eval`` answered some items only with an unexpected error (a bug), logged as failed;
  ``--resume`` retries them;
- 2: an error you can fix (a missing file, a bad option, an unknown preset), one line;
- 3: a bundle that failed validation;
- 4: the model failed: a model error, a failed answer of ``ask``, or a runner of ``eval`` or
  ``demo`` whose every answer failed (one line per runner and cause, with what to do);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.markup import escape

from recordagent.cli import ask, audit, chat, demo, extract, label, load, questions, summary, synth
from recordagent.cli import eval as eval_cli
from recordagent.cli import mcp as mcp_cli
from recordagent.cli import report as report_cli
from recordagent.errors import UserError
from recordagent.records.db import damaged_store_error, error_chain
from recordagent.settings import Settings, load_settings

__all__ = ["EXIT_CODES", "INTERRUPTED_EXIT_CODE", "app", "run"]

INTERRUPTED_EXIT_CODE = 130
"""Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""

EXIT_CODES = (
    "Exit codes: 0 done; 1 eval items failed by an unexpected error (a bug; --resume retries "
    "them); 2 an error you can fix; 3 a bundle that failed validation; 4 the model failed (a "
    "model error, a failed answer of ask, a runner of eval or demo that failed every answer); "
    "130 interrupted."
)
"""The exit codes, as ``recordagent --help`` ends."""

app = typer.Typer(
    name="recordagent",
    help="LLM reasoning over longitudinal patient records.",
    epilog=EXIT_CODES,
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
    show_library_warnings()
    ctx.obj = command_settings(preset)


class _WarningLines(logging.Handler):
    """A library warning as one ``warning:`` line on the stderr of the moment.

    Looked up at each line, not kept: a live progress display puts its own stderr in place, and
    a line written there appears above the bar instead of through it.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"warning: {self.format(record)}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def show_library_warnings() -> None:
    """Show the library's warnings (retries, tools moved into the prompt, ...) on stderr."""
    logger = logging.getLogger("recordagent")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)


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
app.command("extract")(extract.extract_command)
app.command("load")(load.load)
app.command("mcp")(mcp_cli.mcp_command)
app.command("report")(report_cli.report)
app.command("summary")(summary.summary)
app.command("synth")(synth.synth)
app.add_typer(questions.app, name="questions")
app.add_typer(label.app, name="label")


def run(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, showing UserErrors without a traceback."""
    try:
        app(args=argv, prog_name="recordagent")
    except UserError as exc:
        _exit_with(exc)
    except KeyboardInterrupt:
        # Ctrl-C before a command runs (while typer builds the commands): no command to say it.
        _exit_with(UserError("interrupted", exit_code=INTERRUPTED_EXIT_CODE))
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
    # Soft-wrapped: a long line stays one line in a log or pipe (the terminal wraps it).
    Console(stderr=True).print(
        f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
    )
    sys.exit(exc.exit_code)
