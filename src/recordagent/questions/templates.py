"""Question templates: YAML files of questions with slots, answer specs and gold derivations.

A folder of ``*.yaml`` files (searched recursively), each a mapping with a ``templates`` list
(and optionally ``definitions``, a place for YAML anchors that templates reuse). Loading
validates everything and reports every problem at once, each naming its file, template id and
field, so a template author fixes a folder in one pass. The schema is documented in
``question_templates/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recordagent.questions.answer_types import answer_kind
from recordagent.questions.answers import AnswerSpec, ScoringSpec, scoring_problems
from recordagent.questions.gold import check_expr
from recordagent.questions.gold_expr import ExprInfo, placeholders, slot_refs
from recordagent.questions.template_files import (
    TemplateBase,
    TemplateSetBase,
    read_template_folder,
)
from recordagent.sources.synthetic.vocabulary import FACTS

__all__ = [
    "Applicability",
    "QuestionTemplate",
    "TemplateSet",
    "load_templates",
    "template_problems",
]

_FILE_KEYS = ("templates", "definitions")


class Applicability(BaseModel):
    """Which patients (and slot values) a template is asked about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requires: tuple[str | dict[str, Any], ...] = Field(
        default=(),
        description="Gold facts that must exist for the patient: a fact name (per-line facts "
        "for the 'line' slot) or a gold reference such as {fact: line_start, line: '{line+1}'}.",
    )
    requires_line: bool = Field(
        default=False,
        description="The patient must have the therapy line named by the 'line' slot.",
    )
    when: dict[str, Any] | None = Field(
        default=None,
        description="A boolean gold expression that must be true, e.g. {derive: in, value: "
        "{fact: isotype}, values: [IgG, IgA]} for secretory disease only.",
    )

    def required_exprs(self) -> list[dict[str, Any]]:
        """``requires`` as gold expressions."""
        out = []
        for item in self.requires:
            if isinstance(item, str):
                spec = FACTS.get(item)
                out.append(
                    {"fact": item, "line": "{line}"} if spec and spec.per_line else {"fact": item}
                )
            else:
                out.append(item)
        return out


