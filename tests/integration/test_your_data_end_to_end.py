"""A new user's whole path on a real export, through the command line and the results API.

The Synthea FHIR New York export → ``load fhir`` → the general SQL-derived templates →
``questions silver`` → ``label export`` → two annotators' sheets (one disagreeing on chosen
items) → ``label import`` with agreement → ``eval`` with all four runners on the mock →
``recordagent.results`` → ``report --format parquet``. docs/your-data.md walks the same path in
Python (its blocks run in tests/smoke/test_docs_code.py).
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import polars as pl
import pytest

import recordagent as ra
from recordagent.evaluation.results_table import RESULT_COLUMNS
from tests.helpers import REPO, SHARED_DATA, recordagent

FHIR_NY = SHARED_DATA / "synthea-fhir-ny" / "fhir"
RUNNERS = ("single_pass_rag", "iterative_rag", "full_context", "agent")
ITEMS = 12
BOB_DISAGREES_ON_ROWS = (2, 5, 9)

pytestmark = pytest.mark.skipif(
    not FHIR_NY.is_dir(), reason=f"the Synthea FHIR New York export is not at {FHIR_NY}"
)


def ok(*args: str, cwd: Path) -> str:
    ran = recordagent(*args, cwd=cwd)
    assert ran.returncode == 0, f"recordagent {' '.join(args)}\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout


def sheet_cell(value: object) -> str:
    if value is None:
        return "unanswerable"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def fill(sheet: Path, coded: dict[str, object], disagree_on: tuple[int, ...] = ()) -> list[str]:
    """Write each item's coded value; on rows ``disagree_on`` the opposite claim. The ids."""
    with sheet.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for number, row in enumerate(rows, start=1):
        value = coded[row["item_id"]]
        if number in disagree_on:
            # "The record does not say" against a value, or a value against "does not say".
            row["value"] = "unanswerable" if value is not None else "1"
        else:
            row["value"] = sheet_cell(value)
    with sheet.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return [row["item_id"] for row in rows]


def test_export_to_results_table_as_a_new_user_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("RECORDAGENT_")]:
        monkeypatch.delenv(name)  # the defaults a new user has (a developer's model aside)
    work = tmp_path
    ok("load", "fhir", str(FHIR_NY), "--db", "ny.duckdb", cwd=work)
    templates = REPO / "question_templates" / "general"
    ok("questions", "validate", str(templates), cwd=work)
    ok(
        "questions", "silver", "--templates", str(templates), "--db", "ny.duckdb",
        "--out", "silver", "--n", str(ITEMS), "--seed", "0", cwd=work,
    )  # fmt: skip
    items = ra.read_items(work / "silver" / "items.jsonl")
    assert len(items) == ITEMS and {i.level for i in items} == {1, 2, 3}

    exported = ok(
        "label", "export", "--items", "silver/items.jsonl", "--db", "ny.duckdb",
        "--annotators", "alice,bob", "--labels", "silver/labels.jsonl", "--out", "workbook",
        cwd=work,
    )  # fmt: skip
    assert "alice" in exported and "bob" in exported
    views = sorted((work / "workbook" / "items").glob("*.html"))
    assert len(views) == ITEMS
    coded = {
        label["item_id"]: label["value"]
        for label in map(json.loads, (work / "silver" / "labels.jsonl").read_text().splitlines())
    }
    for view in views:  # blind: a view shows no coded value as the answer
        assert "silver-sql" not in view.read_text(encoding="utf-8")
    order = fill(work / "workbook" / "alice.csv", coded)
    assert fill(work / "workbook" / "bob.csv", coded, BOB_DISAGREES_ON_ROWS) == order

    imported = ok(
        "label", "import", "workbook/alice.csv", "workbook/bob.csv",
        "--items", "silver/items.jsonl", "--out", "labels.csv", cwd=work,
    )  # fmt: skip
    agreeing = ITEMS - len(BOB_DISAGREES_ON_ROWS)
    overall = re.search(r"overall\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*([\d.]+)%", imported)
    assert overall is not None, imported
    assert overall.groups() == (str(ITEMS), str(agreeing), f"{100 * agreeing / ITEMS:.1f}")
    labels = pl.read_csv(work / "labels.csv")
    assert sorted(set(labels["annotator"])) == ["alice", "bob"]
    assert labels.height == 2 * ITEMS
    disputed = {order[row - 1] for row in BOB_DISAGREES_ON_ROWS}
    adjudication = pl.read_csv(work / "labels.adjudication.csv")
    assert set(adjudication["item_id"]) == disputed

    ok(
        "eval", "--items", "silver/items.jsonl", "--labels", "labels.csv", "--db", "ny.duckdb",
        *[arg for runner in RUNNERS for arg in ("--runner", runner)],
        "--model", "mock", "--out", "runs", cwd=work,
    )  # fmt: skip
    logs = [work / "runs" / f"{runner}.jsonl" for runner in RUNNERS]
    frame = ra.results(logs, labels=work / "labels.csv")
    assert frame.columns == [c.name for c in RESULT_COLUMNS]
    assert frame.height == len(RUNNERS) * ITEMS
    assert frame.group_by("runner").len().sort("runner").rows() == sorted(
        (runner, ITEMS) for runner in RUNNERS
    )
    by_item = {i.id: i for i in items}
    for row in frame.iter_rows(named=True):
        item = by_item[row["item_id"]]
        assert (row["patient_id"], row["template_id"], row["level"], row["question"]) == (
            item.patient_id,
            item.template_id,
            item.level,
            item.question,
        )
        assert row["mock"] and row["model"] == "mock-dry-run"
        # Agreed items have a reference and a score; the disputed ones await adjudication.
        if row["item_id"] in disputed:
            assert row["reference_source"] is None and row["correct"] is None
        else:
            assert row["reference_source"] == "agreed"
            assert row["score"] in {"correct", "incorrect", "ungraded"}

    ok(
        "report", *[str(log) for log in logs], "--format", "parquet", "--out", "results.parquet",
        cwd=work,
    )  # fmt: skip
    written = pl.read_parquet(work / "results.parquet")
    key = ["runner", "item_id"]
    assert (
        written.select(*key, "status", "score")
        .sort(key)
        .equals(frame.select(*key, "status", "score").sort(key))
    )
