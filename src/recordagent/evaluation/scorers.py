"""Scorers: whether an answer matches its reference label, and one line saying why.

Every :class:`Score` is correct, incorrect or ungraded, and its explanation names both values,
the answer first: ``"2020-06-15 vs 2020-06-17: 2 days apart, tolerance 3"``. Ungraded means the
comparison could not be made fairly (no reference, free text without a judge, a unit the lab
catalogue cannot convert, a reference label that is not a value of the item's type); it is
reported, never counted as right or wrong.

Rules per answer type (tolerances and synonyms come from the item's :class:`ScoringSpec`):

* date: ISO strings or dates; correct when at most ``tolerance_days`` apart.
* number: correct when within ``abs_tol`` or within ``rel_tol`` of the reference (either
  suffices); with neither set, equal after rounding to 1e-9. A string with a unit other than
  the item's is converted only when the item's unit is a canonical unit of the packaged lab
  catalogue and every analyte there converts that unit by the same factor; otherwise ungraded.
* count: exact. boolean: true/false, or 'yes'/'no'/'true'/'false' strings.
* category: case- and spacing-insensitive, with every synonym mapped to its value (so answer
  and reference may each use any spelling).
* list: sets after category normalisation. ``list_match="exact"``: the sets are equal.
  ``list_match="f1"``: correct when the F1 of the sets is at least 0.5 (F1 = 1 would be the
  same as exact); the F1 is in the explanation.
* text: ungraded, unless :func:`score_answer` is given a judge verdict.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from recordagent.evaluation.judge import JudgeResult, JudgeVerdict
from recordagent.questions.answer_types import AnswerType, answer_kind
from recordagent.questions.answers import ScoringSpec, coerce_value, normalise_value
from recordagent.questions.items import EvalItem
from recordagent.runners import Answer
from recordagent.tools.catalogue import packaged_lab_catalogue
from recordagent.tools.units import same_unit, unit_factor

__all__ = [
    "F1_THRESHOLD",
    "SCORERS",
    "Reference",
    "Score",
    "ScoreState",
    "score_answer",
    "score_value",
    "values_match",
]

ScoreState = Literal["correct", "incorrect", "ungraded"]

F1_THRESHOLD = 0.5
"""Lists scored with ``list_match="f1"`` are correct from this F1 on."""

_FLOAT_SLACK = 1e-9
"""Added to tolerances so that 1.6 vs 1.5 with abs_tol 0.1 is not refused by float rounding."""

_SHOWN_CHARS = 60


class Score(BaseModel):
    """The grade of one answer against its reference."""

    model_config = ConfigDict(frozen=True)

    state: ScoreState = Field(
        description="correct, incorrect, or ungraded (not counted either way, reported)."
    )
    explanation: str = Field(
        description="One line naming both values, the answer first: '<answer> vs <reference>: why'."
    )
    scorer: str = Field(
        description="The rule that decided: the answer type ('date', 'number', 'count', "
        "'boolean', 'category', 'list-exact', 'list-f1', 'text', 'judge', 'judge-mock') or a "
        "rule before it ('no-reference', 'failed', 'record-silent', 'no-value')."
    )

    @property
    def correct(self) -> bool | None:
        """True or False when graded; None when ungraded."""
        return None if self.state == "ungraded" else self.state == "correct"


class Reference(Protocol):
    """What an answer is scored against: the item's reference value (None: the record is silent).

    A label of the evaluation layer (``ReferenceLabel``) is one; the scorers need nothing else
    of it, so they do not depend on where labels come from.
    """

    @property
    def item_id(self) -> str:
        """The item the reference belongs to."""
        ...

    @property
    def value(self) -> Any:
        """The reference value; None when the record does not say."""
        ...


class _NotAValue(ValueError):
    """The raw value is not a value of the item's answer type."""


class _Unconvertible(ValueError):
    """A number in a unit this scorer will not convert (the message says why)."""


def score_value(item: EvalItem, predicted: Any, reference: Any) -> Score:
    """Compare a predicted value with a reference value under ``item``'s scoring rules.

    ``None`` on either side means "the record does not say" (``[]`` too, for lists). A
    predicted value that is not a value of the type is incorrect; a reference that is not one
    is ungraded (the label needs fixing). Free text is always ungraded here.
    """
    return SCORERS[item.answer.type](item, predicted, reference)


