"""Every example script runs end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl

from tests.helpers import REPO


def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_load_and_query_example():
    out = run_example("load_and_query.py")
    assert "patient MM-001" in out
    assert "M-protein 3.2 g/dL  [L-00003]" in out
    assert "M-protein not detected  [L-00005]" in out
    assert "chunk D-0001:0" in out


def test_load_and_query_example_on_another_bundle():
    out = run_example("load_and_query.py", str(REPO / "tests" / "fixtures" / "two_patients"))
    assert "patient A:" in out
    assert "M-protein 3.1 g/dL  [LA1]" in out


def test_synthetic_gold_evidence_example():
    out = run_example("synthetic_gold_evidence.py")
    assert "patient MM-001:" in out
    assert "- diagnosis_date = " in out
    assert "[bone marrow report," in out
    assert "[Calcium " in out  # a fact shown by a lab row


def test_tools_tour_example():
    out = run_example("tools_tour.py")
    assert ">>> get_timeline(" in out and "therapy:" in out
    assert ">>> search_documents(" in out and "passage(s) for 'del(17p) FISH'" in out
    assert "M-protein (g/dL)" in out and "; min = " in out
    assert "showing the closest, 'Hemoglobin'" in out  # the typo 'hemoglobn'
    assert "unknown analyte 'light chain level'; closest in this record: 'Free lambda" in out
    assert ">>> list_analytes(" in out and "Beta-2 microglobulin" in out
    assert ">>> read_document(" in out


def test_answer_with_every_runner_example_on_the_mock_model():
    out = run_example("answer_with_every_runner.py", "--model", "mock")
    assert "patient MM-002, model mock-dry-run" in out  # the first patient with an ASCT
    assert "question (date): When was the autologous stem cell transplantation (ASCT)?" in out
    assert "MOCK MODEL — these are not a model's answers; they show the plumbing only" in out
    for name in ("agent", "single_pass_rag", "iterative_rag", "full_context"):
        assert f"=== {name} ===" in out  # its streamed trace
        row = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert row.split()[1] == "insufficient_evidence", row  # its status in the table
    assert "search_documents(query=" in out  # the agent's tool call, streamed
    assert "runner  " in out and "citations" in out and "wall s" in out
    assert "gold: ASCT on 2024-12-21 (stated in MM-002-D0016)" in out


def test_answer_with_every_runner_example_for_a_patient_without_asct():
    out = run_example("answer_with_every_runner.py", "--patient", "MM-001")
    assert "patient MM-001, model mock-dry-run" in out
    assert "gold: MM-001 had no ASCT in the synthetic course" in out


def test_answer_with_every_runner_example_rejects_an_unknown_patient():
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "answer_with_every_runner.py")]
        + ["--patient", "MM-999"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "error: unknown patient 'MM-999'" in result.stderr
    assert "known patient ids: MM-001, MM-002, MM-003, MM-004, MM-005" in result.stderr
    assert "Traceback" not in result.stderr


def test_notebook_example_answers_every_patient_into_a_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDAGENT_MODEL__")}
    env.update(TMPDIR=str(tmp_path), COLUMNS="200")
    out = tmp_path / "answers.parquet"
    printed = run_example(
        "notebook_answer_many.py", "--cohort", "tiny", "--runner", "single_pass_rag",
        "--out", str(out), env=env,
    )  # fmt: skip
    answers = pl.read_parquet(out)
    patients = answers["patient_id"].n_unique()
    assert patients >= 5 and answers.height == 2 * patients
    assert f"{answers.height} answers, {patients} patients" in printed
    assert "100%" in printed  # the progress bar ran to its end
    assert answers["mock"].all()  # nothing configured: the dry-run mock, and it says so
    assert set(answers["answer_type"]) == {"date", "number"}


def test_every_example_has_a_smoke_test():
    tested = {
        "answer_with_every_runner.py",
        "load_and_query.py",
        "notebook_answer_many.py",
        "synthetic_gold_evidence.py",
        "tools_tour.py",
    }
    assert {p.name for p in (REPO / "examples").glob("*.py")} == tested
