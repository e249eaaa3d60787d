"""Template folders: YAML files of question templates, read with every problem located.

Both kinds of question template — gold-derived (:mod:`.templates`) and SQL-derived
(:mod:`.silver_templates`) — live in a folder of ``*.yaml`` files, searched recursively, each a
mapping with a ``templates`` list and a few other top-level keys. :func:`read_template_folder`
reads such a folder the one way both need: every file parsed, every entry validated against
the template model, ids unique across files, and every problem collected as
``file: template 'id': field: message``, so that an author fixes a folder in one pass. The
version of a set is a hash of its files' contents. :func:`template_kind` tells the two kinds
apart before either loader runs, so that a command can say what a folder is for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recordagent.errors import UserError, validation_problems

__all__ = [
    "TemplateBase",
    "TemplateFolder",
    "TemplateKind",
    "TemplateSetBase",
    "read_template_folder",
    "template_kind",
    "yaml_files",
]

TemplateKind = Literal["gold", "sql"]
"""``gold``: answers derived from a synthetic cohort's gold facts (a ``gold:`` expression);
``sql``: answers computed by SQL over a record store (a ``silver:`` query)."""


class TemplateBase(BaseModel):
    """What every kind of question template has: a stable id (each kind describes it)."""

    id: str


TemplateT = TypeVar("TemplateT", bound=TemplateBase)

FileHook = Callable[[str, Mapping[str, Any]], list[str]]
"""Reads a file's other top-level keys (name, mapping) and returns their problems."""


class TemplateSetBase(BaseModel, Generic[TemplateT]):
    """Validated templates and the version (a hash of the files) that identifies them."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(
        description="sha256 over the template files' contents (first 16 hex digits)."
    )
    templates: tuple[TemplateT, ...] = Field(description="The templates, in file order.")

    def get(self, template_id: str) -> TemplateT:
        """The template with this id.

        Raises:
            KeyError: no such template.
        """
        for template in self.templates:
            if template.id == template_id:
                return template
        raise KeyError(template_id)


@dataclass
class TemplateFolder(Generic[TemplateT]):
    """A template folder as read: its schema-valid templates, its version and its problems.

    Attributes:
        root: The folder.
        version: sha256 over the files' contents (first 16 hex digits); the contents decide
            it, not where the folder is or what its files are called.
        templates: (file, template) for each template without problems, in file order, ids
            unique (a repeated id is a problem and the later template is dropped).
        problems: Every problem found, each starting with its file.
    """

    root: Path
    version: str
    templates: list[tuple[str, TemplateT]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def raise_problems(self, what: str) -> None:
        """Raise every problem at once, if there is any.

        Raises:
            UserError: ``what`` in the folder, the number of problems, then one a line.
        """
        if not self.problems:
            return
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        raise UserError(f"{what} in {self.root}: {count}\n  " + "\n  ".join(self.problems))


def yaml_files(root: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files below ``root`` (none if it is not a folder)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _template_files(folder: str | Path) -> tuple[Path, list[Path]]:
    """The template folder and its YAML files.

    Raises:
        UserError: the folder does not exist or holds no template file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"question template folder {root} does not exist")
    files = yaml_files(root)
    if not files:
        raise UserError(f"no question templates (*.yaml) in {root}")
    return root, files


