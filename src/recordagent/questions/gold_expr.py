"""The gold expression language: types, checking and evaluation (the vocabulary is elsewhere).

A gold expression is a mapping with exactly one head key — ``fact``, ``line_field``,
``param``, ``value`` or ``derive`` — as described in :mod:`recordagent.questions.gold`. This
module holds what every derivation shares: what an expression yields (:class:`ExprInfo`), the
:class:`Checker` that walks an expression and collects located problems, the
:class:`Evaluator` that computes it for one patient, the domains of the categories the gold
tables hold, and the placeholders of question text. The registry of derivations is passed in,
so this module knows none of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recordagent.questions.gold_data import GoldData, GoldValue
from recordagent.sources.synthetic.imwg import RESPONSES
from recordagent.sources.synthetic.regimens import DRUGS, REGIMENS
from recordagent.sources.synthetic.vocabulary import FACTS

__all__ = [
    "BOOLEAN",
    "DATE",
    "DRUG_KEYS",
    "FACT_DOMAINS",
    "HEADS",
    "LINE_FIELDS",
    "NUMERIC",
    "REGIMEN_NAMES",
    "Args",
    "Checker",
    "Context",
    "Derivation",
    "Evaluator",
    "Expr",
    "ExprInfo",
    "evidence_of",
    "names",
    "placeholders",
    "render_text",
    "slot_refs",
    "slot_value",
]

Expr = Mapping[str, Any]
HEADS = ("fact", "line_field", "param", "value", "derive")
_SLOT_REF = re.compile(r"^\{([a-z_][a-z0-9_]*)([+-]\d+)?\}$")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)([+-]\d+)?\}")

REGIMEN_NAMES = frozenset(r.name for r in REGIMENS.values())
DRUG_KEYS = frozenset(DRUGS)
FACT_DOMAINS: dict[str, frozenset[str]] = {
    "isotype": frozenset({"IgG", "IgA", "light chain"}),
    "light_chain": frozenset({"kappa", "lambda"}),
    "iss_stage": frozenset({"I", "II", "III"}),
    "riss_stage": frozenset({"I", "II", "III"}),
    "line_regimen": REGIMEN_NAMES,
    "line_best_response": frozenset(RESPONSES),
}
_END_REASONS = frozenset({"progression", "completed", "toxicity", "ongoing", "death"})
LINE_FIELDS: dict[str, tuple[str, frozenset[str] | None]] = {
    "line": ("count", None),
    "regimen": ("category", REGIMEN_NAMES),
    "drugs": ("list", DRUG_KEYS),
    "start": ("date", None),
    "end": ("date", None),
    "end_reason": ("category", _END_REASONS),
    "asct_date": ("date", None),
    "maintenance": ("category", DRUG_KEYS),
    "maintenance_start": ("date", None),
    "best_response": ("category", frozenset(RESPONSES)),
    "best_response_date": ("date", None),
    "progression_date": ("date", None),
    "refractory_drugs": ("list", DRUG_KEYS),
}
DATE = frozenset({"date"})
NUMERIC = frozenset({"number", "count"})
BOOLEAN = frozenset({"boolean"})


@dataclass(frozen=True)
class ExprInfo:
    """What an expression yields: its answer type, the categories it can take, its unit."""

    type: str
    domain: frozenset[str] | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Context:
    """Where an expression is evaluated: one patient, one slot assignment, computed params."""

    patient_id: str
    slots: Mapping[str, int | str] = field(default_factory=dict)
    params: Mapping[str, GoldValue] = field(default_factory=dict)


# -- slot references and question text ----------------------------------------------------


def placeholders(text: str) -> list[tuple[str, int]]:
    """``(name, offset)`` of every ``{name}`` / ``{name+k}`` placeholder in ``text``."""
    return [(m[1], int(m[2] or 0)) for m in _PLACEHOLDER.finditer(text)]


def render_text(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with its placeholders filled in (dates as YYYY-MM-DD)."""

    def fill(match: re.Match[str]) -> str:
        value = values[match[1]]
        if match[2]:
            value = int(value) + int(match[2])
        return _show(value)

    return _PLACEHOLDER.sub(fill, text)


