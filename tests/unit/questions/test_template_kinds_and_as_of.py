"""Telling template folders apart, and `{as_of}` in the question of a SQL-derived template."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.questions.silver import silver_instances
from recordagent.questions.silver_templates import load_silver_templates
from recordagent.questions.template_files import template_kind
from recordagent.records.db import RecordStore, connect
from recordagent.resources import question_templates_path

SQL_TEMPLATE = """
  - id: {id}
    level: 2
    as_of: {as_of}
    question: "{question}"
    answer: {{type: number, unit: mEq/L}}
    definition: The highest potassium up to the day of the latest one.
    silver: |
      SELECT max(value_num) AS value, list(lab_id ORDER BY lab_id) AS evidence,
             CAST(max(time) AS DATE) AS as_of
      FROM labs HAVING count(*) > 0
"""
GOLD_TEMPLATE = """
  - id: diagnosis-date
    level: 1
    question: When was the myeloma diagnosed?
    answer: {type: date}
    gold: {fact: diagnosis_date}
"""


def folder(root: Path, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def sql(question: str, *, as_of: bool = True, template_id: str = "peak-k") -> str:
    return "templates:" + SQL_TEMPLATE.format(
        id=template_id, as_of=str(as_of).lower(), question=question
    )


@pytest.fixture
def store() -> Iterator[RecordStore]:
    with connect() as opened:
        opened.connection.execute(
            "INSERT INTO patients (patient_id, source_id) VALUES ('P1', 1), ('P2', 1)"
        )
        opened.connection.execute(
            "INSERT INTO labs (lab_id, patient_id, time, analyte_name, value_num, source_id) "
            "VALUES ('L1', 'P1', TIMESTAMP '2150-01-01 11:00', 'Potassium', 3.1, 1), "
            "('L2', 'P1', TIMESTAMP '2150-01-04 06:00', 'Potassium', 3.9, 1)"
        )
        yield opened


# --- {as_of} -----------------------------------------------------------------------------------


def test_as_of_in_the_question_is_filled_with_the_items_day(tmp_path: Path, store: RecordStore):
    root = folder(tmp_path / "t", **{"a.yaml": sql("As of {as_of}, what was the peak?")})
    run = silver_instances(load_silver_templates(root), store)
    [instance] = run.instances
    assert instance.item.question == "As of 2150-01-04, what was the peak?"
    assert instance.item.as_of is not None and instance.item.as_of.isoformat() == "2150-01-04"
    assert instance.value == 3.9


def test_as_of_in_the_question_needs_as_of_true(tmp_path: Path):
    root = folder(tmp_path / "t", **{"a.yaml": sql("As of {as_of}?", as_of=False)})
    with pytest.raises(UserError) as caught:
        load_silver_templates(root)
    message = str(caught.value)
    assert "a.yaml: template 'peak-k': question: '{as_of}' shows the item's as_of day" in message
    # the as_of column then is an unexpected one, and says so too
    assert "unexpected result column(s) as_of" in message


def test_unknown_placeholders_are_still_refused_beside_as_of(tmp_path: Path):
    root = folder(tmp_path / "t", **{"a.yaml": sql("As of {as_of}, in {ward}?")})
    with pytest.raises(UserError, match=r"the result has no column\(s\) ward"):
        load_silver_templates(root)
    root = folder(tmp_path / "u", **{"a.yaml": sql("What is {value}?")})
    with pytest.raises(UserError, match=r"'\{value\}' is a reserved column, not a slot"):
        load_silver_templates(root)


# --- which kind a folder holds -----------------------------------------------------------------


def test_the_packaged_families_are_told_apart():
    root = question_templates_path()
    assert template_kind(root / "myeloma") == "gold"
    assert template_kind(root / "general") == "sql"
    assert template_kind(root / "mimic_iv") == "sql"


def test_a_folder_of_only_fragments_is_sql(tmp_path: Path):
    root = folder(tmp_path, **{"f.yaml": "fragments:\n  x: SELECT 1\n"})
    assert template_kind(root) == "sql"


def test_a_mixed_folder_is_refused_naming_one_template_of_each_kind(tmp_path: Path):
    root = folder(tmp_path, **{"gold.yaml": "templates:" + GOLD_TEMPLATE, "sql.yaml": sql("Peak?")})
    with pytest.raises(UserError) as caught:
        template_kind(root)
    message = str(caught.value)
    assert "mixes gold-derived templates" in message
    assert "gold.yaml: template 'diagnosis-date'" in message
    assert "sql.yaml: template 'peak-k'" in message


def test_a_folder_whose_templates_say_neither_kind_is_refused(tmp_path: Path):
    root = folder(
        tmp_path,
        **{
            "a.yaml": "templates:\n  - id: x\n    level: 1\n    question: Q?\n",
            "b.yaml": "templates: [\n",
        },
    )
    with pytest.raises(UserError) as caught:
        template_kind(root)
    message = str(caught.value)
    assert "cannot tell which kind of question templates" in message
    assert "b.yaml: not valid YAML (line" in message


def test_missing_and_empty_folders(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"):
        template_kind(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no question templates"):
        template_kind(folder(tmp_path / "empty"))
