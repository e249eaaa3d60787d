"""Rich renderings of the session: header, streamed steps, answers, traces, lab series."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from recordagent.chat.session import Turn
from recordagent.records.scope import PatientScope
from recordagent.runners import TraceEvent
from recordagent.tools.labs import QueryLabsResult

__all__ = [
    "render_answer",
    "render_header",
    "render_labs",
    "render_step",
    "render_trace",
    "sparkline",
]

LAB_ROWS = 20
"""At most this many values listed (the latest); the sparkline shows them all."""
_SPARKS = "▁▂▃▄▅▆▇█"
_STEP_KINDS = {"context", "retrieval", "plan", "tool_call", "reflect", "budget", "error"}
_STATUS_STYLE = {
    "answered": "bold green",
    "insufficient_evidence": "bold yellow",
    "truncated": "bold yellow",
    "failed": "bold red",
}


def render_header(scope: PatientScope) -> RenderableType:
    """Demographics, record span, counts, and the therapy lines from the timeline."""
    patient = scope.patient()
    counts = scope.counts()
    facts = [patient.sex or "sex unknown"]
    if patient.birth_date:
        facts.append(f"born {patient.birth_date:%Y-%m-%d}")
    if patient.death_date:
        facts.append(f"died {patient.death_date:%Y-%m-%d}")
    span = scope.fetch(
        "SELECT min(t), max(t) FROM (SELECT date AS t FROM documents UNION ALL "
        "SELECT time FROM labs UNION ALL SELECT start_time FROM events)"
    )[0]
    span_text = "empty" if span[0] is None else f"{span[0]:%Y-%m-%d} … {span[1]:%Y-%m-%d}"
    title = Text.assemble(("Patient ", "bold"), (patient.patient_id, "bold cyan"))
    lines: list[RenderableType] = [
        title,
        Text(f"{', '.join(facts)}; record {span_text}"),
        Text(
            f"{counts['documents']:,} documents, {counts['labs']:,} labs, "
            f"{counts['events']:,} events"
        ),
    ]
    skeleton = scope.events(kinds=["diagnosis", "therapy", "transplant", "death"])
    if skeleton:
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for event in skeleton:
            when = f"{event.start_time:%Y-%m-%d}"
            if event.end_time is not None:
                when += f" → {event.end_time:%Y-%m-%d}"
            elif event.kind == "therapy":
                when += " → ongoing"
            detail = f" ({event.detail})" if event.detail else ""
            table.add_row(event.kind, when, f"{event.label}{detail}")
        lines.append(Text("Therapy lines and milestones:", style="bold"))
        lines.append(table)
    elif counts["documents"] + counts["labs"] + counts["events"] == 0:
        lines.append(Text("This record is empty: there is nothing to ask about.", style="yellow"))
    return Group(*lines)


def render_step(event: TraceEvent) -> Text | None:
    """One compact line for a streamed step (None for steps shown only in /trace)."""
    if event.kind not in _STEP_KINDS:
        return None
    if event.kind == "error":
        return Text(f"  ! {event.name}: {event.error or event.summary}", style="red")
    label = {"tool_call": "tool", "reflect": "reflect", "plan": "plan"}.get(event.kind, event.kind)
    line = event.summary or event.name
    if event.kind == "tool_call" and event.error:
        line = f"{line}: {event.error}"
    return Text.assemble(("  · ", "dim"), (f"{label:<9} ", "cyan"), line)


def render_answer(turn: Turn) -> RenderableType:
    """The answer: status, value, text, numbered citations and what it cost."""
    answer = turn.answer
    status = answer.status.replace("_", " ")
    head = Text.assemble(("Answer ", "bold"), (f"[{status}]", _STATUS_STYLE[answer.status]))
    if answer.value is not None:
        head.append(f"  value: {json.dumps(answer.value, default=str)}")
    parts: list[RenderableType] = [head, Text(answer.text or "-")]
    if turn.sources:
        parts.append(Text("Citations:", style="bold"))
        parts.extend(Text(f"  [{s.number}] {s.label}") for s in turn.sources)
    usage = answer.usage
    parts.append(
        Text(
            f"{answer.runner} · {answer.model} · {usage.model_calls} model call(s), "
            f"{usage.tool_calls} tool call(s), {usage.total_tokens:,} tokens, "
            f"{usage.wall_s:.1f} s",
            style="dim",
        )
    )
    return Group(*parts)


def render_trace(events: Sequence[TraceEvent]) -> Table:
    """Every step of a run: kind, name, timing, tokens, arguments, rows, errors."""
    table = Table(title="trace", box=None, header_style="bold underline", pad_edge=False)
    for name in ("#", "kind", "name", "at s", "dur s", "tokens", "detail"):
        table.add_column(name, no_wrap=name != "detail")
    for e in events:
        tokens = ""
        if e.prompt_tokens is not None:
            tokens = f"{e.prompt_tokens}+{e.completion_tokens or 0}"
        elif e.result_tokens is not None:
            tokens = str(e.result_tokens)
        detail = e.error or e.summary
        if e.arguments:
            detail += f" args={json.dumps(e.arguments, default=str)}"
        if e.refs:
            shown = ", ".join(e.refs[:6]) + (" …" if len(e.refs) > 6 else "")
            detail += f" rows={shown}"
        table.add_row(
            str(e.seq), e.kind, e.name, f"{e.started_s:.2f}", f"{e.duration_s:.2f}", tokens, detail
        )
    return table


def sparkline(values: Sequence[float]) -> str:
    """The values as a one-line bar chart of block characters."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return _SPARKS[3] * len(values)
    scale = (len(_SPARKS) - 1) / (high - low)
    return "".join(_SPARKS[round((v - low) * scale)] for v in values)


def render_labs(
    result: QueryLabsResult, width: int = 60, max_rows: int = LAB_ROWS
) -> RenderableType:
    """A lab series: its latest values as a table and a sparkline of all numeric ones."""
    table = Table(
        title=f"{result.analyte} ({result.unit}): {result.total} value(s)",
        box=None,
        header_style="bold underline",
        pad_edge=False,
    )
    for name in ("date", "value", "flag", "reported", "lab"):
        table.add_column(name, no_wrap=True, justify="right" if name == "value" else "left")
    for p in result.points[-max_rows:]:
        value = p.text if p.value is None else f"{p.value:g}"
        table.add_row(f"{p.time:%Y-%m-%d}", value or "", p.flag or "", p.reported, p.lab_id)
    numeric = [p for p in result.points if p.value is not None]
    parts: list[RenderableType] = [table]
    if len(result.points) > max_rows:
        parts.append(
            Text(f"… {len(result.points) - max_rows} earlier value(s) not listed", style="dim")
        )
    if numeric:
        values = [p.value for p in numeric if p.value is not None]
        # Long series are thinned to fit the line: every n-th value, always the last.
        step = max(1, -(-len(values) // width))
        thinned = values[::step]
        if (len(values) - 1) % step:
            thinned.append(values[-1])
        parts.append(
            Text.assemble(
                (f"{numeric[0].time:%Y-%m-%d} ", "dim"),
                (sparkline(thinned), "cyan"),
                (f" {numeric[-1].time:%Y-%m-%d}", "dim"),
                f"  min {min(values):g}  max {max(values):g}  last {values[-1]:g}",
            )
        )
    if result.excluded_units:
        listed = ", ".join(f"{n} in {u}" for u, n in result.excluded_units.items())
        parts.append(Text(f"left out (unit not convertible): {listed}", style="yellow"))
    return Group(*parts)
