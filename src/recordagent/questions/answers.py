"""Answer specs: what kind of value a question asks for, and the final-answer schema of it.

Every runner ends with the same structured answer for a given :class:`AnswerSpec` — the typed
``value``, a ``status`` (answered, or not enough evidence in the record), a short ``text`` and
the ``citations`` it rests on — so that the four runners can be compared item by item. What
differs between answer types is one entry each of :data:`.answer_types.ANSWER_KINDS`.

The final-answer schema is bounded — at most :data:`MAX_CITATIONS` citations of at most
:data:`MAX_ID_CHARS` characters, :data:`MAX_TEXT_CHARS` of text, a bounded list or text value —
and the bounds go out with the JSON schema (``maxItems``, ``maxLength``), so that a server that
enforces the schema by grammar (llama.cpp) stops a small model before it fills ``max_tokens``.
A server that does not enforce them may still send more: the tidy step keeps the first
citations and cuts the text, rather than failing an answer over its length.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from recordagent.errors import UserError, validation_problems
from recordagent.questions.answer_types import AnswerType, answer_kind, type_summary

__all__ = [
    "MAX_CITATIONS",
    "MAX_ID_CHARS",
    "MAX_LIST_ITEMS",
    "MAX_TEXT_CHARS",
    "AnswerSpec",
    "FinalAnswerBase",
    "ScoringSpec",
    "coerce_value",
    "final_answer_model",
    "normalise_value",
    "answer_spec",
    "scoring_problems",
]


MAX_CITATIONS = 20
"""Citations a final answer may carry."""
MAX_ID_CHARS = 128
"""Characters of one cited id (record ids are shorter)."""
MAX_TEXT_CHARS = 1_500
"""Characters of a final answer's text, and of a free-text value."""
MAX_LIST_ITEMS = 50
"""Items of a list value."""
_MAX_LIST_ITEM_CHARS = 300


class AnswerSpec(BaseModel):
    """What a question's answer looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: AnswerType = Field(description=type_summary())
    unit: str | None = Field(
        default=None, description="For numbers: the unit the answer is given in, e.g. 'g/dL'."
    )
    allowed: tuple[str, ...] | None = Field(
        default=None,
        description="For categories (and optionally lists): the values an answer may take.",
    )
    description: str | None = Field(
        default=None, description="What the value means, shown to the model with the schema."
    )

    @model_validator(mode="after")
    def _allowed_fits_type(self) -> AnswerSpec:
        kind = answer_kind(self.type)
        if kind.allowed == "required" and not self.allowed:
            raise ValueError(f"a {self.type} answer needs its allowed values")
        if self.allowed is not None and kind.allowed == "refused":
            raise ValueError(f"allowed values apply to categories and lists, not {self.type}")
        if self.unit is not None and not kind.unit:
            raise ValueError(f"a unit applies to numbers, not {self.type}")
        return self


def answer_spec(kind: str, allowed: Sequence[str] | None = None) -> AnswerSpec:
    """The answer spec of ``kind`` (date, number, …, category with its ``allowed`` values).

    Raises:
        UserError: An unknown type, or allowed values missing or out of place (what is wrong).
    """
    fields: dict[str, object] = {"type": kind}
    if allowed is not None:
        fields["allowed"] = tuple(allowed)
    try:
        return AnswerSpec.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, located=False))
        raise UserError(
            f"answer {kind!r}: {problems} (types: date, number, count, boolean, category and "
            "list with their allowed values, text)"
        ) from None


class ScoringSpec(BaseModel):
    """How an answer is compared with its label: tolerances, synonyms (never shown to a model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance_days: int = Field(
        default=0, ge=0, description="Dates: a difference of at most this many days matches."
    )
    abs_tol: float | None = Field(
        default=None, ge=0, description="Numbers: an absolute difference this small matches."
    )
    rel_tol: float | None = Field(
        default=None, ge=0, description="Numbers: a relative difference this small matches."
    )
    synonyms: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Categories and lists: other spellings of each allowed value.",
    )
    list_match: Literal["exact", "f1"] = Field(
        default="exact", description="Lists: exact set equality, or F1 of the sets."
    )


_SCORING_SCOPE = {
    "tolerance_days": "applies to dates",
    "abs_tol": "applies to numbers",
    "rel_tol": "applies to numbers",
    "synonyms": "apply to categories and lists",
    "list_match": "applies to lists",
}
"""Each scoring option, and the answer types it applies to as a problem message says them."""


def scoring_problems(answer: AnswerSpec, scoring: ScoringSpec) -> list[str]:
    """What in ``scoring`` does not apply to an answer of this type (field: message)."""
    applies = answer_kind(answer.type).scoring
    problems = []
    for name, scope in _SCORING_SCOPE.items():
        default = ScoringSpec.model_fields[name].get_default(call_default_factory=True)
        if getattr(scoring, name) == default:
            continue
        if name not in applies:
            problems.append(f"scoring.{name}: {scope}, not {answer.type}")
        elif name == "synonyms" and answer.allowed is not None:
            unknown = sorted(set(scoring.synonyms) - set(answer.allowed))
            if unknown:
                problems.append(f"scoring.synonyms: not allowed values: {', '.join(unknown)}")
    return problems


def _value_field(spec: AnswerSpec) -> tuple[Any, Any]:
    """The pydantic type and field of ``value`` for ``spec``."""
    kind = answer_kind(spec.type)
    what = spec.description or "The answer."
    value_type = kind.python_type(spec.allowed)
    shape = kind.shape(spec.unit, spec.allowed)
    if not kind.nullable:
        return value_type, Field(description=f"{what} {shape}")
    none = " null when the record does not say (status insufficient_evidence)."
    return value_type | None, Field(description=f"{what} {shape};{none}", ge=kind.minimum)


