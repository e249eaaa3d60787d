"""read_document: a document's text, whole or one section, paged by chunks."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, Field

from recordagent.errors import ToolError
from recordagent.records.schema import Document
from recordagent.records.scope import PatientScope
from recordagent.tools.base import SourceRef, Tool, ToolResult

__all__ = ["READ_DOCUMENT", "ReadDocumentInput", "ReadDocumentResult", "read_document"]

PAGE_TOKENS = 1500


class ReadDocumentInput(BaseModel):
    """Arguments of read_document."""

    document_id: str = Field(
        min_length=1, max_length=100, description="Document id, from search or the timeline."
    )
    section: str | None = Field(
        default=None,
        max_length=100,
        description="Only this section (a heading such as 'ASSESSMENT'); whole document if "
        "omitted.",
    )
    page: int = Field(default=1, ge=1, description=f"Page of about {PAGE_TOKENS} tokens, from 1.")


class ReadDocumentResult(ToolResult):
    """A page of a document."""

    document_id: str
    date: dt.date
    type: str
    title: str | None
    sections: list[str] = Field(description="Headings found in the document.")
    page: int
    pages: int
    text: str

    def lines(self) -> list[str]:
        """A header, then the text."""
        head = (
            f"{self.document_id} | {self.date:%Y-%m-%d} | {self.type} | {self.title or ''} | "
            f"page {self.page} of {self.pages}"
        )
        if self.page < self.pages:
            head += f" (ask page={self.page + 1} for more)"
        return [head, *self.text.splitlines()]

    def shown_citations(self, shown: list[str], complete: bool) -> list[SourceRef]:
        """The document; and its chunks on this page, unless the render cut the page short."""
        document = SourceRef(kind="document", id=self.document_id)
        chunks = [ref for ref in self.citations if ref.kind == "chunk"] if complete else []
        return [document, *chunks]


def read_document(scope: PatientScope, args: ReadDocumentInput) -> ReadDocumentResult:
    """The document's chunks (optionally one section's), grouped into pages."""
    document = scope.document(args.document_id)
    if document is None:
        example = scope.fetch("SELECT min(document_id) FROM documents")[0][0]
        hint = f" (ids look like '{example}')" if example else ""
        raise ToolError(
            f"read_document: no document '{args.document_id}' in this patient's record{hint}"
        )
    sections = _sections(document.text)
    names = list(dict.fromkeys(name for name, _, _ in sections))
    if args.section is not None:
        wanted = _key(args.section)
        found = [(start, end) for name, start, end in sections if _key(name) == wanted]
        if not found:
            listed = ", ".join(names) if names else "none"
            raise ToolError(
                f"read_document: no section '{args.section}' in {document.document_id}; its "
                f"sections are: {listed}"
            )
        text = "\n".join(document.text[start:end].rstrip() for start, end in found)
        section_pages = _pages_of(text)
        if args.page > len(section_pages):
            raise ToolError(
                f"read_document: page {args.page} does not exist; section '{args.section}' of "
                f"{document.document_id} has {len(section_pages)}"
            )
        return _result(
            document, names, args.page, len(section_pages), section_pages[args.page - 1], []
        )
    # Chunk offsets only: the text is cut from the document already in hand.
    spans = scope.fetch(
        "SELECT chunk_id, char_start, char_end, token_count FROM chunks "
        "WHERE document_id = $id ORDER BY position",
        {"id": document.document_id},
    )
    pages: list[list[tuple[str, int, int]]] = [[]]
    used = 0
    for chunk_id, start, end, tokens in spans:
        if pages[-1] and used + tokens > PAGE_TOKENS:
            pages.append([])
            used = 0
        pages[-1].append((chunk_id, start, end))
        used += tokens
    if args.page > len(pages):
        raise ToolError(
            f"read_document: page {args.page} does not exist; {document.document_id} has "
            f"{len(pages)}"
        )
    shown = pages[args.page - 1]
    if not shown:
        return _result(document, names, 1, 1, document.text, [])
    # One continuous span per page: chunks may overlap, and their text must not repeat.
    previous_end = pages[args.page - 2][-1][2] if args.page > 1 else 0
    start = max(shown[0][1], previous_end)
    text = document.text[start : shown[-1][2]]
    cited = [SourceRef(kind="chunk", id=c, document_id=document.document_id) for c, _, _ in shown]
    return _result(document, names, args.page, len(pages), text, cited)


def _pages_of(text: str) -> list[str]:
    """Whole lines in pages of about PAGE_TOKENS tokens (four characters a token)."""
    pages: list[list[str]] = [[]]
    size = 0
    for line in text.splitlines(keepends=True):
        if pages[-1] and size + len(line) > PAGE_TOKENS * 4:
            pages.append([])
            size = 0
        pages[-1].append(line)
        size += len(line)
    return ["".join(page) for page in pages]


def _result(
    document: Document,
    sections: list[str],
    page: int,
    pages: int,
    text: str,
    citations: list[SourceRef],
) -> ReadDocumentResult:
    date = document.date.date() if isinstance(document.date, dt.datetime) else document.date
    return ReadDocumentResult(
        document_id=document.document_id,
        date=date,
        type=document.type,
        title=document.title,
        sections=sections,
        page=page,
        pages=pages,
        text=text,
        citations=citations or [SourceRef(kind="document", id=document.document_id)],
    )


_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]+(?P<md>[^\n]{1,80})|(?P<caps>[A-Z][A-Z0-9 /&,()'+-]{2,60}?)[ \t]*:?)"
    r"[ \t]*\r?$",
    re.MULTILINE,
)


def _sections(text: str) -> list[tuple[str, int, int]]:
    """(heading, start, end) of each section: from its heading line to the next heading."""
    heads = [
        ((m.group("md") or m.group("caps") or "").strip().rstrip(":"), m.start())
        for m in _HEADING.finditer(text)
    ]
    return [
        (name, start, heads[k + 1][1] if k + 1 < len(heads) else len(text))
        for k, (name, start) in enumerate(heads)
        if any(c.isalpha() for c in name)
    ]


def _key(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", heading.lower()).strip()


READ_DOCUMENT: Tool[ReadDocumentInput] = Tool(
    name="read_document",
    description="Read a document by id: the whole text or one section (heading), paged by "
    f"about {PAGE_TOKENS} tokens. Use after search_documents or get_timeline.",
    input_model=ReadDocumentInput,
    fn=read_document,
)
