"""Chunking real clinical notes (ACI-BENCH, ../shared/data): exact counts, sections found."""

from __future__ import annotations

import polars as pl
import pytest

from recordagent.records.chunking import Chunker
from recordagent.settings import ChunkingSettings
from tests.helpers import SHARED_DATA

ACI = SHARED_DATA / "aci-bench" / "challenge_data"


@pytest.fixture(scope="module")
def notes() -> list[str]:
    if not ACI.is_dir():
        pytest.skip(f"ACI-BENCH notes not found at {ACI} (../shared/data is absent)")
    frames = [
        pl.read_csv(path) for path in sorted(ACI.glob("*.csv")) if "metadata" not in path.name
    ]
    return [n for f in frames for n in f["note"].to_list() if n]


@pytest.mark.parametrize("max_tokens", [64, 256, 512])
def test_counts_are_exact_on_every_note(notes: list[str], max_tokens: int):
    chunker = Chunker(ChunkingSettings(max_tokens=max_tokens, min_tokens=min(64, max_tokens // 2)))
    count = chunker.tokenizer.count
    for note, result in zip(notes, chunker.chunk_many(notes), strict=True):
        assert result.total_tokens == count(note)
        assert "".join(note[c.char_start : c.char_end] for c in result.chunks) == note
        for chunk in result.chunks:
            assert chunk.token_count == count(note[chunk.char_start : chunk.char_end]) <= max_tokens


def test_standard_note_sections_are_recognised(notes: list[str]):
    chunker = Chunker(ChunkingSettings(max_tokens=256, min_tokens=16))
    sections = {c.section for r in chunker.chunk_many(notes) for c in r.chunks}
    assert {"CHIEF COMPLAINT", "HISTORY OF PRESENT ILLNESS", "ASSESSMENT AND PLAN"} <= sections
