"""``recordagent questions``: list and validate question templates, sample items over a cohort."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recordagent.questions.items import EvalItem
from recordagent.questions.templates import TemplateSet, load_templates
from recordagent.resources import question_templates_path

__all__ = ["app"]

app = typer.Typer(
    help="Question templates: list, validate, and sample study items over a synthetic cohort.",
    no_args_is_help=True,
)

_FOLDER_HELP = "Template folder (*.yaml, searched recursively); default: the packaged templates."


def _default_folder(source: str | None = None) -> Path:
    root = question_templates_path()
    return root / source if source and (root / source).is_dir() else root


@app.command("list")
def list_templates(
    folder: Annotated[Path | None, typer.Argument(help=_FOLDER_HELP)] = None,
) -> None:
    """List the templates: id, level, answer type and question."""
    template_set = load_templates(folder or _default_folder())
    table = Table(
        title=f"{len(template_set.templates)} question templates (version {template_set.version})",
        header_style="bold",
    )
    table.add_column("id", no_wrap=True)
    table.add_column("level", justify="right")
    table.add_column("answer", no_wrap=True)
    table.add_column("question")
    for t in sorted(template_set.templates, key=lambda t: t.level):
        answer = t.answer.type + (f" ({t.answer.unit})" if t.answer.unit else "")
        table.add_row(t.id, str(t.level), answer, t.question)
    Console().print(table)


@app.command("validate")
def validate(
    folder: Annotated[Path | None, typer.Argument(help=_FOLDER_HELP)] = None,
) -> None:
    """Validate the templates; exits 2 with every problem (file, template id, field) if any."""
    path = folder or _default_folder()
    template_set = load_templates(path)
    levels = Counter(t.level for t in template_set.templates)
    per_level = ", ".join(f"level {level}: {levels[level]}" for level in sorted(levels))
    Console().print(
        f"{len(template_set.templates)} templates valid in {path} "
        f"(version {template_set.version}; {per_level})",
        highlight=False,
    )


@app.command("sample")
def sample(
    cohort: Annotated[
        Path, typer.Option(help="A synthetic cohort folder (recordagent synth): bundle + gold/.")
    ],
    out: Annotated[Path, typer.Option(help="Items file to write (JSONL, one EvalItem a line).")],
    n: Annotated[int, typer.Option("--n", help="Items to draw; 0 for every item.")] = 469,
    seed: Annotated[int, typer.Option(help="Sampling seed; the same seed draws the same set.")] = 0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Also write the gold labels here (.csv, .jsonl or .parquet)."),
    ] = None,
    templates: Annotated[
        Path | None,
        typer.Option(help="Template folder; default: the packaged myeloma templates."),
    ] = None,
) -> None:
    """Instantiate the templates over COHORT, draw a balanced set and write items (and labels)."""
    from recordagent.evaluation.gold_labels import instance_labels
    from recordagent.questions.gold_data import GoldData
    from recordagent.questions.sampling import instances
    from recordagent.questions.sampling import sample as draw

    template_set = load_templates(templates or _default_folder("myeloma"))
    every = instances(template_set, GoldData.load(cohort / "gold", cohort))
    chosen_items = draw([i.item for i in every], n=n if n > 0 else len(every), seed=seed)
    chosen_ids = {item.id for item in chosen_items}
    chosen = [i for i in every if i.item.id in chosen_ids]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for instance in chosen:
            handle.write(json.dumps(instance.item.model_dump(mode="json")) + "\n")
    if labels is not None:
        from recordagent.evaluation.labels import write_labels

        write_labels(instance_labels(chosen), labels)
    Console().print(_sample_table(template_set, [i.item for i in every], chosen_items, out, labels))


def _sample_table(
    template_set: TemplateSet,
    every: Sequence[EvalItem],
    chosen: Sequence[EvalItem],
    out: Path,
    labels: Path | None,
) -> Table:
    """Items drawn per level, with the spread over templates."""
    table = Table(
        title=f"{len(chosen)} of {len(every)} items (templates version {template_set.version})",
        header_style="bold",
    )
    for column in ("level", "templates", "available", "drawn", "per template"):
        table.add_column(column, justify="right")
    for level in sorted({t.level for t in template_set.templates}):
        ids = [t.id for t in template_set.templates if t.level == level]
        available = Counter(i.template_id for i in every if i.level == level)
        drawn = Counter(i.template_id for i in chosen if i.level == level)
        counts = [drawn.get(t, 0) for t in ids if available.get(t, 0)]
        spread = f"{min(counts)}-{max(counts)}" if counts else "-"
        table.add_row(
            str(level),
            str(len(ids)),
            str(sum(available.values())),
            str(sum(drawn.values())),
            spread,
        )
    table.caption = f"items: {out}" + (f"; labels: {labels}" if labels else "")
    return table
