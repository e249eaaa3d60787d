"""Silver question templates: questions whose reference answer is SQL over the record store.

A folder of ``*.yaml`` files (searched recursively), each a mapping with ``templates`` (a list)
and optionally ``fragments`` (named SQL pieces that any template of the folder pastes in as
``{{name}}``) and ``definitions`` (a home for YAML anchors). The format is source-agnostic:
the SQL reads the store's four tables, whichever loader filled them. It is documented in
``question_templates/README.md``; ``question_templates/general`` is a worked family for any
source, ``question_templates/mimic_iv`` one for MIMIC-IV.

Loading checks everything it can without data, and reports every problem at once, each as
``file: template 'id': field: message``: the schema, the fragments, and the SQL itself, which
is bound against an empty record store through a :class:`~recordagent.records.scope.PatientScope`
(so a syntax error, an unknown column, a table outside the patient's record or a result column
of the wrong type is found before any patient is read).
"""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recordagent.questions.answer_types import answer_kind
from recordagent.questions.answers import AnswerSpec, ScoringSpec, scoring_problems
from recordagent.questions.template_files import (
    TemplateBase,
    TemplateSetBase,
    read_template_folder,
    yaml_files,
)
from recordagent.records.db import RecordStore, connect

__all__ = [
    "RESERVED_COLUMNS",
    "Need",
    "SilverQuery",
    "SilverTemplate",
    "SilverTemplateSet",
    "is_silver_folder",
    "load_silver_templates",
]

Need = Literal["notes", "icu"]
"""What a template needs the store to hold: ``notes`` (documents), ``icu`` (ICU stays)."""

RESERVED_COLUMNS = ("value", "evidence", "as_of")
"""Result columns with a fixed meaning; every other column is a slot of the question."""

_FILE_KEYS = ("templates", "fragments", "definitions")
_FRAGMENT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CHECK_PATIENT = "silver-template-check"


class SilverTemplate(TemplateBase):
    """One question template whose reference answer ("silver label") a SQL query computes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Stable slug (lower case, digits, '-' and '_'); item ids are '<id>/<patient>'.",
    )
    level: Literal[1, 2, 3] = Field(
        description="1 one fact; 2 aggregation or temporal reasoning over several rows; "
        "3 criteria or several steps."
    )
    question: str = Field(
        min_length=1,
        description="The question; {name} is filled from the SQL row's column `name`, and "
        "{as_of} (with as_of: true) with the item's as_of day as YYYY-MM-DD.",
    )
    answer: AnswerSpec = Field(description="What the answer looks like (shown to the model).")
    scoring: ScoringSpec = Field(
        default_factory=ScoringSpec,
        description="Tolerances and synonyms for scoring (never shown to the model).",
    )
    definition: str = Field(
        min_length=1,
        description="The clinical definition the SQL implements, in words (documentation).",
    )
    silver: str = Field(
        min_length=1,
        description="One SELECT over the record tables, run in the patient's scope: at most one "
        "row with `value`, `evidence` (list of ids), the question's slots and, with as_of, "
        "`as_of`. No row or a NULL value: the template does not apply to the patient.",
    )
    needs: tuple[Need, ...] = Field(
        default=(),
        description="What the store must hold for the template to be asked at all: 'notes' "
        "(MIMIC-IV-Note documents), 'icu' (ICU stays). Skipped, and reported, otherwise.",
    )
    as_of: bool = Field(
        default=False,
        description="The row's `as_of` column (a DATE) is the day the item is asked as of.",
    )
    checklist: tuple[str, ...] = Field(
        default=(), description="Level 3: the criteria the question synthesises (required)."
    )
    description: str | None = Field(default=None, description="Notes for template authors.")

    @field_validator("needs", mode="before")
    @classmethod
    def _one_need(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def slots(self) -> list[str]:
        """The result columns the question fills in, in order of first use.

        ``{as_of}`` is not a slot: it shows the item's as_of day (the ``as_of`` column).
        """
        names: list[str] = []
        for _, name, _, _ in string.Formatter().parse(self.question):
            if name is not None and name != "as_of" and name not in names:
                names.append(name)
        return names

    def shows_as_of(self) -> bool:
        """Whether the question shows the item's as_of day (``{as_of}``)."""
        return any(name == "as_of" for _, name, _, _ in string.Formatter().parse(self.question))


class SilverQuery(BaseModel):
    """A template's SQL with its fragments pasted in, and the columns it returns."""

    model_config = ConfigDict(frozen=True)

    file: str = Field(description="The file the template is defined in, relative to the folder.")
    sql: str = Field(description="The SQL with every {{fragment}} replaced.")
    columns: tuple[str, ...] = Field(description="Result columns, in order.")


class SilverTemplateSet(TemplateSetBase[SilverTemplate]):
    """Validated silver templates and the version (a hash of the files) that identifies them."""

    queries: dict[str, SilverQuery] = Field(description="Each template's checked query, by id.")


