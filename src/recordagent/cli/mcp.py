"""``recordagent mcp``: serve one patient's record to MCP clients, over stdio or HTTP.

Over stdio, standard output is the protocol's: everything this command says goes to stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recordagent.cli.ask import require_patient
from recordagent.cli.render import store_file
from recordagent.errors import UserError
from recordagent.paths import read_text
from recordagent.records.db import connect
from recordagent.settings import Settings

__all__ = ["TOKEN_ENV", "mcp_command"]

TOKEN_ENV = "RECORDAGENT_MCP_TOKEN"
"""The environment variable a bearer token may come from (never from a command-line value)."""


def mcp_command(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="DuckDB store file (recordagent load); read-only.")],
    patient: Annotated[str, typer.Option(help="The one patient this server serves.")],
    audit: Annotated[
        Path,
        typer.Option(
            help="Audit log file (JSON lines, appended): every request with its tool, "
            "argument field paths, result size and row ids; never record text."
        ),
    ],
    http: Annotated[
        str | None,
        typer.Option(
            help="Serve streamable HTTP at PORT or HOST:PORT (PORT alone: 127.0.0.1) instead "
            "of stdio; the endpoint is /mcp. A non-loopback HOST needs a bearer token.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help=f"File holding the bearer token HTTP clients must send (or set {TOKEN_ENV}). "
            "Required off loopback; checked on loopback when given.",
        ),
    ] = None,
    templates: Annotated[
        list[Path] | None,
        typer.Option(
            help="SQL-derived template folder whose templates that apply to the patient become "
            "prompts (repeatable), besides the packaged ones.",
        ),
    ] = None,
    packaged_templates: Annotated[
        bool, typer.Option(help="Offer the packaged templates (general, mimic_iv) as prompts.")
    ] = True,
) -> None:
    """Serve PATIENT's record over the Model Context Protocol: tools, resources, prompts.

    The server is read-only and holds one patient, fixed here: no request can reach another.
    It stops when the client closes stdio, or on SIGINT or SIGTERM (exit 0).
    """
    # The SDK and its web server (half a second to import) load for this command only.
    from recordagent.mcp import parse_endpoint, serve_patient
    from recordagent.mcp.service import packaged_template_folders

    settings: Settings = ctx.obj
    console = Console(stderr=True)
    endpoint = parse_endpoint(http) if http is not None else None
    if endpoint is None and token_file is not None:
        raise UserError("--token-file applies to --http only; stdio has no network to guard")
    token = _token(token_file) if endpoint is not None else None
    folders = [*(packaged_template_folders() if packaged_templates else []), *(templates or [])]
    path = store_file(db)
    with connect(path, settings=settings.store, read_only=True) as store:
        require_patient(store, patient)  # one clear line, with ids it does hold, before serving
    stopped_by = serve_patient(
        path,
        patient,
        settings,
        audit_path=audit,
        endpoint=endpoint,
        token=token,
        template_folders=folders,
        on_ready=lambda line: console.print(
            f"recordagent mcp: patient {patient}: {line}; audit log {audit}",
            markup=False,  # ids and paths are text, never rich markup
            highlight=False,
            soft_wrap=True,
        ),
    )
    console.print(f"recordagent mcp: stopped ({stopped_by})", markup=False, highlight=False)


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        return read_text(token_file, "token file")
    return os.environ.get(TOKEN_ENV) or None