def values_match(item: EvalItem | None, a: Any, b: Any) -> bool:
    """Whether two label values say the same thing (annotator agreement).

    With an item: its tolerances and synonyms, in either direction (relative tolerance is
    taken against either value); lists must be equal as sets whatever ``list_match`` says (an
    F1 threshold grades answers, it does not make two annotators agree); free text, and
    values that are not of the item's type, must be equal after normalisation. Without an
    item (``None``): equal after normalisation (case, spacing, number rounding, list order).
    """
    if item is None or answer_kind(item.answer.type).judged:
        return bool(_plain(a) == _plain(b))
    if item.answer.type == "list":
        exact = item.model_copy(
            update={"scoring": item.scoring.model_copy(update={"list_match": "exact"})}
        )
        score = score_value(exact, a, b)
    else:
        score = score_value(item, a, b)
        if score.state == "incorrect":
            score = score_value(item, b, a)
    if score.state == "ungraded":
        return bool(_plain(a) == _plain(b))
    return score.state == "correct"


def score_answer(
    item: EvalItem,
    answer: Answer,
    reference: Reference | None,
    *,
    judge_verdict: JudgeVerdict | JudgeResult | None = None,
) -> Score:
    """Grade a runner's answer against the item's reference label.

    In order: no reference label → ungraded; status failed → incorrect; the reference says
    the record is silent (``value`` None) → correct iff the answer gives no value (None or
    ``[]``) or says insufficient_evidence; an answer without a value → incorrect; free text →
    the judge verdict if one is given, else ungraded; otherwise :func:`score_value`. A
    truncated answer is scored on the value it has.

    Args:
        item: The item answered.
        answer: The runner's answer to it.
        reference: The item's reference label (from ``reference_labels``: any object with
            the item id and the reference value), or None.
        judge_verdict: For free-text items only: a model judge's verdict (a
            :class:`JudgeResult` keeps whether the judge was a mock; a bare verdict does not).

    Raises:
        ValueError: A judge verdict for a structured answer type (those are scored by rule),
            or the answer or reference belongs to another item.
    """
    if answer.item_id != item.id:
        raise ValueError(f"answer is for item {answer.item_id!r}, not {item.id!r}")
    if reference is not None and reference.item_id != item.id:
        raise ValueError(f"reference label is for item {reference.item_id!r}, not {item.id!r}")
    judged = answer_kind(item.answer.type).judged
    if judge_verdict is not None and not judged:
        raise ValueError(
            f"a judge verdict grades free-text answers only; item {item.id!r} has a "
            f"{item.answer.type} answer, which is scored by rule"
        )
    value = answer.value
    if reference is None:
        return Score(
            state="ungraded",
            explanation=f"{_show(value)} vs nothing: no reference label",
            scorer="no-reference",
        )
    if answer.status == "failed":
        return Score(
            state="incorrect",
            explanation=f"no answer (failed) vs {_show(reference.value)}",
            scorer="failed",
        )
    no_value = value is None or value == []
    if reference.value is None:
        if no_value or answer.status == "insufficient_evidence":
            return Score(
                state="correct",
                explanation=f"{_show_status(answer)} vs no value: the record does not say, "
                "and the answer says so",
                scorer="record-silent",
            )
        return Score(
            state="incorrect",
            explanation=f"{_show(value)} vs no value: the record does not say, but the answer "
            "gives a value",
            scorer="record-silent",
        )
    if value is None:
        return Score(
            state="incorrect",
            explanation=f"{_show_status(answer)} vs {_show(reference.value)}: the answer gives "
            "no value",
            scorer="no-value",
        )
    if judged:
        score = _judged(value, reference.value, judge_verdict)
    else:
        score = score_value(item, value, reference.value)
    if answer.status == "truncated":
        score = score.model_copy(
            update={"explanation": score.explanation + " (truncated run, scored on its value)"}
        )
    return score


def _judged(value: Any, reference: Any, verdict: JudgeVerdict | JudgeResult | None) -> Score:
    """A free-text answer graded by a judge verdict, or ungraded without one."""
    head = f"{_show(value)} vs {_show(reference)}"
    if verdict is None:
        return Score(
            state="ungraded", explanation=f"{head}: free text, no judge verdict", scorer="text"
        )
    label = "judge"
    if isinstance(verdict, JudgeResult):
        mock = verdict.mock
        label = f"judge {verdict.model}" + (" (MOCK, not a real judgment)" if mock else "")
        if verdict.verdict is None:
            return Score(
                state="ungraded",
                explanation=f"{head}: {label} gave no verdict ({_one_line(verdict.error or '')})",
                scorer="judge-mock" if mock else "judge",
            )
        scorer = "judge-mock" if mock else "judge"
        decided = verdict.verdict
    else:
        scorer = "judge"
        decided = verdict
    # A verdict read from a run log has no rationale (logs keep no judge wording).
    said = _one_line(decided.rationale) or ("correct" if decided.correct else "incorrect")
    return Score(
        state="correct" if decided.correct else "incorrect",
        explanation=f"{head}: {label}: {said}",
        scorer=scorer,
    )


