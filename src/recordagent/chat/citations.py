"""Numbered citations: what each cited row is (type and date), and the passage it shows."""

from __future__ import annotations

from pydantic import BaseModel, Field

from recordagent.records.scope import PatientScope
from recordagent.runners import Citation

__all__ = ["CitedSource", "cited_passage", "resolve_citations"]

_DOCUMENT_LINES = 40


class CitedSource(BaseModel):
    """One numbered citation of an answer, described for a reader."""

    number: int = Field(description="1-based number shown next to the answer.")
    ref: Citation
    label: str = Field(description="e.g. 'progress note 2021-03-04 (chunk D12:3, ASSESSMENT)'.")


def resolve_citations(scope: PatientScope, refs: list[Citation]) -> list[CitedSource]:
    """Number ``refs`` and describe each by document type and date, or analyte and date."""
    return [
        CitedSource(number=n, ref=ref, label=_label(scope, ref))
        for n, ref in enumerate(refs, start=1)
    ]


def _label(scope: PatientScope, ref: Citation) -> str:
    if ref.kind in ("document", "chunk"):
        document_id = ref.document_id or ref.id.rsplit(":", 1)[0]
        if ref.kind == "document":
            document_id = ref.id
        document = scope.document(document_id)
        if document is None:
            return f"{ref.kind} {ref.id} (not in this record)"
        where = f"{document.type} {document.date:%Y-%m-%d}"
        if ref.kind == "chunk":
            chunk = _chunk(scope, ref.id, document_id)
            section = f", {chunk[0]}" if chunk and chunk[0] else ""
            return f"{where} (chunk {ref.id}{section})"
        return f"{where} (document {ref.id})"
    if ref.kind == "lab":
        rows = scope.fetch(
            "SELECT analyte_name, time, value_num, value_text, unit FROM labs WHERE lab_id = $id",
            {"id": ref.id},
        )
        if not rows:
            return f"lab {ref.id} (not in this record)"
        name, time, number, text, unit = rows[0]
        value = text if number is None else f"{number:g}"
        return f"{name} {time:%Y-%m-%d} = {value} {unit or ''}".rstrip() + f" (lab {ref.id})"
    rows = scope.fetch(
        "SELECT kind, label, start_time FROM events WHERE event_id = $id", {"id": ref.id}
    )
    if not rows:
        return f"event {ref.id} (not in this record)"
    kind, label, start = rows[0]
    return f"{kind} {label} {start:%Y-%m-%d} (event {ref.id})"


def _chunk(scope: PatientScope, chunk_id: str, document_id: str) -> tuple[str | None, str] | None:
    for chunk in scope.chunks(document_ids=[document_id]):
        if chunk.chunk_id == chunk_id:
            return chunk.section, chunk.text
    return None


def cited_passage(scope: PatientScope, source: CitedSource) -> str:
    """The text the citation points at: the chunk, the document's opening, the lab or event."""
    ref = source.ref
    if ref.kind == "chunk":
        found = _chunk(scope, ref.id, ref.document_id or ref.id.rsplit(":", 1)[0])
        return found[1] if found else f"chunk {ref.id} is not in this record"
    if ref.kind == "document":
        document = scope.document(ref.id)
        if document is None:
            return f"document {ref.id} is not in this record"
        lines = document.text.splitlines()
        more = len(lines) - _DOCUMENT_LINES
        shown = "\n".join(lines[:_DOCUMENT_LINES])
        return shown + (f"\n… {more} more line(s): /doc {ref.id}" if more > 0 else "")
    return source.label
