"""Templates to items: instantiate over a cohort, derive gold labels, draw a balanced study set.

* :func:`derive` — one template for one patient and slot assignment: its question, as-of
  day and gold value (the gold expressions are :mod:`.gold`).
* :func:`instantiate` — every applicable (template, patient, slot value) as an
  :class:`~recordagent.questions.items.EvalItem` with a stable id
  ``<template_id>/<patient_id>`` (``/<slot>=<value>`` per slot when slotted).
* :func:`instances` — the same with each item's gold value and evidence ids (the evaluation
  layer turns them into labels: ``recordagent.evaluation.gold_labels``).
* :func:`sample` — a study set balanced over levels and templates (see its docstring).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from recordagent.errors import UserError, validation_problems
from recordagent.questions.answers import final_answer_model
from recordagent.questions.gold import DERIVATIONS
from recordagent.questions.gold_data import GoldData, GoldValue
from recordagent.questions.gold_expr import Context, Evaluator, render_text
from recordagent.questions.items import EvalItem
from recordagent.questions.templates import QuestionTemplate, TemplateSet

__all__ = [
    "GOLD_ANNOTATOR",
    "Derived",
    "Instance",
    "derive",
    "instances",
    "instantiate",
    "sample",
]

GOLD_ANNOTATOR = "gold-synthetic"
GoldSource = GoldData | str | Path


@dataclass(frozen=True)
class Instance:
    """One item and its gold answer (a JSON value; None: the record does not say)."""

    item: EvalItem
    value: Any
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Derived:
    """A template instantiated for one patient and slot assignment."""

    question: str
    as_of: dt.date | None
    gold: GoldValue | None  # None: the record has no answer (kept when if_missing is 'null')


def derive(
    template: QuestionTemplate,
    data: GoldData,
    patient_id: str,
    slots: Mapping[str, int | str],
) -> Derived | None:
    """``template`` for one patient and slot assignment; None when it does not apply.

    Order: the line must exist (``requires_line``), the required facts must exist, the params
    and ``as_of`` must be derivable, ``applicability.when`` must hold, and the gold must be
    derivable (unless ``if_missing: null``).
    """
    applies = template.applicability
    # Params are derived in order and each may use the earlier ones: the evaluator's context
    # holds the same dict the loop fills.
    params: dict[str, GoldValue] = {}
    ev = Evaluator(data, Context(patient_id, slots, params), DERIVATIONS)
    if applies.requires_line and data.line(patient_id, int(slots["line"])) is None:
        return None
    for required in applies.required_exprs():
        if ev.expr(required) is None:
            return None
    for name, raw in template.params.items():
        value = ev.expr(raw)
        if value is None:
            return None
        params[name] = value
    as_of = None
    if template.as_of_expr is not None:
        found = ev.expr(template.as_of_expr)
        if found is None:
            return None
        as_of = found.value
        params["as_of"] = found
    if applies.when is not None:
        test = ev.expr(applies.when)
        if test is None or test.value is not True:
            return None
    gold = ev.expr(template.gold)
    if gold is None and template.if_missing == "skip":
        return None
    shown = {**slots, **{k: v.value for k, v in params.items()}}
    return Derived(render_text(template.question, shown), as_of, gold)


def _gold(gold: GoldSource, bundle_dir: str | Path | None) -> GoldData:
    return gold if isinstance(gold, GoldData) else GoldData.load(gold, bundle_dir)


def instances(
    template_set: TemplateSet, gold: GoldSource, bundle_dir: str | Path | None = None
) -> list[Instance]:
    """Every applicable item of the template set on a cohort, with its gold answer.

    ``gold`` is a loaded :class:`GoldData` or the cohort's ``gold/`` folder (the bundle is
    its parent unless ``bundle_dir`` says otherwise). Items come in template order, then
    patient, then slot values.

    Raises:
        UserError: a gold table is missing, or a derived gold value does not fit its
            template's answer spec (a template bug the validator could not see).
    """
    data = _gold(gold, bundle_dir)
    out = []
    for template in template_set.templates:
        answer_model = final_answer_model(template.answer)
        names = list(template.slots)
        combos = list(itertools.product(*(template.slots[n] for n in names)))
        for patient_id in data.patient_ids:
            for combo in combos:
                slots = dict(zip(names, combo, strict=True))
                derived = derive(template, data, patient_id, slots)
                if derived is None:
                    continue
                item_id = f"{template.id}/{patient_id}" + "".join(
                    f"/{k}={v}" for k, v in slots.items()
                )
                item = EvalItem(
                    id=item_id,
                    patient_id=patient_id,
                    question=derived.question,
                    answer=template.answer,
                    template_id=template.id,
                    level=template.level,
                    as_of=derived.as_of,
                    checklist=template.checklist,
                    scoring=template.scoring,
                )
                if derived.gold is None:  # kept with a null label (if_missing: null)
                    out.append(Instance(item, None, ()))
                else:
                    value = _label_value(template, item, derived.gold.value, answer_model)
                    out.append(Instance(item, value, derived.gold.evidence))
    return out


def _label_value(
    template: QuestionTemplate, item: EvalItem, raw: Any, answer_model: type[BaseModel]
) -> Any:
    """The gold as the JSON value of a label, checked against the answer spec.

    The check is the one a model's answer gets (the template's final-answer schema, built
    once per template: building a schema per value would dominate the run time).
    """
    if isinstance(raw, tuple):
        raw = list(raw)
    if template.answer.type == "text" and not isinstance(raw, str):
        raw = ", ".join(map(str, raw)) if isinstance(raw, list) else str(raw)
    try:
        answer = answer_model.model_validate(
            {"status": "answered", "value": raw, "text": "", "citations": []}
        )
    except ValidationError as exc:
        problem = "; ".join(validation_problems(exc, located=False))
        raise UserError(
            f"template '{template.id}': the gold of item {item.id} ({raw!r}) does not fit the "
            f"answer spec: {problem}"
        ) from exc
    value = getattr(answer, "value")  # noqa: B009 - a field of a model built at run time
    return value.isoformat() if isinstance(value, dt.date) else value


def instantiate(
    template_set: TemplateSet, gold: GoldSource, bundle_dir: str | Path | None = None
) -> list[EvalItem]:
    """Every applicable item of the template set on a cohort (see :func:`instances`)."""
    return [instance.item for instance in instances(template_set, gold, bundle_dir)]


def sample(items: Sequence[EvalItem], n: int = 469, seed: int = 0) -> list[EvalItem]:
    """A study set of ``n`` items balanced over levels, then over templates within a level.

    Algorithm (deterministic for a seed, independent of the order ``items`` come in):

    1. *Levels.* ``n`` is split as equally as possible between the complexity levels; a level
       with fewer items than its share gives them all, and the rest is split among the others
       (water-filling). Which levels get the remainder's extra item is drawn with the seed.
    2. *Templates.* Each level's share is split the same way between its templates.
    3. *Items.* Within a template, items are taken round-robin over patients (patient order and
       each patient's slot values shuffled with a generator seeded by ``seed`` and the
       template id), so a template covers as many patients as its share allows, and adding a
       template does not change what the others draw.

    Returns every item when ``n`` is at least their number. The result keeps the order of
    ``items``.
    """
    if n < 0:
        raise UserError(f"cannot sample {n} items")
    ordered = sorted(items, key=lambda item: item.id)
    if n >= len(ordered):
        return list(items)
    by_level: dict[int, dict[str, list[EvalItem]]] = {}
    for item in ordered:
        by_level.setdefault(item.level or 0, {}).setdefault(item.template_id or "", []).append(item)
    rng = random.Random(f"levels:{seed}")
    level_quota = _water_fill(
        {level: sum(map(len, templates.values())) for level, templates in by_level.items()}, n, rng
    )
    chosen: set[str] = set()
    for level, templates in sorted(by_level.items()):
        rng = random.Random(f"templates:{seed}:{level}")
        quota = _water_fill({t: len(v) for t, v in templates.items()}, level_quota[level], rng)
        for template_id, template_items in sorted(templates.items()):
            picks = _spread(template_items, quota[template_id], f"{seed}:{template_id}")
            chosen.update(item.id for item in picks)
    return [item for item in items if item.id in chosen]


def _water_fill(capacity: Mapping[Any, int], n: int, rng: random.Random) -> dict[Any, int]:
    """Equal shares of ``n`` over the keys, capped by each key's capacity (spread at most 1).

    Keys are served smallest capacity first (ties in a seeded random order); each takes
    ``remaining // keys left`` (at most its capacity), so what a small key cannot take goes to
    the larger ones and the extra items of an uneven split fall to the keys served last.
    """
    keys = sorted(capacity, key=lambda k: (capacity[k], rng.random()))
    quota = {}
    remaining = n
    for i, key in enumerate(keys):
        take = min(capacity[key], remaining // (len(keys) - i))
        quota[key] = take
        remaining -= take
    return quota


def _spread(items: Sequence[EvalItem], k: int, seed: str) -> list[EvalItem]:
    """``k`` items, round-robin over patients in a seeded order."""
    rng = random.Random(seed)
    per_patient: dict[str, list[EvalItem]] = {}
    for item in items:
        per_patient.setdefault(item.patient_id, []).append(item)
    patients = sorted(per_patient)
    rng.shuffle(patients)
    queues = []
    for patient in patients:
        queue = list(per_patient[patient])
        rng.shuffle(queue)
        queues.append(queue)
    picks: list[EvalItem] = []
    for round_ in itertools.zip_longest(*queues):
        for item in round_:
            if item is not None and len(picks) < k:
                picks.append(item)
    return picks
