"""``recordagent ask``: answer one question about one patient, streaming the runner's steps.

The steps stream as one line each (a failed step with its error kind), then the answer as a
table. A failed answer ends with one line on stderr, ``failed: <cause> — <what happened>``,
and exit code 4 (as a model error); its text is never the model's raw output (at most a short,
labelled excerpt). A truncated answer (a budget ended the run) shows its value with a note
saying so and exits 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import unicodedata
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from recordagent.cli.render import output_console, shown, store_file
from recordagent.errors import ModelError, UserError
from recordagent.evaluation.failures import (
    answer_failure,
    failure_line,
    shown_text,
    truncation_line,
)
from recordagent.evaluation.study import study_model
from recordagent.llm.client import ChatModel
from recordagent.questions.answers import AnswerSpec
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.records.scope import PatientScope
from recordagent.runners import (
    RUNNER_NAMES,
    Answer,
    Citation,
    Runner,
    TraceEvent,
    build_runner,
    stream_run,
)
from recordagent.settings import Settings

__all__ = ["FAILED_ANSWER_EXIT_CODE", "ask", "render_answer", "step_line"]

MOCK_BANNER = (
    "MOCK MODEL: a scripted dry run walks the runner's control flow; "
    "no language model reads the record and the answer below is NOT a model's answer."
)
_KNOWN_SHOWN = 5
FAILED_ANSWER_EXIT_CODE = ModelError.exit_code
"""Exit code of ``ask`` when the answer failed: the model failed it, as a ModelError exits."""


class AnswerKind(Enum):
    """The answer types a question asked here may expect."""

    date = "date"
    number = "number"
    count = "count"
    boolean = "boolean"
    text = "text"


class ModelChoice(StrEnum):
    """Which model answers: the dry-run mock, or the model the settings describe."""

    mock = "mock"
    settings = "settings"


def ask(
    ctx: typer.Context,
    patient: Annotated[str, typer.Argument(help="Patient id in the store.")],
    question: Annotated[str, typer.Argument(help="The question, in words.")],
    db: Annotated[Path, typer.Option(help="DuckDB store file (recordagent load).")],
    runner: Annotated[str, typer.Option(help=f"Runner: {', '.join(RUNNER_NAMES)}.")] = "agent",
    answer_type: Annotated[
        AnswerKind, typer.Option(help="What kind of answer is expected.")
    ] = AnswerKind.text,
    as_of: Annotated[
        str | None,
        typer.Option(help="Answer as the record stood on this day (YYYY-MM-DD)."),
    ] = None,
    model: Annotated[
        ModelChoice,
        typer.Option(
            help="'settings': the configured model (the dry-run mock, with a banner, when none "
            "is configured); 'mock': the dry-run mock (no LLM)."
        ),
    ] = ModelChoice.settings,
) -> None:
    """Answer QUESTION about PATIENT with one runner, showing each step as it happens.

    Exits 4 when the answer failed (one line on stderr says why), as a model error does.
    """
    settings: Settings = ctx.obj
    day = _parse_day(as_of)
    check_text("the question", question, multiline=True)
    chosen_runner = build_runner(runner, settings)  # unknown names fail before any work
    console = output_console()
    with connect(store_file(db), settings=settings.store, read_only=True) as store:
        require_patient(store, patient)
        chat = study_model(model.value, settings)
        if chat.is_mock:
            console.print(Panel(MOCK_BANNER, style="bold yellow", title="dry run"))
        item = EvalItem.ad_hoc(patient, question, AnswerSpec(type=answer_type.value), as_of=day)
        scope = store.scope(patient)
        console.print(
            f"[bold]{chosen_runner.name}[/] on [bold]{escape(patient)}[/] with model "
            f"{escape(chat.name)}",
            highlight=False,
        )
        answer = asyncio.run(_stream(chosen_runner, item, scope, chat, console))
    console.print(render_answer(answer))
    note = truncation_line(answer)
    if note is not None:
        console.print(note, style="yellow", highlight=False, markup=False)
    if answer.mock:
        console.print(f"[bold yellow]{MOCK_BANNER}[/]", highlight=False)
    failed = failure_line(answer)
    if failed is not None:
        Console(stderr=True).print(
            failed, style="bold red", highlight=False, markup=False, soft_wrap=True
        )
        raise typer.Exit(FAILED_ANSWER_EXIT_CODE)


def _parse_day(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of must be a day as YYYY-MM-DD, not '{text}'") from None


def require_patient(store: RecordStore, patient: str) -> None:
    """Refuse a patient the store does not hold, naming the patients it does (a few).

    Raises:
        UserError: The id is not usable text (:func:`check_text`), or no such patient.
    """
    check_text("the patient id", patient)
    if store.has_patient(patient):
        return
    known = store.patient_ids()
    if not known:
        raise UserError(
            f"no patient '{shown(patient)}': the store {store.location} holds no patients"
        )
    listed = ", ".join(known[:_KNOWN_SHOWN]) + (", ..." if len(known) > _KNOWN_SHOWN else "")
    raise UserError(f"no patient '{shown(patient)}' in the store ({len(known)} patients: {listed})")


def check_text(what: str, text: str, *, multiline: bool = False) -> None:
    """Refuse text that no record can match: empty, control characters, not encodable as UTF-8.

    Args:
        what: The argument, as the message names it ("the patient id").
        text: Its value.
        multiline: Line breaks and tabs are allowed (a question may have several lines).

    Raises:
        UserError: Naming ``what``.
    """
    if not text.strip():
        raise UserError(f"{what} is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 on the command line
        raise UserError(f"{what} '{shown(text)}' is not valid UTF-8 text") from None
    allowed = "\t\n\r" if multiline else ""
    # Surrounding white space is no part of an id (lookups strip it), so only the inside counts.
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in text.strip()):
        raise UserError(f"{what} '{shown(text)}' contains a control character")


async def _stream(
    runner: Runner, item: EvalItem, scope: PatientScope, model: ChatModel, console: Console
) -> Answer:
    answer: Answer | None = None
    async for event in stream_run(runner, item, scope, model):
        if isinstance(event, Answer):
            answer = event
        else:
            console.print(f"  [dim]{event.seq:>3}[/] {escape(step_line(event))}", highlight=False)
    assert answer is not None  # stream_run always ends with the answer
    return answer


def step_line(event: TraceEvent) -> str:
    """One progress line for a step: its summary, and for a failed step its error kind."""
    if event.kind == "error":
        line = f"error {event.name}: {event.error or 'unclassified'}"
        return f"{line} ({event.summary})" if event.summary else line
    if event.kind == "budget":
        return f"budget {event.name}: {event.summary or 'spent'}"
    line = event.summary or f"{event.kind} {event.name}"
    if event.error and event.error not in line:
        line += f" (error: {event.error})"
    return line


def render_answer(answer: Answer) -> Table:
    """The answer: status, value, text, citations, tokens and cost.

    The text is never a raw dump of the model's output (:func:`shown_text`); model output
    and record ids are shown as text, never read as markup.
    """
    table = Table(title=escape(f"Answer ({answer.runner}, {answer.model})"), show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    usage = answer.usage
    value = "-" if answer.value is None else json.dumps(answer.value, default=str)
    citations = ", ".join(_citation(c) for c in answer.citations) or "-"
    tokens = f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion"
    if not usage.tokens_reported:
        tokens += " (counted locally)"
    cost = "-" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
    cause = answer_failure(answer)
    table.add_row("status", answer.status if cause is None else f"{answer.status} ({cause})")
    table.add_row("value", escape(value))
    table.add_row("text", escape(shown_text(answer) or "-"))
    table.add_row("citations", escape(citations))
    table.add_row("tokens", tokens)
    table.add_row("cost", cost)
    table.add_row(
        "calls",
        f"{usage.model_calls} model, {usage.tool_calls} tool; {usage.wall_s:.2f} s",
    )
    if answer.mock:
        table.add_row("mock", "yes: scripted, not a model's answer")
    return table


def _citation(citation: Citation) -> str:
    return f"{citation.kind}:{citation.id}"
