"""Slash commands: everything in the session that needs no model.

Each command prints to the console it is given. Mistakes raise :class:`UserError` and bad
tool arguments :class:`ToolError`; the prompt loop shows either as one line and goes on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from recordagent.chat.citations import cited_passage
from recordagent.chat.export import session_markdown
from recordagent.chat.render import render_labs, render_trace
from recordagent.chat.session import ChatSession
from recordagent.errors import UserError
from recordagent.runners import RUNNER_NAMES
from recordagent.tools.labs import QueryLabsResult

__all__ = ["COMMANDS", "CommandOutcome", "run_command"]

COMMANDS: dict[str, str] = {
    "/timeline": "/timeline [kind …]  events and documents in date order (kinds: diagnosis, "
    "therapy, transplant, admission, death, …, document)",
    "/labs": "/labs ANALYTE [FROM] [TO]  a lab series as a table and a sparkline",
    "/search": "/search QUERY  ranked passages of the record's documents",
    "/doc": "/doc ID [SECTION]  read a document (or one section of it)",
    "/cite": "/cite N  the passage behind citation N of the last answer",
    "/runner": "/runner [NAME]  show or change the runner (" + ", ".join(RUNNER_NAMES) + ")",
    "/trace": "/trace  every step of the last run",
    "/new": "/new  start a new conversation (earlier questions are forgotten)",
    "/export": "/export FILE  write the session as Markdown with citations",
    "/help": "/help  this list",
    "/quit": "/quit  end the session (or Ctrl-D)",
}


class CommandOutcome(BaseModel):
    """What the loop does after a command."""

    quit: bool = False


Handler = Callable[[ChatSession, list[str], Console], CommandOutcome | None]


def run_command(session: ChatSession, line: str, console: Console) -> CommandOutcome:
    """Run the slash command on ``line``.

    Raises:
        UserError: Unknown command or bad usage.
        ToolError: A record tool could not serve the arguments.
    """
    name, *args = line.strip().split()
    handler = _HANDLERS.get(name.lower())
    if handler is None:
        raise UserError(f"unknown command '{name}'; /help lists the commands")
    return handler(session, args, console) or CommandOutcome()


def _usage(name: str) -> UserError:
    return UserError(f"usage: {COMMANDS[name].split('  ', 1)[0]}")


def _print_lines(console: Console, lines: list[str]) -> None:
    for line in lines:
        console.print(Text(line), soft_wrap=False)


def _timeline(session: ChatSession, args: list[str], console: Console) -> None:
    arguments = {"kinds": args} if args else {}
    result = session.tools.call(session.scope, "get_timeline", arguments)
    _print_lines(console, result.lines())


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _labs(session: ChatSession, args: list[str], console: Console) -> None:
    words = list(args)
    days: list[str] = []
    while words and len(days) < 2 and _day(words[-1]) is not None:
        days.insert(0, words.pop())
    if not words:
        raise _usage("/labs")
    arguments: dict[str, object] = {"analyte": " ".join(words), "limit": 500}
    if days:
        arguments["start"] = days[0]
    if len(days) > 1:
        arguments["end"] = days[1]
    result = session.tools.call(session.scope, "query_labs", arguments)
    assert isinstance(result, QueryLabsResult)
    console.print(render_labs(result, width=max(20, console.width - 64)))


def _search(session: ChatSession, args: list[str], console: Console) -> None:
    if not args:
        raise _usage("/search")
    result = session.tools.call(session.scope, "search_documents", {"query": " ".join(args)})
    _print_lines(console, result.lines())


def _doc(session: ChatSession, args: list[str], console: Console) -> None:
    if not args:
        raise _usage("/doc")
    arguments: dict[str, object] = {"document_id": args[0]}
    if len(args) > 1:
        arguments["section"] = " ".join(args[1:])
    result = session.tools.call(session.scope, "read_document", arguments)
    _print_lines(console, result.lines())


def _cite(session: ChatSession, args: list[str], console: Console) -> None:
    if len(args) != 1 or not args[0].isdigit():
        raise _usage("/cite")
    turn = session.last
    if turn is None:
        raise UserError("no answer yet: ask a question first")
    number = int(args[0])
    if not 1 <= number <= len(turn.sources):
        shown = f"1-{len(turn.sources)}" if turn.sources else "none"
        raise UserError(f"the last answer has no citation {number} (citations: {shown})")
    source = turn.sources[number - 1]
    console.print(Text(f"[{number}] {source.label}", style="bold"))
    passage = cited_passage(session.scope, source)
    if passage != source.label:  # labs and events are their label
        console.print(Text(passage))


def _runner(session: ChatSession, args: list[str], console: Console) -> None:
    if len(args) > 1:
        raise _usage("/runner")
    if args:
        session.set_runner(args[0])
    console.print(
        f"runner: [bold]{session.runner.name}[/] (runners: {', '.join(RUNNER_NAMES)})",
        highlight=False,
    )


def _trace(session: ChatSession, args: list[str], console: Console) -> None:
    turn = session.last
    if turn is None:
        raise UserError("no run yet: ask a question first")
    console.print(render_trace(turn.answer.trace))


def _new(session: ChatSession, args: list[str], console: Console) -> None:
    session.new_conversation()
    console.print("new conversation: earlier questions are forgotten", highlight=False)


def _export(session: ChatSession, args: list[str], console: Console) -> None:
    if len(args) != 1:
        raise _usage("/export")
    target = Path(args[0]).expanduser()
    try:
        target.write_text(session_markdown(session), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    console.print(f"exported {len(session.turns)} question(s) to {target}", highlight=False)


def _help(session: ChatSession, args: list[str], console: Console) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    table.add_row("QUESTION", f"ask in words; the {session.runner.name} runner answers")
    for usage in COMMANDS.values():
        command, text = usage.split("  ", 1)
        table.add_row(command, text)
    table.add_row("Ctrl-C", "cancel the running step (at the prompt: clear the line)")
    table.add_row("Ctrl-D", "quit")
    console.print(table)


def _quit(session: ChatSession, args: list[str], console: Console) -> CommandOutcome:
    return CommandOutcome(quit=True)


_HANDLERS: dict[str, Handler] = {
    "/timeline": _timeline,
    "/labs": _labs,
    "/search": _search,
    "/doc": _doc,
    "/cite": _cite,
    "/runner": _runner,
    "/trace": _trace,
    "/new": _new,
    "/export": _export,
    "/help": _help,
    "/quit": _quit,
    "/exit": _quit,
}
