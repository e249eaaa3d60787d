"""Silver templates: validation errors, instantiation on a tiny store, files, and the CLI."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recordagent.cli.main import app
from recordagent.errors import UserError
from recordagent.evaluation.labels import read_labels, reference_labels
from recordagent.evaluation.silver_labels import write_silver
from recordagent.questions.items import read_items
from recordagent.questions.silver import SILVER_ANNOTATOR, silver_instances, silver_sample
from recordagent.questions.silver_templates import is_silver_folder, load_silver_templates
from recordagent.records.db import RecordStore, connect
from recordagent.resources import question_templates_path

MIMIC = question_templates_path() / "mimic_iv"

# Patient P1: two admissions, three potassium values; P2: one admission, no labs; P3: nothing.
ROWS = [
    """
INSERT INTO patients (patient_id, sex, death_date, source_id) VALUES
    ('P1', 'female', NULL, 1), ('P2', 'male', DATE '2150-03-01', 1), ('P3', 'male', NULL, 1)
""",
    """
INSERT INTO events (event_id, patient_id, start_time, end_time, kind, code, label, detail,
                    source_id) VALUES
    ('ADM-1', 'P1', TIMESTAMP '2150-01-01 10:00', TIMESTAMP '2150-01-05 12:00', 'admission',
     '1', 'EW EMER. admission', 'from EMERGENCY ROOM; to HOME', 1),
    ('ADM-2', 'P1', TIMESTAMP '2150-02-01 08:00', TIMESTAMP '2150-02-03 09:00', 'admission',
     '2', 'URGENT admission', 'from EMERGENCY ROOM; to REHAB', 1),
    ('ADM-3', 'P2', TIMESTAMP '2150-02-20 08:00', TIMESTAMP '2150-03-01 09:00', 'admission',
     '3', 'URGENT admission', 'from EMERGENCY ROOM; to DIED; died in hospital', 1)
""",
    """
INSERT INTO labs (lab_id, patient_id, time, analyte_name, value_num, unit, source_id) VALUES
    ('LAB-1', 'P1', TIMESTAMP '2150-01-01 11:00', 'Potassium', 3.1, 'mEq/L', 1),
    ('LAB-2', 'P1', TIMESTAMP '2150-01-02 06:00', 'Potassium', 3.9, 'mEq/L', 1),
    ('LAB-3', 'P1', TIMESTAMP '2150-02-02 06:00', 'Potassium', 4.4, 'mEq/L', 1)
""",
]

LATEST_K = """
templates:
  - id: latest-k
    level: 1
    question: What was the latest potassium?
    answer: {type: number, unit: mEq/L}
    scoring: {abs_tol: 0.05}
    definition: The latest 'Potassium'.
    silver: |
      SELECT value_num AS value, [lab_id] AS evidence
      FROM labs WHERE analyte_name = 'Potassium'
      ORDER BY time DESC LIMIT 1
  - id: lowest-k-date
    level: 2
    question: On what day was the lowest potassium of the admission of {admission_date}?
    answer: {type: date}
    definition: The day of the lowest potassium of the first admission.
    silver: |
      WITH adm AS ({{first_admission}})
      SELECT CAST(l.time AS DATE) AS value, [adm.event_id, l.lab_id] AS evidence,
             CAST(adm.start_time AS DATE) AS admission_date
      FROM adm JOIN labs l ON l.time BETWEEN adm.start_time AND adm.end_time
      WHERE l.analyte_name = 'Potassium'
      ORDER BY l.value_num LIMIT 1
  - id: discharged-to
    level: 1
    question: Where to?
    answer: {type: category, allowed: [HOME, REHAB, DIED]}
    definition: The last discharge location.
    silver: |
      SELECT regexp_extract(detail, 'to ([^;]+)', 1) AS value, [event_id] AS evidence
      FROM events WHERE kind = 'admission' ORDER BY start_time DESC LIMIT 1
  - id: admissions
    level: 2
    question: How many admissions?
    answer: {type: count}
    definition: Admissions.
    silver: |
      SELECT count(*) AS value, list(event_id ORDER BY event_id) AS evidence
      FROM events WHERE kind = 'admission' HAVING count(*) > 0
  - id: chief-complaint
    level: 1
    needs: notes
    question: Chief complaint?
    answer: {type: text}
    definition: From the notes.
    silver: |
      SELECT text AS value, [document_id] AS evidence FROM documents LIMIT 1
