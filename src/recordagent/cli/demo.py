"""``recordagent demo``: load the packaged example bundle and show what the store holds."""

from __future__ import annotations

import typer
from rich.console import Console

from recordagent.cli.render import render_load_report, render_summary
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.summary import patient_summary
from recordagent.resources import example_bundle_path
from recordagent.settings import Settings


def demo(ctx: typer.Context) -> None:
    """Load the example bundle into an in-memory store and print a per-patient summary."""
    settings: Settings = ctx.obj
    console = Console()
    with connect(settings=settings.store) as store:
        report = load_bundle(store, example_bundle_path(), settings=settings, source="example")
        console.print(render_load_report(report))
        console.print(render_summary(patient_summary(store), "patients in the example store"))
        scope = store.scope(store.patient_ids()[0])
        events = scope.events(kinds=["therapy"])
        console.print(
            f"\n[bold]{scope.patient_id}[/] therapy lines seen through its PatientScope: "
            + "; ".join(f"{e.start_time:%Y-%m} {e.label}" for e in events)
        )
