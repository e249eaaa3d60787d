"""Cohort extraction in one process: rows, resume after a kill, the plan, the budget, patients."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.results_table import columns_markdown
from recordagent.extraction import EXTRACTION_COLUMNS, extract
from recordagent.extraction.run import FAILING_ENDPOINT, LOG_NAME, TABLE_NAME
from recordagent.questions.silver_templates import load_silver_templates
from recordagent.records.db import connect
from tests.answering_server import answering_responder
from tests.extraction_support import GENERAL, cohort_store, server_settings
from tests.fake_openai import Action, FakeOpenAI, model_preset, status
from tests.helpers import REPO, recordagent

SLOTTED = """
templates:
  - id: recorded-sex
    level: 1
    question: What is the patient's recorded sex?
    answer: {type: category, allowed: [female, male, other, unknown]}
    definition: The sex in the patients table.
    silver: SELECT sex AS value, list(patient_id) AS evidence FROM patients GROUP BY sex
  - id: first-numeric-lab
    level: 1
    question: What was the value of the first {analyte} result in the record?
    answer: {type: number}
    definition: The earliest numeric lab value (ties by id), and its analyte.
    silver: |
      SELECT value_num AS value, [lab_id] AS evidence, analyte_name AS analyte
      FROM labs WHERE value_num IS NOT NULL ORDER BY time, lab_id LIMIT 1
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cohort_store(tmp_path_factory.mktemp("extract"))


@pytest.fixture(scope="module")
def patients(db: Path) -> list[str]:
    with connect(db, read_only=True) as store:
        return store.patient_ids()


@pytest.fixture
def slotted(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "level1.yaml").write_text(SLOTTED, encoding="utf-8")
    return folder


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=answering_responder()) as fake:
        yield fake


def log_records(out: Path) -> list[dict[str, Any]]:
    lines = (out / LOG_NAME).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[1:]]


def test_every_patient_is_asked_every_plain_template_into_one_row_each(db, patients, tmp_path):
    result = extract(db, out=tmp_path / "out", templates=GENERAL, model="mock", sample=0)
    plain = [
        t.id for t in load_silver_templates(GENERAL).templates if not t.slots() and not t.as_of
    ]
    table = pl.read_parquet(tmp_path / "out" / TABLE_NAME)
    assert table.columns == [c.name for c in EXTRACTION_COLUMNS]
    asked_of_all = table.filter(pl.col("template_id").is_in(plain))
    assert sorted(asked_of_all["item_id"]) == sorted(f"{t}/{p}" for p in patients for t in plain)
    # A template with slots is asked where its query finds them (eGFR change: two dates).
    slotted = table.filter(~pl.col("template_id").is_in(plain))
    assert slotted.height > 0
    for row in slotted.iter_rows(named=True):
        shown = json.loads(row["slots"])
        assert shown and all(value in row["question"] for value in shown.values())
    assert table["item_id"].n_unique() == table.height
    assert table.equals(result.table)
    assert set(table["mock"]) == {True}
    assert result.summary is not None and result.summary.new == table.height
    # Every citation comes with an excerpt of the row it names, read from the patient's record.
    cited = [c for row in table["cited"].to_list() for c in row]
    assert cited and all(c["excerpt"] for c in cited)
    first = table.row(0, named=True)
    assert [f"{c['kind']}:{c['id']}" for c in first["cited"]] == first["citations"]


def test_a_slotted_template_is_asked_once_per_instance_with_its_slot_values(
    db, patients, slotted, tmp_path
):
    extract(db, out=tmp_path / "out", templates=slotted, model="mock", sample=0)
    table = pl.read_parquet(tmp_path / "out" / TABLE_NAME)
    by_template = Counter(table["template_id"])
    assert by_template["recorded-sex"] == len(patients)
    lab_rows = table.filter(pl.col("template_id") == "first-numeric-lab")
    assert lab_rows.height == len(patients)  # every synthetic patient has numeric labs
    for row in lab_rows.iter_rows(named=True):
        analyte = json.loads(row["slots"])["analyte"]
        assert row["question"] == f"What was the value of the first {analyte} result in the record?"
    assert set(table.filter(pl.col("template_id") == "recorded-sex")["slots"]) == {"{}"}


