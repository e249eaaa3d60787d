"""Every example script runs end to end."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
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
    assert "ToolError: query_labs: unknown analyte 'hemoglobn'; did you mean 'Hemoglobin'" in out
    assert ">>> read_document(" in out


def test_every_example_has_a_smoke_test():
    tested = {"load_and_query.py", "synthetic_gold_evidence.py", "tools_tour.py"}
    assert {p.name for p in (REPO / "examples").glob("*.py")} == tested
