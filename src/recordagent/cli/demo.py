"""``recordagent demo``: generate the tiny synthetic cohort, load it, show what the store holds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console

from recordagent.cli.render import load_progress, render_load_report, render_summary
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.summary import patient_summary
from recordagent.settings import Settings
from recordagent.sources.synthetic import generate_cohort, load_preset


def demo(ctx: typer.Context) -> None:
    """Generate the tiny synthetic cohort (seed 0), load it into memory, summarise it."""
    settings: Settings = ctx.obj
    console = Console()
    with tempfile.TemporaryDirectory(prefix="recordagent-demo-") as folder:
        bundle = Path(folder) / "synthetic-tiny"
        with load_progress(console) as progress:
            generate_cohort(load_preset("tiny"), 0, bundle, progress=progress)
        with connect(settings=settings.store) as store:
            with load_progress(console) as progress:
                report = load_bundle(
                    store, bundle, settings=settings, source="synthetic-tiny", progress=progress
                )
            console.print(render_load_report(report))
            console.print(render_summary(patient_summary(store), "patients (synthetic, seed 0)"))
            scope = store.scope(store.patient_ids()[0])
            events = scope.events(kinds=["therapy"])
            console.print(
                f"\n[bold]{scope.patient_id}[/] therapy lines seen through its PatientScope: "
                + "; ".join(f"{e.start_time:%Y-%m} {e.label} ({e.detail})" for e in events)
            )
