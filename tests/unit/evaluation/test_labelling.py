"""Expert labelling: the workbook written for annotators, and their filled sheets read back."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.labelling import export_labelling, import_labelling
from recordagent.evaluation.labelling_sheets import SHEET_COLUMNS
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


def test_flagged_evidence_comes_first_and_the_labelled_value_is_never_shown(
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
    flagged_at = view.index('<h3><span class="tag flagged">')
    related_at = view.index('<h3><span class="tag related">')
    assert flagged_at < view.index("LA2") < related_at < view.index("LA1")  # the series around
    assert "LA2" not in view[related_at:]  # a row is shown once
    assert "Blind labelling" in view
    assert result.flagged_items == 2
    assert result.unknown_evidence == {"therapy-start/A": ["Z9"]}
    assert "Z9" in (folder / "items" / "0001.html").read_text()


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
