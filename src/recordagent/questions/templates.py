"""Question templates: YAML files of questions with slots, answer specs and gold derivations.

A folder of ``*.yaml`` files (searched recursively), each a mapping with a ``templates`` list
(and optionally ``definitions``, a place for YAML anchors that templates reuse). Loading
validates everything and reports every problem at once, each naming its file, template id and
field, so a template author fixes a folder in one pass. The schema is documented in
``question_templates/README.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recordagent.errors import UserError
from recordagent.questions.answers import AnswerSpec, ScoringSpec
from recordagent.questions.gold import ExprInfo, check_expr, placeholders, slot_refs
from recordagent.sources.synthetic.gold import FACTS

__all__ = [
    "Applicability",
    "QuestionTemplate",
    "TemplateSet",
    "load_templates",
    "scoring_problems",
    "template_problems",
]

_FILE_KEYS = {"templates", "definitions"}
# Which gold types each answer type accepts (numbers are whole when a count is asked for).
_ACCEPTS: dict[str, frozenset[str]] = {
    "date": frozenset({"date"}),
    "number": frozenset({"number", "count"}),
    "count": frozenset({"count", "number"}),
    "boolean": frozenset({"boolean"}),
    "category": frozenset({"category"}),
    "list": frozenset({"list"}),
    "text": frozenset({"date", "number", "count", "boolean", "category", "list", "text"}),
}


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


class QuestionTemplate(BaseModel):
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


class TemplateSet(BaseModel):
    """Validated templates and the version (a hash of the files) that identifies them."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(
        description="sha256 over the template files' contents (first 16 hex digits)."
    )
    templates: tuple[QuestionTemplate, ...] = Field(description="The templates, in file order.")

    def get(self, template_id: str) -> QuestionTemplate:
        """The template with this id.

        Raises:
            KeyError: no such template.
        """
        for template in self.templates:
            if template.id == template_id:
                return template
        raise KeyError(template_id)


def load_templates(folder: str | Path) -> TemplateSet:
    """Every template in ``folder`` (``*.yaml`` / ``*.yml``, recursively), validated.

    Raises:
        UserError: the folder is missing or empty, or any template has a problem; the message
            lists every problem with its file, template id and field.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"question template folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise UserError(f"no question templates (*.yaml) in {root}")
    digests: list[str] = []
    problems: list[str] = []
    templates: list[QuestionTemplate] = []
    seen: dict[str, str] = {}
    for path in files:
        name = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        digests.append(hashlib.sha256(raw).hexdigest())
        for template in _load_file(name, raw, problems):
            if template.id in seen:
                problems.append(
                    f"{name}: template '{template.id}': id: also defined in {seen[template.id]}"
                )
                continue
            seen[template.id] = name
            templates.append(template)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise UserError(f"question templates in {root}: {count}\n  " + "\n  ".join(problems))
    # The contents decide the version, not where the folder is or what its files are called.
    version = hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:16]
    return TemplateSet(version=version, templates=tuple(templates))


def _load_file(name: str, raw: bytes, problems: list[str]) -> list[QuestionTemplate]:
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: not valid YAML: {exc}")
        return []
    if not isinstance(data, Mapping) or not isinstance(data.get("templates"), list):
        problems.append(f"{name}: expected a mapping with a 'templates' list")
        return []
    for key in data:
        if key not in _FILE_KEYS:
            problems.append(
                f"{name}: unknown top-level key '{key}' (expected templates, definitions)"
            )
    out = []
    for index, entry in enumerate(data["templates"], start=1):
        label = (
            f"template '{entry['id']}'"
            if isinstance(entry, Mapping) and isinstance(entry.get("id"), str)
            else f"template #{index}"
        )
        try:
            template = QuestionTemplate.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "(template)"
                message = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{name}: {label}: {where}: {message}")
            continue
        found = template_problems(template)
        problems += [f"{name}: {label}: {problem}" for problem in found]
        if not found:
            out.append(template)
    return out


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
    problems = []
    if info.type not in _ACCEPTS[answer.type]:
        problems.append(f"answer.type: {answer.type} does not fit the gold, which is a {info.type}")
        return problems
    if answer.allowed is not None and info.domain is not None:
        missing = sorted(info.domain - set(answer.allowed))
        if missing:
            problems.append(f"answer.allowed: misses {', '.join(missing)}, which the gold can take")
    if answer.type == "number" and info.unit and answer.unit != info.unit:
        problems.append(f"answer.unit: the gold is in {info.unit}, not {answer.unit}")
    return problems


def scoring_problems(answer: AnswerSpec, scoring: ScoringSpec) -> list[str]:
    """What in ``scoring`` does not apply to an answer of this type (field: message)."""
    problems = []
    if scoring.tolerance_days and answer.type != "date":
        problems.append(f"scoring.tolerance_days: applies to dates, not {answer.type}")
    for name in ("abs_tol", "rel_tol"):
        if getattr(scoring, name) is not None and answer.type not in ("number", "count"):
            problems.append(f"scoring.{name}: applies to numbers, not {answer.type}")
    if scoring.synonyms:
        if answer.type not in ("category", "list"):
            problems.append(f"scoring.synonyms: apply to categories and lists, not {answer.type}")
        elif answer.allowed is not None:
            unknown = sorted(set(scoring.synonyms) - set(answer.allowed))
            if unknown:
                problems.append(f"scoring.synonyms: not allowed values: {', '.join(unknown)}")
    if scoring.list_match != "exact" and answer.type != "list":
        problems.append(f"scoring.list_match: applies to lists, not {answer.type}")
    return problems