def _parsed(name: str, raw: bytes, problems: list[str]) -> tuple[bool, Any]:
    """Whether a file parses, and its YAML; when not, the problem is added to ``problems``."""
    try:
        return True, yaml.safe_load(raw.decode("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(f"{name}: not valid YAML{at}: {problem}")
    except UnicodeDecodeError as exc:
        problems.append(f"{name}: not UTF-8 text ({exc.reason})")
    return False, None


def template_kind(folder: str | Path) -> TemplateKind:
    """Which kind of template ``folder`` holds, told by the field that derives the answer.

    A template with ``gold:`` is gold-derived, one with ``silver:`` (or a file with
    ``fragments:``) SQL-derived. Files that do not parse are passed over here: the loader of
    the kind reports them with the rest.

    Raises:
        UserError: the folder is missing or holds no template file; it mixes both kinds; or no
            template says which kind it is (with the files that could not be read, if any).
    """
    root, files = _template_files(folder)
    gold: list[str] = []
    sql: list[str] = []
    unreadable: list[str] = []
    for path in files:
        name = path.relative_to(root).as_posix()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            unreadable.append(f"{name}: cannot be read ({exc.strerror or exc})")
            continue
        _, data = _parsed(name, raw, unreadable)
        if not isinstance(data, Mapping):
            continue
        if data.get("fragments") is not None:
            sql.append(f"{name} (fragments)")
        entries = data.get("templates")
        for index, entry in enumerate(entries if isinstance(entries, list) else [], start=1):
            if not isinstance(entry, Mapping):
                continue
            label = f"{name}: template '{entry.get('id', f'#{index}')}'"
            if "silver" in entry:
                sql.append(label)
            if "gold" in entry:
                gold.append(label)
    if gold and sql:
        raise UserError(
            f"{root} mixes gold-derived templates (gold:, e.g. {gold[0]}) and SQL-derived ones "
            f"(silver:, e.g. {sql[0]}); put each kind in a folder of its own"
        )
    if sql:
        return "sql"
    if gold:
        return "gold"
    unread = ("; files that could not be read: " + "; ".join(unreadable)) if unreadable else ""
    raise UserError(
        f"cannot tell which kind of question templates {root} holds: no template has a "
        "'silver:' query (SQL-derived, labels from a record store) or a 'gold:' expression "
        f"(gold-derived, labels from a synthetic cohort){unread}. The format: "
        "question_templates/README.md"
    )


def read_template_folder(
    folder: str | Path,
    model: type[TemplateT],
    *,
    keys: Sequence[str],
    expected: str,
    templates_required: bool,
    check: Callable[[TemplateT], list[str]] | None = None,
    other_keys: FileHook | None = None,
) -> TemplateFolder[TemplateT]:
    """Every template of ``folder``, validated as ``model``, with every problem found.

    Args:
        folder: The template folder.
        model: The template model each entry of a ``templates`` list is validated as.
        keys: The top-level keys a file may have.
        expected: What a file must be, as the problem says it ('a mapping with ...').
        templates_required: Every file must have a ``templates`` list (else a file may
            leave it out, e.g. one that only holds SQL fragments).
        check: Problems of a schema-valid template ('field: message'); a template with any
            is not kept.
        other_keys: Reads each file's other top-level keys before its templates.

    Raises:
        UserError: the folder does not exist or holds no template file.
    """
    root, files = _template_files(folder)
    problems: list[str] = []
    digests: list[str] = []
    kept: list[tuple[str, TemplateT]] = []
    seen: dict[str, str] = {}
    for path in files:
        name = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        digests.append(hashlib.sha256(raw).hexdigest())
        data = _file_data(name, raw, problems, keys, expected, templates_required)
        if data is None:
            continue
        if other_keys is not None:
            problems += other_keys(name, data)
        entries = _entries(name, data.get("templates"), problems)
        for template in _validated(name, entries, model, check, problems):
            if template.id in seen:
                problems.append(
                    f"{name}: template '{template.id}': id: also defined in {seen[template.id]}"
                )
                continue
            seen[template.id] = name
            kept.append((name, template))
    version = hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:16]
    return TemplateFolder(root=root, version=version, templates=kept, problems=problems)


def _file_data(
    name: str,
    raw: bytes,
    problems: list[str],
    keys: Sequence[str],
    expected: str,
    templates_required: bool,
) -> Mapping[str, Any] | None:
    """A file's top-level mapping, or None (with the problem) when it has none."""
    parsed, data = _parsed(name, raw, problems)
    if not parsed:
        return None
    if not isinstance(data, Mapping) or (
        templates_required and not isinstance(data.get("templates"), list)
    ):
        problems.append(f"{name}: expected {expected}")
        return None
    for key in data:
        if key not in keys:
            problems.append(f"{name}: unknown top-level key '{key}' (expected {', '.join(keys)})")
    return data


def _entries(name: str, raw: Any, problems: list[str]) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{name}: templates: expected a list of templates")
        return []
    return raw


def _validated(
    name: str,
    entries: list[Any],
    model: type[TemplateT],
    check: Callable[[TemplateT], list[str]] | None,
    problems: list[str],
) -> list[TemplateT]:
    """The entries that are valid templates; the problems of the others, located."""
    out = []
    for index, entry in enumerate(entries, start=1):
        label = (
            f"template '{entry['id']}'"
            if isinstance(entry, Mapping) and isinstance(entry.get("id"), str)
            else f"template #{index}"
        )
        try:
            template = model.model_validate(entry)
        except ValidationError as exc:
            located = validation_problems(exc, whole="(template)")
            problems += [f"{name}: {label}: {problem}" for problem in located]
            continue
        found = check(template) if check is not None else []
        problems += [f"{name}: {label}: {problem}" for problem in found]
        if not found:
            out.append(template)
    return out