def _show(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def slot_refs(raw: Any) -> set[str]:
    """Names of the slots an expression refers to (anywhere inside it)."""
    if isinstance(raw, str):
        return {m[1] for m in _PLACEHOLDER.finditer(raw)}
    if isinstance(raw, Mapping):
        return set().union(*(slot_refs(v) for v in raw.values()))
    if isinstance(raw, list | tuple):
        return set().union(*(slot_refs(v) for v in raw))
    return set()


def slot_value(raw: Any, slots: Mapping[str, int | str]) -> Any:
    """``raw`` with a slot reference (``"{line}"``, ``"{line+1}"``) resolved."""
    if isinstance(raw, str) and (match := _SLOT_REF.match(raw)):
        value = slots[match[1]]
        return int(value) + int(match[2]) if match[2] else value
    return raw


# -- checking ---------------------------------------------------------------------------


class Checker:
    """Walks an expression tree, collecting every problem with its path."""

    def __init__(
        self,
        slots: Mapping[str, Sequence[int | str]],
        params: Mapping[str, ExprInfo],
        derivations: Mapping[str, Derivation],
    ):
        self.slots = slots
        self.params = params
        self.derivations = derivations
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        """Record one problem at ``path``."""
        self.problems.append(f"{path}: {message}")

    def line(self, raw: Any, path: str) -> None:
        """Check a line argument: a number from 1, or a reference to a whole-number slot."""
        if isinstance(raw, int) and not isinstance(raw, bool):
            if raw < 1:
                self.problem(path, f"a line number is 1 or more (got {raw})")
            return
        match = _SLOT_REF.match(raw) if isinstance(raw, str) else None
        if match is None:
            self.problem(path, f"expected a line number or a slot like '{{line}}' (got {raw!r})")
        elif match[1] not in self.slots:
            self.problem(path, f"unknown slot '{match[1]}' (slots: {names(self.slots)})")
        elif not all(isinstance(v, int) for v in self.slots[match[1]]):
            self.problem(path, f"slot '{match[1]}' must have whole-number values")

    def typed(self, raw: Any, types: frozenset[str], path: str) -> ExprInfo | None:
        """Check ``raw`` and that it yields one of ``types``."""
        info = self.expr(raw, path)
        if info is not None and info.type not in types:
            self.problem(path, f"expected a {' or '.join(sorted(types))} value, got {info.type}")
            return None
        return info

    def expr(self, raw: Any, path: str) -> ExprInfo | None:
        """Check ``raw``; what it yields, or None when it is too broken to say."""
        if not isinstance(raw, Mapping):
            self.problem(path, f"expected a mapping with one of {', '.join(HEADS)}")
            return None
        # A derivation's arguments may share a head's name (``in`` takes a ``value``).
        heads = ["derive"] if "derive" in raw else [h for h in HEADS if h in raw]
        if len(heads) != 1:
            found = ", ".join(heads) if heads else "none"
            self.problem(path, f"needs exactly one of {', '.join(HEADS)} (found {found})")
            return None
        head = heads[0]
        if head == "derive":
            info = self._derive(raw, path)
        else:
            info = self._ref(head, raw, path)
        if "offset_days" in raw:
            offset = raw["offset_days"]
            if not isinstance(offset, int) or isinstance(offset, bool):
                self.problem(f"{path}.offset_days", "expected a whole number of days")
            elif info is not None and info.type != "date":
                self.problem(f"{path}.offset_days", f"applies to dates, not {info.type}")
        return info

    def _ref(self, head: str, raw: Mapping[str, Any], path: str) -> ExprInfo | None:
        allowed = {
            "fact": {"fact", "line", "offset_days"},
            "line_field": {"line_field", "line", "offset_days"},
            "param": {"param", "offset_days"},
            "value": {"value", "unit"},
        }[head]
        for key in raw:
            if key not in allowed:
                self.problem(f"{path}.{key}", f"unknown key for a '{head}' reference")
        if head == "fact":
            name = raw["fact"]
            spec = FACTS.get(name) if isinstance(name, str) else None
            if spec is None:
                self.problem(f"{path}.fact", f"unknown fact {name!r} (known: {names(FACTS)})")
                return None
            if spec.per_line and "line" not in raw:
                self.problem(path, f"fact '{name}' is per line: give line")
            elif not spec.per_line and "line" in raw:
                self.problem(f"{path}.line", f"fact '{name}' is not per line")
            elif "line" in raw:
                self.line(raw["line"], f"{path}.line")
            return ExprInfo(spec.value_type, FACT_DOMAINS.get(name), spec.unit)
        if head == "line_field":
            name = raw["line_field"]
            if name not in LINE_FIELDS:
                self.problem(
                    f"{path}.line_field", f"unknown line field {name!r} ({names(LINE_FIELDS)})"
                )
                return None
            if "line" not in raw:
                self.problem(path, "a line field needs line")
            else:
                self.line(raw["line"], f"{path}.line")
            kind, domain = LINE_FIELDS[name]
            return ExprInfo(kind, domain)
        if head == "param":
            name = raw["param"]
            if name not in self.params:
                self.problem(f"{path}.param", f"unknown param {name!r} ({names(self.params)})")
                return None
            return self.params[name]
        value, unit = raw["value"], raw.get("unit")
        if unit is not None and not isinstance(unit, str):
            self.problem(f"{path}.unit", "expected text")
        return literal_info(value, unit if isinstance(unit, str) else None)

    def _derive(self, raw: Mapping[str, Any], path: str) -> ExprInfo | None:
        name = raw["derive"]
        derivation = self.derivations.get(name) if isinstance(name, str) else None
        if derivation is None:
            self.problem(
                f"{path}.derive", f"unknown derivation {name!r} (known: {names(self.derivations)})"
            )
            return None
        path = f"{path}({name})"
        args = {k: v for k, v in raw.items() if k not in ("derive", "offset_days")}
        ok = True
        for key in args:
            if key not in derivation.args:
                self.problem(f"{path}.{key}", f"unknown argument ({names(derivation.args)})")
                ok = False
        for key, (kind, required) in derivation.args.items():
            if key not in args:
                if required:
                    self.problem(path, f"missing argument '{key}'")
                    ok = False
                continue
            ok = self._arg_kind(args[key], kind, f"{path}.{key}") and ok
        if not ok:
            return None
        return derivation.check(args, self, path)

    def _arg_kind(self, value: Any, kind: str, path: str) -> bool:
        good = {
            "expr": True,  # checked by the derivation, with the types it needs
            "exprs": isinstance(value, list) and bool(value),
            "labelled": isinstance(value, Mapping) and bool(value),
            "cases": isinstance(value, list) and bool(value),
            "str": isinstance(value, str),
            "strs": isinstance(value, list) and all(isinstance(v, str) for v in value),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "line": True,
        }[kind]
        if not good:
            what = {
                "exprs": "a non-empty list of expressions",
                "labelled": "a non-empty mapping of label to expression",
                "cases": "a non-empty list of {if, then}",
                "str": "text",
                "strs": "a list of text",
                "number": "a number",
            }[kind]
            self.problem(path, f"expected {what}")
        if kind == "line":
            self.line(value, path)
        return good


def names(known: Mapping[str, Any] | Iterable[str]) -> str:
    """Names for a message, sorted ('none' when there are none)."""
    return ", ".join(sorted(known)) or "none"


def literal_info(value: Any, unit: str | None) -> ExprInfo:
    """What a ``{value: ...}`` constant yields."""
    if isinstance(value, bool):
        return ExprInfo("boolean")
    if isinstance(value, int):
        return ExprInfo("count", unit=unit)
    if isinstance(value, float):
        return ExprInfo("number", unit=unit)
    if isinstance(value, list):
        return ExprInfo("list", frozenset(str(v) for v in value))
    return ExprInfo("text", frozenset({str(value)}))


# -- evaluation --------------------------------------------------------------------------


class Evaluator:
    """Computes checked expressions for one patient and slot assignment."""

    def __init__(self, data: GoldData, ctx: Context, derivations: Mapping[str, Derivation]):
        self.data = data
        self.ctx = ctx
        self.derivations = derivations

    @property
    def patient(self) -> str:
        """The patient evaluated for."""
        return self.ctx.patient_id

    def line(self, raw: Any) -> int:
        """A line argument (a number or a slot reference) as a number."""
        return int(slot_value(raw, self.ctx.slots))

    def expr(self, raw: Expr) -> GoldValue | None:
        """The value of ``raw``; None when the record lacks an input."""
        if "derive" in raw:
            args = {k: v for k, v in raw.items() if k not in ("derive", "offset_days")}
            result = self.derivations[raw["derive"]].compute(args, self)
        else:
            result = self._ref(raw)
        if result is not None and raw.get("offset_days"):
            shifted = result.value + dt.timedelta(days=int(raw["offset_days"]))
            result = GoldValue(shifted, result.evidence)
        return result

    def _ref(self, raw: Expr) -> GoldValue | None:
        if "fact" in raw:
            line = self.line(raw["line"]) if "line" in raw else None
            return self.data.fact(self.patient, raw["fact"], line)
        if "line_field" in raw:
            row = self.data.line(self.patient, self.line(raw["line"]))
            value = None if row is None else row[raw["line_field"]]
            if value is None:
                return None
            return GoldValue(tuple(value) if isinstance(value, list) else value)
        if "param" in raw:
            return self.ctx.params.get(raw["param"])
        value = raw["value"]
        return GoldValue(tuple(value) if isinstance(value, list) else value)

    def optional_date(self, args: Mapping[str, Any], key: str) -> tuple[bool, dt.date | None]:
        """(ok, day) of an optional date argument; ok is False when given but missing."""
        if key not in args:
            return True, None
        value = self.expr(args[key])
        return (value is not None), (value.value if value is not None else None)

    def all(self, raws: Sequence[Expr]) -> list[GoldValue] | None:
        """Every value of ``raws``, or None if any is missing."""
        values = [self.expr(r) for r in raws]
        if any(v is None for v in values):
            return None
        return [v for v in values if v is not None]


def evidence_of(*values: GoldValue | None) -> tuple[str, ...]:
    """The evidence ids of ``values``, each once, in order."""
    return tuple(dict.fromkeys(e for v in values if v is not None for e in v.evidence))


Args = Mapping[str, Any]


@dataclass(frozen=True)
class Derivation:
    """One named derivation: its arguments (kind, required), how to check and to compute it."""

    doc: str
    args: Mapping[str, tuple[str, bool]]
    check: Callable[[Args, Checker, str], ExprInfo | None]
    compute: Callable[[Args, Evaluator], GoldValue | None]
