"""``recordagent synth``: write a synthetic myeloma cohort (bundle plus gold facts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recordagent.cli.render import load_progress, output_console
from recordagent.sources.synthetic import SynthReport, generate_cohort, load_preset


def synth(
    out: Annotated[Path, typer.Option(help="Output folder (new or empty).")],
    preset: Annotated[
        str, typer.Option("--preset", help="Cohort size: tiny, small, reference, or a YAML file.")
    ] = "tiny",
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed; the same seed gives the same bytes.")
    ] = 0,
) -> None:
    """Generate a synthetic multiple-myeloma cohort as a record bundle with gold/ tables."""
    console = output_console()
    cohort = load_preset(preset)
    with load_progress(console) as progress:
        report = generate_cohort(cohort, seed, out, progress=progress)
    console.print(render_synth_report(report))


def render_synth_report(report: SynthReport) -> Table:
    """What a generation wrote, as a two-column table."""
    table = Table(
        title=f"synthetic cohort '{report.preset}' (seed {report.seed})", show_header=False
    )
    table.add_column(style="bold")
    table.add_column()
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row(
        "documents per patient",
        "deciles " + " ".join(str(d) for d in report.documents_per_patient_deciles),
    )
    table.add_row("seconds", f"{report.seconds:.1f}")
    table.add_row("written to", report.out_dir)
    return table
