"""EvalItem, one question about one patient; Question, one question for many; items files.

An items file is JSONL, one EvalItem a line: ``recordagent questions sample`` and
``questions silver`` write it (:func:`write_items`), ``eval`` and ``audit`` read it
(:func:`read_items`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recordagent.errors import UserError, validation_problems
from recordagent.paths import read_text, write_text
from recordagent.questions.answers import AnswerSpec, ScoringSpec

__all__ = ["EvalItem", "Question", "read_items", "write_items"]


class EvalItem(BaseModel):
    """A question instantiated for one patient (templates make these; so can a person)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable item id, e.g. '<template>/<patient>'.")
    patient_id: str = Field(description="The patient the question is about.")
    question: str = Field(description="The question text, slots filled in.")
    answer: AnswerSpec = Field(description="What kind of answer is expected.")
    template_id: str | None = Field(default=None, description="The template it came from.")
    level: int | None = Field(
        default=None,
        ge=1,
        le=3,
        description="1 fact retrieval, 2 temporal reasoning / aggregation, 3 criteria synthesis.",
    )
    as_of: dt.date | None = Field(
        default=None, description="Answer as the record stood on this day (None: the whole record)."
    )
    checklist: tuple[str, ...] = Field(
        default=(),
        description="For criteria questions: the criteria to check, each an evidence need.",
    )
    scoring: ScoringSpec = Field(
        default_factory=ScoringSpec,
        description="How the answer is compared with its label (not shown to the model).",
    )

    @classmethod
    def ad_hoc(
        cls,
        patient_id: str,
        question: str,
        answer: AnswerSpec | None = None,
        *,
        as_of: dt.date | None = None,
    ) -> EvalItem:
        """An item for a question asked directly (interactive sessions, notebooks, examples).

        Its id, ``ad-hoc/<patient>/<digest>``, is a digest of everything the item asks: the
        same question asked for another answer type or as of another day is another item (a
        run log holds each once), and the same ask made twice is the same item.
        """
        spec = answer or AnswerSpec(type="text")
        asked = json.dumps(
            [patient_id, question, spec.model_dump(mode="json"), as_of and as_of.isoformat()],
            sort_keys=True,
        )
        digest = hashlib.sha256(asked.encode()).hexdigest()[:12]
        return cls(
            id=f"ad-hoc/{patient_id}/{digest}",
            patient_id=patient_id,
            question=question,
            answer=spec,
            as_of=as_of,
        )


class Question(BaseModel):
    """A question to ask of every patient: its words, the answer it expects, and as of when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, description="The question, in words.")
    answer: AnswerSpec = Field(
        default_factory=lambda: AnswerSpec(type="text"),
        description="What kind of answer is expected: type, unit, allowed values.",
    )
    as_of: dt.date | None = Field(
        default=None, description="Answer as the record stood on this day (None: all of it)."
    )

    def item(self, patient_id: str) -> EvalItem:
        """The item asking this question of ``patient_id``.

        Its ad-hoc id is a digest of the ask: the same ask gives the same id, another answer
        type or as-of day another.
        """
        return EvalItem.ad_hoc(patient_id, self.text, self.answer, as_of=self.as_of)


def read_items(path: Path) -> list[EvalItem]:
    """The items of a JSONL file, one EvalItem a line (blank lines skipped).

    Raises:
        UserError: The file is missing, a folder, unreadable or not UTF-8, a line is not a
            valid item (file, line, field), two items share an id (file, line), or the file
            holds no item.
    """
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, line in enumerate(read_text(path, "items file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = EvalItem.model_validate_json(line)
        except ValidationError as exc:
            first = validation_problems(exc, whole="(line)")[0]
            raise UserError(f"items file {path}, line {number}: {first}") from exc
        if item.id in seen:
            raise UserError(f"items file {path}, line {number}: item id {item.id!r} repeated")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise UserError(f"items file {path} has no items")
    return items


def write_items(path: Path, items: Iterable[EvalItem]) -> None:
    """Write ``items`` to ``path`` as :func:`read_items` reads them (its folder made if missing).

    Raises:
        UserError: The path is a folder, or the file cannot be written.
    """
    text = "".join(json.dumps(item.model_dump(mode="json")) + "\n" for item in items)
    write_text(path, text, "items file")
