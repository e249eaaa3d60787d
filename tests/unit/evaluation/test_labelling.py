"""Expert labelling: the workbook written for annotators, and their filled sheets read back."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.labelling import export_labelling, import_labelling
from recordagent.evaluation.labelling_sheets import (
    SHEET_COLUMNS,
    SheetProblems,
    read_sheet,
    sheet_text,
)
from recordagent.evaluation.labels import Label, read_labels, reference_labels
from recordagent.questions.answers import AnswerSpec, ScoringSpec
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from tests.helpers import FIXTURES

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
LONG_WORD = "plasmacytoma"

ITEMS = [
    EvalItem(
        id="therapy-start/A",
        patient_id="A",
        question="When was the first line of therapy (VRd) started?",
        answer=AnswerSpec(type="date"),
        scoring=ScoringSpec(tolerance_days=3),
        template_id="therapy-start",
    ),
    EvalItem(
        id="isotype/A",
        patient_id="A",
        question="What is the heavy chain isotype of the myeloma?",
        answer=AnswerSpec(type="category", allowed=("IgG", "IgA", "other")),
        template_id="isotype",
    ),
    EvalItem(
        id="m-protein/A",
        patient_id="A",
        question="What was the last M-protein value?",
        answer=AnswerSpec(type="number", unit="g/dL"),
        scoring=ScoringSpec(abs_tol=0.1),
        template_id="m-protein",
    ),
    EvalItem(
        id="admitted/B",
        patient_id="B",
        question="Was the patient admitted for hypercalcaemia?",
        answer=AnswerSpec(type="boolean"),
        template_id="admitted",
    ),
    EvalItem(
        id="plasmacytoma/B",
        patient_id="B",
        question=f"Is there a {LONG_WORD} on imaging?",
        answer=AnswerSpec(type="boolean"),
        template_id="plasmacytoma",
    ),
]
SILVER_VALUE = 7.654321  # appears nowhere in the record: it must appear nowhere in the workbook


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    """The two-patient bundle with two more documents of B: markup, and a very long report."""
    bundle = tmp_path_factory.mktemp("labelling") / "bundle"
    shutil.copytree(FIXTURES / "two_patients", bundle)
    documents = pl.read_csv(bundle / "documents.csv")
    extra = pl.DataFrame(
        {
            "document_id": ["DB2", "DB3"],
            "patient_id": ["B", "B"],
            "date": ["2021-03-01", "2021-04-01"],
            "type": ["imaging report", "imaging report"],
            "title": [HOSTILE, "Whole-body MRI"],
            "text": [
                f"Findings: {HOSTILE}. No lytic lesion on imaging.",
                " ".join([f"Lesion survey {LONG_WORD} negative."] * 400),
            ],
        }
    )
    pl.concat([documents, extra]).write_csv(bundle / "documents.csv")
    with connect() as opened:
        load_bundle(opened, bundle, settings=Settings())
        yield opened


def _export(store: RecordStore, out: Path, **options) -> object:
    return export_labelling(ITEMS, store, ["alice", "bob"], out, settings=Settings(), **options)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _fill(path: Path, values: dict[str, dict[str, str]]) -> Path:
    """Fill a sheet as an annotator does: only the cells they write."""
    rows = _rows(path)
    for row in rows:
        row.update(values.get(row["item_id"], {}))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- export ----------------------------------------------------------------------------------


def test_the_workbook_has_a_sheet_per_annotator_a_view_per_item_and_an_index(
    store: RecordStore, tmp_path: Path
):
    result = _export(store, tmp_path / "wb")
    folder = tmp_path / "wb"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "alice.csv",
        "bob.csv",
        "index.html",
        "items",
    ]
    assert len(list((folder / "items").iterdir())) == len(ITEMS)
    alice, bob = _rows(folder / "alice.csv"), _rows(folder / "bob.csv")
    assert list(alice[0]) == list(SHEET_COLUMNS)
    assert [r["item_id"] for r in alice] == [i.id for i in ITEMS]
    assert [r["item_id"] for r in bob] == [r["item_id"] for r in alice]
    assert {r["annotator"] for r in alice} == {"alice"}
    assert all(r["value"] == r["evidence"] == "" for r in alice + bob)
    for row in alice:
        assert (folder / row["view"]).is_file()
        assert row["item_id"] in (folder / "index.html").read_text()
    assert result.items == 5 and result.patients == 2


def test_a_seed_shuffles_every_sheet_the_same_way_and_repeats(store: RecordStore, tmp_path: Path):
    orders = []
    for name, seed in (("one", 3), ("two", 3), ("three", 4)):
        _export(store, tmp_path / name, seed=seed)
        alice = [r["item_id"] for r in _rows(tmp_path / name / "alice.csv")]
        assert [r["item_id"] for r in _rows(tmp_path / name / "bob.csv")] == alice
        assert sorted(alice) == sorted(i.id for i in ITEMS)
        orders.append(alice)
    assert orders[0] == orders[1]
    assert orders[0] != orders[2]


def _excerpt_days(view: str) -> list[str]:
    """The first day of each excerpt of a view, in page order."""
    blocks = view.split("<h2>Record excerpts</h2>", 1)[1].split("<h3>")[1:]
    return [re.search(r"\d{4}-\d{2}-\d{2}", block).group(0) for block in blocks]


def test_cited_rows_are_among_the_excerpts_unmarked_in_date_order_and_no_value_is_shown(
    store: RecordStore, tmp_path: Path
):
    silver = [
        Label(item_id="m-protein/A", annotator="silver-sql", value=SILVER_VALUE, evidence=["LA2"]),
        Label(item_id="therapy-start/A", annotator="silver-sql", value="x", evidence=["EA2", "Z9"]),
    ]
    result = _export(store, tmp_path / "wb", labels=silver)
    folder = tmp_path / "wb"
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8-sig")
            assert str(SILVER_VALUE) not in text and "7.65" not in text, path
    view = (folder / "items" / "0003.html").read_text()
    assert view.count("LA2") == 1  # shown once, inside its series
    assert view.index("LA1") < view.index("LA2")  # the series in time order
    for pointer in ("flagged", "Flagged", "cited", 'class="tag'):
        assert pointer not in view
    every = [_excerpt_days(v.read_text()) for v in sorted((folder / "items").glob("*.html"))]
    assert all(days == sorted(days) for days in every)
    assert max(len(days) for days in every) >= 2
    assert "among the excerpts, unmarked; its value is never shown" in view
    assert result.flagged_items == 2
    assert result.unknown_evidence == {"therapy-start/A": ["Z9"]}
    assert "Z9" not in (folder / "items" / "0001.html").read_text()


def test_cited_rows_after_as_of_are_left_out_and_counted(store: RecordStore, tmp_path: Path):
    early = ITEMS[2].model_copy(update={"id": "m-protein-early/A", "as_of": dt.date(2020, 3, 1)})
    silver = [
        Label(item_id=early.id, annotator="silver-sql", value=0.3, evidence=["LA2", "DA2", "LA1"])
    ]
    result = export_labelling(
        [early], store, ["alice"], tmp_path / "wb", settings=Settings(), labels=silver
    )
    view = (tmp_path / "wb" / "items" / "0001.html").read_text()
    assert "LA2" not in view and "DA2" not in view and "VGPR" not in view
    assert "LA1" in view  # the cited row before as_of is shown
    assert "2 record row(s) dated after the as-of day left out" in view
    assert result.after_as_of == {early.id: 2}
    assert all(day <= "2020-03-01" for day in _excerpt_days(view))


def test_record_text_is_escaped_and_the_views_load_nothing_from_outside(
    store: RecordStore, tmp_path: Path
):
    _export(store, tmp_path / "wb")
    pages = [p.read_text() for p in (tmp_path / "wb").rglob("*.html")]
    joined = "\n".join(pages)
    assert "&lt;script&gt;" in joined  # the hostile document was shown, as text
    assert "<script" not in joined and "<b>bold" not in joined
    for page in pages:
        assert "http://" not in page and "https://" not in page and " src=" not in page


def test_a_view_stays_within_its_character_budget_and_says_what_was_cut(
    store: RecordStore, tmp_path: Path
):
    result = _export(store, tmp_path / "wb", max_chars=3000)
    view = (tmp_path / "wb" / "items" / "0005.html").read_text()
    assert LONG_WORD in view
    assert "more characters of this document not shown" in view
    assert result.mean_chars <= 3000
    assert view.count(LONG_WORD) < 400  # the 400-sentence report is not shown whole


def test_a_folder_holding_files_is_refused_and_left_as_it_was(store: RecordStore, tmp_path: Path):
    folder = tmp_path / "wb"
    folder.mkdir()
    (folder / "alice.csv").write_text("filled work")
    with pytest.raises(UserError, match="already holds files"):
        _export(store, folder)
    assert [p.name for p in folder.iterdir()] == ["alice.csv"]
    assert (folder / "alice.csv").read_text() == "filled work"


def test_a_patient_missing_from_the_store_writes_nothing(store: RecordStore, tmp_path: Path):
    stranger = ITEMS[0].model_copy(update={"id": "x/Q", "patient_id": "Q"})
    with pytest.raises(UserError, match="'Q'"):
        export_labelling([*ITEMS, stranger], store, ["a"], tmp_path / "wb", settings=Settings())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (["al ice"], "letters, digits"),
        (["a", "A"], "twice"),
        (["adjudicator"], "reserved"),
        (["adjudicated"], "'adjudicated_value' is a column of the adjudication sheet"),
        ([" "], "no annotators"),
    ],
)
def test_bad_annotator_names_are_refused(store: RecordStore, tmp_path: Path, names, says):
    with pytest.raises(UserError, match=says):
        export_labelling(ITEMS, store, names, tmp_path / "wb", settings=Settings())
    assert list(tmp_path.iterdir()) == []


# --- import ----------------------------------------------------------------------------------


@pytest.fixture
def workbook(store: RecordStore, tmp_path: Path) -> Path:
    _export(store, tmp_path / "wb")
    return tmp_path / "wb"


def test_filled_sheets_merge_into_labels_the_evaluator_resolves(workbook: Path, tmp_path: Path):
    alice = _fill(
        workbook / "alice.csv",
        {
            "therapy-start/A": {"value": "2020-01-10", "evidence": "EA2; DA1"},
            "isotype/A": {"value": "igg"},
            "m-protein/A": {"value": "0.3 g/dL"},
            "admitted/B": {"value": "yes"},
            "plasmacytoma/B": {"unanswerable": "yes"},
        },
    )
    bob = _fill(
        workbook / "bob.csv",
        {
            "therapy-start/A": {"value": "2020-01-12"},  # within the 3-day tolerance
            "isotype/A": {"value": "IgA", "comment": "serum IFE says IgA"},
            "m-protein/A": {"value": "0.35"},  # within ±0.1
            "admitted/B": {"value": "unanswerable"},
            # plasmacytoma/B left empty: not labelled
        },
    )
    out = tmp_path / "labels.csv"
    result = import_labelling([alice, bob], ITEMS, out)

    labels = read_labels(out)
    assert len(labels) == result.labels_written == 9
    assert {(lab.annotator, lab.item_id) for lab in labels if lab.value is None} == {
        ("alice", "plasmacytoma/B"),
        ("bob", "admitted/B"),
    }
    by_id = {item.id: item for item in ITEMS}
    references, unresolved = reference_labels(labels, by_id)
    assert references["therapy-start/A"].source == "agreed"
    assert references["therapy-start/A"].value == "2020-01-10"
    assert references["m-protein/A"].value in (0.3, 0.35)
    assert references["plasmacytoma/B"].source == "single"
    assert references["plasmacytoma/B"].value is None
    assert unresolved == ["admitted/B", "isotype/A"]
    assert result.disagreements == ["admitted/B", "isotype/A"]
    assert result.unresolved == unresolved and result.resolved == 3
    overall = result.agreement[0]
    assert (overall.items, overall.agreeing, overall.percent_agreement) == (4, 2, 0.5)
    assert [
        (a.annotator, a.labelled, a.unanswerable, a.not_labelled) for a in result.annotators
    ] == [
        ("alice", 5, 1, 0),
        ("bob", 4, 1, 1),
    ]
    assert (result.labelled_by_several, result.labelled_once, result.labelled_by_none) == (4, 1, 0)

    sheet = result.adjudication_sheet
    assert sheet == tmp_path / "labels.adjudication.csv"
    rows = _rows(sheet)
    assert [r["item_id"] for r in rows] == ["isotype/A", "admitted/B"]
    assert rows[0]["alice_value"] == "IgG" and rows[0]["bob_value"] == "IgA"
    assert rows[0]["bob_comment"] == "serum IFE says IgA"
    assert rows[1]["bob_value"] == "unanswerable"
    assert all(r["adjudicated_value"] == "" for r in rows)
    assert (sheet.parent / rows[0]["view"]).is_file()

    # The adjudicator settles one item; the other stays unresolved.
    _fill(sheet, {"isotype/A": {"adjudicated_value": "IgA", "evidence": "DA1"}})
    final = tmp_path / "labels.jsonl"  # its adjudication sheet would be the one read
    settled = import_labelling([alice, bob], ITEMS, final, adjudication=sheet)
    assert settled.adjudicated == ["isotype/A"]
    assert settled.unresolved == ["admitted/B"]
    assert settled.adjudication_sheet is None  # the sheet read is never written over
    assert _rows(sheet)[0]["adjudicated_value"] == "IgA"
    again = import_labelling([alice, bob], ITEMS, tmp_path / "again.csv", adjudication=sheet)
    carried = _rows(again.adjudication_sheet)  # a new sheet keeps the adjudicator's work
    assert [(r["item_id"], r["adjudicated_value"], r["evidence"]) for r in carried] == [
        ("isotype/A", "IgA", "DA1"),
        ("admitted/B", "", ""),
    ]
    labels = read_labels(final)
    adjudicated = [lab for lab in labels if lab.adjudicated]
    assert [(a.annotator, a.item_id, a.value, a.evidence) for a in adjudicated] == [
        ("adjudicator", "isotype/A", "IgA", ["DA1"])
    ]
    references, _ = reference_labels(labels, by_id)
    assert references["isotype/A"].source == "adjudicated"
    assert references["isotype/A"].value == "IgA"


def test_every_problem_names_file_row_and_column_and_nothing_is_written(
    workbook: Path, tmp_path: Path
):
    alice = _fill(
        workbook / "alice.csv",
        {
            "therapy-start/A": {"value": "10/01/2020"},
            "isotype/A": {"value": "IgM"},
            "m-protein/A": {"value": "0.3", "unanswerable": "yes"},
            "admitted/B": {"unanswerable": "maybe"},
        },
    )
    rows = _rows(workbook / "bob.csv")
    rows[1]["item_id"] = "no-such/item"
    rows.append(dict(rows[0]))
    with (workbook / "bob.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "labels.csv"
    with pytest.raises(UserError) as refused:
        import_labelling([alice, workbook / "bob.csv"], ITEMS, out)
    message = str(refused.value)
    assert "6 problems" in message
    assert f"{alice}, row 1 (line 2), column 'value': '10/01/2020' is not a date" in message
    assert f"{alice}, row 2 (line 3), column 'value': 'IgM' is not one of" in message
    assert f"{alice}, row 3 (line 4), column 'value': a value and an unanswerable tick" in message
    assert f"{alice}, row 4 (line 5), column 'unanswerable'" in message
    assert "bob.csv, row 2 (line 3), column 'item_id': 'no-such/item' is not an item" in message
    assert "bob.csv, row 6 (line 7), column 'item_id': 'therapy-start/A' again" in message
    assert not out.exists()
    assert not list(tmp_path.glob("*.adjudication.csv"))


def test_two_sheets_of_one_annotator_are_refused(workbook: Path, tmp_path: Path):
    copy = tmp_path / "alice-again.csv"
    shutil.copy(workbook / "alice.csv", copy)
    with pytest.raises(UserError, match="a second sheet of 'alice'"):
        import_labelling([workbook / "alice.csv", copy], ITEMS, tmp_path / "labels.csv")
    with pytest.raises(UserError, match="the same sheet given twice"):
        import_labelling([copy, copy], ITEMS, tmp_path / "labels.csv")


def test_a_sheet_saved_with_semicolons_reads_the_same(workbook: Path, tmp_path: Path):
    rows = _rows(workbook / "alice.csv")
    rows[2]["value"] = "0.3"
    semicolons = tmp_path / "alice.csv"
    with semicolons.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    result = import_labelling([semicolons], ITEMS, tmp_path / "labels.csv")
    assert [(lab.item_id, lab.value) for lab in read_labels(tmp_path / "labels.csv")] == [
        ("m-protein/A", 0.3)
    ]
    assert result.agreement[0].items == 0 and result.adjudication_sheet is None


def test_a_file_that_is_not_a_sheet_is_refused(tmp_path: Path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="missing column"):
        import_labelling([other], ITEMS, tmp_path / "labels.csv")
    with pytest.raises(UserError, match="does not exist"):
        import_labelling([tmp_path / "missing.csv"], ITEMS, tmp_path / "labels.csv")


def test_a_sheet_saved_in_another_encoding_is_refused_with_what_to_do(
    workbook: Path, tmp_path: Path
):
    legacy = tmp_path / "alice.csv"
    text = (workbook / "alice.csv").read_text(encoding="utf-8-sig")
    legacy.write_bytes(text.replace(",,,,\n", ",,,Müller\n", 1).encode("cp1252"))
    with pytest.raises(UserError, match="not UTF-8 text .*save it as CSV UTF-8"):
        import_labelling([legacy], ITEMS, tmp_path / "labels.csv")


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_an_output_that_is_a_file_read_is_refused_before_anything_is_written(
    workbook: Path, tmp_path: Path
):
    alice = _fill(workbook / "alice.csv", {"isotype/A": {"value": "IgG"}})
    bob = _fill(workbook / "bob.csv", {"isotype/A": {"value": "IgA"}})
    before = {p: p.read_bytes() for p in (alice, bob)}
    first = import_labelling([alice, bob], ITEMS, tmp_path / "labels.csv")
    sheet = first.adjudication_sheet
    assert sheet is not None
    kept = sheet.read_bytes()
    cases = [
        ({"out": alice}, "--out"),
        ({"out": tmp_path / "x.csv", "adjudication_out": bob}, "--adjudication-out"),
        ({"out": sheet, "adjudication": sheet}, "the adjudication sheet read"),
        (
            {"out": tmp_path / "y.csv", "adjudication": sheet, "adjudication_out": sheet},
            "the adjudication sheet read",
        ),
        ({"out": tmp_path / "z.csv", "adjudication_out": tmp_path / "z.csv"}, "same file"),
    ]
    for options, says in cases:
        out = options.pop("out")
        with pytest.raises(UserError, match=says):
            import_labelling([alice, bob], ITEMS, out, **options)
    assert {p: p.read_bytes() for p in (alice, bob)} == before
    assert sheet.read_bytes() == kept
    assert not any((tmp_path / n).exists() for n in ("x.csv", "y.csv", "z.csv"))


def test_a_row_with_evidence_or_a_comment_but_no_value_is_reported_not_dropped_silently(
    workbook: Path, tmp_path: Path
):
    alice = _fill(
        workbook / "alice.csv",
        {
            "isotype/A": {"value": "IgG"},
            "m-protein/A": {"evidence": "LA2"},
            "admitted/B": {"comment": "unsure: ask the ward"},
        },
    )
    result = import_labelling([alice], ITEMS, tmp_path / "labels.csv")
    assert result.warnings == [
        f"{alice}, row 3 (line 4): item 'm-protein/A' has evidence but no value: not labelled "
        "(write a value, or unanswerable)",
        f"{alice}, row 4 (line 5): item 'admitted/B' has a comment but no value: not labelled "
        "(write a value, or unanswerable)",
    ]
    assert [lab.item_id for lab in read_labels(tmp_path / "labels.csv")] == ["isotype/A"]


def test_evidence_ids_are_checked_against_the_patients_record_when_a_store_is_given(
    store: RecordStore, workbook: Path, tmp_path: Path
):
    alice = _fill(
        workbook / "alice.csv",
        {
            "therapy-start/A": {"value": "2020-01-10", "evidence": "EA2; DA1:0; LA2; DA1"},
            "admitted/B": {"value": "yes", "evidence": "DB1; LA2; NOPE"},
        },
    )
    out = tmp_path / "labels.csv"
    assert import_labelling([alice], ITEMS, out).labels_written == 2  # no store: not checked
    out.unlink()
    with pytest.raises(UserError) as refused:
        import_labelling([alice], ITEMS, out, store=store)
    message = str(refused.value)
    assert "1 problem;" in message  # LA2 is patient A's, not B's
    assert f"{alice}, row 4 (line 5), column 'evidence': 'LA2', 'NOPE' name(s) nothing" in message
    assert not out.exists()


def test_problems_name_the_line_a_row_starts_on_when_cells_span_lines(
    workbook: Path, tmp_path: Path
):
    alice = _fill(
        workbook / "alice.csv",
        {
            "therapy-start/A": {"value": "2020-01-10", "comment": "first line\nsecond line"},
            "isotype/A": {"value": "IgM"},
        },
    )
    with pytest.raises(UserError, match=r"alice.csv, row 2 \(line 4\), column 'value': 'IgM'"):
        import_labelling([alice], ITEMS, tmp_path / "labels.csv")


def test_an_annotator_name_that_collides_with_a_column_is_refused(workbook: Path, tmp_path: Path):
    rows = _rows(workbook / "alice.csv")
    for row in rows:
        row["annotator"] = "adjudicated"
    sheet = _write(tmp_path / "adjudicated.csv", rows)
    with pytest.raises(UserError, match="'adjudicated_value' is a column of the adjudication"):
        import_labelling([sheet], ITEMS, tmp_path / "labels.csv")


def test_text_cells_that_look_like_formulas_are_written_as_text_and_read_back(
    workbook: Path, tmp_path: Path
):
    alice = _fill(
        workbook / "alice.csv",
        {
            "isotype/A": {"value": "IgG", "comment": '=HYPERLINK("http://x")'},
            "m-protein/A": {"value": "-0.5"},
        },
    )
    bob = _fill(
        workbook / "bob.csv",
        {"isotype/A": {"value": "IgA", "comment": "@SUM(A1)"}, "m-protein/A": {"value": "0.3"}},
    )
    result = import_labelling([alice, bob], ITEMS, tmp_path / "labels.csv")
    raw = {r["item_id"]: r for r in _rows(result.adjudication_sheet)}
    assert raw["isotype/A"]["alice_comment"] == '\'=HYPERLINK("http://x")'
    assert raw["isotype/A"]["bob_comment"] == "'@SUM(A1)"
    assert raw["m-protein/A"]["alice_value"] == "-0.5"  # a number stays a number
    assert raw["isotype/A"]["disagreement"] == "alice: IgG vs bob: IgA"
    # The adjudicator's sheet read back: the guard is taken off again.
    rows = _rows(result.adjudication_sheet)
    rows[0]["adjudicated_value"] = "IgG"
    rows[0]["comment"] = "'=agreed with alice"
    _write(result.adjudication_sheet, rows)
    by_id = {item.id: item for item in ITEMS}
    problems = SheetProblems()
    read = read_sheet(result.adjudication_sheet, by_id, problems, value_column="adjudicated_value")
    assert read is not None and not problems.found
    assert read.rows[0].comment == "=agreed with alice"
    written = sheet_text(("question", "value"), [{"question": "+1 or -1?", "value": "-1e3"}])
    assert written.splitlines()[1] == "'+1 or -1?,-1e3"


def test_the_adjudication_sheet_leaves_the_view_blank_when_the_sheets_left_their_workbook(
    workbook: Path, tmp_path: Path
):
    moved = tmp_path / "moved"
    moved.mkdir()
    sheets = []
    for name, value in (("alice", "IgG"), ("bob", "IgA")):
        sheets.append(shutil.copy(workbook / f"{name}.csv", moved / f"{name}.csv"))
        _fill(moved / f"{name}.csv", {"isotype/A": {"value": value}})
    result = import_labelling([Path(p) for p in sheets], ITEMS, tmp_path / "out" / "labels.csv")
    assert [r["view"] for r in _rows(result.adjudication_sheet)] == [""]


def test_after_adjudication_the_result_counts_open_disagreements_and_a_stale_sheet(
    workbook: Path, tmp_path: Path
):
    alice = _fill(workbook / "alice.csv", {"isotype/A": {"value": "IgG"}})
    bob = _fill(workbook / "bob.csv", {"isotype/A": {"value": "IgA"}})
    first = import_labelling([alice, bob], ITEMS, tmp_path / "labels.csv")
    assert first.open_disagreements == ["isotype/A"]
    _fill(first.adjudication_sheet, {"isotype/A": {"adjudicated_value": "IgA"}})
    settled = import_labelling(
        [alice, bob], ITEMS, tmp_path / "labels.csv", adjudication=first.adjudication_sheet
    )
    assert settled.disagreements == ["isotype/A"] and settled.open_disagreements == []
    _fill(alice, {"isotype/A": {"value": "IgA"}})  # alice changes her mind: no disagreement
    agreed = import_labelling([alice, bob], ITEMS, tmp_path / "labels.csv")
    assert agreed.disagreements == [] and agreed.adjudication_sheet is None
    assert agreed.stale_adjudication_sheet == first.adjudication_sheet
    assert first.adjudication_sheet.is_file()  # left as it was: someone may have written in it
