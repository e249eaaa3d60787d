"""What an extraction asks: every selected patient × each question, as items.

Questions come from a template folder or are given directly (:class:`~recordagent.questions.
items.Question`). A template whose question has no slots is asked of every patient: an
extraction wants the answer for the whole cohort, and "the record does not say" is an answer
too. A SQL-derived template with slots (``{line}``, ``{as_of}``) is asked once per instance its
query yields for the patient, with the slot values it shows. A gold-derived template with slots
or parameters takes them from a synthetic cohort's gold facts, which a store does not hold: it
is skipped, and the plan says so.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recordagent.errors import UserError
from recordagent.questions.items import EvalItem, Question
from recordagent.questions.silver import missing_needs, silver_instances
from recordagent.questions.silver_templates import (
    SilverTemplate,
    SilverTemplateSet,
    load_silver_templates,
)
from recordagent.questions.template_files import template_kind
from recordagent.questions.templates import QuestionTemplate, load_templates
from recordagent.records.db import RecordStore

__all__ = ["ExtractionItems", "question_items", "template_items"]


@dataclass(frozen=True)
class ExtractionItems:
    """The items of an extraction and what they came from.

    Attributes:
        items: Patient-major: every question of a patient, then the next patient.
        questions: The questions asked (templates, or questions given).
        slots: Each item's slot values as its question shows them (empty without slots).
        skipped: Templates not asked, each with why.
        template_set_version: The template folder's version (None for direct questions).
    """

    items: list[EvalItem]
    questions: int
    slots: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    template_set_version: str | None = None


def question_items(questions: Sequence[Question], patients: Sequence[str]) -> ExtractionItems:
    """Each question asked of each patient (ad-hoc item ids: a digest of the ask).

    Raises:
        UserError: No questions, or one given twice.
    """
    if not questions:
        raise UserError("no questions to ask: give a template folder or a question")
    if len(set(questions)) != len(questions):
        twice = next(q for q in questions if questions.count(q) > 1)
        raise UserError(f"the question {twice.text!r} is given twice")
    return ExtractionItems(
        items=[q.item(p) for p in patients for q in questions], questions=len(questions)
    )


def template_items(
    folder: str | Path, store: RecordStore, patients: Sequence[str]
) -> ExtractionItems:
    """The items of a template folder's templates for ``patients``.

    Raises:
        UserError: The folder is not a valid template folder (its problems, with files), a
            template's query fails on a patient, or no template can be asked.
    """
    if template_kind(folder) == "sql":
        return _sql_items(load_silver_templates(folder), store, patients)
    gold = load_templates(folder)
    return _gold_items(gold.templates, gold.version, patients)


def _sql_items(
    template_set: SilverTemplateSet, store: RecordStore, patients: Sequence[str]
) -> ExtractionItems:
    lacking = missing_needs(store)
    skipped: list[tuple[str, str]] = []
    plain: list[SilverTemplate] = []
    slotted: list[SilverTemplate] = []
    for template in template_set.templates:
        reasons = [lacking[need] for need in template.needs if need in lacking]
        if reasons:
            skipped.append((template.id, "; ".join(reasons)))
        elif template.slots() or template.as_of:
            slotted.append(template)
        else:
            plain.append(template)
    by_patient: dict[str, list[EvalItem]] = {p: [] for p in patients}
    slots: dict[str, dict[str, str]] = {}
    for patient in patients:
        by_patient[patient].extend(_asked_of(template, patient) for template in plain)
    asked = len(plain)
    if slotted:
        subset = template_set.model_copy(update={"templates": tuple(slotted)})
        found = silver_instances(subset, store, patient_ids=patients)
        for instance in found.instances:
            by_patient[instance.item.patient_id].append(instance.item)
            slots[instance.item.id] = instance.slots
        for tally in found.tallies:
            if tally.applicable:
                asked += 1
            else:
                skipped.append((tally.template_id, "its query found no instance to ask"))
    if not plain and not slotted:
        raise UserError(
            "no template of this folder can be asked of this store: "
            + "; ".join(f"{t}: {why}" for t, why in skipped)
        )
    return ExtractionItems(
        items=_patient_major(by_patient, [t.id for t in template_set.templates]),
        questions=asked,
        slots=slots,
        skipped=skipped,
        template_set_version=template_set.version,
    )


def _gold_items(
    templates: Sequence[QuestionTemplate], version: str, patients: Sequence[str]
) -> ExtractionItems:
    asked = [t for t in templates if _fixed(t)]
    skipped = [
        (
            t.id,
            "its question takes slots or parameters from a synthetic cohort's gold facts, "
            "which a record store does not hold",
        )
        for t in templates
        if not _fixed(t)
    ]
    if not asked:
        raise UserError(
            "none of these gold-derived templates can be asked of a record store: each takes "
            "slots or parameters from gold facts. Use SQL-derived templates "
            "(question_templates/general) or a question"
        )
    items = [_asked_of(t, p) for p in patients for t in asked]
    return ExtractionItems(
        items=items, questions=len(asked), skipped=skipped, template_set_version=version
    )


def _asked_of(template: SilverTemplate | QuestionTemplate, patient: str) -> EvalItem:
    """The item asking ``template``'s question, the same for every patient, of ``patient``."""
    return EvalItem(
        id=f"{template.id}/{patient}",
        patient_id=patient,
        question=template.question,
        answer=template.answer,
        template_id=template.id,
        level=template.level,
        checklist=template.checklist,
        scoring=template.scoring,
    )


def _fixed(template: QuestionTemplate) -> bool:
    """Whether the template's question is the same for every patient."""
    placeholders = [n for _, n, _, _ in string.Formatter().parse(template.question) if n]
    return (
        not placeholders
        and not template.slots
        and not template.params
        and not (template.as_of_expr)
    )


def _patient_major(by_patient: dict[str, list[EvalItem]], order: Sequence[str]) -> list[EvalItem]:
    """Every item of a patient together, templates in the folder's order."""
    rank = {template_id: n for n, template_id in enumerate(order)}
    return [
        item
        for items in by_patient.values()
        for item in sorted(items, key=lambda i: rank.get(i.template_id or "", len(rank)))
    ]
