"""Error review: the incorrect answers exported for clinicians to rate, and their ratings read back.

The export lists every incorrect answer (item, question, reference, answer, runner, cited ids)
with an empty ``severity`` column: a CSV to fill in a spreadsheet, and a self-contained HTML
page to read (its severity menus can also be filled in and saved back as that CSV).
:func:`import_review` reads the filled CSV; the severities then feed the report's error tables
(``build_report(..., review=...)``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from recordagent.errors import UserError
from recordagent.evaluation.labels import Severity
from recordagent.evaluation.report.model import ErrorItem
from recordagent.paths import path_kind

__all__ = [
    "REVIEW_COLUMNS",
    "SEVERITIES",
    "import_review",
    "render_review_html",
    "review_table",
    "write_review",
    "write_review_csv",
]

REVIEW_COLUMNS = (
    "item_id",
    "runner",
    "patient_id",
    "level",
    "question",
    "reference",
    "answer",
    "status",
    "citations",
    "explanation",
    "severity",
    "comment",
)
"""Columns of the review CSV, in order; reviewers fill ``severity`` (and may add a comment)."""

SEVERITIES: tuple[Severity, ...] = ("clinically_significant", "minor")
_REQUIRED = ("item_id", "runner", "severity")


def review_table(errors: Sequence[ErrorItem]) -> list[dict[str, str]]:
    """One row of text per incorrect answer, severity and comment left empty."""
    return [
        {
            "item_id": e.item_id,
            "runner": e.runner,
            "patient_id": e.patient_id,
            "level": "" if e.level is None else str(e.level),
            "question": e.question,
            "reference": _shown(e.reference),
            "answer": _shown(e.answer),
            "status": e.status,
            "citations": " ".join(e.citations),
            "explanation": e.explanation,
            "severity": "",
            "comment": "",
        }
        for e in errors
    ]


def _shown(value: Any) -> str:
    """A value as a reviewer reads it: text as is, lists comma-separated, nothing as empty."""
    if value is None or value == []:
        return ""
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def write_review(errors: Sequence[ErrorItem], path: str | Path) -> Path:
    """Write the review as CSV or HTML, by the file's suffix.

    Raises:
        UserError: The suffix is neither .csv nor .html, or the folder does not exist.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in {".csv", ".html", ".htm"}:
        raise UserError(f"{file}: an error review is written as .csv or .html, not '{suffix}'")
    if path_kind(file.parent, "folder for the error review") != "folder":
        raise UserError(f"folder for the error review does not exist: {file.parent}")
    if path_kind(file, "error review") == "folder":
        raise UserError(f"error review {file} is a folder; give a file name")
    try:
        if suffix == ".csv":
            write_review_csv(errors, file)
        else:
            file.write_text(render_review_html(errors), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the error review {file}: {exc.strerror or exc}") from exc
    return file


def write_review_csv(errors: Sequence[ErrorItem], path: str | Path) -> None:
    """The review as CSV (UTF-8 with a byte-order mark, so spreadsheets read accents)."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=REVIEW_COLUMNS)
        writer.writeheader()
        writer.writerows(review_table(errors))


def import_review(path: str | Path) -> dict[tuple[str, str], Severity]:
    """Severities from a filled review CSV, by (item id, runner); unrated rows are skipped.

    Severities are read loosely ('Clinically significant', 'clinically-significant', 'MINOR').

    Raises:
        UserError: The file is missing or not a review CSV, or a row has an empty item id or
            runner, an unknown severity, or contradicts an earlier row for the same answer
            (the message names the file, the data row and the field).
    """
    file = Path(path)
    if path_kind(file, "error review") != "file":
        raise UserError(f"no error review at {file}")
    try:
        with file.open(encoding="utf-8-sig", newline="") as source:
            reader = csv.DictReader(source)
            header = reader.fieldnames or []
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise UserError(
                    f"{file}: not an error review; missing column(s) {', '.join(missing)} "
                    f"(a review has {', '.join(REVIEW_COLUMNS)})"
                )
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{file}: not UTF-8 text ({exc.reason}); save the review as CSV UTF-8"
        ) from exc
    except csv.Error as exc:
        raise UserError(f"{file}: not a readable CSV ({exc})") from exc

    severities: dict[tuple[str, str], Severity] = {}
    first_row: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{file}, row {number}"
        raw = (row.get("severity") or "").strip()
        if not raw:
            continue
        key = (_required(row, "item_id", where), _required(row, "runner", where))
        severity = _severity(raw, where)
        if key in severities and severities[key] != severity:
            raise UserError(
                f"{where}, field 'severity': {severity} contradicts row {first_row[key]} "
                f"({severities[key]}) for item {key[0]!r} of runner {key[1]!r}"
            )
        severities[key] = severity
        first_row.setdefault(key, number)
    return severities


def _required(row: dict[str, str | None], name: str, where: str) -> str:
    value = (row.get(name) or "").strip()
    if not value:
        raise UserError(f"{where}, field '{name}': empty; every rated row needs its {name}")
    return value


def _severity(raw: str, where: str) -> Severity:
    folded = "_".join(raw.lower().replace("-", " ").split())
    for severity in SEVERITIES:
        if folded == severity:
            return severity
    raise UserError(
        f"{where}, field 'severity': {raw!r} is not a severity; use "
        f"{' or '.join(SEVERITIES)} (or leave it empty for an unrated answer)"
    )


# --------------------------------------------------------------------------- HTML page

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; color: #1d2330;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { padding: 20px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
p.lead { color: #5b6475; margin: 0 0 14px; max-width: 900px; }
button { font: inherit; padding: 6px 14px; border-radius: 5px; border: 1px solid #2b59c3;
  background: #2b59c3; color: #fff; cursor: pointer; margin-bottom: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #dde1e8; padding: 6px 8px; text-align: left;
  vertical-align: top; }
th { background: #eef1f6; position: sticky; top: 0; white-space: nowrap; }
tbody tr:nth-child(even) { background: #f6f7f9; }
td.item { white-space: nowrap; font-weight: 600; }
td.q { min-width: 220px; max-width: 380px; }
td.v { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  min-width: 100px; max-width: 220px; }
.sub { display: block; font-family: system-ui, sans-serif; font-weight: 400; font-size: 12px;
  color: #5b6475; margin-top: 2px; overflow-wrap: anywhere; }
td.why { font-size: 12.5px; color: #5b6475; min-width: 180px; max-width: 300px; }
select, input { font: inherit; font-size: 13px; }
input { width: 100%; min-width: 110px; }
"""

_SCRIPT = """
const COLUMNS = %s;
function cell(value) {
  const text = value === undefined || value === null ? "" : String(value);
  return /[",\\r\\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}
document.getElementById("save").addEventListener("click", function () {
  const lines = [COLUMNS.join(",")];
  document.querySelectorAll("tbody tr").forEach(function (tr) {
    const row = JSON.parse(tr.dataset.row);
    row.severity = tr.querySelector("select").value;
    row.comment = tr.querySelector("input").value;
    lines.push(COLUMNS.map(function (c) { return cell(row[c]); }).join(","));
  });
  const blob = new Blob(["\\ufeff" + lines.join("\\r\\n") + "\\r\\n"], {type: "text/csv"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "error_review.csv";
  link.click();
});
"""


def render_review_html(errors: Sequence[ErrorItem]) -> str:
    """A self-contained page of the incorrect answers with a severity menu per answer."""
    rows = review_table(errors)
    options = '<option value=""></option>' + "".join(
        f'<option value="{s}">{s.replace("_", " ")}</option>' for s in SEVERITIES
    )
    body = []
    for row in rows:
        data = escape(json.dumps(row, ensure_ascii=False))
        cited = f"cites {row['citations']}" if row["citations"] else "no citations"
        # Item and runner, answer and its status and citations share cells: ten columns
        # would not fit a laptop screen.
        body.append(
            f'<tr data-row="{data}"><td class="item">{escape(row["item_id"])}'
            f'<span class="sub">{escape(row["runner"])}</span></td>'
            f'<td class="q">{escape(row["question"])}</td>'
            f'<td class="v">{escape(row["reference"] or "no value (record silent)")}</td>'
            f'<td class="v">{escape(row["answer"] or "no value")}'
            f'<span class="sub">{escape(row["status"])} · {escape(cited)}</span></td>'
            f'<td class="why">{escape(row["explanation"])}</td>'
            f'<td><select aria-label="severity">{options}</select></td>'
            '<td><input aria-label="comment" type="text"></td></tr>'
        )
    headers = [
        "item · runner",
        "question",
        "reference",
        "answer",
        "why incorrect",
        "severity",
        "comment",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Error review ({len(rows)} answers)</title><style>{_CSS}</style></head>",
            "<body><main><h1>Error review</h1>",
            f'<p class="lead">{len(rows)} incorrect answer(s). Rate each one: '
            "<b>clinically significant</b> (would change care) or <b>minor</b>. Save the "
            "ratings as CSV with the button (or fill the <code>severity</code> column of the "
            "review CSV) and import it with the report.</p>",
            '<button id="save" type="button">Save ratings as CSV</button>',
            "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr></thead>",
            "<tbody>",
            *body,
            "</tbody></table></main>",
            f"<script>{_SCRIPT % json.dumps(list(REVIEW_COLUMNS))}</script>",
            "</body></html>",
        ]
    )
