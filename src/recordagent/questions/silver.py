"""Silver labels: items and reference answers computed by SQL over a record store.

A silver template (:mod:`recordagent.questions.silver_templates`) is asked of every patient its
query applies to: the query runs in the patient's :class:`~recordagent.records.scope.PatientScope`
and returns the answer (``value``), the ids it rests on (``evidence``) and the slot values the
question shows. Each applicable (template, patient) becomes a :class:`SilverInstance`: an
:class:`~recordagent.questions.items.EvalItem` (id ``<template>/<patient>``, template id and
level kept, as the myeloma sampler keeps them) with the query's answer and evidence, which the
evaluation layer turns into labels by annotator ``silver-sql``
(``recordagent.evaluation.silver_labels``), as it does for the gold instances.

* :func:`silver_instances` — every patient of a store (or the ones given);
* :func:`silver_sample` — a seeded, balanced sample of ``n`` items (see its docstring).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from collections.abc import Callable, Iterable
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recordagent.errors import UserError, validation_problems
from recordagent.questions.answers import final_answer_model
from recordagent.questions.items import EvalItem
from recordagent.questions.sampling import sample
from recordagent.questions.silver_templates import Need, SilverTemplate, SilverTemplateSet
from recordagent.records.db import RecordStore
from recordagent.records.scope import PatientScope

__all__ = [
    "SILVER_ANNOTATOR",
    "SilverInstance",
    "SilverRun",
    "TemplateTally",
    "missing_needs",
    "silver_instances",
    "silver_sample",
]

SILVER_ANNOTATOR = "silver-sql"
"""Annotator name of the labels the silver queries compute."""

Progress = Callable[[int, int], None]
"""Called after each patient with (patients done, patients in all)."""

_NEED_REASONS: dict[Need, str] = {
    "notes": "needs notes; the store has no documents",
    "icu": "needs icu; the store has no ICU stays",
}


class SilverInstance(BaseModel):
    """One item and its silver answer (a JSON value) with the ids it rests on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: EvalItem = Field(description="The question about one patient.")
    value: Any = Field(description="The answer as a JSON value (dates as YYYY-MM-DD).")
    evidence: tuple[str, ...] = Field(description="Ids of the rows the answer rests on.")
    slots: dict[str, str] = Field(
        default_factory=dict,
        description="The values filled into the question's slots (and as_of), as shown.",
    )


class TemplateTally(BaseModel):
    """How one template fared on a store."""

    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(description="The template.")
    level: int = Field(description="Its level.")
    applicable: int = Field(default=0, description="Patients it applied to (items made).")
    not_applicable: int = Field(
        default=0, description="Patients asked whose query gave no row or a NULL value."
    )
    drawn: int | None = Field(
        default=None, description="Items kept by the sample (None: no sample, all are kept)."
    )
    skipped: str | None = Field(
        default=None, description="Why the template was not asked at all (e.g. no notes)."
    )


