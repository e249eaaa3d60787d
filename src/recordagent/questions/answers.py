"""Answer types: what kind of value a question asks for, and the final-answer schema of it.

Every runner ends with the same structured answer for a given :class:`AnswerSpec` — the typed
``value``, a ``status`` (answered, or not enough evidence in the record), a short ``text`` and
the ``citations`` it rests on — so that the four runners can be compared item by item.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

__all__ = [
    "AnswerSpec",
    "AnswerType",
    "ScoringSpec",
    "coerce_value",
    "final_answer_model",
    "normalise_value",
]

AnswerType = Literal["date", "number", "count", "boolean", "category", "list", "text"]


class AnswerSpec(BaseModel):
    """What a question's answer looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: AnswerType = Field(
        description="date (a day), number (with unit), count (a whole number), boolean, "
        "category (one of the allowed values), list (several values), or text."
    )
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
        if self.type == "category" and not self.allowed:
            raise ValueError("a category answer needs its allowed values")
        if self.allowed is not None and self.type not in {"category", "list"}:
            raise ValueError(f"allowed values apply to categories and lists, not {self.type}")
        if self.unit is not None and self.type != "number":
            raise ValueError(f"a unit applies to numbers, not {self.type}")
        return self


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


def _value_field(spec: AnswerSpec) -> tuple[Any, Any]:
    """The pydantic type and field of ``value`` for ``spec``."""
    what = spec.description or "The answer."
    none = " null when the record does not say (status insufficient_evidence)."
    if spec.type == "date":
        return dt.date | None, Field(description=f"{what} A day as YYYY-MM-DD;{none}")
    if spec.type == "number":
        unit = f" in {spec.unit}" if spec.unit else ""
        return float | None, Field(description=f"{what} A number{unit};{none}")
    if spec.type == "count":
        return int | None, Field(ge=0, description=f"{what} A whole number ≥ 0;{none}")
    if spec.type == "boolean":
        return bool | None, Field(description=f"{what} true or false;{none}")
    if spec.type == "category":
        assert spec.allowed is not None
        choice = _literal(spec.allowed)
        listed = ", ".join(spec.allowed)
        return choice | None, Field(description=f"{what} One of: {listed};{none}")
    if spec.type == "list":
        item: Any = _literal(spec.allowed) if spec.allowed else str
        listed = f" Values from: {', '.join(spec.allowed)}." if spec.allowed else ""
        return list[item], Field(
            description=f"{what} Every value that applies;{listed} [] if none."
        )
    return str | None, Field(description=f"{what} A short free-text answer;{none}")


def _literal(values: tuple[str, ...]) -> Any:
    """``Literal[values...]`` built at run time (templates are data, not code)."""
    return Literal.__getitem__(values)


class _FinalAnswerBase(BaseModel):
    """Tidies what models plausibly write before the strict check.

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
        tidy["citations"] = _citation_ids(tidy.get("citations"))
        return tidy


def normalise_value(spec: AnswerSpec, raw: Any) -> Any:
    """``raw`` in the form the strict type expects, where a loose form is unambiguous."""
    if raw is None:
        return [] if spec.type == "list" else None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw.lower() in {"", "null", "none", "n/a", "unknown"}:
            return [] if spec.type == "list" else None
    if spec.type == "date" and isinstance(raw, str) and _DATE_PREFIX.match(raw):
        return raw[:10]
    if spec.type in {"number", "count"} and isinstance(raw, str):
        match = _NUMBER_WITH_UNIT.match(raw)
        if match and (not match["unit"] or _same_unit(match["unit"], spec.unit)):
            return match["number"]
    if spec.type == "category" and isinstance(raw, str):
        return _allowed_form(raw, spec.allowed)
    if spec.type == "list":
        items = [raw] if isinstance(raw, str) else raw
        if isinstance(items, list):
            return [
                _allowed_form(i.strip(), spec.allowed) if isinstance(i, str) else i for i in items
            ]
    if spec.type == "text" and not isinstance(raw, str):
        return str(raw)
    return raw


_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?$")
_NUMBER_WITH_UNIT = re.compile(r"^(?P<number>[-+]?\d+(?:\.\d+)?)\s*(?P<unit>[^\d\s].*)?$")


def _same_unit(written: str, expected: str | None) -> bool:
    return expected is not None and written.strip().lower() == expected.strip().lower()


def _allowed_form(value: str, allowed: tuple[str, ...] | None) -> str:
    """The allowed value ``value`` names, ignoring case; else ``value`` (to be refused)."""
    for option in allowed or ():
        if option.lower() == value.lower():
            return option
    return value


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
    value_type, value_field = _value_field(spec)
    fields: dict[str, Any] = dict(
        status=(
            Literal["answered", "insufficient_evidence"],
            Field(
                description="'answered' when the record supports an answer; "
                "'insufficient_evidence' when it does not say."
            ),
        ),
        value=(value_type, value_field),
        text=(str, Field(description="The answer in one or two sentences, with the reasoning.")),
        citations=(
            list[str],
            Field(
                description="Ids of the passages, documents, lab values or events the answer "
                "rests on, exactly as they were shown (e.g. 'D-0042:3', 'L-17', 'E-5')."
            ),
        ),
    )
    model: type[_FinalAnswerBase] = create_model("FinalAnswer", __base__=_FinalAnswerBase, **fields)
    model.answer_spec = spec
    return model


def coerce_value(spec: AnswerSpec, raw: Any) -> Any:
    """``raw`` as the typed value of ``spec`` (a date, float, int, bool, str or list of str).

    Raises:
        ValueError: ``raw`` is not a value of this type (the message says why).
    """
    raw = normalise_value(spec, raw)
    if raw is None:
        return None
    value_type, value_field = _value_field(spec)
    holder = create_model("Value", value=(value_type, value_field))
    try:
        return getattr(holder.model_validate({"value": raw}), "value")  # noqa: B009
    except ValidationError as exc:
        problem = "; ".join(err["msg"] for err in exc.errors())
        raise ValueError(f"{raw!r} is not a {spec.type} answer: {problem}") from exc
