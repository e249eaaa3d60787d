"""The labelling workbook's pages: one self-contained HTML view per item, and the index.

Nothing is loaded from outside a page (no scripts, fonts or style sheets by URL), and every
piece of record text, question and id is escaped, so a record that contains markup shows it as
text. The pages hold no label value of anyone: they are the same for every annotator. Excerpts
are shown in date order without saying why each is there, so that the rows a reference cites
(included when the workbook was made from a labels file) are not pointed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from recordagent.evaluation.labelling_excerpts import Excerpt, ItemExcerpts
from recordagent.evaluation.labelling_values import answer_format
from recordagent.questions.items import EvalItem

__all__ = ["BLIND_NOTE", "render_index", "render_item_view", "view_name"]

BLIND_NOTE = (
    "Blind labelling: no reference value and no other annotator's label is shown here or in "
    "your sheet. When the workbook was made from reference labels, the rows a reference cites "
    "are among the excerpts, unmarked; its value is never shown. Label from the record alone."
)

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; color: #1d2330;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { padding: 18px 28px 48px; max-width: 1100px; }
nav { font-size: 13px; margin-bottom: 10px; }
nav a { margin-right: 14px; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 22px 0 6px; border-bottom: 1px solid #dde1e8; }
h3 { font-size: 14px; margin: 14px 0 4px; }
.q { font-size: 18px; font-weight: 600; margin: 8px 0; }
.meta { color: #5b6475; }
.note { background: #fff7e0; border: 1px solid #f0d890; padding: 8px 12px; border-radius: 5px; }
.format { background: #eef4ff; border: 1px solid #c6d6f5; padding: 8px 12px; border-radius: 5px; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.id { background: #eef1f6; padding: 1px 5px; border-radius: 3px; user-select: all; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f7f9; padding: 8px 10px;
  border-radius: 4px; margin: 4px 0; font: 13px/1.45 ui-monospace, Menlo, Consolas, monospace; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #dde1e8; padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: #eef1f6; }
.cut { color: #a0522d; font-size: 12.5px; }
"""


def view_name(position: int) -> str:
    """The path of an item's view inside the workbook folder (positions start at 1)."""
    return f"items/{position:04d}.html"


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>",
            "<body><main>",
            *body,
            "</main></body></html>",
            "",
        ]
    )


def render_item_view(
    item: EvalItem, position: int, total: int, excerpts: ItemExcerpts, patient_line: str
) -> str:
    """The view of one item: question, answer format, and the record excerpts with their ids."""
    links = ['<a href="../index.html">all items</a>']
    if position > 1:
        links.append(f'<a href="{view_name(position - 1)[6:]}">&larr; previous</a>')
    if position < total:
        links.append(f'<a href="{view_name(position + 1)[6:]}">next &rarr;</a>')
    as_of = (
        f"Answer as the record stood on <b>{item.as_of.isoformat()}</b> (nothing later is shown)."
        if item.as_of
        else "Answer from the whole record."
    )
    body = [
        f"<nav>{''.join(links)}</nav>",
        f"<h1>Item {position} of {total}: <span class='id'>{escape(item.id)}</span></h1>",
        f'<p class="meta">Patient <span class="id">{escape(item.patient_id)}</span> · '
        f"{escape(patient_line)}</p>",
        f'<p class="q">{escape(item.question)}</p>',
        f'<p class="meta">{as_of}</p>',
        '<div class="format">'
        f"<b>Row {position} of your sheet.</b> Answer type <b>{escape(item.answer.type)}</b>: "
        f"write {escape(answer_format(item))} in <code>value</code>. If the record does not "
        "say, write <code>unanswerable</code> in <code>value</code> (or <code>yes</code> in "
        "<code>unanswerable</code>). Cite the ids you relied on in <code>evidence</code> "
        "(separated by <code>;</code>). Leave <code>value</code> empty to skip the item.</div>",
        f'<p class="note">{escape(BLIND_NOTE)}</p>',
    ]
    body.extend(_excerpt_sections(excerpts))
    return _page(f"Item {position}: {item.id}", body)


