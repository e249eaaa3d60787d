"""query_labs over the tool fixture: catalogue names, units, corrections, aggregates."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope
from recordagent.tools import QUERY_LABS, QueryLabsInput, query_labs


def run(scope: PatientScope, **kw: object):
    return query_labs(scope, QueryLabsInput(**kw))


def test_series_in_the_canonical_unit_with_duplicates_once(scope_a: PatientScope):
    result = run(scope_a, analyte="M-spike")
    assert (result.analyte, result.unit) == ("M-protein", "g/dL")
    assert [(p.lab_id, p.value, p.text) for p in result.points] == [
        ("LA1", 3.2, None),  # reported 32 g/L
        ("LA2", 1.5, None),
        ("LA3", 0.3, None),  # LA4 is the same draw and value: counted once
        ("LA5", None, "not detected"),
        ("LA6", 0.9, None),
    ]
    assert result.points[0].reported == "32 g/L"
    assert [c.id for c in result.citations] == ["LA1", "LA2", "LA3", "LA5", "LA6"]


def test_a_correction_replaces_the_draws_value(scope_a: PatientScope):
    result = run(scope_a, analyte="Hb")
    assert [(p.lab_id, p.value) for p in result.points] == [("LA11", 8.9), ("LA10", 11.5)]


def test_creatinine_converts_from_micromoles(scope_a: PatientScope):
    result = run(scope_a, analyte="2160-0", aggregate="first")
    assert result.result == pytest.approx(221 * 0.011312)
    assert result.points[0].ref_high == pytest.approx(106 * 0.011312)


@pytest.mark.parametrize(
    ("arguments", "expected", "cited"),
    [
        ({"aggregate": "first"}, 3.2, ["LA1"]),
        ({"aggregate": "last"}, 0.9, ["LA6"]),
        ({"aggregate": "min"}, 0.3, ["LA3"]),
        ({"aggregate": "max"}, 3.2, ["LA1"]),
        ({"aggregate": "count"}, 5.0, ["LA1", "LA2", "LA3", "LA5", "LA6"]),
        ({"aggregate": "change"}, -2.3, ["LA1", "LA6"]),
        ({"aggregate": "above", "threshold": 1.0}, 2.0, ["LA1", "LA2"]),
        ({"aggregate": "below", "threshold": 1.0}, 2.0, ["LA3", "LA6"]),
        ({"aggregate": "nearest", "date": "2020-05-20"}, 0.3, ["LA3"]),
        ({"aggregate": "min", "start": "2021-01-01"}, 0.9, ["LA6"]),
    ],
)
def test_aggregates(scope_a: PatientScope, arguments: dict, expected: float, cited: list[str]):
    result = run(scope_a, analyte="M-protein", **arguments)
    assert result.result == pytest.approx(expected)
    assert [c.id for c in result.citations] == cited


def test_mean_and_slope(scope_a: PatientScope):
    mean = run(scope_a, analyte="M-protein", aggregate="mean", end=dt.date(2020, 6, 30))
    assert mean.result == pytest.approx((3.2 + 1.5 + 0.3) / 3)
    slope = run(scope_a, analyte="M-protein", aggregate="slope", end=dt.date(2020, 3, 31))
    assert slope.result == pytest.approx((1.5 - 3.2) / 57 * 30)  # 57 days apart, per 30 days


def test_render_shows_the_reported_unit_and_ids(scope_a: PatientScope, tokenizer):
    text = run(scope_a, analyte="M-protein", aggregate="min").render(tokenizer, 200)
    assert text.splitlines() == [
        "M-protein (g/dL), 5 value(s); min = 0.3:",
        "2020-06-01 08:00 0.3 [LA3]",
    ]
    series = run(scope_a, analyte="M-protein").render(tokenizer, 200)
    assert "2020-01-04 08:00 3.2 (reported 32 g/L) [LA1]" in series


def test_other_patients_values_never_appear(scope_a: PatientScope):
    for analyte in ["M-protein", "33358-4"]:
        assert all(p.lab_id.startswith("LA") for p in run(scope_a, analyte=analyte).points)


def test_a_typo_resolves_to_the_closest_name_with_a_note(scope_a: PatientScope):
    result = run(scope_a, analyte="hemoglobn")
    assert (result.analyte, result.resolved_by) == ("Hemoglobin", "closest name")
    assert result.lines()[0].endswith("showing the closest, 'Hemoglobin'")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"analyte": "haemoglobin trend"}, "closest in this record: 'Hemoglobin'"),
        ({"analyte": "x' OR '1'='1"}, "unknown analyte"),
        ({"analyte": "M-protein", "aggregate": "above"}, "needs a threshold"),
        ({"analyte": "M-protein", "aggregate": "nearest"}, "needs a date"),
        ({"analyte": "M-protein", "aggregate": "median"}, "aggregate: Input should be"),
    ],
)
def test_bad_arguments_are_corrective_tool_errors(scope_a: PatientScope, arguments, message):
    with pytest.raises(ToolError, match="query_labs") as caught:
        QUERY_LABS.run(scope_a, arguments)
    assert message in str(caught.value)