def test_a_rerun_asks_nothing_again_and_keeps_the_table(db, tmp_path):
    out = tmp_path / "out"
    first = extract(db, out=out, questions=["When was the diagnosis?"], answer="date", model="mock")
    again = extract(db, out=out, questions=["When was the diagnosis?"], answer="date", model="mock")
    assert again.summary is not None and first.summary is not None
    assert (again.summary.new, again.summary.already) == (0, first.summary.new)
    assert again.summary.run_id == first.summary.run_id
    assert again.table is not None and first.table is not None
    assert again.table.drop("latency_s").equals(first.table.drop("latency_s"))
    assert len(log_records(out)) == first.summary.items


def test_another_extraction_into_the_same_folder_is_refused_before_any_work(db, tmp_path):
    out = tmp_path / "out"
    extract(db, out=out, questions=["When was the diagnosis?"], model="mock", sample=0)
    before = (out / LOG_NAME).read_bytes()
    with pytest.raises(UserError, match="log of a different extraction"):
        extract(db, out=out, questions=["Which drugs were given?"], model="mock", sample=0)
    assert (out / LOG_NAME).read_bytes() == before


def test_a_killed_extraction_resumes_losing_nothing_and_duplicating_nothing(db, tmp_path):
    out = tmp_path / "out"
    args = [
        sys.executable, "-m", "recordagent", "extract", "--db", str(db), "--out", str(out),
        "--templates", str(GENERAL), "--model", "mock", "--sample", "0", "--concurrency", "2",
    ]  # fmt: skip
    child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / LOG_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if log.exists() and log.read_bytes().count(b"\n") >= 12:
            break
        time.sleep(0.005)
    assert child.poll() is None, "the extraction ended before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    written = log.read_bytes()
    kept = written[: written.rfind(b"\n") + 1]  # a half-written last line is not a record
    assert kept.count(b"\n") >= 12
    finished = recordagent(*args[3:])
    assert finished.returncode == 0, finished.stderr
    assert log.read_bytes().startswith(kept), "records written before the kill were changed"
    records = log_records(out)
    ids = [r["item"]["id"] for r in records]
    assert len(ids) == len(set(ids)), "an item was answered twice"
    table = pl.read_parquet(out / TABLE_NAME)
    assert sorted(table["item_id"]) == sorted(ids)
    plan = extract(db, out=out, templates=GENERAL, model="mock", plan_only=True, sample=0).plan
    assert plan.done == plan.items == table.height


def test_the_plan_brackets_the_tokens_the_run_then_uses_on_the_mock(db, tmp_path):
    out = tmp_path / "out"
    planned = extract(db, out=out, templates=GENERAL, model="mock", plan_only=True, sample=20)
    plan = planned.plan
    assert planned.summary is None and not out.exists(), "a plan writes nothing"
    assert plan.sample == 20 and plan.to_run == plan.items > 20
    ran = extract(db, out=out, templates=GENERAL, model="mock", sample=0)
    assert ran.summary is not None
    assert plan.prompt_tokens is not None and plan.completion_tokens is not None
    assert plan.prompt_tokens.contains(ran.summary.prompt_tokens)
    assert plan.completion_tokens.contains(ran.summary.completion_tokens)
    assert plan.prompt_tokens.low < plan.prompt_tokens.total < plan.prompt_tokens.high


def test_a_plan_of_every_item_is_exact(db, tmp_path):
    out = tmp_path / "out"
    plan = extract(db, out=out, questions=["Latest creatinine?"], model="mock", plan_only=True).plan
    ran = extract(db, out=out, questions=["Latest creatinine?"], model="mock", sample=0)
    assert ran.summary is not None and plan.prompt_tokens is not None
    assert plan.sample == plan.to_run == 5
    assert plan.prompt_tokens.low == plan.prompt_tokens.high == ran.summary.prompt_tokens


