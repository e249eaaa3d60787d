"""A patient's service: the agent's tools and budgets, its resources and applicable prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.mcp import PatientService
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.tokens import Tokenizer
from recordagent.resources import question_templates_path
from recordagent.settings import Settings
from recordagent.tools import default_registry
from tests.helpers import FIXTURES, write_csv


def test_tools_are_the_agents_with_the_same_schemas_and_descriptions(
    service_a: PatientService,
) -> None:
    agent = [schema["function"] for schema in default_registry().schemas()]
    assert service_a.tool_specs() == agent
    assert [t["name"] for t in agent] == [
        "get_timeline",
        "search_documents",
        "query_labs",
        "list_analytes",
        "read_document",
    ]


def test_a_tool_result_is_the_agents_render_within_the_agents_budget(
    two_patient_store: RecordStore,
) -> None:
    settings = Settings(runners={"agent": {"tool_result_tokens": 100}})
    service = PatientService(two_patient_store, "A", settings)
    served = service.call_tool("get_timeline", {})
    result = default_registry().call(service.scope, "get_timeline", {})
    text, shown = result.render_shown(Tokenizer(), 100)
    assert (served.text, served.citations) == (text, shown)
    assert served.tokens == Tokenizer().count(text)
    assert not served.is_error


def test_bad_arguments_come_back_as_corrective_text(service_a: PatientService) -> None:
    served = service_a.call_tool("query_labs", {"analyte": ""})
    assert served.error_kind == "call_refused"
    assert served.text.startswith("Error: query_labs: ")
    assert served.citations == []
    unknown = service_a.call_tool("run_sql", {"sql": "DROP TABLE labs"})
    assert unknown.error_kind == "unknown_tool"
    assert "available: get_timeline" in unknown.text


def test_another_patients_document_is_not_found_for_this_patient(
    service_a: PatientService,
) -> None:
    served = service_a.call_tool("read_document", {"document_id": "DB1"})
    assert served.error_kind == "call_refused"
    assert "no document 'DB1' in this patient's record" in served.text
    assert service_a.read_resource(service_a.document_uri("DB1")) is None
    other = service_a.read_resource("recordagent://patients/B/documents/DB1")
    assert other is None


def test_a_patient_argument_cannot_widen_the_scope(service_a: PatientService) -> None:
    served = service_a.call_tool("query_labs", {"analyte": "calcium", "patient_id": "B"})
    assert "LB1" not in served.text
    assert all(ref.id != "LB1" for ref in served.citations)


def test_resources_skeleton_overview_and_documents(service_a: PatientService) -> None:
    skeleton = service_a.read_resource(service_a.skeleton_uri)
    assert skeleton is not None
    assert skeleton.text.startswith("Patient A: female, born 1950-01-01.")
    assert skeleton.ids == ["EA1", "EA2"]
    overview = service_a.read_resource(service_a.overview_uri)
    assert overview is not None and overview.mime_type == "application/json"
    data = json.loads(overview.text)
    assert data["patient"]["patient_id"] == "A"
    assert data["overview"]["document_count"] == 2
    document = service_a.read_resource(service_a.document_uri("DA1"))
    assert document is not None
    assert document.text.startswith("DA1 | 2020-01-05 | progress note | First visit\n\n")
    assert "IgG-kappa myeloma" in document.text
    assert document.ids == ["DA1"]


@pytest.mark.parametrize(
    "uri",
    [
        "recordagent://patients/A/documents/",
        "recordagent://patients/A/documents/DA1/extra",
        "recordagent://patients/A/documents/DA1%2F..",
        "recordagent://patients/A/skeleton/",
        "recordagent://patients/A%2FB/skeleton",
        "file:///etc/passwd",
        "",
    ],
)
def test_uris_outside_this_patients_resources_are_none(service_a: PatientService, uri: str) -> None:
    assert service_a.read_resource(uri) is None


def test_documents_are_listed_in_date_order_by_page(service_a: PatientService) -> None:
    assert [d["document_id"] for d in service_a.documents_page(0)] == ["DA1", "DA2"]
    assert [d["document_id"] for d in service_a.documents_page(1, limit=1)] == ["DA2"]
    assert service_a.documents_page(2) == []
    assert service_a.document_count() == 2


def test_prompts_are_the_templates_that_apply_without_their_answers(
    service_a: PatientService,
) -> None:
    names = [p.name for p in service_a.prompts()]
    # A has a creatinine value; no blood pressure, weight or HbA1c.
    assert "general.latest-creatinine" in names
    assert "general.latest-hba1c" not in names
    prompt = service_a.prompt("general.latest-creatinine")
    assert prompt is not None
    text = service_a.prompt_text(prompt)
    assert "Question: What was the patient's most recent serum creatinine" in text
    assert "Answer type: number in mg/dL." in text
    assert "0.9" not in text  # the reference answer is never shown
    assert service_a.prompt("general.no-such") is None


def test_prompts_differ_by_patient(two_patient_store: RecordStore) -> None:
    b = PatientService(two_patient_store, "B", Settings())
    assert "general.latest-creatinine" not in [p.name for p in b.prompts()]


def test_a_template_whose_sql_fails_is_left_out_with_a_warning(
    two_patient_store: RecordStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "t.yaml").write_text(
        """
templates:
  - id: ok
    level: 1
    question: How many lab values are there?
    answer: {type: count}
    definition: Count of lab rows.
    silver: SELECT count(*) AS value, list(lab_id) AS evidence FROM labs
  - id: fails-at-run-time
    level: 1
    question: A question whose SQL divides by a text?
    answer: {type: number}
    definition: Fails when run.
    silver: >-
      SELECT CAST(min(analyte_name) AS INTEGER) AS value, list(lab_id) AS evidence FROM labs
"""
    )
    service = PatientService(two_patient_store, "A", Settings(), template_folders=[folder])
    assert [p.name for p in service.prompts()] == ["mine.ok"]
    assert "prompt mine.fails-at-run-time left out" in caplog.text


def test_gold_derived_and_same_named_template_folders_are_refused(
    two_patient_store: RecordStore, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="gold-derived templates"):
        PatientService(
            two_patient_store,
            "A",
            Settings(),
            template_folders=[question_templates_path() / "myeloma"],
        )
    general = question_templates_path() / "general"
    with pytest.raises(UserError, match="two template folders are named 'general'"):
        PatientService(two_patient_store, "A", Settings(), template_folders=[general, general])


def test_no_such_patient_is_a_user_error(two_patient_store: RecordStore) -> None:
    with pytest.raises(UserError, match="no patient 'C'"):
        PatientService(two_patient_store, "C", Settings())


def test_ids_with_slashes_are_one_percent_encoded_segment(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "two_patients", bundle)
    write_csv(
        bundle,
        "documents",
        [
            {"document_id": "DocumentReference/1", "patient_id": "A", "date": "2020-01-05",
             "type": "note", "title": "", "text": "A FHIR-style id."},
        ],
    )  # fmt: skip
    with connect() as store:
        load_bundle(store, bundle)
        service = PatientService(store, "A", Settings(), template_folders=[])
        uri = service.document_uri("DocumentReference/1")
        assert uri.endswith("/documents/DocumentReference%2F1")
        found = service.read_resource(uri)
        assert found is not None and found.ids == ["DocumentReference/1"]
        assert service.read_resource(uri.replace("%2F", "/")) is None
        assert service.read_resource(uri + "%FF%FE") is None
