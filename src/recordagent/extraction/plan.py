"""What an extraction will cost, estimated before any model call.

A random sample of the items still to run is answered by the dry-run mock model
(:mod:`recordagent.runners.dry_run`): the chosen runner builds its real prompts from the sampled
patients' real records (retrieval, tool results, the record itself for full context) and walks
its control flow, and every prompt is counted with the run's tokenizer. The sample's tokens per
item give the total for all items, with a 95 % interval for the sample's spread (Student's t,
with the finite-population correction: a sample of every item is exact), and the model's price
turns tokens into dollars.

What the estimate cannot know: a real model may take more agent steps than the dry run's two,
or write longer answers, so real runs can cost more; compare the first items' real cost
(the progress bar shows it) with the plan, and use ``max_cost`` as the guard.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from recordagent.evaluation.run import run_items
from recordagent.llm.pricing import PriceTable
from recordagent.llm.types import Usage
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.runners import Runner
from recordagent.runners.dry_run import dry_run_model

__all__ = ["DEFAULT_SAMPLE", "Estimate", "ExtractionPlan", "estimate", "plan_extraction"]

DEFAULT_SAMPLE = 60
"""Items dry-run for the estimate (all of them when there are fewer)."""

CONFIDENCE = 0.95


class Estimate(BaseModel):
    """An estimated total over the items to run, with its interval and per-item spread."""

    total: float = Field(description="Point estimate of the total over every item to run.")
    low: float = Field(description="Lower end of the 95 % interval of the total.")
    high: float = Field(description="Upper end of the 95 % interval of the total.")
    per_item_median: float = Field(description="Median per item in the sample.")
    per_item_p10: float = Field(description="10th percentile per item in the sample.")
    per_item_p90: float = Field(description="90th percentile per item in the sample.")

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        return self.low <= value <= self.high


class ExtractionPlan(BaseModel):
    """An extraction before it runs: its size and its estimated tokens and cost."""

    patients: int = Field(description="Patients asked about.")
    questions: int = Field(description="Questions (templates, or questions given) asked.")
    items: int = Field(description="Items: patients × questions, and slot instances.")
    done: int = Field(description="Items already answered in the run log (skipped).")
    to_run: int = Field(description="Items still to answer.")
    skipped_templates: list[tuple[str, str]] = Field(
        default_factory=list, description="Templates not asked, with why."
    )
    runner: str = Field(description="The runner that will answer.")
    model: str = Field(description="The model that will answer.")
    mock: bool = Field(description="True when the model is the scripted mock.")
    sample: int = Field(description="Items dry-run for the estimate (0: nothing to run).")
    prompt_tokens: Estimate | None = Field(description="Prompt tokens of the items to run.")
    completion_tokens: Estimate | None = Field(
        description="Completion tokens of the items to run (the dry run's answers)."
    )
    model_calls: Estimate | None = Field(description="Model calls of the items to run.")
    cost_usd: Estimate | None = Field(
        description="Cost in US dollars of the items to run; None when the model has no price."
    )
    planned_s: float = Field(description="Seconds the estimate took.")


async def plan_extraction(
    items: Sequence[EvalItem],
    done: set[str],
    runner: Runner,
    store: RecordStore,
    *,
    model: str,
    mock: bool,
    prices: PriceTable,
    patients: int,
    questions: int,
    skipped_templates: Sequence[tuple[str, str]] = (),
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    concurrency: int = 8,
) -> ExtractionPlan:
    """The plan of answering ``items`` (those not in ``done``) with ``runner`` on ``model``.

    Makes no model call: the sample is answered by the dry-run mock. ``sample=0`` counts the
    items only (no estimate).
    """
    started = time.perf_counter()
    todo = [item for item in items if item.id not in done]
    if sample == 1 or sample < 0:
        raise ValueError(f"the estimate needs a sample of at least 2 items (0: none), not {sample}")
    drawn = random.Random(seed).sample(todo, min(sample, len(todo)))
    prompt = completion = calls = cost = None
    if drawn:
        records = await run_items(drawn, runner, dry_run_model(), store, concurrency=concurrency)
        usages = [r.answer.usage for r in records]
        size = len(todo)
        prompt = estimate([u.prompt_tokens for u in usages], size)
        completion = estimate([u.completion_tokens for u in usages], size)
        calls = estimate([u.model_calls for u in usages], size)
        price = prices.price(model)
        if price is not None:
            costs = [
                prices.cost(
                    model,
                    Usage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens),
                )
                or 0.0
                for u in usages
            ]
            cost = estimate(costs, size)
    return ExtractionPlan(
        patients=patients,
        questions=questions,
        items=len(items),
        done=len(items) - len(todo),
        to_run=len(todo),
        skipped_templates=list(skipped_templates),
        runner=runner.name,
        model=model,
        mock=mock,
        sample=len(drawn),
        prompt_tokens=prompt,
        completion_tokens=completion,
        model_calls=calls,
        cost_usd=cost,
        planned_s=round(time.perf_counter() - started, 3),
    )


def estimate(sampled: Sequence[float], population: int) -> Estimate:
    """The total over ``population`` items from a simple random sample of per-item values.

    The interval is the sample mean's 95 % Student-t interval, scaled to the population and
    narrowed by the finite-population correction; with the whole population sampled it is
    the exact total.
    """
    n = len(sampled)
    if n == 0 or population < n:
        raise ValueError(f"a sample of {n} from {population} items cannot be scaled")
    mean = statistics.fmean(sampled)
    total = mean * population
    if n == population:
        half = 0.0
    elif n < 2:
        raise ValueError("a sample of one item has no spread: sample at least 2")
    else:
        from scipy import stats  # a third of a second to import: only when estimating

        spread = statistics.stdev(sampled)
        correction = math.sqrt((population - n) / (population - 1))
        t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
        half = t * spread / math.sqrt(n) * correction * population
    return Estimate(
        total=total,
        low=max(0.0, total - half),
        high=total + half,
        per_item_median=float(np.quantile(sampled, 0.5)),
        per_item_p10=float(np.quantile(sampled, 0.1)),
        per_item_p90=float(np.quantile(sampled, 0.9)),
    )
