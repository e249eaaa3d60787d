"""EvalItem: one question about one patient, as every runner receives it."""

from __future__ import annotations

import datetime as dt
import hashlib

from pydantic import BaseModel, ConfigDict, Field

from recordagent.questions.answers import AnswerSpec, ScoringSpec

__all__ = ["EvalItem"]


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
        """An item for a question asked directly (interactive sessions, examples)."""
        digest = hashlib.sha256(f"{patient_id}\0{question}".encode()).hexdigest()[:10]
        return cls(
            id=f"ad-hoc/{patient_id}/{digest}",
            patient_id=patient_id,
            question=question,
            answer=answer or AnswerSpec(type="text"),
            as_of=as_of,
        )
