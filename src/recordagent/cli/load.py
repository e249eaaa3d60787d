"""``recordagent load``: load a record bundle, or another kind of source, into a store file.

The kinds, their help and their loaders come from :data:`recordagent.sources.registry.SOURCES`.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from recordagent.cli.render import load_progress, output_console, render_load_report
from recordagent.errors import UserError, validation_problems
from recordagent.paths import same_file
from recordagent.records.load_report import LoadReport
from recordagent.records.store_file import LoadInterrupted, open_for_load
from recordagent.settings import LoadSettings, Settings
from recordagent.sources.registry import (
    DEFAULT_KIND,
    SOURCES,
    SourceKind,
    load_source,
    source_kind,
)


def kinds_help() -> str:
    """Every kind of source, what it is and what PATH it takes: one paragraph each, for help."""
    kinds = "\n\n".join(
        f"'{k.name} PATH': {k.description} ({k.expects})"
        + ("; a PATH alone is a bundle too" if k is DEFAULT_KIND else "")
        for k in SOURCES
    )
    return f"Kinds of source (KIND PATH):\n\n{kinds}"


def load(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(
            help="A bundle folder, or a KIND (listed above) followed by its PATH.",
            metavar="KIND|PATH",
            show_default=False,
        ),
    ],
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The folder or file, when a KIND is given.", metavar="PATH", show_default=False
        ),
    ] = None,
    *,
    db: Annotated[
        Path,
        typer.Option(
            help="DuckDB store file; created if missing, and only once the load has succeeded."
        ),
    ],
    source: Annotated[
        str | None, typer.Option(help="Source name to register; the folder name by default.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a source already loaded under this name.")
    ] = False,
    convert_timezone: Annotated[
        str | None,
        typer.Option(
            "--convert-timezone",
            metavar="ZONE",
            help="Bundles: convert timestamps with a UTC offset or Z to this IANA zone's local "
            "time (e.g. Europe/Berlin); times without an offset are taken as its local time. "
            "Without it, an offset is refused.",
            show_default=False,
        ),
    ] = None,
    reject_file: Annotated[
        Path | None,
        typer.Option(
            "--reject-file",
            metavar="CSV",
            help="Bundles: load the valid rows and write each invalid row (and rows of a "
            "rejected patient) to this CSV file with file, row, column and reason, instead of "
            "loading nothing.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Load a record bundle, or another kind of source, into the store at --db."""
    settings: Settings = ctx.obj
    kind, folder = _kind_and_path(what, path)
    settings = _with_zone(settings, convert_timezone)
    if reject_file is not None:
        _refuse_store_file(reject_file, db)
    console = output_console()
    report: LoadReport | None = None
    try:
        # A first load builds the store under a temporary name and moves it into place only
        # once the load has committed (see records/store_file.py).
        with (
            open_for_load(db, settings=settings.store) as store,
            load_progress(console) as progress,
        ):
            report = load_source(
                kind,
                store,
                folder,
                settings=settings,
                source=source,
                replace=replace,
                progress=progress,
                reject_path=reject_file,
            )
        console.print(render_load_report(report))
        extra = render_load_options(report)
        if extra is not None:
            console.print(extra)
        elif reject_file is not None and report.status == "unchanged":
            console.print(f"no reject file written: {escape(report.source)} is loaded already")
    except BaseException as exc:
        # A reject file is moved into place only with a load that landed (records/rejects.py):
        # one at the path now is an earlier load's, or another load's.
        if not isinstance(exc, KeyboardInterrupt):
            noted = _with_earlier_reject_file(exc, reject_file, report)
            if noted is exc:
                raise
            raise noted from None
        if not isinstance(exc, LoadInterrupted):  # before the store was opened, or after
            exc = LoadInterrupted(db, changed=report is not None, created=not db.exists())
        raise UserError(str(exc), exit_code=128 + signal.SIGINT) from None


# The help lists every kind the registry has, so it is completed here rather than written.
load.__doc__ = (
    f"{load.__doc__}\n\nA load is all or nothing: a failed one leaves the store as it was. A "
    "bundle load may instead leave invalid rows out, into --reject-file.\n\n" + kinds_help()
)


def render_load_options(report: LoadReport) -> Table | None:
    """What the load's options did: timestamps converted, rows rejected; None if neither."""
    if report.timezone is None and report.reject_file is None:
        return None
    table = Table(show_header=False, title="load options")
    table.add_column(style="bold")
    table.add_column()
    if report.timezone is not None:
        table.add_row(
            "converted",
            f"{report.converted_timestamps:,} timestamp(s) with a UTC offset to "
            f"{escape(report.timezone)} local time",
        )
    if report.reject_file is not None:
        rejected = sum(report.rejected.values())
        per_table = ", ".join(f"{t} {n:,}" for t, n in report.rejected.items() if n)
        table.add_row(
            "rejected",
            f"{rejected:,} row(s)" + (f" ({per_table})" if per_table else ""),
        )
        table.add_row("reject file", escape(report.reject_file))
    return table


def _with_zone(settings: Settings, zone: str | None) -> Settings:
    """``settings`` with ``--convert-timezone`` in ``load``, checked like any setting."""
    if zone is None:
        return settings
    try:
        load = LoadSettings.model_validate(settings.load.model_dump() | {"convert_timezone": zone})
    except ValidationError as exc:
        problem = validation_problems(exc, located=False)[0]
        raise UserError(f"--convert-timezone: {problem}") from None
    return settings.model_copy(update={"load": load})


def _refuse_store_file(reject_file: Path, db: Path) -> None:
    """Refuse a --reject-file that is the store file or its log, by any name or link."""
    for store_file, what in ((db, "the store file"), (Path(f"{db}.wal"), "the store's log")):
        if same_file(reject_file, store_file):
            raise UserError(f"--reject-file {reject_file} is {what}; name another file")


def _with_earlier_reject_file(
    exc: BaseException, reject_file: Path | None, report: LoadReport | None
) -> BaseException:
    """``exc``, a failed load's error, saying that a reject file there is not this load's."""
    if not isinstance(exc, UserError) or reject_file is None or report is not None:
        return exc
    try:
        earlier = reject_file.is_file()
    except (OSError, ValueError):
        earlier = False
    if not earlier:
        return exc
    note = f"the reject file {reject_file} from an earlier load was left as it was"
    return UserError(f"{exc}\n{note}", exit_code=exc.exit_code)


def _kind_and_path(what: str, path: Path | None) -> tuple[SourceKind, Path]:
    """The kind of source and its path: ``KIND PATH``, or a lone PATH of the default kind."""
    if path is None:
        return DEFAULT_KIND, Path(what)
    kind = source_kind(what)
    if kind is None:
        raise UserError(
            f"unknown source kind '{what}'; use one of {', '.join(k.name for k in SOURCES)} "
            "before the path, or give a bundle folder alone"
        )
    return kind, path
