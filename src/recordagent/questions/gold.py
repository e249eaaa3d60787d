"""Gold answers as data: a small vocabulary of expressions over the gold tables and labs.

A template's ``gold`` (and its ``params``, ``as_of`` and ``applicability.when``) is a mapping
with exactly one head key:

* ``{fact: NAME, line: L}`` — a row of ``gold/facts.parquet`` (``line`` only for per-line
  facts; ``L`` is a number or a slot reference such as ``"{line}"`` or ``"{line+1}"``);
* ``{line_field: FIELD, line: L}`` — a column of ``gold/lines.parquet`` for that line;
* ``{param: NAME}`` — a value the template computed earlier (its ``params``, or ``as_of``);
* ``{value: X, unit: U}`` — a constant (number, text, true/false, list);
* ``{derive: NAME, ...arguments}`` — one of :data:`DERIVATIONS`.

Any date-valued expression may add ``offset_days: N``. An expression whose inputs the record
lacks evaluates to None, and the item is then not applicable (or its label is null, see the
template's ``if_missing``); ``exists``, ``first_available``, ``all_of`` (a false part decides)
and ``any_of`` (a true part decides) are the only ways past a missing input.

Every expression is checked before any is evaluated (:func:`check_expr`): heads, arguments,
slot and param names, fact and analyte names, drug classes, the types that meet, and the
categories a value can take — so that a template's answer spec can be checked against its gold.

This module holds the derivations over the record's dates, facts, lines and drugs, and the
registry of all of them (:data:`DERIVATIONS`, with those of :mod:`.gold_labs` and
:mod:`.gold_logic`) that expressions are checked and evaluated against;
:func:`recordagent.questions.sampling.derive` instantiates a whole template for one patient.
The language itself (types, checking, evaluation) is :mod:`.gold_expr`; the tables are
:mod:`.gold_data`. The vocabulary is documented in ``question_templates/README.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recordagent.questions.gold_data import GoldData, GoldValue
from recordagent.questions.gold_expr import (
    DATE,
    DRUG_KEYS,
    FACT_DOMAINS,
    REGIMEN_NAMES,
    Args,
    Checker,
    Context,
    Derivation,
    Evaluator,
    Expr,
    ExprInfo,
    evidence_of,
    names,
)
from recordagent.questions.gold_labs import LAB_DERIVATIONS
from recordagent.questions.gold_logic import LOGIC_DERIVATIONS
from recordagent.sources.synthetic.regimens import DRUGS, DrugClass
from recordagent.sources.synthetic.vocabulary import FACTS

__all__ = ["DERIVATIONS", "check_expr", "evaluate"]

_E, _O = True, False  # required, optional


# -- the record: dates, facts, lines and drugs -------------------------------------------------


def _check_days_between(a: Args, chk: Checker, path: str) -> ExprInfo:
    chk.typed(a["from"], DATE, f"{path}.from")
    chk.typed(a["to"], DATE, f"{path}.to")
    return ExprInfo("number", unit="days")


def _days_between(a: Args, ev: Evaluator) -> GoldValue | None:
    start, end = ev.expr(a["from"]), ev.expr(a["to"])
    if start is None or end is None:
        return None
    return GoldValue((end.value - start.value).days, evidence_of(start, end))


def _check_first_available(a: Args, chk: Checker, path: str) -> ExprInfo | None:
    infos = [chk.expr(raw, f"{path}.of[{i}]") for i, raw in enumerate(a["of"])]
    known = [i for i in infos if i is not None]
    if not known:
        return None
    if len({i.type for i in known}) > 1:
        chk.problem(f"{path}.of", "every alternative must have the same type")
    domain: frozenset[str] | None = frozenset()
    for info in known:
        domain = None if domain is None or info.domain is None else domain | info.domain
    return ExprInfo(known[0].type, domain, known[0].unit)


def _first_available(a: Args, ev: Evaluator) -> GoldValue | None:
    return next((v for raw in a["of"] if (v := ev.expr(raw)) is not None), None)


def _record_end(a: Args, ev: Evaluator) -> GoldValue | None:
    end = ev.data.record_end(ev.patient)
    return None if end is None else GoldValue(end)


def _fact_spec(a: Args, chk: Checker, path: str) -> str | None:
    name = a["fact"]
    if name not in FACTS:
        chk.problem(f"{path}.fact", f"unknown fact {name!r} (known: {names(FACTS)})")
        return None
    return str(name)


def _check_count_facts(a: Args, chk: Checker, path: str) -> ExprInfo:
    name = _fact_spec(a, chk, path)
    if name is not None:
        domain = FACT_DOMAINS.get(name)
        if "in" in a and domain is not None and (unknown := set(a["in"]) - domain):
            chk.problem(f"{path}.in", f"'{name}' never takes {', '.join(sorted(unknown))}")
        for bound in ("on_or_before", "after"):
            if bound in a:
                if FACTS[name].value_type != "date":
                    chk.problem(f"{path}.{bound}", f"'{name}' is not a date")
                chk.typed(a[bound], DATE, f"{path}.{bound}")
    return ExprInfo("count")


def _count_facts(a: Args, ev: Evaluator) -> GoldValue | None:
    rows = [v for _, v in ev.data.facts_of(ev.patient, a["fact"])]
    bounds = {}
    for bound in ("on_or_before", "after"):
        if bound in a:
            value = ev.expr(a[bound])
            if value is None:
                return None
            bounds[bound] = value.value
    hits = [
        v
        for v in rows
        if ("in" not in a or v.value in a["in"])
        and ("on_or_before" not in bounds or v.value <= bounds["on_or_before"])
        and ("after" not in bounds or v.value > bounds["after"])
    ]
    return GoldValue(len(hits), evidence_of(*hits))


def _check_list_facts(a: Args, chk: Checker, path: str) -> ExprInfo | None:
    name = _fact_spec(a, chk, path)
    return None if name is None else ExprInfo("list", FACT_DOMAINS.get(name))


def _list_facts(a: Args, ev: Evaluator) -> GoldValue | None:
    rows = [v for _, v in ev.data.facts_of(ev.patient, a["fact"])]
    if not rows:
        return None
    return GoldValue(tuple(dict.fromkeys(str(v.value) for v in rows)), evidence_of(*rows))


def _running_line(ev: Evaluator, day: dt.date) -> dict[str, Any] | None:
    """The line given on ``day``: started by then, and not yet ended (ongoing lines run on)."""
    end_of_record = ev.data.record_end(ev.patient)
    running = None
    for row in ev.data.lines_of(ev.patient):
        end = row["end"] or end_of_record
        if row["start"] <= day and (end is None or day <= end):
            running = row
    return running


def _check_on_date(kind: str, domain: frozenset[str] | None) -> Callable[..., ExprInfo]:
    def check(a: Args, chk: Checker, path: str) -> ExprInfo:
        chk.typed(a["date"], DATE, f"{path}.date")
        return ExprInfo(kind, domain)

    return check


def _regimen_on(a: Args, ev: Evaluator) -> GoldValue | None:
    day = ev.expr(a["date"])
    row = None if day is None else _running_line(ev, day.value)
    if row is None:
        return None
    started = ev.data.fact(ev.patient, "line_regimen", row["line"])
    return GoldValue(row["regimen"], started.evidence if started else ())


def _line_on(a: Args, ev: Evaluator) -> GoldValue | None:
    day = ev.expr(a["date"])
    row = None if day is None else _running_line(ev, day.value)
    if row is None:
        return None
    started = ev.data.fact(ev.patient, "line_start", row["line"])
    return GoldValue(int(row["line"]), started.evidence if started else ())


def _check_drugs_received(a: Args, chk: Checker, path: str) -> ExprInfo:
    if "by" in a:
        chk.typed(a["by"], DATE, f"{path}.by")
    return ExprInfo("list", DRUG_KEYS)


def _drugs_received(a: Args, ev: Evaluator) -> GoldValue | None:
    ok, day = ev.optional_date(a, "by")
    if not ok:
        return None
    drugs = [
        d
        for row in ev.data.lines_of(ev.patient)
        if day is None or row["start"] <= day
        for d in row["drugs"]
    ]
    return GoldValue(tuple(dict.fromkeys(drugs)))


def _check_drug_set(a: Args, chk: Checker, path: str) -> ExprInfo:
    if ("drugs" in a) == ("drug_class" in a):
        chk.problem(path, "give exactly one of drugs or drug_class")
    if "drugs" in a and (unknown := set(a["drugs"]) - DRUG_KEYS):
        chk.problem(f"{path}.drugs", f"unknown drugs {sorted(unknown)} ({names(DRUG_KEYS)})")
    classes = {c.value for c in DrugClass}
    if "drug_class" in a and a["drug_class"] not in classes:
        chk.problem(f"{path}.drug_class", f"unknown drug class ({names(classes)})")
    if "date" in a:
        chk.typed(a["date"], DATE, f"{path}.date")
    return ExprInfo("boolean")


def _drug_set(a: Args) -> frozenset[str]:
    if "drugs" in a:
        return frozenset(a["drugs"])
    return frozenset(k for k, d in DRUGS.items() if d.drug_class.value == a["drug_class"])


def _exposed_on(a: Args, ev: Evaluator) -> GoldValue | None:
    ok, day = ev.optional_date(a, "date")
    if not ok:
        return None
    wanted = _drug_set(a)
    lines = [
        row
        for row in ev.data.lines_of(ev.patient)
        if (day is None or row["start"] <= day) and wanted & set(row["drugs"])
    ]
    evidence = [ev.data.fact(ev.patient, "line_regimen", row["line"]) for row in lines]
    return GoldValue(bool(lines), evidence_of(*evidence))


def _refractory_on(a: Args, ev: Evaluator) -> GoldValue | None:
    ok, day = ev.optional_date(a, "date")
    if not ok:
        return None
    wanted = _drug_set(a)
    lines = [
        row
        for row in ev.data.lines_of(ev.patient)
        if row["progression_date"] is not None
        and (day is None or row["progression_date"] <= day)
        and wanted & set(row["refractory_drugs"])
    ]
    evidence = [ev.data.fact(ev.patient, "line_progression_date", row["line"]) for row in lines]
    return GoldValue(bool(lines), evidence_of(*evidence))


def _const(info: ExprInfo) -> Callable[[Args, Checker, str], ExprInfo]:
    return lambda a, chk, path: info


_RECORD_DERIVATIONS: dict[str, Derivation] = {
    "days_between": Derivation(
        "Days from `from` to `to` (a number in days; negative if `to` is earlier).",
        {"from": ("expr", _E), "to": ("expr", _E)},
        _check_days_between,
        _days_between,
    ),
    "first_available": Derivation(
        "The first of `of` the record has (e.g. the next line's start, else the record's end).",
        {"of": ("exprs", _E)},
        _check_first_available,
        _first_available,
    ),
    "record_end": Derivation(
        "The last day of the patient's record (latest lab value or document).",
        {},
        _const(ExprInfo("date")),
        _record_end,
    ),
    "count_facts": Derivation(
        "How many gold facts of kind `fact` the patient has (per-line facts: lines), "
        "optionally with a value `in` a list, or a date value `on_or_before` / `after` a day.",
        {
            "fact": ("str", _E),
            "in": ("strs", _O),
            "on_or_before": ("expr", _O),
            "after": ("expr", _O),
        },
        _check_count_facts,
        _count_facts,
    ),
    "list_facts": Derivation(
        "Every distinct value of the gold fact `fact`, in line order (e.g. the regimens).",
        {"fact": ("str", _E)},
        _check_list_facts,
        _list_facts,
    ),
    "regimen_on": Derivation(
        "Regimen of the line given on `date` (started by then and not yet ended).",
        {"date": ("expr", _E)},
        _check_on_date("category", REGIMEN_NAMES),
        _regimen_on,
    ),
    "line_on": Derivation(
        "Number of the line given on `date`.",
        {"date": ("expr", _E)},
        _check_on_date("count", None),
        _line_on,
    ),
    "drugs_received": Derivation(
        "Every drug (catalogue key) of the lines started `by` a day (default: the whole record).",
        {"by": ("expr", _O)},
        _check_drugs_received,
        _drugs_received,
    ),
    "exposed_on": Derivation(
        "Whether a line started by `date` (default: ever) contained one of `drugs` or a drug "
        "of `drug_class` (IMiD, PI, anti-CD38, ...).",
        {"date": ("expr", _O), "drugs": ("strs", _O), "drug_class": ("str", _O)},
        _check_drug_set,
        _exposed_on,
    ),
    "refractory_on": Derivation(
        "Whether the disease was refractory (IMWG: progression on the drug or within 60 days "
        "of it) to one of `drugs` or to `drug_class`, by progressions up to `date` "
        "(default: all).",
        {"date": ("expr", _O), "drugs": ("strs", _O), "drug_class": ("str", _O)},
        _check_drug_set,
        _refractory_on,
    ),
}

DERIVATIONS: dict[str, Derivation] = {
    **_RECORD_DERIVATIONS,
    **LAB_DERIVATIONS,
    **LOGIC_DERIVATIONS,
}
"""Every derivation a template may name, by name."""


def check_expr(
    raw: Any,
    path: str,
    slots: Mapping[str, Sequence[int | str]],
    params: Mapping[str, ExprInfo] | None = None,
) -> tuple[ExprInfo | None, list[str]]:
    """What ``raw`` yields, and every problem found in it (each prefixed with its path)."""
    checker = Checker(slots, params or {}, DERIVATIONS)
    info = checker.expr(raw, path)
    return info, checker.problems


def evaluate(raw: Expr, data: GoldData, ctx: Context) -> GoldValue | None:
    """The value of a checked expression for one patient (None: the record lacks an input)."""
    return Evaluator(data, ctx, DERIVATIONS).expr(raw)
