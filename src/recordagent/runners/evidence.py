"""EvidenceBook: the ids a run has shown the model, so that only those can be cited."""

from __future__ import annotations

from collections.abc import Iterable

from recordagent.tools.base import SourceRef

__all__ = ["EvidenceBook"]


class EvidenceBook:
    """Citable ids of one run, each standing for one or more record rows.

    A chunk id is citable once a tool or retrieval returned it, and so is its document's id; a
    passage id (a block of lab values, a whole document in full context) stands for the rows it
    groups.
    """

    def __init__(self) -> None:
        self._refs: dict[str, list[SourceRef]] = {}

    def __len__(self) -> int:
        return len(self._refs)

    def __contains__(self, citable: object) -> bool:
        return isinstance(citable, str) and _clean(citable) in self._refs

    def add(self, refs: Iterable[SourceRef]) -> None:
        """Make each row citable by its id (and a chunk's document by the document id)."""
        for ref in refs:
            self._refs.setdefault(ref.id, [ref])
            if ref.document_id is not None:
                self._refs.setdefault(
                    ref.document_id, [SourceRef(kind="document", id=ref.document_id)]
                )

    def add_group(self, citable: str, refs: Iterable[SourceRef]) -> None:
        """Make ``citable`` (a passage id) stand for ``refs``."""
        self._refs[citable] = list(refs)

    def resolve(self, cited: Iterable[str]) -> tuple[list[SourceRef], list[str]]:
        """The rows behind ``cited`` (de-duplicated, in order) and the ids never shown."""
        found: dict[tuple[str, str], SourceRef] = {}
        unknown: list[str] = []
        for raw in cited:
            citable = _clean(raw)
            refs = self._refs.get(citable)
            if refs is None:
                unknown.append(raw)
                continue
            for ref in refs:
                found.setdefault((ref.kind, ref.id), ref)
        return list(found.values()), unknown


def _clean(citable: str) -> str:
    """An id as models tend to write it, without brackets, quotes or spaces."""
    return citable.strip().strip("[]()'\"` ").strip()
