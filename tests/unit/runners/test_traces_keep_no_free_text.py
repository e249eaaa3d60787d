"""What a trace keeps of tool arguments, errors, refs and details: structure, never words."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from recordagent.errors import ModelError, ToolError
from recordagent.records.tokens import Tokenizer
from recordagent.runners.common import model_error_kind
from recordagent.runners.trace import Tracer, error_kind, loggable_details, traced_arguments
from recordagent.tools import default_registry

QUERY_LABS = default_registry().get("query_labs").schema()["function"]["parameters"]
READ_DOCUMENT = default_registry().get("read_document").schema()["function"]["parameters"]
TIMELINE = default_registry().get("get_timeline").schema()["function"]["parameters"]


def test_tool_arguments_keep_numbers_dates_choices_and_ids_and_only_the_length_of_text():
    traced = traced_arguments(
        {
            "analyte": "Quokkatinine",  # the record's own analyte name
            "aggregate": "max",  # a choice the schema offers
            "start": "2021-03-01",
            "end": "Zanzibar",  # not a date: text
            "limit": 5,
            "threshold": None,
        },
        QUERY_LABS,
    )
    assert traced == {
        "analyte": "<12 characters>",
        "aggregate": "max",
        "start": "2021-03-01",
        "end": "<8 characters>",
        "limit": 5,
        "threshold": None,
    }


def test_argument_names_the_schema_lacks_and_nested_values_are_not_kept():
    traced = traced_arguments({"Zanzibar quokka": ["x", {"y": 1}], "analyte": 3}, QUERY_LABS)
    assert traced == {"<argument 1: 15 characters>": ["<1 characters>", "<dict>"], "analyte": 3}
    # A document id is kept when it looks like one; any other text is a length.
    assert traced_arguments(
        {"document_id": "D-0042", "section": "D-0042", "page": 2}, READ_DOCUMENT
    ) == {"document_id": "D-0042", "section": "<6 characters>", "page": 2}
    assert traced_arguments({"document_id": "the quokka note"}, READ_DOCUMENT) == {
        "document_id": "<15 characters>"
    }
    # Event kinds are a closed vocabulary: a kind is a choice; anything else is text.
    assert traced_arguments({"kinds": ["therapy", "Numbat protocol"]}, TIMELINE) == {
        "kinds": ["therapy", "<15 characters>"]
    }
    # Without a schema, every name and every string is the model's.
    assert traced_arguments({"reason": "done"}) == {"<argument 1: 6 characters>": "<4 characters>"}


def test_errors_keep_their_kind_and_length_never_their_message():
    assert error_kind(ToolError("unknown analyte 'Quokkatinine'")) == "ToolError"
    assert error_kind("plan_unparsed") == "plan_unparsed"
    assert error_kind("answered_without_value") == "answered_without_value"
    assert error_kind("value 'Quokkatinine' is not a date") == "unclassified"
    tracer = Tracer(Tokenizer())
    event = tracer.record("error", "answer", error="value 'Quokkatinine' is not a date")
    assert (event.error, event.error_chars) == ("unclassified", 34)


def test_composite_passage_ids_get_one_alias_per_run_and_row_ids_stay():
    tracer = Tracer(Tokenizer())
    retrieval = tracer.record(
        "retrieval", "r", refs=["LABS-quokkatinine-1", "LABS-quokkatinine-2", "A-D3:0", "LA1"]
    )
    assert retrieval.refs == ["LABS-#1-1", "LABS-#1-2", "A-D3:0", "LA1"]
    details = loggable_details(
        {"passages": ["EVENTS-numbat-1", "LABS-quokkatinine-1"], "rounds": 2}, tracer
    )
    assert details == {"passages": ["EVENTS-#2-1", "LABS-#1-1"], "rounds": 2}


def test_citations_the_model_made_up_are_kept_only_when_they_look_like_ids():
    tracer = Tracer(Tokenizer())
    removed = tracer.record(
        "citation_removed", "answer", refs=["B-D1", "Quokkatinine", "the Zanzibar quokka note"]
    )
    assert removed.refs == ["B-D1", "<12 characters>", "<24 characters>"]


def test_details_keep_the_lengths_of_queries_and_needs_the_model_wrote():
    tracer = Tracer(Tokenizer())
    details: dict[str, Any] | None = loggable_details(
        {
            "queries": ["When was it?", "Zanzibar quokka"],
            "needs": [{"need": "quokka date", "status": "met"}],
            "stop": "reflected",
        },
        tracer,
    )
    assert details == {
        "queries": ["<12 characters>", "<15 characters>"],
        "needs": [{"need": "<11 characters>", "status": "met"}],
        "stop": "reflected",
    }


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        (None, "ModelError"),
        (
            openai.APIConnectionError(request=httpx.Request("POST", "http://x")),
            "APIConnectionError",
        ),
        (
            openai.InternalServerError(
                "quokka",
                response=httpx.Response(503, request=httpx.Request("POST", "http://x")),
                body=None,
            ),
            "HTTP 503",
        ),
    ],
)
def test_a_model_error_is_described_by_its_kinds_not_its_message(cause, kind):
    error = ModelError("the server said: Zanzibar quokka effusion")
    error.__cause__ = cause
    described = model_error_kind(error)
    assert described == ("ModelError" if cause is None else f"ModelError, {kind}")
    assert "quokka" not in described.lower()
