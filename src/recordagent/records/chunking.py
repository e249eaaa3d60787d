"""Section- and paragraph-aware chunking of documents, bounded in tokens.

A chunk is an exact span of its document (``text[char_start:char_end]``), so chunks cite
precisely and, without overlap, concatenate back to the document. Each document is encoded once;
chunk boundaries are placed only after line breaks, which are pre-tokenizer split points of the
encoding, so a chunk's token count is read off the whole-document encoding and equals the count
of the chunk text encoded on its own (a property the test suite checks on real clinical prose).

Packing is greedy over lines: a section heading starts a new chunk once the current one holds
``min_tokens``; a chunk that would overflow ``max_tokens`` is closed at its last paragraph break
if that keeps it at least half full, else at the last line break. A single line longer than the
bound is cut at sentence, then word, then token boundaries and its pieces are recounted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recordagent.records.tokens import Tokenizer
from recordagent.settings import ChunkingSettings

__all__ = ["ChunkSpan", "Chunker", "DocumentChunks"]

# Ends of whitespace runs that contain a line break: after the last break of the run. These are
# exactly where the cl100k pre-tokenizer's `\s*[\r\n]` alternative stops.
_LINE_END = re.compile(r"\s*[\r\n]")
_HEADING = re.compile(
    r"""^[ \t]*(?:
        \#{1,6}[ \t]+(?P<md>[^\n]{1,80}?)[ \t]*                      # markdown heading
      | (?P<caps>[A-Z][A-Z0-9 /&,()'+-]{2,60}?)[ \t]*:?[ \t]*         # ALL-CAPS line
      | (?P<label>[A-Z][A-Za-z0-9 /&()'+-]{1,40}?):[ \t]*             # 'Title:' alone on a line
      | (?P<inline>[A-Z][A-Z0-9 /&()'+-]{2,40}?):[ \t]+\S[^\n]*        # 'CAPS: text' on one line
    )\r?$""",
    re.MULTILINE | re.VERBOSE,
)
_SENTENCE_END = re.compile(rb"[.!?;:]$")


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk of one document, as offsets into the document text."""

    position: int
    char_start: int
    char_end: int
    token_count: int
    section: str | None


@dataclass(frozen=True)
class DocumentChunks:
    """The chunks of one document, with the document's total token count."""

    chunks: tuple[ChunkSpan, ...]
    total_tokens: int


class Chunker:
    """Cuts documents into token-bounded chunks.

    Args:
        settings: Chunk bounds and the tokenizer encoding.
        tokenizer: An already loaded tokenizer to share; loaded from ``settings`` when omitted.
    """

    def __init__(self, settings: ChunkingSettings, tokenizer: Tokenizer | None = None) -> None:
        self.settings = settings
        self.tokenizer = tokenizer or Tokenizer(settings.encoding)
        self._byte_lengths = self.tokenizer.byte_lengths

    def chunk(self, text: str) -> DocumentChunks:
        """Chunk one document."""
        return self._chunk_encoded(text, self.tokenizer.encode(text))

    def chunk_many(
        self,
        texts: Sequence[str],
        *,
        threads: int = 2,
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> list[DocumentChunks]:
        """Chunk many documents, overlapping encoding (which releases the GIL) across threads.

        Args:
            texts: Document texts.
            threads: Worker threads; 1 runs inline.
            batch_size: Documents per work item.
            progress: Called with the number of documents finished in each completed batch.
        """
        batches = [
            range(i, min(i + batch_size, len(texts))) for i in range(0, len(texts), batch_size)
        ]

        def work(batch: range) -> list[DocumentChunks]:
            return [self.chunk(texts[i]) for i in batch]

        results: list[DocumentChunks] = []
        if threads <= 1:
            for batch in batches:
                results.extend(work(batch))
                if progress:
                    progress(len(batch))
            return results
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for batch, done in zip(batches, pool.map(work, batches), strict=True):
                results.extend(done)
                if progress:
                    progress(len(batch))
        return results

    # -- one document -------------------------------------------------------------------------

    def _chunk_encoded(self, text: str, tokens: list[int]) -> DocumentChunks:
        n_tokens = len(tokens)
        if n_tokens == 0:
            return DocumentChunks((), 0)
        token_ends = np.cumsum(self._byte_lengths[np.asarray(tokens, dtype=np.int64)])
        char_to_byte = _char_to_byte_offsets(text)

        # Line starts (char offsets) whose byte offset is also a token boundary.
        starts = [0] + [m.end() for m in _LINE_END.finditer(text) if m.end() < len(text)]
        start_chars = np.asarray(starts, dtype=np.int64)
        start_bytes = start_chars if char_to_byte is None else char_to_byte[start_chars]
        token_at = np.searchsorted(token_ends, start_bytes, side="right")
        aligned = (start_bytes == 0) | (token_ends[np.maximum(token_at - 1, 0)] == start_bytes)
        start_chars, token_at = start_chars[aligned], token_at[aligned]

        line_start = start_chars.tolist() + [len(text)]
        line_token = token_at.tolist() + [n_tokens]
        n_lines = len(line_start) - 1
        paragraph_start = self._paragraph_starts(text, line_start)
        heading_line, section_names = self._headings(text, start_chars)

        spans = self._pack(
            text,
            tokens,
            token_ends,
            char_to_byte,
            line_start,
            line_token,
            n_lines,
            paragraph_start,
            heading_line,
        )
        line_section = np.maximum.accumulate(heading_line) if n_lines else heading_line
        chunks = tuple(
            ChunkSpan(
                position=i,
                char_start=cs,
                char_end=ce,
                token_count=tc,
                section=section_names.get(int(line_section[first_line])),
            )
            for i, (cs, ce, tc, first_line) in enumerate(spans)
        )
        return DocumentChunks(chunks, n_tokens)

    @staticmethod
    def _paragraph_starts(text: str, line_start: list[int]) -> list[bool]:
        """A line starts a paragraph when the break before it holds two or more line feeds."""
        flags = [True]
        for k in range(1, len(line_start) - 1):
            gap_start = line_start[k - 1]
            brk = text.rfind("\n", gap_start, line_start[k] - 1)
            flags.append(brk >= gap_start and not text[brk + 1 : line_start[k] - 1].strip())
        return flags

    @staticmethod
    def _headings(
        text: str, start_chars: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], dict[int, str]]:
        """Per line: index of the line if it is a heading, else -1; and heading names."""
        heading_line = np.full(len(start_chars), -1, dtype=np.int64)
        names: dict[int, str] = {}
        for m in _HEADING.finditer(text):
            line = int(np.searchsorted(start_chars, m.start(), side="right")) - 1
            if line < 0 or start_chars[line] != m.start():
                continue  # the heading's line start is not a usable boundary
            name = m.group("md") or m.group("caps") or m.group("label") or m.group("inline")
            if name is None or not any(c.isalpha() for c in name):
                continue
            heading_line[line] = line
            names[line] = name.strip().rstrip(":").strip()
        return heading_line, names

    def _pack(
        self,
        text: str,
        tokens: list[int],
        token_ends: npt.NDArray[np.int64],
        char_to_byte: npt.NDArray[np.int64] | None,
        line_start: list[int],
        line_token: list[int],
        n_lines: int,
        paragraph_start: list[bool],
        heading_line: npt.NDArray[np.int64],
    ) -> list[tuple[int, int, int, int]]:
        """Greedy packing; returns (char_start, char_end, token_count, first_line) per chunk."""
        max_tokens = self.settings.max_tokens
        min_tokens = self.settings.min_tokens
        overlap = self.settings.overlap_tokens
        is_heading = (heading_line >= 0).tolist()
        spans: list[tuple[int, int, int, int]] = []

        def emit(first: int, end: int) -> None:
            spans.append(
                (line_start[first], line_start[end], line_token[end] - line_token[first], first)
            )

        def overlap_start(first: int, end: int) -> int:
            """Earliest line after ``first`` whose tail up to ``end`` fits in the overlap."""
            start = end
            while (
                overlap
                and start - 1 > first
                and line_token[end] - line_token[start - 1] <= overlap
                and not is_heading[start]
            ):
                start -= 1
            return start

        first = 0
        i = 0
        while i < n_lines:
            line_tokens = line_token[i + 1] - line_token[i]
            held = line_token[i] - line_token[first]
            if i > first and is_heading[i] and held >= min_tokens:
                emit(first, i)
                first = i
                held = 0
            if line_tokens > max_tokens:
                # Short pending lines (a heading, say) ride along with the line's first piece.
                if held > max_tokens // 2:
                    emit(first, i)
                    first = i
                spans.extend(
                    self._split_long_line(
                        text,
                        tokens,
                        token_ends,
                        char_to_byte,
                        line_start[first],
                        line_start[i + 1],
                        line_token[first],
                        line_token[i + 1],
                        first,
                    )
                )
                first = i + 1
                i += 1
                continue
            if held + line_tokens > max_tokens:
                brk = i
                for p in range(i - 1, first, -1):
                    if line_token[p] - line_token[first] < max_tokens // 2:
                        break
                    if paragraph_start[p]:
                        brk = p
                        break
                emit(first, brk)
                first = overlap_start(first, brk)
                i = max(brk, first)
                # Overlap may leave the next chunk too full for line i; drop it if so.
                if line_token[i + 1] - line_token[first] > max_tokens and i < n_lines:
                    first = brk
                continue
            i += 1
        if first < n_lines:
            emit(first, n_lines)
        return spans

    def _split_long_line(
        self,
        text: str,
        tokens: list[int],
        token_ends: npt.NDArray[np.int64],
        char_to_byte: npt.NDArray[np.int64] | None,
        char_start: int,
        char_end: int,
        token_start: int,
        token_end: int,
        line: int,
    ) -> list[tuple[int, int, int, int]]:
        """Cut one overlong line; pieces are recounted, since cuts may fall inside a word."""
        max_tokens = self.settings.max_tokens
        byte_to_char = _byte_to_char(char_to_byte)
        pieces: list[tuple[int, int, int, int]] = []
        tok = token_start
        cs = char_start
        while tok < token_end:
            end_tok = min(tok + max_tokens, token_end)
            cut = end_tok
            if end_tok < token_end:
                cut = self._best_cut(tokens, token_ends, byte_to_char, tok, end_tok)
            ce = char_end if cut >= token_end else byte_to_char(int(token_ends[cut - 1]))
            count = self.tokenizer.count(text[cs:ce])
            while count > max_tokens and cut - 1 > tok:  # recount shrank nothing: step back
                cut -= 1
                ce = byte_to_char(int(token_ends[cut - 1]))
                count = self.tokenizer.count(text[cs:ce])
            if ce <= cs:  # no char boundary within reach: take the whole remainder
                ce = char_end
                count = self.tokenizer.count(text[cs:ce])
                cut = token_end
            pieces.append((cs, ce, count, line))
            tok, cs = cut, ce
        return pieces

    def _best_cut(
        self,
        tokens: list[int],
        token_ends: npt.NDArray[np.int64],
        byte_to_char: Callable[[int], int],
        first: int,
        limit: int,
    ) -> int:
        """Token index to cut before: a sentence end, else a word start, in the back half."""
        decode = self.tokenizer.encoding.decode_single_token_bytes
        floor = first + max(1, (limit - first) // 2)
        word_cut = None
        for k in range(limit, floor, -1):
            if byte_to_char(int(token_ends[k - 1])) < 0:
                continue  # inside a multi-byte character
            prev, nxt = decode(tokens[k - 1]), decode(tokens[k])
            if nxt[:1] == b" " and _SENTENCE_END.search(prev):
                return k
            if word_cut is None and nxt[:1] == b" ":
                word_cut = k
        if word_cut is not None:
            return word_cut
        for k in range(limit, first, -1):
            if byte_to_char(int(token_ends[k - 1])) >= 0:
                return k
        return limit


def _char_to_byte_offsets(text: str) -> npt.NDArray[np.int64] | None:
    """UTF-8 byte offset of every char offset (len+1 entries); None when the text is ASCII."""
    if text.isascii():
        return None
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    widths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    offsets = np.zeros(len(code_points) + 1, dtype=np.int64)
    np.cumsum(widths, out=offsets[1:])
    return offsets


def _byte_to_char(char_to_byte: npt.NDArray[np.int64] | None) -> Callable[[int], int]:
    """Maps a byte offset to its char offset, or -1 when it falls inside a character."""
    if char_to_byte is None:
        return lambda b: b

    def convert(byte_offset: int) -> int:
        k = int(np.searchsorted(char_to_byte, byte_offset))
        return k if k < len(char_to_byte) and char_to_byte[k] == byte_offset else -1

    return convert
