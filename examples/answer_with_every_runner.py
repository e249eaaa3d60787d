r"""Answer one question about one synthetic patient with every runner, side by side.

Generates the tiny synthetic cohort into a temporary folder, loads it into an in-memory store,
and puts one question about one patient to each runner (agent, single_pass_rag, iterative_rag,
full_context). Each run's trace events are printed as they happen, then a table compares the
answers: status, value, cited ids, model and tool calls, prompt tokens and wall time. For the
default question (the ASCT date) the patient's gold ASCT date from the cohort is printed too.

Run:
    python examples/answer_with_every_runner.py [--patient MM-002] [--question TEXT]
        [--answer-type date|number|count|boolean|text] [--as-of YYYY-MM-DD]
        [--preset default] [--model mock|endpoint] [--seed 0]

``--model mock`` (the default) uses a scripted dry-run model: it walks every runner's control
flow (retrieval, tool calls, citations, token counts) and answers 'insufficient_evidence' with a
text saying no model read the record. Its answers are never a model's answers.

``--model endpoint`` asks the model the preset describes, overridden from the environment, e.g.
for a local OpenAI-compatible server (vLLM, Ollama)::

    RECORDAGENT_MODEL__PROVIDER=openai \
    RECORDAGENT_MODEL__BASE_URL=http://localhost:8000/v1 \
    RECORDAGENT_MODEL__MODEL=<the served model's name> \
    python examples/answer_with_every_runner.py --model endpoint

The API key is read from the variable the preset names (``model.api_key_env``, by default
OPENAI_API_KEY); local servers that need none work without it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
from pathlib import Path

import polars as pl

import recordagent as ra
from recordagent.errors import UserError
from recordagent.llm import build_model
from recordagent.llm.client import ChatModel
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.scope import PatientScope
from recordagent.runners import RUNNER_NAMES, Answer, build_runner, stream_run
from recordagent.runners.dry_run import dry_run_model
from recordagent.settings import Settings, load_settings
from recordagent.sources.synthetic import generate_cohort, load_preset

ASCT_QUESTION = "When was the autologous stem cell transplantation (ASCT)?"
ANSWER_TYPES = ("date", "number", "count", "boolean", "text")
MOCK_BANNER = "MOCK MODEL — these are not a model's answers; they show the plumbing only"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Answer one question about one synthetic patient with every runner."
    )
    parser.add_argument(
        "--patient",
        help="patient id (default: for the default question the first patient with an ASCT, "
        "else the first in the cohort)",
    )
    parser.add_argument("--question", default=ASCT_QUESTION, help="the question to ask")
    parser.add_argument(
        "--answer-type",
        choices=ANSWER_TYPES,
        help="expected answer type (default: date for the default question, else text)",
    )
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="answer as the record stood on this day (default: the whole record)",
    )
    parser.add_argument("--preset", default="default", help="settings preset (default: default)")
    parser.add_argument(
        "--model",
        choices=("mock", "endpoint"),
        default="mock",
        help="mock: scripted dry run (default); endpoint: the model the preset/env describes",
    )
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (default: 0)")
    return parser.parse_args(argv)


def gold_asct(bundle: Path, patient_id: str, as_of: dt.date | None) -> str:
    """The patient's gold ASCT date, as a line to print."""
    facts = pl.read_parquet(bundle / "gold" / "facts.parquet")
    rows = facts.filter((pl.col("patient_id") == patient_id) & (pl.col("fact") == "asct_date"))
    if rows.is_empty():
        return f"gold: {patient_id} had no ASCT in the synthetic course (no asct_date fact)"
    fact = rows.row(0, named=True)
    evidence = ", ".join(fact["evidence_documents"] or []) or "none"
    line = f"gold: ASCT on {fact['value']} (stated in {evidence})"
    if as_of is not None and dt.date.fromisoformat(fact["value"]) > as_of:
        line += f"; that is after --as-of {as_of}, so as of then there was no ASCT yet"
    return line


def default_patient(bundle: Path, known: list[str], question: str) -> str:
    """The first patient with a gold ASCT date for the ASCT question, else the first one."""
    if question == ASCT_QUESTION:
        facts = pl.read_parquet(bundle / "gold" / "facts.parquet")
        with_asct = facts.filter(pl.col("fact") == "asct_date")["patient_id"].to_list()
        for patient_id in known:
            if patient_id in with_asct:
                return patient_id
    return known[0]


async def answer_all(
    settings: Settings, item: EvalItem, scope: PatientScope, model: ChatModel
) -> list[Answer]:
    answers: list[Answer] = []
    try:
        for name in RUNNER_NAMES:
            runner = build_runner(name, settings)
            print(f"\n=== {name} ===")
            async for event in stream_run(runner, item, scope, model):
                if isinstance(event, Answer):
                    answers.append(event)
                    shown = "-" if event.value is None else event.value
                    print(f"  -> {event.status}: {shown}  {event.text}")
                else:
                    print(f"    {event.summary or f'{event.kind} {event.name}'}")
    finally:
        close = getattr(model, "close", None)  # endpoint models hold an HTTP client
        if close is not None:
            await close()
    return answers


def table(answers: list[Answer]) -> str:
    header = ("runner", "status", "value", "citations", "model", "tools", "prompt tok", "wall s")
    rows = [header]
    for a in answers:
        rows.append(
            (
                a.runner,
                a.status,
                "-" if a.value is None else str(a.value),
                ", ".join(c.id for c in a.citations) or "-",
                str(a.usage.model_calls),
                str(a.usage.tool_calls),
                f"{a.usage.prompt_tokens}{'' if a.usage.tokens_reported else '*'}",
                f"{a.usage.wall_s:.2f}",
            )
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(not a.usage.tokens_reported for a in answers):
        lines.append("* counted locally: the model did not report token usage")
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.preset)
    answer_type = args.answer_type or ("date" if args.question == ASCT_QUESTION else "text")
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "tiny"
        generate_cohort(load_preset("tiny"), args.seed, bundle)
        with ra.connect() as store:
            ra.load_bundle(store, bundle, settings=settings)
            known = store.patient_ids()
            patient_id = args.patient or default_patient(bundle, known, args.question)
            if not store.has_patient(patient_id):
                print(f"error: unknown patient '{patient_id}'", file=sys.stderr)
                print(f"known patient ids: {', '.join(known)}", file=sys.stderr)
                return 2
            model = dry_run_model() if args.model == "mock" else build_model(settings.model)
            item = EvalItem.ad_hoc(
                patient_id, args.question, AnswerSpec(type=answer_type), as_of=args.as_of
            )
            when = f" as of {args.as_of}" if args.as_of else ""
            print(f"patient {patient_id}{when}, model {model.name}")
            print(f"question ({answer_type}): {args.question}")
            answers = asyncio.run(answer_all(settings, item, store.scope(patient_id), model))
            gold = None
            if args.question == ASCT_QUESTION:
                gold = gold_asct(bundle, patient_id, args.as_of)
    print()
    if any(a.mock for a in answers):
        bar = "!" * (len(MOCK_BANNER) + 8)
        print(f"{bar}\n!!! {MOCK_BANNER} !!!\n{bar}")
    print(table(answers))
    if gold is not None:
        print(f"\n{gold}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
