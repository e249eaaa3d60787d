"""The registry's schemas and errors, and that no argument lets a tool reach patient B."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordagent.errors import ToolError
from recordagent.records.db import RecordStore
from recordagent.tools import default_registry


def test_schemas_are_openai_function_definitions():
    schemas = default_registry().schemas()
    assert [s["function"]["name"] for s in schemas] == [
        "get_timeline",
        "search_documents",
        "query_labs",
        "list_analytes",
        "read_document",
    ]
    for schema in schemas:
        assert schema["type"] == "function"
        parameters = schema["function"]["parameters"]
        assert parameters["type"] == "object"
        for name, field in parameters["properties"].items():
            assert field.get("description"), f"{schema['function']['name']}.{name} undocumented"
            assert "title" not in field
    search = schemas[1]["function"]["parameters"]
    assert search["required"] == ["query"]
    assert search["properties"]["k"]["maximum"] == 50


def test_unknown_tools_and_bad_json_are_tool_errors(tool_store: RecordStore):
    registry, scope = default_registry(), tool_store.scope("A")
    with pytest.raises(ToolError, match="unknown tool 'labs'; available: get_timeline"):
        registry.call(scope, "labs", {})
    with pytest.raises(ToolError, match="not valid JSON"):
        registry.call(scope, "query_labs", "{analyte: Hb}")
    with pytest.raises(ToolError, match="must be a JSON object"):
        registry.call(scope, "query_labs", "[1, 2]")
    assert registry.call(scope, "get_timeline", "").citations  # no arguments is fine


B_VALUES = ["B", "B-D1", "LB1", "EB1", "B-D1:0", "' OR patient_id='B' --", "%", "*", "\x00"]
hostile = st.one_of(st.sampled_from(B_VALUES), st.text(max_size=20))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tool=st.sampled_from(["search", "labs", "specimen", "analytes", "timeline", "read"]),
    value=hostile,
)
def test_no_argument_reaches_patient_b(tool_store: RecordStore, tool: str, value: str):
    registry, scope = default_registry(), tool_store.scope("A")
    calls = {
        "search": ("search_documents", {"query": value or "x", "k": 50}),
        "labs": ("query_labs", {"analyte": value or "x"}),
        "specimen": ("query_labs", {"analyte": "M-protein", "specimen": value}),
        "analytes": ("list_analytes", {"contains": value}),
        "timeline": ("get_timeline", {"kinds": [value]}),
        "read": ("read_document", {"document_id": value or "x"}),
    }
    name, arguments = calls[tool]
    try:
        result = registry.call(scope, name, arguments)
    except ToolError:
        return  # a corrective message is a fine answer to nonsense
    cited = [c.id for c in result.citations]
    assert not any(c.startswith(("B", "LB", "EB")) for c in cited), cited
    # The query and notes repeat what was asked; everything else is the record's.
    shown = json.dumps(result.model_dump(mode="json", exclude={"query", "terms", "note"}))
    assert "60% of nuclei" not in shown and "B-D1" not in shown and '"LB1"' not in shown
