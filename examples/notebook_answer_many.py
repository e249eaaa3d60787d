r"""A notebook, as a script: ask a cohort two questions and look at the answers as a table.

The cells (``# %%``) run as they are in Jupyter, VS Code or with ``python``; ``ra.ask`` and
``ra.answer_many`` block until done, in a script and inside a notebook's running event loop.
The ``small`` synthetic myeloma cohort (50 patients) is generated into a temporary folder and
loaded into a store file there, then every patient is asked two questions with the agent, a
progress bar showing the way, and the answers come back as a polars DataFrame (one row per
patient × question), summarised and written as Parquet.

Run:
    python examples/notebook_answer_many.py [--cohort small|tiny] [--runner agent]
        [--concurrency 8] [--out answers.parquet]

With no model configured the answers come from the scripted dry-run mock (a warning says so,
and the ``mock`` column is true): they show the plumbing, never a model's judgment. Configure
one with ``RECORDAGENT_MODEL__PROVIDER``, ``RECORDAGENT_MODEL__BASE_URL`` and
``RECORDAGENT_MODEL__MODEL`` (see docs/models.md).
"""

# %%
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

import recordagent as ra
from recordagent.sources.synthetic import generate_cohort, load_preset

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--cohort", default="small", choices=("tiny", "small"))
parser.add_argument("--runner", default="agent", choices=ra.RUNNER_NAMES)
parser.add_argument("--concurrency", type=int, default=8)
parser.add_argument("--out", type=Path, default=None, help="Parquet file for the answers")
# In a notebook there are no arguments (and the kernel's own are not ours): the defaults.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)

# %% A cohort in a store file
work = Path(tempfile.mkdtemp(prefix="recordagent-notebook-"))  # kept for the later cells
print(f"working in {work} (remove it when done)")
generate_cohort(load_preset(args.cohort), seed=0, out_dir=work / "cohort")
settings = ra.load_settings()
with ra.open_for_load(work / "cohort.duckdb", settings=settings.store) as store:
    ra.load_bundle(store, work / "cohort", settings=settings)

# %% Two questions for every patient
questions = [
    ra.Question(
        text="When was the autologous stem cell transplantation (ASCT)?",
        answer=ra.AnswerSpec(type="date"),
    ),
    ra.Question(
        text="What was the highest serum M-protein ever measured?",
        answer=ra.AnswerSpec(type="number", unit="g/dL"),
    ),
]
answers = ra.answer_many(
    work / "cohort.duckdb",
    questions,
    runner=args.runner,
    settings=settings,
    concurrency=args.concurrency,
    progress=True,
)

# %% The answers as a table
print(f"{answers.height} answers, {answers['patient_id'].n_unique()} patients")
print(answers.group_by("answer_type", "status").len().sort("answer_type", "status"))
print(
    answers.select(
        pl.col("prompt_tokens").median().alias("median prompt tokens"),
        pl.col("latency_s").median().alias("median latency s"),
        pl.col("mock").all().alias("all mock"),
    )
)
print(answers.select("patient_id", "question", "status", "value", "citations").head(4))

# %% Keep them
out = args.out or work / "answers.parquet"
ra.write_results(answers, out)
print(f"written: {out}")
