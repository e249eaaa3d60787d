"""Prices per model, from a data file the user can override, and the cost of a call."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from recordagent.errors import UserError
from recordagent.llm.types import Usage

__all__ = ["Price", "PriceTable", "load_prices"]


class Price(BaseModel):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class PriceTable(BaseModel):
    """Prices by model name (exact name, else the longest listed prefix: 'gpt-4o-2024-08-06')."""

    models: dict[str, Price]

    def price(self, model: str) -> Price | None:
        """The price of ``model``, if listed."""
        if model in self.models:
            return self.models[model]
        prefixes = [name for name in self.models if model.startswith(name + "-")]
        return self.models[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """What ``usage`` cost on ``model`` (None when unlisted)."""
        price = self.price(model)
        if price is None:
            return None
        return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6


def load_prices(path: Path | None = None) -> PriceTable:
    """The packaged price table, or the file at ``path``.

    Raises:
        UserError: The file cannot be read or has the wrong layout.
    """
    try:
        if path is None:
            raw = (resources.files("recordagent.llm") / "prices.yaml").read_text("utf-8")
        else:
            raw = path.read_text(encoding="utf-8")
        return PriceTable.model_validate(yaml.safe_load(raw))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise UserError(f"cannot read price table {path or 'prices.yaml'}: {exc}") from exc