# --- parsing: raw value → (typed value, how to show it), None for "no value" ---------------

_T = TypeVar("_T")
_Parser = Callable[[EvalItem, Any], tuple[_T, str] | None]


def _compare(
    item: EvalItem,
    predicted: Any,
    reference: Any,
    parse: _Parser[_T],
    match: Callable[[EvalItem, tuple[_T, str], tuple[_T, str]], tuple[bool, str]],
    scorer: str,
) -> Score:
    head = f"{_show(predicted)} vs {_show(reference)}"
    kind = item.answer.type
    try:
        ref = parse(item, reference)
    except _Unconvertible as exc:
        return Score(state="ungraded", explanation=f"{head}: {exc}", scorer=scorer)
    except _NotAValue as exc:
        return Score(
            state="ungraded",
            explanation=f"{head}: the reference label is not a {kind} ({exc}); fix the label",
            scorer=scorer,
        )
    try:
        pred = parse(item, predicted)
    except _Unconvertible as exc:
        return Score(state="ungraded", explanation=f"{head}: {exc}", scorer=scorer)
    except _NotAValue as exc:
        return Score(
            state="incorrect",
            explanation=f"{head}: the answer is not a {kind} ({exc})",
            scorer=scorer,
        )
    if pred is None or ref is None:
        if pred is None and ref is None:
            return Score(
                state="correct", explanation=f"{head}: neither gives a value", scorer=scorer
            )
        why = "the answer gives no value" if pred is None else "the record does not say"
        return Score(state="incorrect", explanation=f"{head}: {why}", scorer=scorer)
    ok, why = match(item, pred, ref)
    return Score(
        state="correct" if ok else "incorrect",
        explanation=f"{pred[1]} vs {ref[1]}: {why}",
        scorer=scorer,
    )


def _coerced(item: EvalItem, raw: Any) -> Any:
    try:
        return coerce_value(item.answer, raw)
    except ValueError as exc:
        raise _NotAValue(str(exc)) from exc


def _date(item: EvalItem, raw: Any) -> tuple[dt.date, str] | None:
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    elif not isinstance(raw, str | dt.date | None):
        # pydantic would read a number as a Unix timestamp; no label or answer means that.
        raise _NotAValue(f"{raw!r} is not a date (write YYYY-MM-DD)")
    value = _coerced(item, raw)
    return None if value is None else (value, value.isoformat())


def _match_dates(
    item: EvalItem, pred: tuple[dt.date, str], ref: tuple[dt.date, str]
) -> tuple[bool, str]:
    apart = abs((pred[0] - ref[0]).days)
    tolerance = item.scoring.tolerance_days
    if apart == 0:
        return True, "same day"
    return (
        apart <= tolerance,
        f"{apart} day{'s' if apart != 1 else ''} apart, tolerance {tolerance}",
    )


_NUMBER_UNIT = re.compile(
    r"^(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>\S.*)?$"
)


def _number(item: EvalItem, raw: Any) -> tuple[float, str] | None:
    unit = item.answer.unit
    suffix = f" {unit}" if unit else ""
    raw = normalise_value(item.answer, raw)
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise _NotAValue(f"{raw!r} is a boolean, not a number")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise _NotAValue(f"{raw!r} is not a finite number")
        return float(raw), f"{_num(raw)}{suffix}"
    if not isinstance(raw, str):
        raise _NotAValue(f"{raw!r} is not a number")
    match = _NUMBER_UNIT.match(raw.strip())
    if match is None:
        raise _NotAValue(f"{raw!r} is not a number")
    number = float(match["number"])
    written = match["unit"]
    if written is None or (unit is not None and _unit_key(written) == _unit_key(unit)):
        return number, f"{_num(number)}{suffix}"
    converted = _convert(number, written.strip(), unit)
    return converted, f"{_num(number)} {written.strip()} (= {_num(converted)}{suffix})"


