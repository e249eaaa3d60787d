"""Stores and settings shared by the extraction tests (single process and Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.settings import ModelSettings, Settings
from recordagent.sources.synthetic import generate_cohort, load_preset

COHORT_SEED = 11
GENERAL = Path(__file__).resolve().parents[1] / "question_templates" / "general"


def cohort_store(folder: Path) -> Path:
    """The tiny synthetic cohort (5 patients) loaded into ``folder/store.duckdb``."""
    bundle = folder / "cohort"
    generate_cohort(load_preset("tiny"), COHORT_SEED, bundle)
    db = folder / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, bundle)
    return db


def server_settings(url: str, **model: Any) -> Settings:
    """Settings whose model is the fake server at ``url`` (a priced name: gpt-4o-mini)."""
    fields: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": url,
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        **model,
    }
    return Settings(model=ModelSettings(**fields))
