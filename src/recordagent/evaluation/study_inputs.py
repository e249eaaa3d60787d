"""What a study asks and scores against: its items, labels and reference labels.

A suite names an items file (with or without a labels file), or a synthetic cohort to sample
items and their gold labels from (:func:`sample_cohort`, generated first when the suite names a
preset). Everything is read and checked before a record store is opened or a model asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from recordagent.errors import UserError
from recordagent.evaluation.gold_labels import instance_labels
from recordagent.evaluation.labels import Label, ReferenceLabel, read_labels, reference_labels
from recordagent.evaluation.suite import Suite
from recordagent.paths import path_kind
from recordagent.questions.gold_data import GoldData
from recordagent.questions.items import EvalItem, read_items
from recordagent.questions.sampling import instances, sample
from recordagent.questions.templates import TemplateSet, load_templates
from recordagent.resources import question_templates_path
from recordagent.sources.synthetic import generate_cohort, load_preset

__all__ = ["SampledCohort", "StudyInputs", "read_study_inputs", "sample_cohort"]


@dataclass(frozen=True)
class StudyInputs:
    """The items of a study and what their answers are scored against.

    Attributes:
        items: The items, in the order they are asked.
        labels: Every label given (all annotators'); empty without labels.
        references: The reference label of each resolved item, or None when no labels were
            given (answers are then logged unscored).
        unresolved: Ids of labelled items that have no reference (annotators disagree).
        template_set_version: Version of the templates the items were sampled from, if known.
    """

    items: list[EvalItem]
    labels: list[Label]
    references: dict[str, ReferenceLabel] | None
    unresolved: list[str]
    template_set_version: str | None = None

    @classmethod
    def of(
        cls,
        items: Sequence[EvalItem],
        labels: Sequence[Label] | None = None,
        *,
        template_set_version: str | None = None,
    ) -> StudyInputs:
        """``items`` scored against ``labels`` (None: not scored)."""
        references: dict[str, ReferenceLabel] | None = None
        unresolved: list[str] = []
        if labels is not None:
            references, unresolved = reference_labels(labels, {item.id: item for item in items})
        return cls(
            items=list(items),
            labels=list(labels or []),
            references=references,
            unresolved=unresolved,
            template_set_version=template_set_version,
        )


@dataclass(frozen=True)
class SampledCohort:
    """Items sampled from a synthetic cohort with their gold labels, and the templates used."""

    template_set: TemplateSet
    items: list[EvalItem]
    labels: list[Label]
    applicable: list[EvalItem]
    """Every item the templates give on this cohort, before sampling."""

    def inputs(self, labels: Sequence[Label] | None = None) -> StudyInputs:
        """The sampled items, scored against ``labels`` (default: their gold labels)."""
        return StudyInputs.of(
            self.items,
            self.labels if labels is None else labels,
            template_set_version=self.template_set.version,
        )


def sample_cohort(
    cohort: Path, *, n: int, seed: int, templates: Path | None = None
) -> SampledCohort:
    """A balanced sample of ``n`` items (0: all) over a synthetic cohort, with gold labels.

    Args:
        cohort: The cohort folder (a record bundle with its ``gold/`` folder).
        n: Items to sample; 0 for every applicable item.
        seed: Sampling seed.
        templates: Template folder; default: the packaged myeloma templates.

    Raises:
        UserError: The cohort's gold tables cannot be read, or the templates are invalid.
    """
    template_set = load_templates(templates or question_templates_path() / "myeloma")
    every = instances(template_set, GoldData.load(cohort / "gold", cohort))
    chosen_ids = {
        item.id for item in sample([i.item for i in every], n=n if n > 0 else len(every), seed=seed)
    }
    chosen = [i for i in every if i.item.id in chosen_ids]
    return SampledCohort(
        template_set=template_set,
        items=[i.item for i in chosen],
        labels=instance_labels(chosen),
        applicable=[i.item for i in every],
    )


def read_study_inputs(suite: Suite) -> StudyInputs:
    """The suite's items (read, or sampled from its cohort) and labels, checked.

    A suite with a ``synthetic_preset`` generates its cohort first when the folder is missing.
    Without a labels file, a sampled cohort's gold labels are the references.

    Raises:
        UserError: A file is missing, unreadable or invalid, or the cohort cannot be written.
    """
    if suite.items is not None:
        items = read_items(suite.items)
        labels = read_labels(suite.labels) if suite.labels is not None else None
        return StudyInputs.of(items, labels)
    cohort = suite.cohort
    assert cohort is not None  # the suite validator ensures it
    if suite.synthetic_preset is not None and path_kind(cohort, "cohort") == "missing":
        try:
            generate_cohort(load_preset(suite.synthetic_preset), suite.synthetic_seed, cohort)
        except OSError as exc:
            raise UserError(
                f"cannot write the synthetic cohort to {cohort}: {exc.strerror or exc}"
            ) from exc
    if path_kind(cohort / "gold", "cohort") != "folder":
        raise UserError(f"cohort {cohort} has no gold/ folder: is it a synthetic cohort?")
    sampled = sample_cohort(cohort, n=suite.n, seed=suite.seed, templates=suite.templates)
    return sampled.inputs(read_labels(suite.labels) if suite.labels is not None else None)
