r"""Section- and paragraph-aware chunking of documents, bounded in tokens.

A chunk is an exact span of its document (``text[char_start:char_end]``), so chunks cite
precisely and, without overlap, concatenate back to the document. Each document is encoded once;
chunk boundaries are placed only right after line breaks, which are pre-tokenizer split points of
cl100k (its ``\s*[\r\n]`` alternative ends there), so a chunk's token count is read off the
whole-document encoding and equals the count of the chunk text encoded on its own — a property
the test suite checks on real clinical prose and on random text.

Packing is greedy: a section heading starts a new chunk once the current one holds
``min_tokens``; a chunk that would overflow ``max_tokens`` is closed at its last paragraph break
if that keeps it at least half full, else at the last line break. A single line longer than the
bound is cut at sentence, then word, then token boundaries, and its pieces are recounted.

The work is done on the UTF-8 bytes with whole-document numpy operations, so that the Python
time per document stays small next to tiktoken's encoding (which releases the GIL and runs on
the other core).
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import signal
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from recordagent.records.tokens import Tokenizer
from recordagent.settings import ChunkingSettings

__all__ = ["PARALLEL_MIN_BYTES", "ChunkSpan", "Chunker", "DocumentChunks"]

logger = logging.getLogger(__name__)

PARALLEL_MIN_BYTES = 8_000_000
"""Inputs with fewer characters than this are chunked in the calling process."""

# Unicode White_Space except CR and LF, as UTF-8 (the pre-tokenizer's `\s` is Unicode-aware).
_WS = (
    rb"(?:[ \t\x0b\x0c]|\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]"
    rb"|\xe2\x81\x9f|\xe3\x80\x80)"
)
# A line feed and the blank lines after it; a chunk may start where it ends. The patterns begin
# with a literal line feed so the regex engine can skip ahead to candidates quickly. A lone CR
# (classic Mac line ends) is not a line break here: such text is cut as one long line.
_LINE_END = re.compile(rb"\n(?:" + _WS + rb"*[\r\n])*")
# Two or more line feeds: the line after starts a paragraph.
_PARAGRAPH_END = re.compile(rb"\n(?:(?:" + _WS + rb"|\r)*\n)+")
# Headings, matched after a line feed (the text is searched with one prepended).
_HEADING = re.compile(
    rb"""\n[ \t]*(?:
        \#{1,6}[ \t]+(?P<md>[^\r\n]{1,80}?)[ \t]*                   # markdown heading
      | (?P<caps>[A-Z][A-Z0-9 /&,()'+-]{2,60}?)[ \t]*:?[ \t]*         # ALL-CAPS line
      | (?P<label>[A-Z][A-Za-z0-9 /&()'+-]{1,40}?):[ \t]*             # 'Title:' alone on a line
      | (?P<inline>[A-Z][A-Z0-9 /&()'+-]{2,40}?):[ \t]+\S[^\r\n]*      # 'CAPS: text' on one line
    )\r?$""",
    re.MULTILINE | re.VERBOSE,
)
_SENTENCE_END = re.compile(rb"[.!?;:]$")


class ChunkSpan(NamedTuple):
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


@dataclass
class _Lines:
    """A document cut into lines at token-aligned line breaks (plain lists: small and hot)."""

    start: list[int]  # byte offset of each line start, plus the end of the text
    token: list[int]  # token index at each line start, plus the token count
    headings: list[int]  # indices of heading lines, ascending
    heading_names: dict[int, str]
    paragraphs: list[int]  # indices of lines that start a paragraph, ascending

    @property
    def count(self) -> int:
        return len(self.start) - 1


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
        tokens = self.tokenizer.encode_array(text)
        if len(tokens) == 0:
            return DocumentChunks((), 0)
        data = text.encode("utf-8")
        token_ends = np.cumsum(self._byte_lengths[tokens])
        lines = _lines(data, token_ends, len(tokens))
        spans = self._pack(data, tokens, token_ends, lines)
        to_char = _char_offsets(text, data, spans)
        headings, names = lines.headings, lines.heading_names
        chunks = []
        for i, (bs, be, count, first) in enumerate(spans):
            k = bisect_right(headings, first) - 1
            section = names[headings[k]] if k >= 0 else None
            chunks.append(ChunkSpan(i, to_char[bs], to_char[be], count, section))
        return DocumentChunks(tuple(chunks), len(tokens))

    def chunk_many(
        self,
        texts: Sequence[str],
        *,
        workers: int | None = None,
        batch_size: int = 512,
        progress: Callable[[int], None] | None = None,
    ) -> list[DocumentChunks]:
        """Chunk many documents, in worker processes when the input is large.

        Encoding releases the GIL but the chunker's own per-document work does not, so threads
        cannot use a second core well; processes can. Small inputs (under
        ``PARALLEL_MIN_BYTES``) are chunked in this process, where starting workers would cost
        more than it saves. Workers are started with "spawn", which re-imports the main module:
        scripts that use several workers need an ``if __name__ == "__main__":`` guard. If worker
        processes cannot be started the work is done here instead, with a warning.

        Args:
            texts: Document texts.
            workers: Worker processes; ``None`` takes ``settings.workers`` (itself ``None``
                meaning 1); 1 works in this process.
            batch_size: Documents per work item sent to a worker.
            progress: Called with the number of documents finished in each completed batch.
        """
        workers = workers or self.settings.workers or 1
        batches = [list(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        size = sum(len(t) for t in texts)
        if workers > 1 and len(batches) > 1 and size >= PARALLEL_MIN_BYTES:
            try:
                return self._chunk_in_processes(batches, min(workers, len(batches)), progress)
            except (OSError, RuntimeError, BrokenProcessPool) as exc:
                reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
                logger.warning("worker processes failed (%s); chunking in this process", reason)
        results: list[DocumentChunks] = []
        for batch in batches:
            results.extend(self.chunk(t) for t in batch)
            if progress:
                progress(len(batch))
        return results

    def _chunk_in_processes(
        self,
        batches: list[list[str]],
        workers: int,
        progress: Callable[[int], None] | None,
    ) -> list[DocumentChunks]:
        # "spawn": forking a process that holds DuckDB's threads and locks is unsafe.
        context = multiprocessing.get_context("spawn")
        results: list[DocumentChunks] = []
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self.settings.model_dump(),),
        )
        try:
            # Workers start inside map: started with Ctrl-C ignored, only the parent (which
            # owns the load's transaction) handles it, and no worker dies mid-write on a pipe.
            with _ctrl_c_ignored():
                chunked = pool.map(_chunk_batch, batches)
            for batch, done in zip(batches, chunked, strict=True):
                results.extend(done)
                if progress:
                    progress(len(batch))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results

    # -- packing ------------------------------------------------------------------------------

    def _pack(
        self,
        data: bytes,
        tokens: npt.NDArray[np.uint32],
        token_ends: npt.NDArray[np.int64],
        lines: _Lines,
    ) -> list[tuple[int, int, int, int]]:
        """Greedy packing; (byte_start, byte_end, token_count, first_line) per chunk."""
        max_tokens = self.settings.max_tokens
        min_tokens = self.settings.min_tokens
        cum, starts, n = lines.token, lines.start, lines.count
        spans: list[tuple[int, int, int, int]] = []
        first = 0
        while first < n:
            # Lines [first, end) fit within the bound.
            end = min(bisect_right(cum, cum[first] + max_tokens) - 1, n)
            heading = _first_heading(lines, first, end, cum[first] + min_tokens)
            if heading is not None:
                spans.append((starts[first], starts[heading], cum[heading] - cum[first], first))
                first = heading
                continue
            if end == n:
                spans.append((starts[first], starts[n], cum[n] - cum[first], first))
                break
            if cum[end + 1] - cum[end] > max_tokens:  # line `end` alone is too long
                if cum[end] - cum[first] > max_tokens // 2:
                    spans.append((starts[first], starts[end], cum[end] - cum[first], first))
                    first = end
                # Short pending lines (a heading, say) ride along with the line's first piece.
                spans.extend(self._split_long_line(data, tokens, token_ends, lines, first, end + 1))
                first = end + 1
                continue
            brk = _paragraph_break(lines, first, end, cum[first] + max_tokens // 2)
            spans.append((starts[first], starts[brk], cum[brk] - cum[first], first))
            first = self._overlap_start(lines, first, brk)
        return spans

    def _overlap_start(self, lines: _Lines, first: int, brk: int) -> int:
        """Where the next chunk starts: ``brk``, or earlier lines repeated within the overlap."""
        overlap = self.settings.overlap_tokens
        if not overlap or brk in lines.heading_names:
            return brk
        cum = lines.token
        start = brk
        while (
            start - 1 > first
            and cum[brk] - cum[start - 1] <= overlap
            and start not in lines.heading_names
        ):
            start -= 1
        # The next chunk must still make progress past the repeated lines.
        if start < brk and cum[brk + 1] - cum[start] > self.settings.max_tokens:
            return brk
        return start

    def _split_long_line(
        self,
        data: bytes,
        tokens: npt.NDArray[np.uint32],
        token_ends: npt.NDArray[np.int64],
        lines: _Lines,
        first_line: int,
        end_line: int,
    ) -> list[tuple[int, int, int, int]]:
        """Cut lines [first_line, end_line) whose last line is overlong; pieces are recounted."""
        max_tokens = self.settings.max_tokens
        count = self.tokenizer.count
        byte_end = lines.start[end_line]
        token_end = lines.token[end_line]
        pieces: list[tuple[int, int, int, int]] = []
        tok = lines.token[first_line]
        bs = lines.start[first_line]
        while tok < token_end:
            cut = token_end
            if tok + max_tokens < token_end:
                cut = self._best_cut(data, tokens, token_ends, tok, tok + max_tokens)
            be = byte_end if cut >= token_end else int(token_ends[cut - 1])
            n = count(data[bs:be].decode("utf-8"))
            while n > max_tokens and cut - 1 > tok:  # a cut inside a word re-encoded longer
                cut -= 1
                while cut - 1 > tok and not _is_char_boundary(data, int(token_ends[cut - 1])):
                    cut -= 1
                be = int(token_ends[cut - 1])
                n = count(data[bs:be].decode("utf-8"))
            pieces.append((bs, be, n, first_line))
            tok, bs = cut, be
        return pieces

    def _best_cut(
        self,
        data: bytes,
        tokens: npt.NDArray[np.uint32],
        token_ends: npt.NDArray[np.int64],
        first: int,
        limit: int,
    ) -> int:
        """Token index to cut before: a sentence end, else a word start, in the back half."""
        decode = self.tokenizer.encoding.decode_single_token_bytes
        floor = first + max(1, (limit - first) // 2)
        word_cut = None
        for k in range(limit, floor, -1):
            if not _is_char_boundary(data, int(token_ends[k - 1])):
                continue
            nxt = decode(int(tokens[k]))
            if nxt[:1] != b" ":
                continue
            if _SENTENCE_END.search(decode(int(tokens[k - 1]))):
                return k
            if word_cut is None:
                word_cut = k
        if word_cut is not None:
            return word_cut
        for k in range(limit, first, -1):
            if _is_char_boundary(data, int(token_ends[k - 1])):
                return k
        return limit


def _lines(data: bytes, token_ends: npt.NDArray[np.int64], n_tokens: int) -> _Lines:
    """Line starts that fall on token boundaries, with headings and paragraph starts."""
    size = len(data)
    found = np.fromiter((m.end() for m in _LINE_END.finditer(data)), dtype=np.int64)
    found = found[found < size]
    token_at = np.searchsorted(token_ends, found, side="right")
    # Keep only breaks where a token ends (always so for cl100k; a guard for odd whitespace).
    aligned = token_ends[token_at - 1] == found if len(found) else found.astype(bool)
    starts = [0, *found[aligned].tolist()]
    line_token = [0, *token_at[aligned].tolist(), n_tokens]
    index = {offset: line for line, offset in enumerate(starts)}

    paragraphs = [0]
    for m in _PARAGRAPH_END.finditer(data):
        line = index.get(m.end())
        if line:
            paragraphs.append(line)

    names: dict[int, str] = {}
    for m in _HEADING.finditer(b"\n" + data):
        line = index.get(m.start())  # the prepended line feed shifts offsets by one
        if line is None:
            continue  # the heading's line start is not a usable boundary
        raw = m.group("md") or m.group("caps") or m.group("label") or m.group("inline")
        name = raw.decode("utf-8", errors="replace").strip().rstrip(":").strip()
        if any(c.isalpha() for c in name):
            names[line] = name
    starts.append(size)
    return _Lines(starts, line_token, sorted(names), names, paragraphs)


def _first_heading(lines: _Lines, first: int, end: int, min_token: int) -> int | None:
    """First heading line in (first, end] that starts at or past ``min_token`` tokens."""
    reach = bisect_left(lines.token, min_token)
    k = bisect_left(lines.headings, max(reach, first + 1))
    if k < len(lines.headings) and lines.headings[k] <= min(end, lines.count - 1):
        return lines.headings[k]
    return None


def _paragraph_break(lines: _Lines, first: int, end: int, half_token: int) -> int:
    """Last paragraph start in (first, end] keeping the chunk half full, else ``end``."""
    k = bisect_right(lines.paragraphs, end) - 1
    if k >= 0:
        candidate = lines.paragraphs[k]
        if candidate > first and lines.token[candidate] >= half_token:
            return candidate
    return end


def _char_offsets(text: str, data: bytes, spans: list[tuple[int, int, int, int]]) -> dict[int, int]:
    """Character offset of every span boundary (UTF-8 byte offsets on character boundaries)."""
    offsets = sorted({b for span in spans for b in span[:2]})
    if text.isascii():
        return {b: b for b in offsets}
    chars: dict[int, int] = {}
    previous_byte = previous_char = 0
    for b in offsets:  # decode each stretch once: linear in the document
        previous_char += len(data[previous_byte:b].decode("utf-8"))
        previous_byte = b
        chars[b] = previous_char
    return chars


def _is_char_boundary(data: bytes, byte_offset: int) -> bool:
    return byte_offset >= len(data) or (data[byte_offset] & 0xC0) != 0x80


# The chunker of a worker process, made once by the pool's initializer (never set in the parent).
_worker_chunker: Chunker | None = None


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored in this process (main thread only), for processes started meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _start_worker(settings: dict[str, object]) -> None:
    global _worker_chunker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt does
    _worker_chunker = Chunker(ChunkingSettings.model_validate(settings))


def _chunk_batch(texts: list[str]) -> list[DocumentChunks]:
    assert _worker_chunker is not None, "worker used before its initializer ran"
    return [_worker_chunker.chunk(t) for t in texts]