class QuestionTemplate(TemplateBase):
    """One question template; instantiated once per applicable patient and slot value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Stable slug (lower case, digits, '-' and '_'); the prefix of item ids.",
    )
    level: Literal[1, 2, 3] = Field(
        description="1 fact retrieval, 2 temporal reasoning / aggregation, 3 criteria synthesis."
    )
    question: str = Field(
        min_length=1,
        description="The question; {slot}, {slot+1}, {param} and {as_of} are filled in.",
    )
    answer: AnswerSpec = Field(description="What the answer looks like (shown to the model).")
    scoring: ScoringSpec = Field(
        default_factory=ScoringSpec,
        description="Tolerances and synonyms for scoring (never shown to the model).",
    )
    slots: dict[str, tuple[int | str, ...]] = Field(
        default_factory=dict,
        description="Slot values, e.g. line: [1, 2, 3]: one item per value the patient has.",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Values derived per patient (gold expressions, in order) that the question "
        "shows and the gold uses as {param: name}, e.g. a date to ask about.",
    )
    as_of: Literal["none"] | dict[str, Any] | None = Field(
        default="none",
        description="'none' (the whole record) or a date expression, e.g. {fact: line_start, "
        "line: '{line}', offset_days: 0}; available to the gold as {param: as_of}.",
    )
    applicability: Applicability = Field(
        default_factory=Applicability, description="Which patients the question applies to."
    )
    checklist: tuple[str, ...] = Field(
        default=(),
        description="Level 3: the criteria to check, each an evidence need (to EvalItem).",
    )
    gold: dict[str, Any] = Field(
        description="How the gold answer is derived: a gold expression (see questions.gold)."
    )
    if_missing: Literal["skip", "null"] = Field(
        default="skip",
        description="When the gold cannot be derived: 'skip' the patient, or keep the item with "
        "a null label ('the record does not say', e.g. no progression yet).",
    )
    description: str | None = Field(
        default=None, description="Notes for template authors (not shown to the model)."
    )

    @property
    def as_of_expr(self) -> dict[str, Any] | None:
        """The as-of expression, or None for the whole record."""
        return self.as_of if isinstance(self.as_of, dict) else None


class TemplateSet(TemplateSetBase[QuestionTemplate]):
    """Validated templates and the version (a hash of the files) that identifies them."""


def load_templates(folder: str | Path) -> TemplateSet:
    """Every template in ``folder`` (``*.yaml`` / ``*.yml``, recursively), validated.

    Raises:
        UserError: the folder is missing or empty, or any template has a problem; the message
            lists every problem with its file, template id and field.
    """
    read = read_template_folder(
        folder,
        QuestionTemplate,
        keys=_FILE_KEYS,
        expected="a mapping with a 'templates' list",
        templates_required=True,
        check=template_problems,
    )
    read.raise_problems("question templates")
    return TemplateSet(version=read.version, templates=tuple(t for _, t in read.templates))


def template_problems(template: QuestionTemplate) -> list[str]:
    """Every problem of a schema-valid template, each as 'field: message'."""
    problems: list[str] = []
    slots = template.slots
    problems += _slot_problems(template)
    params: dict[str, ExprInfo] = {}
    for name, raw in template.params.items():
        if name in slots or name == "as_of":
            problems.append(f"params.{name}: clashes with a slot or with as_of")
        info, found = check_expr(raw, f"params.{name}", slots, params)
        problems += found
        if info is not None:
            params[name] = info
    if template.as_of_expr is not None:
        info, found = check_expr(template.as_of_expr, "as_of", slots, params)
        problems += found
        if info is not None and info.type != "date":
            problems.append(f"as_of: must be a date, not {info.type}")
        params["as_of"] = ExprInfo("date")
    problems += _applicability_problems(template, params)
    info, found = check_expr(template.gold, "gold", slots, params)
    problems += found
    if info is not None:
        problems += _answer_problems(template.answer, info)
    problems += scoring_problems(template.answer, template.scoring)
    problems += _question_problems(template, set(slots) | set(params))
    if template.level == 3 and not template.checklist:
        problems.append("checklist: a level-3 template lists the criteria it synthesises")
    return problems


def _question_problems(template: QuestionTemplate, known: set[str]) -> list[str]:
    """Placeholders name slots or params; every slot is shown (else items would repeat)."""
    problems = []
    slots = template.slots
    for name, offset in placeholders(template.question):
        if name not in known:
            problems.append(
                f"question: unknown slot '{{{name}}}' (slots and params: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        elif offset and not all(isinstance(v, int) for v in slots.get(name, ("x",))):
            problems.append(f"question: '{{{name}{offset:+d}}}' needs a whole-number slot")
    shown = {name for name, _ in placeholders(template.question)}
    used = set(shown)
    # A slot may be shown through a param (or as_of) the question shows, e.g. a date.
    shown_exprs: list[Any] = [raw for name, raw in template.params.items() if name in shown]
    if "as_of" in shown:
        shown_exprs.append(template.as_of_expr)
    for raw in shown_exprs:
        used |= slot_refs(raw)
    for name in slots:
        if name not in used:
            problems.append(
                f"slots.{name}: not shown in the question, directly or through a param it "
                "shows (items would repeat)"
            )
    return problems


def _slot_problems(template: QuestionTemplate) -> list[str]:
    problems = []
    for name, values in template.slots.items():
        if not values:
            problems.append(f"slots.{name}: needs at least one value")
        if len(set(values)) != len(values):
            problems.append(f"slots.{name}: repeated values")
    return problems


def _applicability_problems(template: QuestionTemplate, params: dict[str, ExprInfo]) -> list[str]:
    applies = template.applicability
    problems = []
    if applies.requires_line and "line" not in template.slots:
        problems.append("applicability.requires_line: the template has no 'line' slot")
    for i, item in enumerate(applies.requires):
        where = f"applicability.requires[{i}]"
        if isinstance(item, str):
            spec = FACTS.get(item)
            if spec is None:
                problems.append(f"{where}: unknown fact '{item}'")
            elif spec.per_line and "line" not in template.slots:
                problems.append(
                    f"{where}: '{item}' is per line and the template has no 'line' slot"
                )
            continue
        # Checked before params exist (requirements decide whether params are derived at all).
        problems += check_expr(item, where, template.slots)[1]
    if applies.when is not None:
        info, found = check_expr(applies.when, "applicability.when", template.slots, params)
        problems += found
        if info is not None and info.type != "boolean":
            problems.append(f"applicability.when: must be a condition, not {info.type}")
    return problems


def _answer_problems(answer: AnswerSpec, info: ExprInfo) -> list[str]:
    kind = answer_kind(answer.type)
    problems = []
    if info.type not in kind.gold:
        problems.append(f"answer.type: {answer.type} does not fit the gold, which is a {info.type}")
        return problems
    if answer.allowed is not None and info.domain is not None:
        missing = sorted(info.domain - set(answer.allowed))
        if missing:
            problems.append(f"answer.allowed: misses {', '.join(missing)}, which the gold can take")
    if kind.unit and info.unit and answer.unit != info.unit:
        problems.append(f"answer.unit: the gold is in {info.unit}, not {answer.unit}")
    return problems