def _convert(number: float, written: str, unit: str | None) -> float:
    """``number`` in ``written`` units expressed in the item's ``unit``.

    A conversion that holds for any analyte (g/L → g/dL, µmol/L → mmol/L) is made by UCUM.
    Otherwise every catalogue analyte whose canonical unit is ``unit`` and that converts
    ``written`` (by molar mass, valence or a hand factor) must agree: the scorer does not know
    which analyte a question is about, so an ambiguous conversion is refused, not guessed.
    """
    if unit is None:
        raise _Unconvertible(
            f"the value has unit '{written}' but the question asks for a number without a unit"
        )
    factor = unit_factor(written, unit)
    if factor is not None:
        return number * factor
    analytes = [a for a in packaged_lab_catalogue().analytes if same_unit(a.unit, unit)]
    if not analytes:
        raise _Unconvertible(
            f"cannot convert {written} to {unit}: {unit} is not a lab catalogue unit"
        )
    results: dict[float, list[str]] = {}
    for analyte in analytes:
        value = analyte.to_canonical(number, written)
        if value is not None:
            results.setdefault(round(value, 9), []).append(analyte.name)
    if not results:
        raise _Unconvertible(f"the lab catalogue has no conversion from {written} to {unit}")
    if len(results) > 1:
        names = sorted(n for group in results.values() for n in group)
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        raise _Unconvertible(
            f"{written} converts to {unit} differently by analyte ({shown}); not guessed"
        )
    return next(iter(results))


def _unit_key(unit: str) -> str:
    # Same spelling rules as the lab catalogue: case, spaces and the micro sign do not matter.
    return unit.strip().lower().replace("μ", "u").replace("µ", "u").replace(" ", "")


def _match_numbers(
    item: EvalItem, pred: tuple[float, str], ref: tuple[float, str]
) -> tuple[bool, str]:
    scoring = item.scoring
    diff = abs(pred[0] - ref[0])
    if scoring.abs_tol is None and scoring.rel_tol is None:
        if round(pred[0], 9) == round(ref[0], 9):
            return True, "equal"
        return False, f"differ by {_num(diff)}, exact match required"
    within = (scoring.abs_tol is not None and diff <= scoring.abs_tol + _FLOAT_SLACK) or (
        scoring.rel_tol is not None and diff <= scoring.rel_tol * abs(ref[0]) + _FLOAT_SLACK
    )
    verdict = "within" if within else "outside"
    return within, f"differ by {_num(diff)}, {verdict} tolerance {_tolerance(scoring)}"


def _tolerance(scoring: ScoringSpec) -> str:
    parts = []
    if scoring.abs_tol is not None:
        parts.append(f"±{_num(scoring.abs_tol)}")
    if scoring.rel_tol is not None:
        parts.append(f"±{_num(scoring.rel_tol * 100)}%")
    return " or ".join(parts)


def _count(item: EvalItem, raw: Any) -> tuple[int, str] | None:
    if isinstance(raw, bool):
        raise _NotAValue(f"{raw!r} is a boolean, not a count")
    value = _coerced(item, raw)
    return None if value is None else (value, str(value))


def _match_counts(item: EvalItem, pred: tuple[int, str], ref: tuple[int, str]) -> tuple[bool, str]:
    if pred[0] == ref[0]:
        return True, "equal"
    return False, f"differ by {abs(pred[0] - ref[0])}, counts must be equal"


def _boolean(item: EvalItem, raw: Any) -> tuple[bool, str] | None:
    value = _coerced(item, raw)
    return None if value is None else (value, "true" if value else "false")


def _match_booleans(
    item: EvalItem, pred: tuple[bool, str], ref: tuple[bool, str]
) -> tuple[bool, str]:
    return (True, "equal") if pred[0] == ref[0] else (False, "differ")


def _category(item: EvalItem, raw: Any) -> tuple[str, str] | None:
    raw = normalise_value(item.answer, raw)
    if raw is None:
        return None
    text = _category_text(raw)
    return _allowed_key(item, text), repr(text)


def _allowed_key(item: EvalItem, text: str) -> str:
    """The value ``text`` names; with allowed values it must name one of them.

    A model's answer is held to the allowed values by its schema, so a value outside them is a
    label that needs fixing (the item goes ungraded), not a wrong answer for every runner.
    """
    key = _category_key(item.scoring, text)
    allowed = item.answer.allowed
    if allowed and key not in {_category_key(item.scoring, a) for a in allowed}:
        raise _NotAValue(f"{text!r} is not one of the allowed values ({', '.join(allowed)})")
    return key


def _category_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise _NotAValue(f"{_show(raw)} is not a single value")


