"""Rich renderings of the session: header, streamed steps, answers, traces, lab series."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from recordagent.chat.session import Turn
from recordagent.evaluation.failures import failure_line, shown_text, truncation_line
from recordagent.records.overview import (
    MILESTONE_KINDS,
    OverviewEvent,
    RecordOverview,
    kind_count,
    record_overview,
)
from recordagent.records.scope import PatientScope
from recordagent.runners import TraceEvent
from recordagent.tools.labs import LabGroup, QueryLabsResult

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
HEADER_ROWS = {"diagnoses": 6, "therapy": 6, "milestones": 3}
"""At most this many entries per block of the header; each block says how many it left out."""
HEADER_DOCUMENT_TYPES = 3
"""Document types named in the header (the most frequent); the rest are counted."""
HEADER_FREQUENT = 3
"""Frequent diagnoses named besides the most recent ones, when some were left out."""
_SPARKS = "▁▂▃▄▅▆▇█"
_STEP_KINDS = {"context", "retrieval", "plan", "tool_call", "reflect", "budget", "error"}
_STATUS_STYLE = {
    "answered": "bold green",
    "insufficient_evidence": "bold yellow",
    "truncated": "bold yellow",
    "failed": "bold red",
}


def render_header(scope: PatientScope) -> RenderableType:
    """Demographics, record span, what the record holds, and its diagnoses and milestones.

    Built from :func:`record_overview`, so it describes whatever the source loaded: the kinds
    of events with their counts, the most recent distinct diagnoses, therapy lines and
    milestones where the record has them. A header, not a report: each block is capped and
    says how much it left out.
    """
    patient = scope.patient()
    # Enough diagnoses that the most frequent ones not already listed can still be named.
    overview = record_overview(scope, top=max(HEADER_ROWS.values()) + HEADER_FREQUENT)
    facts = [patient.sex or "sex unknown"]
    if patient.birth_date:
        facts.append(f"born {patient.birth_date:%Y-%m-%d}")
    if patient.death_date:
        facts.append(f"died {patient.death_date:%Y-%m-%d}")
    span_text = (
        "empty"
        if overview.first is None or overview.last is None
        else f"{overview.first:%Y-%m-%d} … {overview.last:%Y-%m-%d}"
    )
    title = Text.assemble(("Patient ", "bold"), (patient.patient_id, "bold cyan"))
    lines: list[RenderableType] = [
        title,
        Text(f"{', '.join(facts)}; record {span_text}"),
        _contents_line(overview),
    ]
    if overview.is_empty:
        lines.append(Text("This record is empty: there is nothing to ask about.", style="yellow"))
        return Group(*lines)
    if overview.event_kinds:
        lines.append(_kinds_line(overview))
    if overview.document_types:
        lines.append(_documents_line(overview))
    if overview.recent_diagnoses:
        lines.extend(_diagnoses_block(overview))
    lines.extend(
        _latest_block(
            "Therapy lines:",
            overview.therapy_lines,
            overview.therapy_count,
            "therapy line",
            "therapy",
        )
    )
    lines.extend(
        _latest_block(
            "Milestones:",
            overview.milestones,
            overview.milestone_count,
            "milestone",
            " ".join(MILESTONE_KINDS),
        )
    )
    return Group(*lines)


def _latest_block(
    title: str, events: Sequence[OverviewEvent], total: int, what: str, kinds: str
) -> list[Text]:
    """The latest events under ``title`` (the kind shown for milestones), and how many more."""
    if not events:
        return []
    shown = events[-HEADER_ROWS["therapy" if kinds == "therapy" else "milestones"] :]
    out = [Text(title, style="bold"), *_event_rows(shown, with_kind=kinds != "therapy")]
    if total > len(shown):
        out.append(_more(total - len(shown), f"earlier {what}", kinds))
    return out


def _contents_line(overview: RecordOverview) -> Text:
    """Record contents: documents, lab values and events in total."""
    labs = overview.labs
    parts = [
        _plural(overview.document_count, "document"),
        _plural(labs.value_count, "lab value")
        + (f" of {_plural(labs.analyte_count, 'analyte')}" if labs.value_count else ""),
        _plural(overview.event_count, "event"),
    ]
    return Text.assemble(("Record contents: ", "bold"), ", ".join(parts))


def _kinds_line(overview: RecordOverview) -> Text:
    listed = ", ".join(kind_count(k.kind, k.count) for k in overview.event_kinds)
    return Text.assemble(("Events by kind: ", "bold"), listed)


def _documents_line(overview: RecordOverview) -> Text:
    types = overview.document_types
    listed = ", ".join(f"{d.type} ×{d.count:,}" for d in types[:HEADER_DOCUMENT_TYPES])
    if len(types) > HEADER_DOCUMENT_TYPES:
        rest = len(types) - HEADER_DOCUMENT_TYPES
        listed += f" (+{rest} more type{'' if rest == 1 else 's'})"
    return Text.assemble(("Documents: ", "bold"), listed)


def _short(label: str, width: int = 32) -> str:
    return label if len(label) <= width else label[: width - 1].rstrip() + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _diagnoses_block(overview: RecordOverview) -> list[RenderableType]:
    """The latest distinct diagnoses; the most frequent others and a count of the rest."""
    shown = overview.recent_diagnoses[: HEADER_ROWS["diagnoses"]]
    rows = [
        (f"{d.last:%Y-%m-%d}", d.label + (f" ×{d.count}" if d.count > 1 else "")) for d in shown
    ]
    block: list[RenderableType] = [Text("Diagnoses (most recent):", style="bold"), *_rows(rows)]
    rest = overview.diagnosis_count - len(shown)
    if rest > 0:
        listed = {d.label for d in shown}
        # Long-standing conditions restated at many visits can sit behind newer ones.
        frequent = [
            f"{_short(d.label)} ×{d.count}"
            for d in overview.frequent_diagnoses
            if d.count > 1 and d.label not in listed
        ][:HEADER_FREQUENT]
        more = "diagnosis" if rest == 1 else "diagnoses"
        block.append(Text(f"  … and {rest} more {more} (/timeline diagnosis)", style="dim"))
        if frequent:
            block.append(
                Text(
                    "  most frequent: " + ", ".join(frequent),
                    style="dim",
                    no_wrap=True,
                    overflow="ellipsis",
                )
            )
    return block


def _event_rows(events: Sequence[OverviewEvent], *, with_kind: bool) -> list[Text]:
    kind_width = max((len(e.kind) for e in events), default=0)
    rows = []
    for event in events:
        when = f"{event.start:%Y-%m-%d}"
        if event.end is not None:
            when += f" → {event.end:%Y-%m-%d}"
        elif event.kind == "therapy":
            when += " → ongoing"
        detail = f" ({event.detail})" if event.detail else ""
        label = f"{event.label}{detail}"
        rows.append((when, f"{event.kind.ljust(kind_width)}  {label}" if with_kind else label))
    return _rows(rows)


def _rows(rows: Sequence[tuple[str, str]]) -> list[Text]:
    """Indented rows: a dim date column, then the label cut to one line (/timeline has it all)."""
    width = max((len(when) for when, _ in rows), default=0)
    return [
        Text.assemble(
            "  ", (when.ljust(width), "dim"), "  ", label, no_wrap=True, overflow="ellipsis"
        )
        for when, label in rows
    ]


def _more(count: int, what: str, kinds: str) -> Text:
    return Text(f"  … and {_plural(count, what)} (/timeline {kinds})", style="dim")


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
    """The answer: status, value, text, numbered citations and what it cost.

    A failed answer shows one line with its cause and what happened instead of a text (never
    the model's raw output: at most a short, labelled excerpt of it); a truncated one a note
    that a budget ended the run.
    """
    answer = turn.answer
    status = answer.status.replace("_", " ")
    head = Text.assemble(("Answer ", "bold"), (f"[{status}]", _STATUS_STYLE[answer.status]))
    if answer.value is not None:
        head.append(f"  value: {json.dumps(answer.value, default=str)}")
    parts: list[RenderableType] = [head]
    failed = failure_line(answer)
    if failed is not None:
        parts.append(Text(failed, style="bold red"))
    note = truncation_line(answer)
    if note is not None:
        parts.append(Text(note, style="yellow"))
    text = shown_text(answer)
    if text or failed is None:
        parts.append(Text(text or "-", style="dim" if failed is not None else ""))
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
    """Each group of a lab result: its latest values as a table and a sparkline of all."""
    parts: list[RenderableType] = []
    if result.note:
        parts.append(Text(result.note, style="yellow"))
    if not result.groups:
        parts.append(Text(f"{result.query}: no values", style="dim"))
    for group in result.groups:
        parts.extend(_render_group(group, width, max_rows))
    return Group(*parts)


def _render_group(group: LabGroup, width: int, max_rows: int) -> list[RenderableType]:
    table = Table(
        title=f"{group.title()}: {group.total} value(s)",
        box=None,
        header_style="bold underline",
        pad_edge=False,
    )
    for name in ("date", "value", "flag", "reported", "lab"):
        table.add_column(name, no_wrap=True, justify="right" if name == "value" else "left")
    for p in group.points[-max_rows:]:
        value = p.text if p.value is None else f"{p.value:g}"
        table.add_row(f"{p.time:%Y-%m-%d}", value or "", p.flag or "", p.reported, p.lab_id)
    numeric = [p for p in group.points if p.value is not None]
    parts: list[RenderableType] = [table]
    if len(group.points) > max_rows:
        parts.append(
            Text(f"… {len(group.points) - max_rows} earlier value(s) not listed", style="dim")
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
    if group.converted:
        listed = ", ".join(f"{n} from {u}" for u, n in group.converted.items())
        parts.append(Text(f"converted to {group.unit}: {listed}", style="dim"))
    return parts