def is_silver_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds silver templates (some template has a ``silver`` query).

    Unreadable files count as not silver: the loader that is then used reports them.
    """
    for path in yaml_files(Path(folder)):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
        entries = data.get("templates") if isinstance(data, Mapping) else None
        if isinstance(entries, list) and any(
            isinstance(e, Mapping) and "silver" in e for e in entries
        ):
            return True
    return False


def load_silver_templates(folder: str | Path) -> SilverTemplateSet:
    """Every silver template in ``folder`` (``*.yaml`` / ``*.yml``, recursively), validated.

    Raises:
        UserError: the folder is missing or empty, or there are problems; the message lists
            every one with its file, template id and field.
    """
    fragments: dict[str, tuple[str, str]] = {}
    read = read_template_folder(
        folder,
        SilverTemplate,
        keys=_FILE_KEYS,
        expected="a mapping with 'templates' and/or 'fragments'",
        templates_required=False,
        other_keys=lambda name, data: _collect_fragments(name, data, fragments),
    )
    problems = read.problems
    if not read.templates and not problems:
        problems.append("no templates: every file's 'templates' list is empty")
    queries: dict[str, SilverQuery] = {}
    if read.templates:
        with _checking_store() as store:
            for name, template in read.templates:
                where = f"{name}: template '{template.id}'"
                sql, missing = _expand(template.silver, fragments)
                if missing:
                    problems.append(
                        f"{where}: silver: unknown fragment(s) {', '.join(missing)} (fragments: "
                        f"{', '.join(sorted(fragments)) or 'none'})"
                    )
                    continue
                own = [f"{where}: {p}" for p in _template_problems(template)]
                columns, sql_problems = _check_sql(store, template, sql)
                problems += own + [f"{where}: {p}" for p in sql_problems]
                if not own and not sql_problems:
                    queries[template.id] = SilverQuery(file=name, sql=sql, columns=columns)
    read.raise_problems("silver templates")
    return SilverTemplateSet(
        version=read.version, templates=tuple(t for _, t in read.templates), queries=queries
    )


def _collect_fragments(
    name: str, data: Mapping[str, Any], fragments: dict[str, tuple[str, str]]
) -> list[str]:
    """Add the file's ``fragments`` to ``fragments`` (name → (file, SQL)); their problems."""
    raw = data.get("fragments")
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"{name}: fragments: expected a mapping of name: SQL"]
    problems = []
    for key, sql in raw.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            problems.append(f"{name}: fragments: {key!r} is not a name (letters, digits, _)")
        elif not isinstance(sql, str) or not sql.strip():
            problems.append(f"{name}: fragments.{key}: expected SQL text")
        elif key in fragments:
            problems.append(f"{name}: fragments.{key}: also defined in {fragments[key][0]}")
        elif _FRAGMENT.search(sql):
            problems.append(f"{name}: fragments.{key}: a fragment may not use other fragments")
        else:
            fragments[key] = (name, sql)
    return problems


def _expand(sql: str, fragments: Mapping[str, tuple[str, str]]) -> tuple[str, list[str]]:
    """``sql`` with each ``{{name}}`` replaced by its fragment; the unknown names."""
    missing = sorted({m for m in _FRAGMENT.findall(sql) if m not in fragments})
    if missing:
        return sql, missing
    return _FRAGMENT.sub(lambda m: fragments[m.group(1)][1].strip(), sql), []


def _template_problems(template: SilverTemplate) -> list[str]:
    """Problems of a schema-valid template that the schema cannot express."""
    problems: list[str] = []
    for _, name, spec, conversion in string.Formatter().parse(template.question):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            problems.append(f"question: '{{{name}}}' must be a plain {{name}} of a result column")
        elif name == "as_of":
            if not template.as_of:
                problems.append(
                    "question: '{as_of}' shows the item's as_of day, which needs as_of: true "
                    "(and an as_of column)"
                )
        elif name in RESERVED_COLUMNS:
            problems.append(f"question: '{{{name}}}' is a reserved column, not a slot")
    if template.level == 3 and not template.checklist:
        problems.append("checklist: a level-3 template lists the criteria it synthesises")
    if len(set(template.needs)) != len(template.needs):
        problems.append("needs: repeated values")
    problems.extend(scoring_problems(template.answer, template.scoring))
    return problems


@contextlib.contextmanager
def _checking_store() -> Iterator[RecordStore]:
    """An empty in-memory record store with one patient, to bind template SQL against."""
    with connect() as store:
        store.connection.execute(
            "INSERT INTO patients (patient_id, source_id) VALUES ($id, 0)", {"id": _CHECK_PATIENT}
        )
        yield store


def _check_sql(
    store: RecordStore, template: SilverTemplate, sql: str
) -> tuple[tuple[str, ...], list[str]]:
    """The result columns of ``sql`` on an empty store, and its problems."""
    try:
        frame = store.scope(_CHECK_PATIENT).frame(sql)
    except (duckdb.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (), [f"silver: the SQL does not run: {first}"]
    columns = tuple(frame.columns)
    problems = []
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        problems.append(f"silver: result column(s) named twice: {', '.join(repeated)}")
    expected = {"value", "evidence", *template.slots(), *(("as_of",) if template.as_of else ())}
    missing = [c for c in ("value", "evidence", *template.slots()) if c not in columns]
    if template.as_of and "as_of" not in columns:
        missing.append("as_of")
    if missing:
        problems.append(
            f"silver: the result has no column(s) {', '.join(missing)} (it has "
            f"{', '.join(columns) or 'none'})"
        )
    extra = [c for c in columns if c not in expected]
    if extra:
        problems.append(
            f"silver: unexpected result column(s) {', '.join(extra)}: a column is value, "
            "evidence, as_of (with as_of: true) or a slot the question shows"
        )
    schema = frame.schema
    kind = answer_kind(template.answer.type)
    if "value" in schema and not kind.fits_sql(schema["value"]):
        problems.append(
            f"silver: column value is {schema['value']}, which does not fit a "
            f"{template.answer.type} answer ({kind.sql})"
        )
    if "evidence" in schema and schema["evidence"] != pl.List(pl.String):
        problems.append(
            f"silver: column evidence is {schema['evidence']}; it must be a list of ids "
            "(VARCHAR[], e.g. list(lab_id ORDER BY time))"
        )
    if template.as_of and "as_of" in schema and schema["as_of"] != pl.Date:
        problems.append(f"silver: column as_of is {schema['as_of']}; cast it to DATE")
    return columns, problems