class FinalAnswerBase(BaseModel):
    """Base of every final-answer schema: tidies what models write before the strict check.

    A category in another case, a date with a time, '1.5 g/dL' for a number in g/dL, a null
    list or text, citations as numbers or objects: each is a fair answer in a loose form, and
    failing the item for it would measure formatting, not reading.
    """

    model_config = ConfigDict(extra="ignore")
    answer_spec: ClassVar[AnswerSpec]

    @model_validator(mode="before")
    @classmethod
    def _tidy(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        tidy = dict(data)
        status = tidy.get("status")
        if isinstance(status, str):
            tidy["status"] = status.strip().lower().replace(" ", "_")
        tidy["value"] = normalise_value(cls.answer_spec, tidy.get("value"))
        if tidy.get("text") is None:
            tidy["text"] = ""
        elif isinstance(tidy["text"], str):
            tidy["text"] = tidy["text"][:MAX_TEXT_CHARS]
        cited = [c for c in _citation_ids(tidy.get("citations")) if len(c) <= MAX_ID_CHARS]
        tidy["citations"] = cited[:MAX_CITATIONS]
        return tidy


def normalise_value(spec: AnswerSpec, raw: Any) -> Any:
    """``raw`` in the form the strict type expects, where a loose form is unambiguous."""
    kind = answer_kind(spec.type)
    if raw is None:
        return kind.empty
    if isinstance(raw, str):
        raw = raw.strip()
        if raw.lower() in _NULL_WORDS:
            return kind.empty
    return kind.tidy(raw, spec.unit, spec.allowed)


_NULL_WORDS = frozenset({"", "null", "none", "n/a", "unknown"})


def _citation_ids(raw: Any) -> list[str]:
    """Cited ids as strings: a lone id becomes a list; objects give their 'id'; others go."""
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str | int) else raw
    if not isinstance(items, list):
        return []
    ids = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("id")
        if isinstance(item, str | int) and not isinstance(item, bool):
            ids.append(str(item))
    return ids


def final_answer_model(spec: AnswerSpec) -> type[BaseModel]:
    """The structured final answer every runner asks the model for, typed by ``spec``.

    One class per distinct spec: an evaluation asks thousands of questions of a few dozen
    specs, and building a pydantic model (and later its JSON schema) costs milliseconds.
    """
    return _final_answer_model(spec.model_dump_json())


@functools.lru_cache(maxsize=1024)
def _final_answer_model(spec_json: str) -> type[BaseModel]:
    spec = AnswerSpec.model_validate_json(spec_json)
    value_type, value_field = _bounded(spec, *_value_field(spec))
    fields: dict[str, Any] = dict(
        status=(
            Literal["answered", "insufficient_evidence"],
            Field(
                description="'answered' when the record supports an answer; "
                "'insufficient_evidence' when it does not say."
            ),
        ),
        value=(value_type, value_field),
        text=(
            str,
            Field(
                max_length=MAX_TEXT_CHARS,
                description="The answer in one or two sentences, with the reasoning.",
            ),
        ),
        citations=(
            list[Annotated[str, Field(max_length=MAX_ID_CHARS)]],
            Field(
                max_length=MAX_CITATIONS,
                description="Ids of the passages, documents, lab values or events the answer "
                "rests on, exactly as they were shown (e.g. 'D-0042:3', 'L-17', 'E-5'); the "
                f"few that matter most, at most {MAX_CITATIONS}.",
            ),
        ),
    )
    model: type[FinalAnswerBase] = create_model("FinalAnswer", __base__=FinalAnswerBase, **fields)
    model.answer_spec = spec
    return model


def _bounded(spec: AnswerSpec, value_type: Any, value_field: Any) -> tuple[Any, Any]:
    """``value``'s type and field with the final answer's bounds: text and lists are bounded.

    Only the model's answer is bounded: values read back from logs and labels are not.
    """
    kind = answer_kind(spec.type)
    if kind.name == "text":
        return Annotated[str, Field(max_length=MAX_TEXT_CHARS)] | None, value_field
    if kind.name == "list":
        item: Any = getattr(value_type, "__args__", (str,))[0]
        if item is str:
            item = Annotated[str, Field(max_length=_MAX_LIST_ITEM_CHARS)]
        bounded = Field(max_length=MAX_LIST_ITEMS, description=value_field.description)
        return list[item], bounded
    return value_type, value_field


@functools.lru_cache(maxsize=1024)
def _value_holder(spec_json: str) -> type[BaseModel]:
    # Every answer, score and log record read back coerces a value: one model per spec, not
    # one per call (building a pydantic model costs about 0.3 ms).
    value_type, value_field = _value_field(AnswerSpec.model_validate_json(spec_json))
    holder: type[BaseModel] = create_model("Value", value=(value_type, value_field))
    return holder


def coerce_value(spec: AnswerSpec, raw: Any) -> Any:
    """``raw`` as the typed value of ``spec`` (a date, float, int, bool, str or list of str).

    Raises:
        ValueError: ``raw`` is not a value of this type (the message says why).
    """
    raw = normalise_value(spec, raw)
    if raw is None:
        return None
    holder = _value_holder(spec.model_dump_json())
    try:
        return getattr(holder.model_validate({"value": raw}), "value")  # noqa: B009
    except ValidationError as exc:
        problem = "; ".join(validation_problems(exc, located=False))
        raise ValueError(f"{raw!r} is not a {spec.type} answer: {problem}") from exc