fragments:
  first_admission: |
    SELECT event_id, start_time, end_time FROM events WHERE kind = 'admission'
    ORDER BY start_time LIMIT 1
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(folder: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_silver_templates(folder)
    return str(caught.value)


def template(body: str, template_id: str = "t", level: int = 1) -> str:
    fields = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f"templates:\n  - id: {template_id}\n    level: {level}\n{fields}\n"


OK_FIELDS = """
question: How many?
answer: {type: count}
definition: Counted.
"""


@pytest.fixture
def tiny_store() -> Iterator[RecordStore]:
    with connect() as store:
        for statement in ROWS:
            store.connection.execute(statement)
        yield store


@pytest.fixture
def tiny_templates(tmp_path: Path) -> Path:
    write(tmp_path / "templates", "set.yaml", LATEST_K)
    return tmp_path / "templates"


# -- the shipped templates ----------------------------------------------------------------------


def test_the_mimic_templates_validate_with_at_least_20_over_three_levels():
    loaded = load_silver_templates(MIMIC)
    assert is_silver_folder(MIMIC) and not is_silver_folder(question_templates_path() / "myeloma")
    assert len(loaded.templates) >= 20
    levels = {t.level for t in loaded.templates}
    assert levels == {1, 2, 3}
    assert all(t.checklist for t in loaded.templates if t.level == 3)
    assert {t.id for t in loaded.templates if "notes" in t.needs} >= {
        "chief-complaint-last-discharge"
    }
    for required in (
        "admission-count",
        "first-ckd-admission",
        "peak-creatinine-latest-admission",
        "hemoglobin-nadir",
        "hemoglobin-nadir-date",
        "aki-kdigo-creatinine",
        "days-between-last-admissions",
        "antibiotics-at-positive-blood-culture",
        "longest-stay-days",
    ):
        assert required in loaded.queries, required


def test_the_readme_documents_every_template_and_fragment():
    readme = (MIMIC / "README.md").read_text(encoding="utf-8")
    for t in load_silver_templates(MIMIC).templates:
        assert f"`{t.id}`" in readme, t.id
    assert "`antibiotic_orders`" in readme and "`admissions`" in readme


def test_the_antibiotic_catalogue_and_the_allowed_answers_agree():
    fragments = (MIMIC / "fragments.yaml").read_text(encoding="utf-8")
    generics = set(re.findall(r"THEN '([^']+)'", fragments))
    culture = load_silver_templates(MIMIC).get("antibiotics-at-positive-blood-culture")
    assert culture.answer.allowed is not None
    assert generics == set(culture.answer.allowed)


# -- validation ---------------------------------------------------------------------------------


def test_every_problem_is_reported_with_file_template_and_field(tmp_path: Path):
    write(tmp_path, "broken.yaml", "templates: [\n")
    write(tmp_path, "extra.yaml", "templates: []\nnotes: hello\n")
    write(
        tmp_path,
        "fields.yaml",
        template("question: Q?\nanswer: {type: count}\nbogus: 1\n", "no-silver")
        + template(OK_FIELDS + "silver: SELEC 1", "syntax").removeprefix("templates:\n")
        + template(
            OK_FIELDS + "silver: SELECT count(*) AS value FROM read_csv('x.csv')", "file-read"
        ).removeprefix("templates:\n")
        + template(OK_FIELDS + "silver: SELECT 1 AS value", "no-evidence").removeprefix(
            "templates:\n"
        )
        + template(
            "question: When?\nanswer: {type: date}\ndefinition: d\n"
            "silver: SELECT max(time) AS value, list(lab_id) AS evidence FROM labs",
            "timestamp",
        ).removeprefix("templates:\n")
        + template(
            OK_FIELDS + "silver: SELECT count(*) AS value, 'LAB-1' AS evidence FROM labs",
            "text-evidence",
        ).removeprefix("templates:\n")
        + template(
            "question: After {day}?\nanswer: {type: count}\ndefinition: d\n"
            "silver: SELECT 1 AS value, ['x'] AS evidence, 2 AS other",
            "slots",
        ).removeprefix("templates:\n")
        + template(OK_FIELDS + "silver: '{{nowhere}}'", "fragment").removeprefix("templates:\n")
        + template(
            OK_FIELDS + "needs: [notes, x-rays]\nsilver: SELECT 1 AS value, ['a'] AS evidence",
            "needs",
        ).removeprefix("templates:\n")
        + template(
            OK_FIELDS + "silver: SELECT 1 AS value, ['a'] AS evidence", "criteria", level=3
        ).removeprefix("templates:\n")
        + template(
            "question: Which?\nanswer: {type: category, allowed: [a]}\ndefinition: d\n"
            "scoring: {abs_tol: 1}\nsilver: SELECT 'a' AS value, ['a'] AS evidence",
            "scoring",
        ).removeprefix("templates:\n"),
    )
    write(
        tmp_path / "more",
        "dup.yaml",
        template(OK_FIELDS + "silver: SELECT 1 AS value, ['a'] AS evidence", "criteria"),
    )
    message = " ".join(problems_of(tmp_path).split())
    for expected in (
        "broken.yaml: not valid YAML (line 2, column 1)",
        "extra.yaml: unknown top-level key 'notes'",
        "fields.yaml: template 'no-silver': silver: Field required",
        "fields.yaml: template 'no-silver': definition: Field required",
        "fields.yaml: template 'no-silver': bogus: Extra inputs are not permitted",
        "fields.yaml: template 'syntax': silver: the SQL does not run: scoped SQL must be one "
        'SELECT statement: syntax error at or near "SELEC"',
        "fields.yaml: template 'file-read': silver: the SQL does not run: scoped SQL may not",
        "fields.yaml: template 'no-evidence': silver: the result has no column(s) evidence",
        "template 'timestamp': silver: column value is Datetime",
        "does not fit a date answer (a DATE: cast timestamps with CAST(x AS DATE))",
        "template 'text-evidence': silver: column evidence is String; it must be a list of ids",
        "template 'slots': silver: the result has no column(s) day",
        "template 'slots': silver: unexpected result column(s) other",
        "template 'fragment': silver: unknown fragment(s) nowhere",
        "template 'needs': needs.1: Input should be 'notes' or 'icu'",
        "template 'criteria': checklist: a level-3 template lists the criteria it synthesises",
        "template 'scoring': scoring.abs_tol: applies to numbers, not category",
        "more/dup.yaml: template 'criteria': id: also defined in fields.yaml",
    ):
        assert expected in message, expected


def test_missing_and_empty_folders_and_fragment_problems(tmp_path: Path):
    assert "does not exist" in problems_of(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "no question templates" in problems_of(tmp_path / "empty")
    write(tmp_path / "frag", "a.yaml", "fragments: {x: SELECT 1, y: 'SELECT {{x}}', 1a: S}\n")
    write(tmp_path / "frag", "b.yaml", "fragments: {x: SELECT 2}\n")
    message = " ".join(problems_of(tmp_path / "frag").split())
    assert "a.yaml: fragments.y: a fragment may not use other fragments" in message
    assert "a.yaml: fragments: '1a' is not a name" in message
    assert "b.yaml: fragments.x: also defined in a.yaml" in message
    write(tmp_path / "bare", "a.yaml", "fragments: {x: SELECT 1}\ntemplates: []\n")
    assert "no templates" in problems_of(tmp_path / "bare")


# -- instantiation --------------------------------------------------------------------------------


def test_items_labels_and_applicability_on_a_tiny_store(
    tiny_store: RecordStore, tiny_templates: Path
):
    loaded = load_silver_templates(tiny_templates)
    run = silver_instances(loaded, tiny_store)
    found = {i.item.id: i for i in run.instances}
    assert set(found) == {
        "latest-k/P1",
        "lowest-k-date/P1",
        "discharged-to/P1",
        "discharged-to/P2",
        "admissions/P1",
        "admissions/P2",
    }
    assert found["latest-k/P1"].value == 4.4 and found["latest-k/P1"].evidence == ("LAB-3",)
    dated = found["lowest-k-date/P1"]
    assert dated.value == "2150-01-01" and dated.evidence == ("ADM-1", "LAB-1")
    assert (
        dated.item.question
        == "On what day was the lowest potassium of the admission of 2150-01-01?"
    )
    assert dated.item.template_id == "lowest-k-date" and dated.item.level == 2
    assert found["discharged-to/P2"].value == "DIED"
    assert found["admissions/P1"].value == 2
    tallies = {t.template_id: t for t in run.tallies}
    assert (tallies["latest-k"].applicable, tallies["latest-k"].not_applicable) == (1, 2)
    assert tallies["chief-complaint"].skipped == "needs notes; the store has no documents"
    assert run.patients_visited == run.patients_total == 3


def test_a_query_that_breaks_its_contract_names_template_and_patient(
    tiny_store: RecordStore, tmp_path: Path
):
    write(
        tmp_path,
        "rows.yaml",
        template(OK_FIELDS + "silver: SELECT 1 AS value, [event_id] AS evidence FROM events"),
    )
    with pytest.raises(UserError, match=r"rows.yaml: template 't', patient P1: silver: 2 rows"):
        silver_instances(load_silver_templates(tmp_path), tiny_store)
    write(
        tmp_path,
        "rows.yaml",
        template(
            "question: Which?\nanswer: {type: category, allowed: [HOME]}\ndefinition: d\n"
            "silver: SELECT 'REHAB' AS value, ['x'] AS evidence FROM patients"
        ),
    )
    with pytest.raises(UserError, match=r"template 't', patient P1: silver: the value 'REHAB'"):
        silver_instances(load_silver_templates(tmp_path), tiny_store)


def test_files_read_back_as_eval_items_and_labels(
    tiny_store: RecordStore, tiny_templates: Path, tmp_path: Path
):
    run = silver_instances(load_silver_templates(tiny_templates), tiny_store)
    items_file, labels_file = write_silver(run.instances, tmp_path / "out")
    items = read_items(items_file)
    labels = read_labels(labels_file)
    assert (
        [i.id for i in items]
        == [label.item_id for label in labels]
        == [i.item.id for i in run.instances]
    )
    assert items == run.items
    assert {label.annotator for label in labels} == {SILVER_ANNOTATOR}
    assert not any(label.adjudicated for label in labels)
    references, unresolved = reference_labels(labels, {i.id: i for i in items})
    assert not unresolved and references["latest-k/P1"].value == 4.4
    assert references["latest-k/P1"].source == "single"


def test_a_sample_is_balanced_and_seeded(tiny_store: RecordStore, tiny_templates: Path):
    loaded = load_silver_templates(tiny_templates)
    first = silver_sample(loaded, tiny_store, 2, seed=1)
    assert len(first.instances) == 2
    assert {i.item.level for i in first.instances} == {1, 2}
    assert [i.item.id for i in silver_sample(loaded, tiny_store, 2, seed=1).instances] == [
        i.item.id for i in first.instances
    ]
    assert {t.template_id: t.drawn for t in first.tallies}["chief-complaint"] is None
    every = silver_sample(loaded, tiny_store, 0)
    assert len(every.instances) == 6
    with pytest.raises(UserError, match="cannot sample -1 items"):
        silver_sample(loaded, tiny_store, -1)


# -- the command line -----------------------------------------------------------------------------


def test_cli_silver_writes_items_and_labels_and_prints_a_summary(
    tiny_store: RecordStore, tiny_templates: Path, tmp_path: Path
):
    db = tmp_path / "store.duckdb"
    with connect(db) as store:
        for statement in ROWS:
            store.connection.execute(statement)
    out = tmp_path / "silver"
    args = ["questions", "silver", "--templates", str(tiny_templates), "--db", str(db)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "6 items from 5 silver templates" in flat and "over 3 patients" in flat
    assert re.search(r"latest-k\W+1\W+1\W+2", flat)
    assert "skipped: needs notes; the store has no documents" in flat
    assert len(read_items(out / "items.jsonl")) == 6

    sampled = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "two"), "--n", "2", "--seed", "4"]
    )
    assert sampled.exit_code == 0, sampled.output
    assert "2 items from 5 silver templates" in " ".join(sampled.output.split())
    assert "drawn" in sampled.output
    assert len(read_labels(tmp_path / "two" / "labels.jsonl")) == 2

    missing = CliRunner().invoke(
        app, ["questions", "silver", "--templates", str(tiny_templates),
              "--db", str(tmp_path / "none.duckdb"), "--out", str(out)],
    )  # fmt: skip
    assert isinstance(missing.exception, UserError)
    assert "no record store at" in str(missing.exception)


def test_cli_list_and_validate_know_silver_folders(tmp_path: Path):
    listed = CliRunner().invoke(app, ["questions", "list", str(MIMIC)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "aki-kdigo-creatinine" in listed.output and "(needs notes)" in listed.output

    valid = CliRunner().invoke(app, ["questions", "validate"], env={"COLUMNS": "200"})
    assert valid.exit_code == 0, valid.output
    flat = " ".join(valid.output.split())
    assert "silver templates valid in" in flat and "mimic_iv" in flat
    assert re.search(r"\d+ templates valid in \S*myeloma", flat)

    write(tmp_path, "bad.yaml", template(OK_FIELDS + "silver: SELECT 1 AS value, 2 AS x"))
    broken = CliRunner().invoke(app, ["questions", "validate", str(tmp_path)])
    assert isinstance(broken.exception, UserError)
    assert "bad.yaml: template 't': silver: the result has no column(s) evidence" in str(
        broken.exception
    )