class SilverRun(BaseModel):
    """The items of a template set on a store, their silver answers, and a tally per template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(description="The template set's version.")
    instances: tuple[SilverInstance, ...] = Field(description="Template order, then patient.")
    tallies: tuple[TemplateTally, ...] = Field(description="One per template, in file order.")
    patients_visited: int = Field(description="Patients the templates were asked of.")
    patients_total: int = Field(description="Patients in the store (or given).")

    @property
    def items(self) -> list[EvalItem]:
        """The items, in template order, then patient order."""
        return [instance.item for instance in self.instances]


def missing_needs(store: RecordStore) -> dict[Need, str]:
    """What the store lacks that some templates need, with the reason shown when skipping."""
    # A cursor of its own: the store's connection may be shared by threads (an MCP server's).
    with store.connection.cursor() as con:
        has = {
            "notes": bool(con.execute("SELECT EXISTS (SELECT 1 FROM documents)").fetchall()[0][0]),
            "icu": bool(
                con.execute(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE kind = 'encounter' "
                    "AND starts_with(event_id, 'ICU-'))"
                ).fetchall()[0][0]
            ),
        }
    return {need: reason for need, reason in _NEED_REASONS.items() if not has[need]}


def silver_instances(
    template_set: SilverTemplateSet,
    store: RecordStore,
    *,
    patient_ids: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> SilverRun:
    """Every applicable item of the template set on the store's patients, with its answer.

    Templates whose ``needs`` the store lacks are skipped (and tallied as such). Instances come
    in template order, then patient order.

    Args:
        template_set: Loaded silver templates.
        store: The record store.
        patient_ids: The patients to ask about (default: every patient of the store).
        progress: Called after each patient.

    Raises:
        UserError: A patient is not in the store, or a template's query fails or returns
            something that does not fit its answer spec (the message names the template,
            its file and the patient).
    """
    patients = sorted(store.patient_ids() if patient_ids is None else set(patient_ids))
    tallies, active = _start(template_set, store)
    found: dict[str, list[SilverInstance]] = {t.id: [] for t in active}
    for done, patient_id in enumerate(patients, start=1):
        scope = store.scope(patient_id)
        for template in active:
            instance = _instance(template_set, template, scope)
            _count(tallies[template.id], instance)
            if instance is not None:
                found[template.id].append(instance)
        if progress is not None:
            progress(done, len(patients))
    instances = [i for t in active for i in found[t.id]]
    return SilverRun(
        version=template_set.version,
        instances=tuple(instances),
        tallies=tuple(tallies.values()),
        patients_visited=len(patients),
        patients_total=len(patients),
    )


def silver_sample(
    template_set: SilverTemplateSet,
    store: RecordStore,
    n: int,
    seed: int = 0,
    *,
    progress: Progress | None = None,
) -> SilverRun:
    """A seeded study set of ``n`` items, balanced over levels and templates.

    Asking every template of every patient of a large store (full MIMIC-IV: 300,000 patients)
    takes hours, and a study needs a few hundred items. So patients are visited in an order
    shuffled with ``seed``, and each template is asked of them until it has ``n`` applicable
    items (or every patient has been visited); common templates stop early, rare ones read on.
    Since no template's share of ``n`` can exceed ``n``, every template then offers at least
    its share, and the draw from these candidates — :func:`recordagent.questions.sampling.sample`
    with ``seed``, the myeloma sampler: levels equal, then templates equal within a level,
    round-robin over patients — has the same shape as a draw from all items. The same store
    and seed give the same set. ``n = 0`` means every item (:func:`silver_instances`).

    Raises:
        UserError: ``n`` is negative, or a template's query fails (see
            :func:`silver_instances`).
    """
    if n < 0:
        raise UserError(f"cannot sample {n} items")
    if n == 0:
        return silver_instances(template_set, store, progress=progress)
    patients = store.patient_ids()
    random.Random(f"silver-patients:{seed}").shuffle(patients)
    tallies, active = _start(template_set, store)
    found: dict[str, list[SilverInstance]] = {t.id: [] for t in active}
    visited = 0
    for patient_id in patients:
        still_open = [t for t in active if len(found[t.id]) < n]
        if not still_open:
            break
        scope = store.scope(patient_id)
        for template in still_open:
            instance = _instance(template_set, template, scope)
            _count(tallies[template.id], instance)
            if instance is not None:
                found[template.id].append(instance)
        visited += 1
        if progress is not None:
            progress(visited, len(patients))
    candidates = [i for t in active for i in found[t.id]]
    chosen = {item.id for item in sample([i.item for i in candidates], n=n, seed=seed)}
    kept = tuple(i for i in candidates if i.item.id in chosen)
    for tally in tallies.values():
        if tally.skipped is None:
            tally.drawn = sum(1 for i in kept if i.item.template_id == tally.template_id)
    return SilverRun(
        version=template_set.version,
        instances=kept,
        tallies=tuple(tallies.values()),
        patients_visited=visited,
        patients_total=len(patients),
    )


# --- one template, one patient ----------------------------------------------------------------


def _start(
    template_set: SilverTemplateSet, store: RecordStore
) -> tuple[dict[str, TemplateTally], list[SilverTemplate]]:
    """A tally per template, and the templates the store can serve."""
    lacking = missing_needs(store)
    tallies: dict[str, TemplateTally] = {}
    active: list[SilverTemplate] = []
    for template in template_set.templates:
        reasons = [lacking[need] for need in template.needs if need in lacking]
        tallies[template.id] = TemplateTally(
            template_id=template.id, level=template.level, skipped="; ".join(reasons) or None
        )
        if not reasons:
            active.append(template)
    return tallies, active


def _count(tally: TemplateTally, instance: SilverInstance | None) -> None:
    if instance is None:
        tally.not_applicable += 1
    else:
        tally.applicable += 1


def _instance(
    template_set: SilverTemplateSet, template: SilverTemplate, scope: PatientScope
) -> SilverInstance | None:
    """The item of ``template`` for the scope's patient, or None when it does not apply."""
    query = template_set.queries[template.id]
    where = f"{query.file}: template '{template.id}', patient {scope.patient_id}"
    try:
        rows = scope.fetch(query.sql)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{where}: silver: the SQL failed: {first}") from exc
    if not rows:
        return None
    if len(rows) > 1:
        raise UserError(f"{where}: silver: {len(rows)} rows; the query must return at most one")
    row = dict(zip(query.columns, rows[0], strict=True))
    if row["value"] is None:
        return None
    value = _label_value(template, row["value"], where)
    evidence = _evidence(row["evidence"], where)
    slots = {}
    for name in template.slots():
        if row[name] is None:
            raise UserError(f"{where}: silver: slot column {name} is NULL while value is not")
        slots[name] = _shown(row[name])
    as_of = row.get("as_of")
    if template.shows_as_of():
        if not isinstance(as_of, dt.date):
            raise UserError(f"{where}: silver: the question shows {{as_of}} but as_of is NULL")
        slots["as_of"] = _shown(as_of)
    item = EvalItem(
        id=f"{template.id}/{scope.patient_id}",
        patient_id=scope.patient_id,
        question=template.question.format_map(slots),
        answer=template.answer,
        template_id=template.id,
        level=template.level,
        as_of=as_of if isinstance(as_of, dt.date) else None,
        checklist=template.checklist,
        scoring=template.scoring,
    )
    return SilverInstance(item=item, value=value, evidence=evidence, slots=slots)