def _category_key(scoring: ScoringSpec, text: str) -> str:
    """The value ``text`` names: case and spacing ignored, any synonym mapped to its value."""
    key = _fold(text)
    for value, others in scoring.synonyms.items():
        if key == _fold(value) or key in {_fold(o) for o in others}:
            return _fold(value)
    return key


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _match_categories(
    item: EvalItem, pred: tuple[str, str], ref: tuple[str, str]
) -> tuple[bool, str]:
    if pred[0] != ref[0]:
        return False, "different categories"
    return True, "same category" if _fold(pred[1]) == _fold(ref[1]) else "same category (synonym)"


def _list(item: EvalItem, raw: Any) -> tuple[dict[str, str], str] | None:
    """The list as {normalised key: first spelling}; None for no value or an empty list."""
    raw = normalise_value(item.answer, raw)
    if raw is None:
        return None
    if not isinstance(raw, list | tuple | set | frozenset):
        raise _NotAValue(f"{_show(raw)} is not a list")
    keyed: dict[str, str] = {}
    for element in raw:
        if element is None:
            continue
        text = _category_text(element)
        keyed.setdefault(_allowed_key(item, text), text)
    if not keyed:
        return None
    return keyed, "[" + ", ".join(keyed.values()) + "]"


def _match_lists(
    item: EvalItem, pred: tuple[dict[str, str], str], ref: tuple[dict[str, str], str]
) -> tuple[bool, str]:
    found, wanted = pred[0], ref[0]
    common = found.keys() & wanted.keys()
    missing = [wanted[k] for k in wanted if k not in found]
    extra = [found[k] for k in found if k not in wanted]
    differences = "; ".join(
        part
        for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"extra {', '.join(extra)}" if extra else "",
        )
        if part
    )
    if item.scoring.list_match == "exact":
        return (True, "same set") if not differences else (False, f"sets differ: {differences}")
    precision = len(common) / len(found)
    recall = len(common) / len(wanted)
    f1 = 0.0 if not common else 2 * precision * recall / (precision + recall)
    passed = f1 >= F1_THRESHOLD
    verdict = f"at least {F1_THRESHOLD}" if passed else f"below {F1_THRESHOLD}"
    detail = f"; {differences}" if differences else ""
    return passed, f"F1 {f1:.2f}, {verdict}{detail}"


# --- one scorer per answer type ------------------------------------------------------------


def _score_text(item: EvalItem, predicted: Any, reference: Any) -> Score:
    return Score(
        state="ungraded",
        explanation=f"{_show(predicted)} vs {_show(reference)}: free text needs a judge verdict",
        scorer="text",
    )


def _score_list(item: EvalItem, predicted: Any, reference: Any) -> Score:
    scorer = f"list-{item.scoring.list_match}"
    return _compare(item, predicted, reference, _list, _match_lists, scorer)


def _by_rule(
    parse: _Parser[_T],
    match: Callable[[EvalItem, tuple[_T, str], tuple[_T, str]], tuple[bool, str]],
    scorer: str,
) -> Callable[[EvalItem, Any, Any], Score]:
    return lambda item, predicted, reference: _compare(
        item, predicted, reference, parse, match, scorer
    )


SCORERS: Mapping[AnswerType, Callable[[EvalItem, Any, Any], Score]] = {
    "date": _by_rule(_date, _match_dates, "date"),
    "number": _by_rule(_number, _match_numbers, "number"),
    "count": _by_rule(_count, _match_counts, "count"),
    "boolean": _by_rule(_boolean, _match_booleans, "boolean"),
    "category": _by_rule(_category, _match_categories, "category"),
    "list": _score_list,
    "text": _score_text,
}
"""The scorer of each answer type: (item, predicted, reference) → Score."""


# --- display and plain comparison ----------------------------------------------------------


def _plain(value: Any) -> Any:
    """A comparable form ignoring case, spacing, number rounding and list order."""
    if value is None or value == []:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), 9)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        folded = _fold(value)
        return folded or None
    if isinstance(value, list | tuple | set | frozenset):
        return ("list", tuple(sorted({repr(_plain(v)) for v in value})))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), repr(_plain(v))) for k, v in value.items())))
    return repr(value)


def _show(value: Any) -> str:
    """A short one-line display of a raw value."""
    if value is None:
        return "no value"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | int) and not isinstance(value, bool):
        return _num(value)
    text = _one_line(value if isinstance(value, str) else repr(value))
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 1] + "…"
    return repr(text) if isinstance(value, str) else text


def _show_status(answer: Answer) -> str:
    if answer.value is None or answer.value == []:
        return f"no value ({answer.status})"
    return _show(answer.value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _num(value: float) -> str:
    return f"{value:.6g}"
