"""``recordagent chat``: an interactive session on one patient's record."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from recordagent.cli.ask import ModelChoice, require_patient
from recordagent.cli.render import store_file
from recordagent.evaluation.study import study_model
from recordagent.llm.client import ChatModel, close_model
from recordagent.records.db import connect
from recordagent.runners import RUNNER_NAMES
from recordagent.settings import Settings

__all__ = ["chat"]


def chat(
    ctx: typer.Context,
    patient: Annotated[str, typer.Argument(help="Patient id in the store.")],
    db: Annotated[Path, typer.Option(help="DuckDB store file (recordagent load).")],
    runner: Annotated[str, typer.Option(help=f"Runner: {', '.join(RUNNER_NAMES)}.")] = "agent",
    model: Annotated[
        ModelChoice,
        typer.Option(
            help="'settings': the configured model (the dry-run mock, with a banner, when none "
            "is configured); 'mock': the dry-run mock."
        ),
    ] = ModelChoice.settings,
) -> None:
    """Ask questions about PATIENT in a terminal session, watching the agent's steps."""
    # The session's modules (and prompt_toolkit) load for this command only, not for every one.
    from recordagent.chat.loop import open_session_banner, run_loop
    from recordagent.chat.render import render_header
    from recordagent.chat.session import ChatSession

    settings: Settings = ctx.obj
    console = Console()
    with connect(store_file(db), settings=settings.store, read_only=True) as store:
        require_patient(store, patient)
        chat_model = study_model(model.value, settings)
        session = ChatSession(store.scope(patient), settings, chat_model, runner=runner)
        console.print(render_header(session.scope))
        open_session_banner(session, console)
        code = asyncio.run(_run(run_loop(session, console), chat_model))
    raise typer.Exit(code)


async def _run(loop: Coroutine[Any, Any, int], model: ChatModel) -> int:
    try:
        return await loop
    finally:
        await close_model(model)