def test_planning_makes_no_model_call(db, tmp_path, server):
    settings = server_settings(server.url)
    plan = extract(
        db, out=tmp_path / "out", templates=GENERAL, settings=settings, plan_only=True
    ).plan
    assert server.requests == []
    assert plan.model == "gpt-4o-mini" and not plan.mock
    assert plan.cost_usd is not None and plan.cost_usd.total > 0


def costly(responder: Callable[[dict[str, Any]], Action]) -> Callable[[dict[str, Any]], Action]:
    """Replies as ``responder`` does, reporting 40,000 prompt tokens per call."""

    def reply(body: dict[str, Any]) -> Action:
        return dataclasses.replace(responder(body), usage=(40_000, 500))

    return reply


def test_max_cost_stops_the_run_before_the_budget_is_passed_and_a_rerun_continues(db, tmp_path):
    out = tmp_path / "out"
    ask = {"questions": ["When was the diagnosis?"], "answer": "date", "runner": "single_pass_rag"}
    with FakeOpenAI(responder=costly(answering_responder())) as fake:
        settings = server_settings(fake.url)
        # 40,000 + 500 tokens at $0.15 / $0.60 per million: $0.0063 per call, one call per item.
        stopped = extract(db, out=out, settings=settings, max_cost=0.02, concurrency=1, **ask)
        assert stopped.summary is not None
        assert stopped.summary.stopped_by_budget
        assert stopped.summary.total_cost_usd is not None
        assert stopped.summary.total_cost_usd <= 0.02
        assert stopped.summary.new == 3 and stopped.summary.not_started == 2
        assert pl.read_parquet(out / TABLE_NAME).height == 3
        calls = len(fake.requests)
        finished = extract(db, out=out, settings=settings, max_cost=1.0, **ask)
        assert finished.summary is not None and not finished.summary.stopped_by_budget
        assert (finished.summary.new, finished.summary.already) == (2, 3)
        assert len(fake.requests) == calls + 2


def test_a_run_estimated_to_pass_the_budget_is_refused_with_nothing_asked(db, tmp_path, server):
    settings = server_settings(server.url)
    with pytest.raises(UserError, match=r"estimated at \$.*exceeds --max-cost \$0.0001"):
        extract(db, out=tmp_path / "out", templates=GENERAL, settings=settings, max_cost=0.0001)
    assert server.requests == []
    assert not (tmp_path / "out").exists()


def test_a_budget_needs_a_priced_model(db, tmp_path, server):
    settings = server_settings(server.url, model="our-local-llama")
    with pytest.raises(UserError, match="not in the price table"):
        extract(db, out=tmp_path / "out", templates=GENERAL, settings=settings, max_cost=5)
    assert server.requests == []


def test_patients_are_chosen_by_a_filter_a_list_or_a_file(db, patients, tmp_path):
    ask = {"questions": ["Latest creatinine?"], "model": "mock", "sample": 0}
    with connect(db, read_only=True) as store:
        females = [
            p
            for p, sex in store.connection.execute(
                "SELECT patient_id, sex FROM patients"
            ).fetchall()
            if sex == "female"
        ]
    by_sex = extract(db, out=tmp_path / "a", where="sex = 'female'", **ask)
    assert by_sex.table is not None and sorted(by_sex.table["patient_id"]) == sorted(females)
    listed = extract(db, out=tmp_path / "b", patients=patients[:2], **ask)
    assert listed.table is not None and listed.table["patient_id"].to_list() == patients[:2]
    file = tmp_path / "ids.txt"
    file.write_text(f"# our cohort\n{patients[3]}\n\n{patients[1]}\n", encoding="utf-8")
    from_file = extract(db, out=tmp_path / "c", patients_file=file, **ask)
    assert from_file.table is not None
    assert from_file.table["patient_id"].to_list() == [patients[3], patients[1]]