def _label_value(template: SilverTemplate, raw: Any, where: str) -> Any:
    """The query's value as the JSON value of a label, checked against the answer spec.

    The check is the one a model's answer gets (the final-answer schema of the template).
    """
    if isinstance(raw, decimal.Decimal):
        raw = (
            int(raw) if template.answer.type == "count" and raw == raw.to_integral() else float(raw)
        )
    if isinstance(raw, list):
        raw = [element for element in raw if element is not None]
    try:
        answer = final_answer_model(template.answer).model_validate(
            {"status": "answered", "value": raw, "text": "", "citations": []}
        )
    except ValidationError as exc:
        problem = "; ".join(validation_problems(exc, located=False))
        raise UserError(
            f"{where}: silver: the value {raw!r} does not fit the answer spec: {problem}"
        ) from exc
    value = getattr(answer, "value")  # noqa: B009 - a field of a model built at run time
    return value.isoformat() if isinstance(value, dt.date) else value


def _evidence(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw if e is not None):
        raise UserError(f"{where}: silver: evidence must be a list of ids, not {raw!r}")
    return tuple(dict.fromkeys(e for e in raw if e))


def _shown(value: Any) -> str:
    """A slot value as the question shows it (days as YYYY-MM-DD)."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | decimal.Decimal):
        return f"{float(value):g}"
    return str(value)
