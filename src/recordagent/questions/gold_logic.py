"""Gold derivations that combine other expressions: conditions, counts, comparisons, cases.

Missing inputs propagate (the result is missing too), except that a false part decides
``all_of`` and a true part decides ``any_of``, and ``exists`` is never missing: criteria such as
"progressed within 12 months" are false for a patient who never progressed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from recordagent.questions.gold_data import GoldValue
from recordagent.questions.gold_expr import (
    BOOLEAN,
    DATE,
    NUMERIC,
    Args,
    Checker,
    Derivation,
    Evaluator,
    ExprInfo,
    evidence_of,
)

__all__ = ["LOGIC_DERIVATIONS"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_E, _O = True, False  # required, optional


def _check_bools(a: Args, chk: Checker, path: str) -> ExprInfo:
    for i, raw in enumerate(a["of"]):
        chk.typed(raw, BOOLEAN, f"{path}.of[{i}]")
    return ExprInfo("boolean")


def _check_count_true(a: Args, chk: Checker, path: str) -> ExprInfo:
    _check_bools(a, chk, path)
    return ExprInfo("count")


def _all_of(a: Args, ev: Evaluator) -> GoldValue | None:
    values = [ev.expr(raw) for raw in a["of"]]
    if any(v is not None and v.value is False for v in values):  # one false part decides
        return GoldValue(False, evidence_of(*(v for v in values if v is not None and not v.value)))
    if any(v is None for v in values):
        return None
    return GoldValue(True, evidence_of(*values))


def _any_of(a: Args, ev: Evaluator) -> GoldValue | None:
    values = [ev.expr(raw) for raw in a["of"]]
    if any(v is not None and v.value is True for v in values):  # one true part decides
        return GoldValue(True, evidence_of(*(v for v in values if v is not None and v.value)))
    if any(v is None for v in values):
        return None
    return GoldValue(False, evidence_of(*values))


def _count_true(a: Args, ev: Evaluator) -> GoldValue | None:
    values = ev.all(a["of"])
    if values is None:
        return None
    return GoldValue(sum(1 for v in values if v.value), evidence_of(*values))


def _check_true_labels(a: Args, chk: Checker, path: str) -> ExprInfo:
    for label, raw in a["of"].items():
        chk.typed(raw, BOOLEAN, f"{path}.of.{label}")
    return ExprInfo("list", frozenset(str(k) for k in a["of"]))


def _true_labels(a: Args, ev: Evaluator) -> GoldValue | None:
    values = {label: ev.expr(raw) for label, raw in a["of"].items()}
    if any(v is None for v in values.values()):
        return None
    hits = [str(label) for label, v in values.items() if v is not None and v.value]
    return GoldValue(tuple(hits), evidence_of(*values.values()))


def _check_not(a: Args, chk: Checker, path: str) -> ExprInfo:
    chk.typed(a["of"], BOOLEAN, f"{path}.of")
    return ExprInfo("boolean")


def _not(a: Args, ev: Evaluator) -> GoldValue | None:
    value = ev.expr(a["of"])
    return None if value is None else GoldValue(not value.value, value.evidence)


def _check_exists(a: Args, chk: Checker, path: str) -> ExprInfo:
    chk.expr(a["of"], f"{path}.of")
    return ExprInfo("boolean")


def _exists(a: Args, ev: Evaluator) -> GoldValue | None:
    value = ev.expr(a["of"])
    return GoldValue(value is not None, value.evidence if value is not None else ())


def _check_not_empty(a: Args, chk: Checker, path: str) -> ExprInfo:
    chk.typed(a["of"], frozenset({"list"}), f"{path}.of")
    return ExprInfo("boolean")


def _not_empty(a: Args, ev: Evaluator) -> GoldValue | None:
    value = ev.expr(a["of"])
    return None if value is None else GoldValue(bool(value.value), value.evidence)


def _check_compare(a: Args, chk: Checker, path: str) -> ExprInfo:
    if a["op"] not in _OPS:
        chk.problem(f"{path}.op", f"unknown comparison ({' '.join(_OPS)})")
    left = chk.typed(a["left"], NUMERIC | DATE, f"{path}.left")
    right = chk.typed(a["right"], NUMERIC | DATE, f"{path}.right")
    if left is not None and right is not None:
        if (left.type == "date") != (right.type == "date"):
            chk.problem(path, f"cannot compare {left.type} with {right.type}")
        elif left.unit and right.unit and left.unit != right.unit:
            chk.problem(path, f"cannot compare {left.unit} with {right.unit}")
    return ExprInfo("boolean")


def _compare(a: Args, ev: Evaluator) -> GoldValue | None:
    values = ev.all([a["left"], a["right"]])
    if values is None:
        return None
    left, right = values
    return GoldValue(_OPS[a["op"]](left.value, right.value), evidence_of(left, right))


def _check_in(a: Args, chk: Checker, path: str) -> ExprInfo:
    info = chk.typed(a["value"], frozenset({"category", "text"}), f"{path}.value")
    if info is not None and info.domain is not None:
        if unknown := set(a["values"]) - info.domain:
            chk.problem(f"{path}.values", f"never taken: {', '.join(sorted(unknown))}")
    return ExprInfo("boolean")


def _in(a: Args, ev: Evaluator) -> GoldValue | None:
    value = ev.expr(a["value"])
    return None if value is None else GoldValue(value.value in a["values"], value.evidence)


def _check_case(a: Args, chk: Checker, path: str) -> ExprInfo:
    outcomes = set()
    for i, case in enumerate(a["when"]):
        where = f"{path}.when[{i}]"
        if not isinstance(case, Mapping) or set(case) != {"if", "then"}:
            chk.problem(where, "expected {if: <condition>, then: <category>}")
            continue
        chk.typed(case["if"], BOOLEAN, f"{where}.if")
        outcomes.add(str(case["then"]))
    if "else" in a:
        outcomes.add(str(a["else"]))
    return ExprInfo("category", frozenset(outcomes))


def _case(a: Args, ev: Evaluator) -> GoldValue | None:
    for case in a["when"]:
        test = ev.expr(case["if"])
        if test is None:
            return None
        if test.value:
            return GoldValue(str(case["then"]), test.evidence)
    return GoldValue(str(a["else"])) if "else" in a else None


LOGIC_DERIVATIONS: dict[str, Derivation] = {
    "all_of": Derivation(
        "True when every condition in `of` holds (a false one decides even if others are missing).",
        {"of": ("exprs", _E)},
        _check_bools,
        _all_of,
    ),
    "any_of": Derivation(
        "True when a condition in `of` holds (a true one decides even if others are missing).",
        {"of": ("exprs", _E)},
        _check_bools,
        _any_of,
    ),
    "count_true": Derivation(
        "How many conditions in `of` hold.",
        {"of": ("exprs", _E)},
        _check_count_true,
        _count_true,
    ),
    "true_labels": Derivation(
        "The labels (keys of `of`) whose condition holds, as a list.",
        {"of": ("labelled", _E)},
        _check_true_labels,
        _true_labels,
    ),
    "not": Derivation("The opposite of `of`.", {"of": ("expr", _E)}, _check_not, _not),
    "exists": Derivation(
        "Whether the record has `of` (never missing itself).",
        {"of": ("expr", _E)},
        _check_exists,
        _exists,
    ),
    "not_empty": Derivation(
        "Whether the list `of` has at least one value (e.g. a line's refractory drugs).",
        {"of": ("expr", _E)},
        _check_not_empty,
        _not_empty,
    ),
    "compare": Derivation(
        "`left` `op` `right` for numbers or dates; op one of < <= > >= == !=.",
        {"left": ("expr", _E), "op": ("str", _E), "right": ("expr", _E)},
        _check_compare,
        _compare,
    ),
    "in": Derivation(
        "Whether the category `value` is one of `values`.",
        {"value": ("expr", _E), "values": ("strs", _E)},
        _check_in,
        _in,
    ),
    "case": Derivation(
        "The `then` of the first `when` entry whose `if` holds, else `else` (a category).",
        {"when": ("cases", _E), "else": ("str", _O)},
        _check_case,
        _case,
    ),
}
