"""Labels: reading and writing the three formats, validation messages, reference resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.labels import (
    Label,
    ReferenceLabel,
    read_labels,
    reference_labels,
    write_labels,
)
from recordagent.questions import AnswerSpec, EvalItem, ScoringSpec

HEADER = "item_id,annotator,value,evidence,adjudicated,severity\n"


def write_csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def problem_lines(exc: pytest.ExceptionInfo[UserError]) -> list[str]:
    return [line.strip() for line in str(exc.value).splitlines()[1:]]


# --- reading CSV ----------------------------------------------------------------------------


def test_csv_values_are_json_where_json_else_text(tmp_path):
    path = write_csv(
        tmp_path,
        "a,ann,1.5,,,\n"
        "b,ann,true,,,\n"
        'c,ann,"[""del(17p)"", ""t(4;14)""]",,,\n'
        "d,ann,null,,,\n"
        "e,ann,,,,\n"
        "f,ann,2020-06-15,,,\n"
        "g,ann,IgG kappa,,,\n"
        'h,ann,"""true""",,,\n'
        "i,ann,NaN,,,\n"
        "j,ann,007,,,\n",
    )
    values = {label.item_id: label.value for label in read_labels(path)}
    assert values == {
        "a": 1.5,
        "b": True,
        "c": ["del(17p)", "t(4;14)"],
        "d": None,
        "e": None,
        "f": "2020-06-15",
        "g": "IgG kappa",
        "h": "true",  # quoted JSON keeps text that would read as a boolean
        "i": "NaN",
        "j": "007",
    }


def test_csv_evidence_adjudicated_and_severity_forms(tmp_path):
    path = write_csv(
        tmp_path,
        "a,x,1, D-1:0 ; L-7 ,yes,clinically_significant\n"
        'b,x,1,"[""D-2:1"", ""E-3""]",0,minor\n'
        "c,x,1,,TRUE,Clinically Significant\n"
        "d,x,1,,,\n",
    )
    labels = {label.item_id: label for label in read_labels(path)}
    assert labels["a"].evidence == ["D-1:0", "L-7"]
    assert labels["a"].adjudicated is True
    assert labels["a"].severity == "clinically_significant"
    assert labels["b"].evidence == ["D-2:1", "E-3"]
    assert labels["b"].adjudicated is False
    assert labels["b"].severity == "minor"
    assert labels["c"].adjudicated is True
    assert labels["c"].severity == "clinically_significant"
    assert labels["d"] == Label(item_id="d", annotator="x", value=1)


def test_only_required_columns_are_needed_and_blank_lines_are_skipped(tmp_path):
    path = write_csv(tmp_path, "a,x,3\n\nb,x,4\n", header="item_id,annotator,value\n")
    assert [label.value for label in read_labels(path)] == [3, 4]


# --- validation -------------------------------------------------------------------------------


def test_missing_required_columns_are_named(tmp_path):
    path = write_csv(tmp_path, "a,1\n", header="item_id,value\n")
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert problem_lines(exc) == [f"{path}: missing required column(s) 'annotator'"]


def test_unknown_columns_are_named(tmp_path):
    path = write_csv(tmp_path, "a,x,1,oops,2\n", header="item_id,annotator,value,note,score\n")
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert problem_lines(exc) == [
        f"{path}: unknown column(s) 'note', 'score'; expected: item_id, annotator, value, "
        "evidence, adjudicated, severity"
    ]


def test_every_row_problem_is_reported_with_row_and_field(tmp_path):
    path = write_csv(
        tmp_path,
        "a,x,1,,,\n"  # row 1: fine
        ",x,1,,,\n"  # row 2: empty item_id
        "b,,1,,,\n"  # row 3: empty annotator
        "c,x,1,,maybe,\n"  # row 4: adjudicated
        "d,x,1,,,major\n"  # row 5: severity
        'e,x,"[a, b]",,,\n'  # row 6: broken list
        "f,x,1,[D-1,,\n"  # row 7: evidence not a JSON list
        "a,x,2,,,\n"  # row 8: duplicate of row 1
        "g,x,1,,,,extra\n",  # row 9: too many cells
    )
    with pytest.raises(UserError) as exc:
        read_labels(path)
    message = str(exc.value)
    assert message.startswith(f"labels file {path} has 8 problems:")
    assert problem_lines(exc) == [
        f"{path}, row 9: 7 cells but the header has 6 columns",
        f"{path}, row 2, field 'item_id': is empty",
        f"{path}, row 3, field 'annotator': is empty",
        f"{path}, row 4, field 'adjudicated': must be true/false/1/0/yes/no, not 'maybe'",
        f"{path}, row 5, field 'severity': must be clinically_significant, minor or empty, "
        "not 'major'",
        f"{path}, row 6, field 'value': '[a, b]' starts like a JSON list or object but is not "
        'valid JSON (Expecting value); write a list as ["a", "b"]',
        f"{path}, row 7, field 'evidence': '[D-1' is not a valid JSON list (Expecting value)",
        f"{path}, row 8, field 'annotator': a second label of item 'a' by annotator 'x' (the "
        "first is row 1); keep one label per item and annotator",
    ]


def test_the_problem_list_is_capped_at_25_with_a_count_of_the_rest(tmp_path):
    path = write_csv(tmp_path, "".join(f"i{k},x,1,,maybe,\n" for k in range(30)))
    with pytest.raises(UserError) as exc:
        read_labels(path)
    lines = problem_lines(exc)
    assert len(lines) == 26
    assert (
        lines[0]
        == f"{path}, row 1, field 'adjudicated': must be true/false/1/0/yes/no, not 'maybe'"
    )
    assert lines[-1] == "... and 5 more problem(s) not shown"
    assert str(exc.value).startswith(f"labels file {path} has 30 problems:")


def test_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_labels(tmp_path / "missing.csv")
    with pytest.raises(UserError, match=r"unknown format '\.xlsx'"):
        read_labels(tmp_path / "labels.xlsx")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="is empty: it needs a header row"):
        read_labels(empty)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(UserError, match="is not a readable Parquet file"):
        read_labels(broken)


def test_jsonl_rows_are_numbered_by_line_and_checked_per_row(tmp_path):
    path = tmp_path / "labels.jsonl"
    lines = [
        {"item_id": "a", "annotator": "x", "value": "2020-06-15"},
        {"item_id": "b", "annotator": "x", "value": 1, "comment": "?"},
        {"item_id": "c", "annotator": "x"},
        "[1, 2]",
        "{not json",
        {"item_id": 7, "annotator": "x", "value": 1, "evidence": [1]},
    ]
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert problem_lines(exc) == [
        f"{path}, row 2: unknown field(s) 'comment'; expected: item_id, annotator, value, "
        "evidence, adjudicated, severity",
        f"{path}, row 3: missing required field(s) 'value'",
        f"{path}, row 4: a row must be a JSON object, not list",
        f"{path}, row 5: not valid JSON (Expecting property name enclosed in double quotes at "
        "column 2)",
        f"{path}, row 6, field 'item_id': must be text, not int 7",
        f"{path}, row 6, field 'evidence': must be ids separated by ';' or a list of strings, "
        "not [1]",
    ]


def test_jsonl_values_are_kept_as_typed(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text(
        json.dumps({"item_id": "a", "annotator": "x", "value": "true"})
        + "\n\n"
        + json.dumps({"item_id": "b", "annotator": "x", "value": None, "adjudicated": "no"})
        + "\n"
    )
    labels = read_labels(path)
    assert [label.value for label in labels] == ["true", None]  # a JSON string stays a string


def test_parquet_with_typed_columns_is_read(tmp_path):
    path = tmp_path / "labels.parquet"
    table = pa.table(
        {
            "item_id": ["a", "b"],
            "annotator": ["x", "x"],
            "value": [1.5, float("nan")],
            "adjudicated": [True, False],
        }
    )
    pq.write_table(table, path)
    labels = read_labels(path)
    assert [(label.value, label.adjudicated) for label in labels] == [(1.5, True), (None, False)]


def test_parquet_column_problems_are_named(tmp_path):
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"item_id": ["a"], "value": ["1"], "who": ["x"]}), path)
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert problem_lines(exc) == [
        f"{path}: unknown column(s) 'who'; expected: item_id, annotator, value, evidence, "
        "adjudicated, severity",
        f"{path}: missing required column(s) 'annotator'",
    ]


# --- round trips ------------------------------------------------------------------------------

TRICKY = [
    Label(item_id="t/P1", annotator="ann1", value="2020-06-15", evidence=["D-1:0", "L-7"]),
    Label(item_id="t/P1", annotator="ann2", value=1.5, adjudicated=True, severity="minor"),
    Label(item_id="t/P2", annotator="ann1", value=None, severity="clinically_significant"),
    Label(item_id="t/P3", annotator="ann1", value=["del(17p)", "t(4;14)"]),
    Label(item_id="t/P4", annotator="ann1", value="true"),  # text that reads as JSON
    Label(item_id="t/P5", annotator="ann1", value=""),  # empty text is not null
    Label(item_id="t/P6", annotator="ann1", value="[not a list]"),
    Label(item_id="t/P7", annotator="ann1", value=True, evidence=["a;b", " c"]),
    Label(item_id="t/P8", annotator="ann1", value=3),
    Label(item_id="t/P9", annotator="ann1", value=" padded "),
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_labels_round_trip_through_every_format(tmp_path, suffix):
    path = tmp_path / "out" / f"labels{suffix}"
    write_labels(TRICKY, path)
    back = read_labels(path)
    # Evidence ids are read stripped of spaces in every format.
    expected = [
        label.model_copy(update={"evidence": [e.strip() for e in label.evidence]})
        for label in TRICKY
    ]
    # JSON has no int/float distinction to lose; compare including types.
    assert back == expected
    assert [type(label.value) for label in back] == [type(label.value) for label in TRICKY]


def test_write_labels_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(UserError, match=r"unknown format '\.txt'"):
        write_labels(TRICKY, tmp_path / "labels.txt")


# --- reference labels ---------------------------------------------------------------------------


def date_item(tolerance: int = 3) -> EvalItem:
    return EvalItem(
        id="dx/P1",
        patient_id="P1",
        question="When was the diagnosis?",
        answer=AnswerSpec(type="date"),
        scoring=ScoringSpec(tolerance_days=tolerance),
    )


def label(annotator: str, value, item_id: str = "dx/P1", adjudicated: bool = False) -> Label:
    return Label(item_id=item_id, annotator=annotator, value=value, adjudicated=adjudicated)


def test_an_adjudicated_label_wins_over_disagreeing_annotators():
    refs, unresolved = reference_labels(
        [
            label("a", "2020-01-01"),
            label("b", "2021-01-01"),
            label("adj", "2020-01-02", adjudicated=True),
        ]
    )
    assert unresolved == []
    assert refs["dx/P1"] == ReferenceLabel(
        item_id="dx/P1", value="2020-01-02", source="adjudicated", annotators=["adj"]
    )


def test_conflicting_adjudicated_labels_leave_the_item_unresolved():
    refs, unresolved = reference_labels(
        [label("a", "2020-01-01", adjudicated=True), label("b", "2021-01-01", adjudicated=True)]
    )
    assert refs == {}
    assert unresolved == ["dx/P1"]


def test_agreement_within_the_items_tolerance_makes_a_reference():
    labels = [label("b", "2020-06-17"), label("a", "2020-06-15"), label("c", "2020-06-17")]
    refs, unresolved = reference_labels(labels, {"dx/P1": date_item(tolerance=3)})
    assert unresolved == []
    assert refs["dx/P1"].source == "agreed"
    assert refs["dx/P1"].annotators == ["a", "b", "c"]
    assert refs["dx/P1"].value == "2020-06-17"  # the most common of the agreeing values


def test_agreeing_values_tie_to_the_first_annotator_by_name():
    labels = [label("b", "2020-06-17"), label("a", "2020-06-15")]
    refs, _ = reference_labels(labels, {"dx/P1": date_item(tolerance=3)})
    assert refs["dx/P1"].value == "2020-06-15"


def test_disagreement_beyond_tolerance_is_unresolved():
    labels = [label("a", "2020-06-15"), label("b", "2020-06-17")]
    refs, unresolved = reference_labels(labels, {"dx/P1": date_item(tolerance=1)})
    assert refs == {}
    assert unresolved == ["dx/P1"]
    # Without the item, agreement is equality after normalisation: also unresolved.
    assert reference_labels(labels)[1] == ["dx/P1"]


def test_every_pair_must_agree_not_just_neighbours():
    labels = [label("a", "2020-06-15"), label("b", "2020-06-16"), label("c", "2020-06-17")]
    assert reference_labels(labels, {"dx/P1": date_item(tolerance=1)})[1] == ["dx/P1"]


def test_category_synonyms_count_as_agreement():
    isotype = EvalItem(
        id="iso/P1",
        patient_id="P1",
        question="Which isotype?",
        answer=AnswerSpec(type="category", allowed=("IgG", "light chain only")),
        scoring=ScoringSpec(synonyms={"light chain only": ("LCMM",)}),
    )
    labels = [label("a", "LCMM", "iso/P1"), label("b", "Light chain only", "iso/P1")]
    refs, unresolved = reference_labels(labels, {"iso/P1": isotype})
    assert unresolved == []
    assert refs["iso/P1"].source == "agreed"


def test_unknown_items_agree_by_normalised_equality():
    labels = [label("a", " IgG  Kappa", "x/P1"), label("b", "igg kappa", "x/P1")]
    refs, _ = reference_labels(labels)
    assert refs["x/P1"].value == " IgG  Kappa"


def test_a_single_annotator_gives_a_single_reference_and_ids_come_back_sorted():
    labels = [
        label("a", None, "z/P1"),
        label("a", 1, "b/P1"),
        label("b", 2, "b/P1"),
        label("a", 1, "c/P2"),
        label("b", 2, "a/P3"),
        label("c", 3, "a/P3"),
    ]
    refs, unresolved = reference_labels(labels)
    assert refs["z/P1"] == ReferenceLabel(
        item_id="z/P1", value=None, source="single", annotators=["a"]
    )
    assert refs["c/P2"].source == "single"
    assert unresolved == ["a/P3", "b/P1"]