def test_an_unknown_patient_in_a_list_file_is_named_with_its_line(db, patients, tmp_path):
    file = tmp_path / "ids.txt"
    file.write_text(f"{patients[0]}\nNOBODY\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"ids.txt:2: 'NOBODY'"):
        extract(db, out=tmp_path / "out", questions=["x?"], patients_file=file, model="mock")


@pytest.mark.parametrize(
    "where",
    [
        "patient_id IN (SELECT column0 FROM read_csv('/etc/passwd'))",
        "1=1; DROP TABLE patients",
        "no_such_column = 1",
        "patient_id IN (SELECT patient_id FROM labs)",
        "1=1) UNION ALL SELECT 'MM-001' FROM patients WHERE (1=1",
    ],
    ids=["reads-a-file", "two-statements", "unknown-column", "another-table", "a-second-query"],
)
def test_a_filter_can_only_filter_the_patients_table(db, tmp_path, where):
    with pytest.raises(UserError, match="patient filter"):
        extract(db, out=tmp_path / "out", questions=["x?"], where=where, model="mock")
    with connect(db, read_only=True) as store:
        assert len(store.patient_ids()) == 5


def test_extract_from_the_command_line_plans_runs_and_summarises(db, tmp_path):
    out = tmp_path / "out"
    common = ["extract", "--db", str(db), "--out", str(out), "--model", "mock"]
    plan = recordagent(*common, "--templates", str(GENERAL), "--plan", "--sample", "10")
    assert plan.returncode == 0, plan.stderr
    assert "extraction plan" in plan.stdout and "95 % interval" in plan.stdout
    assert not out.exists()
    run = recordagent(*common, "--question", "When was the diagnosis?", "--answer", "date")
    assert run.returncode == 0, run.stderr
    assert "5: 5 asked now, 0 answered before" in run.stdout
    assert "insufficient_evidence 5" in run.stdout
    assert pl.read_parquet(out / TABLE_NAME).height == 5


def test_the_documented_columns_are_the_table_columns():
    docs = (REPO / "docs" / "extraction.md").read_text(encoding="utf-8")
    assert columns_markdown(EXTRACTION_COLUMNS) in docs


def test_failed_answers_are_asked_again_by_a_rerun(db, tmp_path):
    out = tmp_path / "out"
    ask = {
        "questions": ["When was the diagnosis?"],
        "answer": "date",
        "runner": "single_pass_rag",  # one call an item
        "sample": 0,
    }
    with FakeOpenAI(responder=lambda body: status(503)) as server:
        settings = server_settings(server.url)
        failing = extract(db, out=out, settings=settings, **ask)
        assert failing.summary is not None
        assert failing.summary.failures == {"server_error": 5}
        server.responder = answering_responder()  # the endpoint is back
        calls = len(server.requests)
        again = extract(db, out=out, settings=settings, **ask)
        assert len(server.requests) == calls + 5
    assert again.summary is not None
    assert again.summary.failures == {} and again.summary.new == 5
    assert again.summary.run_id == failing.summary.run_id
    records = log_records(out)
    assert len(records) == 10  # the failed records stay in the log, superseded
    assert again.table is not None and set(again.table["status"]) <= {
        "answered",
        "insufficient_evidence",
    }


def test_an_endpoint_that_refuses_every_call_stops_the_run(db, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI(responder=lambda body: status(401, message="invalid api key")) as server:
        settings = server_settings(server.url, max_retries=0)
        result = extract(
            db, out=out, templates=GENERAL, runner="single_pass_rag", settings=settings,
            concurrency=2, sample=0,
        )  # fmt: skip
    assert result.summary is not None
    assert result.summary.stopped_by_failures
    failed = result.summary.failures["refused"]
    assert FAILING_ENDPOINT <= failed <= FAILING_ENDPOINT + 2  # the two in flight finish
    assert result.summary.not_started == result.summary.items - failed


def test_the_command_line_exits_4_naming_the_causes_of_failed_answers(db, tmp_path):
    with FakeOpenAI(responder=lambda body: status(401)) as server:
        preset = model_preset(tmp_path / "model.yaml", server, max_retries=0)
        run = recordagent(
            "--preset", str(preset), "extract", "--db", str(db), "--out", str(tmp_path / "out"),
            "--question", "When was the diagnosis?", "--runner", "single_pass_rag",
            "--sample", "0",
        )  # fmt: skip
    assert run.returncode == 4, run.stderr
    assert "5 of 5 answers failed; run the same command to ask them again" in run.stderr
    assert "refused 5: the server refused the request" in run.stderr
