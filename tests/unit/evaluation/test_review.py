"""Error review: export of the incorrect answers, and the filled severities read back."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.evaluation.report import ErrorItem, build_report
from recordagent.evaluation.report.review import (
    REVIEW_COLUMNS,
    import_review,
    render_review_html,
    write_review,
)
from tests.unit.evaluation.report_data import REFERENCES, RIGHT, run_of


@pytest.fixture
def errors() -> list[ErrorItem]:
    report = build_report([run_of(name) for name in RIGHT], REFERENCES, n_boot=20)
    return report.error_items


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as source:
        return list(csv.DictReader(source))


def _write(path: Path, rows: list[dict[str, str]], columns=REVIEW_COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_csv_lists_every_incorrect_answer_with_an_empty_severity(tmp_path: Path, errors):
    path = write_review(errors, tmp_path / "review.csv")
    rows = _rows(path)
    # agent wrong on 1 item, single_pass_rag on 5, full_context on 4
    assert len(rows) == 10 == len(errors)
    assert list(rows[0]) == list(REVIEW_COLUMNS)
    first = rows[0]
    assert (first["item_id"], first["runner"], first["patient_id"]) == ("q9/P3", "agent", "P3")
    assert (first["reference"], first["answer"], first["status"]) == ("9", "10", "answered")
    assert first["question"] == "How many events of kind 9?" and first["level"] == "1"
    assert first["severity"] == "" and first["comment"] == "" and "10 vs 9" in first["explanation"]
    assert import_review(path) == {}  # nothing rated yet


def test_filled_severities_come_back_by_item_and_runner(tmp_path: Path, errors):
    path = write_review(errors, tmp_path / "review.csv")
    rows = _rows(path)
    rows[0]["severity"] = "Clinically significant"
    rows[1]["severity"] = " minor "
    rows[2]["severity"] = "clinically-significant"
    _write(path, rows)
    assert import_review(path) == {
        ("q9/P3", "agent"): "clinically_significant",
        ("q1/P1", "single_pass_rag"): "minor",
        ("q3/P1", "single_pass_rag"): "clinically_significant",
    }
    # The severities feed the report's error table.
    review = import_review(path)
    report = build_report([run_of(n) for n in RIGHT], REFERENCES, review=review, n_boot=20)
    sp = next(e for e in report.errors if e.source == "single_pass_rag")
    assert (sp.clinically_significant, sp.minor, sp.unrated) == (1, 1, 3)


def test_a_repeated_row_must_agree(tmp_path: Path):
    base = {"item_id": "q1/P1", "runner": "agent", "severity": "minor"}
    same = _write(tmp_path / "same.csv", [base, dict(base)])
    assert import_review(same) == {("q1/P1", "agent"): "minor"}
    clash = _write(tmp_path / "clash.csv", [base, base | {"severity": "clinically_significant"}])
    with pytest.raises(UserError, match=r"clash.csv, row 2, field 'severity': .*contradicts row 1"):
        import_review(clash)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"item_id": "q1", "runner": "agent", "severity": "major"},
            r"row 1, field 'severity': 'major' is not a severity",
        ),
        ({"item_id": "", "runner": "agent", "severity": "minor"}, r"row 1, field 'item_id': empty"),
        ({"item_id": "q1", "runner": " ", "severity": "minor"}, r"row 1, field 'runner': empty"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, row, message):
    path = _write(tmp_path / "bad.csv", [{"item_id": "q0", "runner": "agent", "severity": ""}, row])
    with pytest.raises(UserError, match=message.replace("row 1", "row 2")):
        import_review(path)


def test_files_that_are_not_reviews(tmp_path: Path, errors):
    with pytest.raises(UserError, match="no error review at"):
        import_review(tmp_path / "missing.csv")
    no_severity = _write(tmp_path / "labels.csv", [], columns=("item_id", "runner", "value"))
    with pytest.raises(UserError, match=r"missing column\(s\) severity"):
        import_review(no_severity)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("item_id,runner,severity\nq,r,mineur \xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        import_review(latin)
    with pytest.raises(UserError, match=r"written as .csv or .html, not '.xlsx'"):
        write_review(errors, tmp_path / "review.xlsx")
    with pytest.raises(UserError, match="folder for the error review does not exist"):
        write_review(errors, tmp_path / "nowhere" / "review.csv")


def test_the_html_page_is_self_contained_and_escaped(tmp_path: Path, errors):
    hostile = errors[0].model_copy(update={"question": '<img src=x onerror="alert(1)">?'})
    page = render_review_html([hostile, *errors[1:]])
    assert page.count("<select") == len(errors) and page.count("<tr data-row=") == len(errors)
    assert "<img" not in page and "&lt;img src=x" in page
    assert '"severity"' in page and "Save ratings as CSV" in page
    assert "http" not in page  # nothing loaded from elsewhere
    path = write_review(errors, tmp_path / "review.html")
    assert path.read_text(encoding="utf-8") == render_review_html(errors)
