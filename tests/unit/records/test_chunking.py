"""Chunking: token bounds, exact counts, spans that tile the document, sections, overlap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordagent.records.chunking import Chunker, DocumentChunks
from recordagent.records.tokens import Tokenizer
from recordagent.settings import ChunkingSettings

NOTE = """CHIEF COMPLAINT

Back pain.

HISTORY OF PRESENT ILLNESS

Mr. X is a 67-year-old man with IgG-kappa multiple myeloma diagnosed 2019, t(4;14), del(17p).
He received VRd followed by ASCT with melphalan 200 mg/m2. He is on lenalidomide maintenance.
He reports new back pain for 3 weeks.

Labs: M-protein 2.3 g/dL, creatinine 1.4 mg/dL.

ASSESSMENT AND PLAN

Relapse suspected. Restage with PET-CT.
"""


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


def chunker(tokenizer: Tokenizer, **bounds: int) -> Chunker:
    return Chunker(ChunkingSettings(**bounds), tokenizer)


def assert_well_formed(text: str, result: DocumentChunks, tokenizer: Tokenizer, max_tokens: int):
    assert result.total_tokens == tokenizer.count(text)
    previous_end = 0
    for position, span in enumerate(result.chunks):
        piece = text[span.char_start : span.char_end]
        assert span.position == position
        assert piece, "chunks are never empty"
        assert span.token_count == tokenizer.count(piece), "count equals the chunk encoded alone"
        assert span.token_count <= max_tokens
        assert span.char_start <= previous_end or previous_end == 0
        previous_end = span.char_end
    if text:
        assert result.chunks[0].char_start == 0
        assert result.chunks[-1].char_end == len(text)


def test_sections_start_chunks_and_label_them(tokenizer: Tokenizer):
    result = chunker(tokenizer, max_tokens=512, min_tokens=4).chunk(NOTE)

    assert [c.section for c in result.chunks] == [
        "CHIEF COMPLAINT",
        "HISTORY OF PRESENT ILLNESS",
        "ASSESSMENT AND PLAN",
    ]
    assert "".join(NOTE[c.char_start : c.char_end] for c in result.chunks) == NOTE
    assert_well_formed(NOTE, result, tokenizer, 512)


def test_small_sections_stay_together_below_min_tokens(tokenizer: Tokenizer):
    result = chunker(tokenizer, max_tokens=512, min_tokens=200).chunk(NOTE)
    assert len(result.chunks) == 1
    assert result.chunks[0].section == "CHIEF COMPLAINT"


def test_tight_bound_breaks_at_paragraphs_then_lines(tokenizer: Tokenizer):
    result = chunker(tokenizer, max_tokens=40, min_tokens=4).chunk(NOTE)
    assert len(result.chunks) > 3
    assert_well_formed(NOTE, result, tokenizer, 40)
    # No line exceeds the bound, so every boundary falls right after a line break.
    assert all(NOTE[span.char_start - 1] == "\n" for span in result.chunks[1:])
    # A break between paragraphs is preferred to one between lines of a paragraph.
    assert (
        sum(NOTE[span.char_start - 2 : span.char_start] == "\n\n" for span in result.chunks[1:])
        >= 3
    )


def test_overlong_line_is_cut_at_sentence_or_word_boundaries(tokenizer: Tokenizer):
    line = " ".join(
        f"Sentence number {i} mentions lenalidomide and dexamethasone." for i in range(60)
    )
    result = chunker(tokenizer, max_tokens=64, min_tokens=0).chunk(line)
    assert len(result.chunks) > 5
    assert_well_formed(line, result, tokenizer, 64)
    ends = [line[c.char_end - 1] for c in result.chunks[:-1]]
    assert all(e == "." for e in ends), ends


def test_text_without_spaces_or_newlines_is_still_bounded(tokenizer: Tokenizer):
    blob = "ACGT" * 2000 + "é" * 500 + "🧬" * 200
    result = chunker(tokenizer, max_tokens=100, min_tokens=0).chunk(blob)
    assert_well_formed(blob, result, tokenizer, 100)
    assert "".join(blob[c.char_start : c.char_end] for c in result.chunks) == blob


def test_overlap_repeats_whole_lines(tokenizer: Tokenizer):
    text = "".join(f"Line {i}: creatinine {i / 10:.1f} mg/dL on day {i}.\n" for i in range(80))
    plain = chunker(tokenizer, max_tokens=100, min_tokens=0).chunk(text)
    overlapped = chunker(tokenizer, max_tokens=100, min_tokens=0, overlap_tokens=30).chunk(text)

    assert len(overlapped.chunks) > len(plain.chunks)
    for before, after in zip(overlapped.chunks, overlapped.chunks[1:], strict=False):
        assert after.char_start < before.char_end, "consecutive chunks share lines"
        shared = text[after.char_start : before.char_end]
        assert shared.endswith("\n") and tokenizer.count(shared) <= 30
        assert after.char_start == 0 or text[after.char_start - 1] == "\n"
    for span in overlapped.chunks:
        assert span.token_count == tokenizer.count(text[span.char_start : span.char_end]) <= 100


def test_empty_text_has_no_chunks(tokenizer: Tokenizer):
    assert chunker(tokenizer).chunk("") == DocumentChunks((), 0)


def test_chunk_many_matches_chunk_in_order(tokenizer: Tokenizer):
    texts = [NOTE, "short", NOTE.upper(), "", "x\n" * 500]
    c = chunker(tokenizer, max_tokens=32, min_tokens=0)
    seen: list[int] = []
    assert c.chunk_many(texts, batch_size=2, progress=seen.append) == [c.chunk(t) for t in texts]
    assert seen == [2, 2, 1]


def test_chunk_many_in_worker_processes_matches_in_process(tokenizer: Tokenizer, monkeypatch):
    from recordagent.records import chunking

    monkeypatch.setattr(chunking, "PARALLEL_MIN_BYTES", 0)
    texts = [NOTE * (i % 4 + 1) for i in range(12)]
    c = chunker(tokenizer, max_tokens=48, min_tokens=8)
    seen: list[int] = []
    assert c.chunk_many(texts, workers=2, batch_size=5, progress=seen.append) == [
        c.chunk(t) for t in texts
    ]
    assert seen == [5, 5, 2]


clinical_words = st.sampled_from(
    [
        "IgG-κ",
        "del(17p)",
        "t(4;14)",
        "2.3 g/dL",
        "VGPR.",
        "Plan:",
        "ASCT",
        "M-protein",
        "—",
        "µmol/L",
        "(",
        ")",
        "!",
        "...",
        "   ",
        "\t",
        "\u00a0",
        "\r\n",
        "\n",
        "\n\n",
        " \n",
        "\n  ",
        "1,234",
        "'s",
        "🙂",
        "é",
    ]
)
texts = st.lists(st.one_of(clinical_words, st.text(max_size=12)), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    text=texts, max_tokens=st.integers(min_value=16, max_value=80), min_tokens=st.integers(0, 16)
)
def test_property_counts_are_exact_and_bounded(text: str, max_tokens: int, min_tokens: int):
    tokenizer = Tokenizer()
    result = Chunker(
        ChunkingSettings(max_tokens=max_tokens, min_tokens=min_tokens), tokenizer
    ).chunk(text)
    assert_well_formed(text, result, tokenizer, max_tokens)
    assert "".join(text[c.char_start : c.char_end] for c in result.chunks) == text


def test_chunk_many_falls_back_in_process_when_workers_cannot_start(
    tokenizer: Tokenizer, monkeypatch, caplog
):
    from recordagent.records import chunking

    def refuse(*args, **kwargs):
        raise OSError("no processes in this sandbox")

    monkeypatch.setattr(chunking, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(Chunker, "_chunk_in_processes", refuse)
    c = chunker(tokenizer, max_tokens=48, min_tokens=8)
    texts = [NOTE, NOTE.lower()]
    with caplog.at_level("WARNING", logger="recordagent.records.chunking"):
        assert c.chunk_many(texts, workers=2, batch_size=1) == [c.chunk(t) for t in texts]
    assert "no processes in this sandbox" in caplog.text
