"""`recordagent label export` and `label import`: the workbook round trip from the command line.

The sub-app is run under a root command of its own (as ``recordagent`` mounts it), so these
tests do not depend on how the main command line is assembled.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from recordagent.cli import label
from recordagent.errors import UserError
from recordagent.evaluation.labels import read_labels, reference_labels
from recordagent.questions.answers import AnswerSpec
from recordagent.questions.items import EvalItem, read_items, write_items
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from tests.helpers import FIXTURES, SHARED_DATA

ROOT = typer.Typer()
ROOT.add_typer(label.app, name="label")
MIMIC_DEMO = SHARED_DATA / "mimic-iv-demo"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(
        ROOT, ["label", *args], obj=Settings(), env={"COLUMNS": "120", "NO_COLOR": "1"}
    )


def _fill(path: Path, value_of: dict[str, str]) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["value"] = value_of.get(row["item_id"], "")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("label_cli")
    db = root / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, FIXTURES / "two_patients", settings=Settings())
    items = root / "items.jsonl"
    write_items(
        items,
        [
            EvalItem(
                id=f"{kind}/{patient}",
                patient_id=patient,
                question=question,
                answer=AnswerSpec(type=kind),
                template_id=kind,
            )
            for patient in ("A", "B")
            for kind, question in (
                ("boolean", "Was the patient admitted to hospital?"),
                ("count", "How many lab values of calcium were measured?"),
            )
        ],
    )
    return db, items


def test_export_fill_import_prints_agreement_and_writes_labels(
    study: tuple[Path, Path], tmp_path: Path
):
    db, items = study
    workbook = tmp_path / "wb"
    exported = _invoke(
        "export", "--items", str(items), "--db", str(db), "--annotators", "alice,bob",
        "--out", str(workbook), "--seed", "1",
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "Workbook written" in exported.output and "sheet of bob" in exported.output
    _fill(workbook / "alice.csv", {"boolean/A": "no", "boolean/B": "yes", "count/A": "0",
                                   "count/B": "1"})  # fmt: skip
    _fill(workbook / "bob.csv", {"boolean/A": "no", "boolean/B": "yes", "count/A": "0",
                                 "count/B": "2"})  # fmt: skip
    out = tmp_path / "labels.parquet"
    imported = _invoke(
        "import", str(workbook / "alice.csv"), str(workbook / "bob.csv"),
        "--items", str(items), "--out", str(out),
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    text = " ".join(imported.output.split())
    assert "overall │ 4 │ 3 │ 75.0%" in text
    assert "1 disagreement(s), 0 adjudicated, 1 open: count/B" in text
    assert "labels.adjudication.csv" in text
    labels = read_labels(out)
    references, unresolved = reference_labels(labels, {i.id: i for i in read_items(items)})
    assert unresolved == ["count/B"]
    assert references["boolean/B"].value is True


def test_bad_input_is_a_user_error_naming_the_problem(study: tuple[Path, Path], tmp_path: Path):
    db, items = study
    refused = _invoke(
        "export", "--items", str(items), "--db", str(tmp_path / "none.duckdb"),
        "--annotators", "a", "--out", str(tmp_path / "wb"),
    )  # fmt: skip
    assert isinstance(refused.exception, UserError)
    assert "no record store" in str(refused.exception)
    sheet = tmp_path / "a.csv"
    sheet.write_text("item_id,value\nboolean/A,perhaps\n")
    refused = _invoke("import", str(sheet), "--items", str(items), "--out", str(tmp_path / "l.csv"))
    assert isinstance(refused.exception, UserError)
    assert "a.csv, row 1 (line 2), column 'value': 'perhaps' is not yes or no" in str(
        refused.exception
    )
    assert not (tmp_path / "l.csv").exists()


def test_import_reports_adjudication_progress_warnings_and_unknown_evidence(
    study: tuple[Path, Path], tmp_path: Path
):
    db, items = study
    workbook = tmp_path / "wb"
    exported = _invoke(
        "export", "--items", str(items), "--db", str(db), "--annotators", "alice,bob",
        "--out", str(workbook),
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    alice, bob = workbook / "alice.csv", workbook / "bob.csv"
    _fill(alice, {"boolean/A": "no", "count/B": "1"})
    _fill(bob, {"boolean/A": "no", "count/B": "2"})
    out = tmp_path / "labels.csv"
    sheets = (str(alice), str(bob), "--items", str(items), "--out", str(out))
    assert _invoke("import", *sheets).exit_code == 0
    adjudication = tmp_path / "labels.adjudication.csv"
    with adjudication.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["adjudicated_value"] = "2"
    with adjudication.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    settled = _invoke("import", *sheets, "--adjudication", str(adjudication))
    assert settled.exit_code == 0, settled.output
    assert "1 disagreement(s), 1 adjudicated, 0 open" in " ".join(settled.output.split())

    _fill(alice, {"boolean/A": "no", "count/B": "2"})  # alice now agrees with bob
    with alice.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[2]["evidence"] = "LB1"  # evidence without a value
    with alice.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    agreed = _invoke("import", *sheets, "--db", str(db))
    assert agreed.exit_code == 0, agreed.output
    text = " ".join(agreed.output.split())
    assert f"No disagreements left; {adjudication} from an earlier import is out of date" in text
    assert f"warning: {alice}, row 3 (line 4): item '{rows[2]['item_id']}' has evidence" in text

    rows[0]["value"], rows[0]["evidence"] = "no", "NOT-AN-ID"
    with alice.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    refused = _invoke("import", *sheets, "--db", str(db))
    assert isinstance(refused.exception, UserError)
    assert "row 1 (line 2), column 'evidence': 'NOT-AN-ID' name(s) nothing" in str(
        refused.exception
    )


@pytest.mark.mimic
@pytest.mark.skipif(
    not (MIMIC_DEMO / "hosp" / "patients.csv.gz").is_file(),
    reason=f"the MIMIC-IV demo is not at {MIMIC_DEMO} (../shared/data/mimic-iv-demo)",
)
def test_a_workbook_of_mimic_silver_items_flags_the_silver_evidence(tmp_path: Path):
    from recordagent.evaluation.silver_labels import write_silver
    from recordagent.questions.silver import silver_instances
    from recordagent.questions.silver_templates import load_silver_templates
    from recordagent.sources.mimic_iv import load_mimic_iv
    from tests.helpers import REPO

    db = tmp_path / "store.duckdb"
    with connect(db) as store:
        load_mimic_iv(store, MIMIC_DEMO)
        templates = load_silver_templates(REPO / "question_templates" / "mimic_iv")
        # Two patients' items: every template asked of all 100 would take a while.
        run = silver_instances(templates, store, patient_ids=store.patient_ids()[:2])
    chosen = [i for i in run.instances if i.evidence][:12]
    items, labels = write_silver(chosen, tmp_path / "silver")
    exported = _invoke(
        "export", "--items", str(items), "--db", str(db), "--annotators", "alice,bob",
        "--labels", str(labels), "--out", str(tmp_path / "wb"),
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "12 item(s) include rows the labels file cites (unmarked)" in exported.output
    views = sorted((tmp_path / "wb" / "items").glob("*.html"))
    assert len(views) == 12
    cited = {label.item_id: label.evidence for label in read_labels(labels) if label.evidence}
    order = [row["item_id"] for row in csv.DictReader((tmp_path / "wb" / "alice.csv").open(
        encoding="utf-8-sig", newline=""))]  # fmt: skip
    for item_id, view in zip(order, views, strict=True):
        page = view.read_text()
        assert "flagged" not in page.casefold() and "cited" not in page
        # The item's cited rows are on its page (unless dated after its as_of).
        assert any(rid in page for rid in cited[item_id]) or "after the as-of day" in page