def _excerpt_sections(excerpts: ItemExcerpts) -> list[str]:
    out = [
        "<h2>Record excerpts</h2>",
        '<p class="meta">In date order, each with the id to cite. They are parts of the record '
        "chosen for the question: judge each like any other part of the record.</p>",
    ]
    if not excerpts.excerpts:
        out.append(
            "<p>No part of the record matched the question. The record may not say; check the "
            "record itself before labelling the item unanswerable.</p>"
        )
    out.extend(_excerpt(e) for e in excerpts.excerpts)
    if excerpts.left_out:
        out.append(
            f'<p class="cut">{excerpts.left_out} further search hit(s) not shown: the view is '
            f"limited to about {excerpts.budget:,} characters.</p>"
        )
    if excerpts.after_as_of:
        out.append(
            f'<p class="cut">{excerpts.after_as_of} record row(s) dated after the as-of day '
            "left out.</p>"
        )
    return out


def _excerpt(excerpt: Excerpt) -> str:
    if excerpt.kind == "document":
        day = excerpt.date.isoformat() if excerpt.date else ""
        head = (
            f"<h3><span class='id'>{escape(excerpt.id or '')}</span> {day} "
            f"{escape(excerpt.title)}</h3>"
        )
        cut = (
            f'<p class="cut">… {excerpt.cut:,} more characters of this document not shown.</p>'
            if excerpt.cut
            else ""
        )
        return f"{head}<pre>{escape(excerpt.text)}</pre>{cut}"
    rows = "".join(
        f"<tr><td><span class='id'>{escape(r.id)}</span></td><td>{escape(r.when)}</td>"
        f"<td>{escape(r.text)}</td></tr>"
        for r in excerpt.rows
    )
    return (
        f"<h3>{escape(excerpt.title)}</h3>"
        f"<table><thead><tr><th>id</th><th>when</th><th>{escape(excerpt.kind)}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def render_index(items: Sequence[EvalItem], annotators: Sequence[str]) -> str:
    """The workbook's index: how to label, and every item in sheet order with its view."""
    rows = "".join(
        f"<tr><td>{n}</td><td><a href='{view_name(n)}'><span class='id'>{escape(item.id)}"
        f"</span></a></td><td>{escape(item.patient_id)}</td><td>{escape(item.question)}</td>"
        f"<td>{escape(item.answer.type)}</td>"
        f"<td>{item.as_of.isoformat() if item.as_of else ''}</td></tr>"
        for n, item in enumerate(items, start=1)
    )
    sheets = ", ".join(f"<code>{escape(name)}.csv</code>" for name in annotators)
    body = [
        "<h1>Labelling workbook</h1>",
        f"<p>{len(items)} item(s). Sheets: {sheets} — each annotator fills their own, row by "
        "row, in the order below (the same in every sheet).</p>",
        '<div class="format"><b>How to label.</b> Open an item, read the question and the '
        "record excerpts, and fill the item's row of your sheet: <code>value</code> in the "
        "format the sheet's <code>answer_format</code> column gives; <code>unanswerable</code> "
        "(write it in <code>value</code>, or tick the column) when the record does not say; "
        "the ids you relied on in <code>evidence</code>; anything worth saying in "
        "<code>comment</code>. Leave <code>value</code> empty to skip an item. Do not edit "
        "the other columns. Save as CSV (UTF-8).</div>",
        f'<p class="note">{escape(BLIND_NOTE)}</p>',
        "<table><thead><tr><th>#</th><th>item</th><th>patient</th><th>question</th>"
        "<th>type</th><th>as of</th></tr></thead>",
        f"<tbody>{rows}</tbody></table>",
    ]
    return _page(f"Labelling workbook ({len(items)} items)", body)
