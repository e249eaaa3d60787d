"""Evaluation suites: one YAML file naming the data, items, labels, runners and model of a run.

``recordagent eval --suite FILE`` runs a suite, as does
:func:`~recordagent.evaluation.study.evaluate` from Python. Relative paths in a suite are
resolved against the folder of the suite file, so a suite can be run from anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recordagent.errors import UserError, validation_problems
from recordagent.paths import path_kind
from recordagent.settings import read_yaml_file

__all__ = ["PLACEHOLDER_KEY", "Suite", "load_suite"]

PLACEHOLDER_KEY = "placeholder"
"""A suite with this key set is a placeholder: loading it names what has to fill it first."""


class Suite(BaseModel):
    """One evaluation run: where the records and items come from, which runners, which model."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name of the suite (shown in the output).")
    store: Path | None = Field(
        default=None, description="DuckDB store file with the records (opened read-only)."
    )
    bundle: Path | None = Field(
        default=None,
        description="Record bundle folder loaded into an in-memory store for the run "
        "(a synthetic cohort folder is a bundle).",
    )
    synthetic_preset: str | None = Field(
        default=None,
        description="Generate the synthetic cohort at `cohort` with this preset (tiny, small, "
        "reference) when that folder does not exist yet.",
    )
    synthetic_seed: int = Field(default=0, description="Seed of the generated cohort.")
    items: Path | None = Field(
        default=None,
        description="Items file (JSONL, one EvalItem a line, as `recordagent questions sample` "
        "writes it). Either this or `cohort` (sampling from templates).",
    )
    templates: Path | None = Field(
        default=None,
        description="Template folder to sample items from; default: the packaged myeloma "
        "templates. Used with `cohort`.",
    )
    cohort: Path | None = Field(
        default=None,
        description="Synthetic cohort folder (bundle + gold/) to sample items and gold labels "
        "from; also the record bundle when neither `store` nor `bundle` is given.",
    )
    n: int = Field(default=469, ge=0, description="Items to sample from `cohort`; 0 for all.")
    seed: int = Field(default=0, description="Sampling seed.")
    labels: Path | None = Field(
        default=None,
        description="Labels file (.csv, .jsonl, .parquet). With `cohort` and no labels file, "
        "the cohort's gold labels are the references.",
    )
    runners: list[str] = Field(min_length=1, description="Runner names, run one after another.")
    model: Literal["mock", "settings"] = Field(
        default="settings",
        description="'mock': the scripted dry-run model (no model is asked; results are not a "
        "model's); 'settings': the model configured in the settings (preset, environment).",
    )
    concurrency: int = Field(default=8, ge=1, description="Items answered at once per runner.")
    output: Path = Field(description="Output folder: OUT/<runner>.jsonl logs and report.html.")
    budgets: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides merged into the settings' `runners` section, e.g. "
        "{agent: {max_steps: 8}, single_pass_rag: {k: 8}}.",
    )

    @model_validator(mode="after")
    def _sources(self) -> Suite:
        if self.store is not None and self.bundle is not None:
            raise ValueError("give either store or bundle, not both")
        if self.items is None and self.cohort is None:
            raise ValueError("give items (a JSONL file) or cohort (to sample from templates)")
        if self.store is None and self.bundle is None and self.cohort is None:
            raise ValueError("give store, bundle or cohort for the records")
        if self.synthetic_preset is not None and self.cohort is None:
            raise ValueError("synthetic_preset needs cohort (the folder to generate)")
        return self

    def resolved(self, base: Path) -> Suite:
        """The suite with its relative paths made relative to ``base``."""
        update: dict[str, Path] = {}
        for name in ("store", "bundle", "items", "templates", "cohort", "labels", "output"):
            value = getattr(self, name)
            if value is not None and not value.is_absolute():
                update[name] = (base / value).resolve()
        return self.model_copy(update=update)


def load_suite(path: str | Path) -> Suite:
    """The suite in the YAML file at ``path``, its relative paths resolved against its folder.

    Raises:
        UserError: The file is missing, is not valid YAML, is a placeholder, or a field is
            invalid (the message names the file and the field).
    """
    file = Path(path)
    kind = path_kind(file, "suite file")
    if kind == "folder":
        raise UserError(f"suite file {file} is a folder, not a YAML file")
    if kind != "file":
        raise UserError(f"suite file {file} does not exist")
    raw = read_yaml_file(file, "suite file")
    if not isinstance(raw, dict):
        got = type(raw).__name__
        raise UserError(f"suite file {file}: expected a mapping of fields, got {got}")
    if raw.get(PLACEHOLDER_KEY):
        raise UserError(f"suite file {file} is a placeholder: {raw[PLACEHOLDER_KEY]}")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, whole="(suite)"))
        raise UserError(f"suite file {file}: {problems}") from exc
    return suite.resolved(file.resolve().parent)
