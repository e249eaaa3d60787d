"""The terminal prompt loop: line editing, history, completion, cancellation.

Questions run as an asyncio task; Ctrl-C while one runs cancels that task (and only it) and
returns to the prompt. At the prompt Ctrl-C clears the line and Ctrl-D quits. Without a
terminal on stdin (a pipe) lines are read plainly, one command or question each.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from recordagent.chat.commands import COMMANDS, run_command
from recordagent.chat.render import render_answer, render_step
from recordagent.chat.session import ChatSession, Turn
from recordagent.errors import ToolError, UserError
from recordagent.records.schema import EVENT_KINDS
from recordagent.runners import RUNNER_NAMES, TraceEvent

__all__ = [
    "MOCK_NOTICE",
    "ChatCompleter",
    "ask_cancellable",
    "handle_line",
    "make_completer",
    "open_session_banner",
    "run_loop",
]

MOCK_NOTICE = (
    "MOCK MODEL: no model is configured (or --model mock was asked for), so a scripted dry run "
    "walks the runner's steps; no language model reads the record and its answers are NOT a "
    "model's. Configure one with RECORDAGENT_MODEL__PROVIDER / __BASE_URL / __MODEL."
)

log = logging.getLogger(__name__)

ReadLine = Callable[[], Awaitable[str]]


async def ask_cancellable(session: ChatSession, question: str, console: Console) -> Turn | None:
    """Answer ``question``, streaming its steps; Ctrl-C (SIGINT) cancels it.

    Returns:
        The turn, or None if the run was cancelled or broke (the message is printed).
    """

    def show(event: TraceEvent) -> None:
        line = render_step(event)
        if line is not None:
            console.print(line, highlight=False, soft_wrap=True)

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(session.ask(question, on_event=show))
    handled = _install_sigint(loop, task.cancel)
    try:
        turn = await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the session itself is being cancelled, not just this step
        console.print("[yellow]cancelled[/]", highlight=False)
        return None
    except Exception as exc:  # a bug in a runner must not end the session
        # Ids only in the log: an exception's text may quote the record.
        log.error("chat run failed patient=%s error=%s", session.patient_id, type(exc).__name__)
        console.print(
            Text.assemble(("error:", "bold red"), f" the run failed: {type(exc).__name__}: {exc}")
        )
        return None
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    console.print(render_answer(turn))
    if turn.answer.mock:
        console.print("[bold yellow]mock model: not a model's answer[/]", highlight=False)
    return turn


def _install_sigint(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> bool:
    """Run ``callback`` on SIGINT; False where signals cannot be handled (not main thread)."""
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


async def handle_line(session: ChatSession, line: str, console: Console) -> bool:
    """Run one line of input: a slash command or a question. Returns False to quit."""
    text = line.strip()
    if not text:
        return True
    try:
        if text.startswith("/"):
            return not run_command(session, text, console).quit
        await ask_cancellable(session, text, console)
    except UserError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
    except ToolError as exc:
        console.print(f"[bold red]tool error:[/] {exc}", highlight=False)
    return True


def open_session_banner(session: ChatSession, console: Console) -> None:
    """The mock banner (if so) and a line on how to use the session."""
    if session.model.is_mock:
        console.print(Panel(MOCK_NOTICE, title="MOCK MODEL", style="bold yellow"))
    console.print(
        f"runner [bold]{session.runner.name}[/], model {session.model.name}. Ask a question, "
        "or /help for the commands; Ctrl-D quits.",
        highlight=False,
    )


async def run_loop(
    session: ChatSession, console: Console, read_line: ReadLine | None = None
) -> int:
    """Read and run lines until /quit or end of input. Returns the exit code (0)."""
    reader = read_line or _reader(session)
    loop = asyncio.get_running_loop()
    # Between runs a stray SIGINT (Ctrl-C during a slash command) is ignored, not fatal; the
    # prompt itself reads Ctrl-C as a key, and a run installs its own handler.
    guarded = _install_sigint(loop, lambda: None)
    try:
        while True:
            try:
                line = await reader()
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            keep_going = await handle_line(session, line, console)
            if guarded:
                _install_sigint(loop, lambda: None)
            if not keep_going:
                break
    finally:
        if guarded:
            loop.remove_signal_handler(signal.SIGINT)
    console.print("bye", highlight=False)
    return 0


def _reader(session: ChatSession) -> ReadLine:
    prompt_text = f"{session.patient_id}> "
    if not sys.stdin.isatty():

        async def plain() -> str:
            line: str = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            if not line:
                raise EOFError
            return line

        return plain
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    prompt: PromptSession[str] = PromptSession(
        history=InMemoryHistory(),
        completer=make_completer(session.analytes()),
        complete_while_typing=False,
    )

    async def edited() -> str:
        text: str = await prompt.prompt_async(prompt_text)
        return text

    return edited


def make_completer(analytes: Iterable[str]) -> ChatCompleter:
    """Tab completion of slash commands, analyte names, runner names and event kinds."""
    return ChatCompleter(list(analytes))


class ChatCompleter(Completer):
    """Completes the command name, then the argument the command takes."""

    def __init__(self, analytes: list[str]) -> None:
        self.analytes = analytes
        self.arguments: dict[str, list[str]] = {
            "/labs": analytes,
            "/runner": list(RUNNER_NAMES),
            "/timeline": [*EVENT_KINDS, "document"],
        }

    def candidates(self, text: str) -> list[tuple[str, int]]:
        """(completion, start position relative to the cursor) pairs for ``text``."""
        if not text.startswith("/"):
            return []
        if " " not in text:
            names = [*COMMANDS]
            return [(f"{n} ", -len(text)) for n in names if n.startswith(text.lower())]
        command, rest = text.split(" ", 1)
        options = self.arguments.get(command.lower(), [])
        if command.lower() == "/timeline":
            rest = rest.rsplit(" ", 1)[-1]
        word = rest.lower()
        return [(o, -len(rest)) for o in options if o.lower().startswith(word)]

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        """prompt_toolkit's completer protocol."""
        for text, start in self.candidates(document.text_before_cursor):
            yield Completion(text, start_position=start)
