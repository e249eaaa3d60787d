"""Gold derivations, checked on tiny inline patient tables and on generated cohorts.

Where a derivation reads only the therapy lines and facts, its spec is a small table of
made-up patients and the answer expected for each, ``{patient: expected}`` (ehrQL's spec
style). Where it reads the labs or the IMWG rules, the tiny cohort (5 patients, built once per
module) is the input, and each check recomputes the answer directly from the parquet files
with polars, independently of the derivation code; the small cohort (50) serves the sampling
checks.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.gold_labels import gold_labels
from recordagent.evaluation.labels import Label
from recordagent.questions.answers import coerce_value
from recordagent.questions.gold import evaluate
from recordagent.questions.gold_data import GoldData, GoldValue
from recordagent.questions.gold_expr import Context
from recordagent.questions.items import EvalItem
from recordagent.questions.sampling import instances, instantiate, sample
from recordagent.questions.templates import (
    QuestionTemplate,
    TemplateSet,
    load_templates,
    template_problems,
)
from recordagent.resources import question_templates_path
from recordagent.sources.synthetic import generate_cohort, load_preset

CLASSES = ("IMiD", "PI", "anti-CD38")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("questions") / "tiny"
    generate_cohort(load_preset("tiny"), 0, out)
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("questions") / "small"
    generate_cohort(load_preset("small"), 0, out)
    return out


@pytest.fixture(scope="module")
def data(tiny: Path) -> GoldData:
    return GoldData.load(tiny / "gold")


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return load_templates(question_templates_path() / "myeloma")


@pytest.fixture(scope="module")
def facts(tiny: Path) -> pl.DataFrame:
    return pl.read_parquet(tiny / "gold" / "facts.parquet")


@pytest.fixture(scope="module")
def lines(tiny: Path) -> pl.DataFrame:
    return pl.read_parquet(tiny / "gold" / "lines.parquet")


def fact(frame: pl.DataFrame, patient: str, name: str, line: int | None = None) -> str | None:
    rows = frame.filter((pl.col("patient_id") == patient) & (pl.col("fact") == name))
    if line is not None:
        rows = rows.filter(pl.col("line") == line)
    return rows["value"][0] if rows.height else None


def value(expr: dict, data: GoldData, patient: str, **params: object) -> object:
    ctx = Context(patient, {}, {k: GoldValue(v) for k, v in params.items()})
    found = evaluate(expr, data, ctx)
    return None if found is None else found.value


# -- inline patient tables --------------------------------------------------------------------


def line(
    start: str,
    end: str | None = None,
    *,
    regimen: str = "Rd",
    drugs: tuple[str, ...] = ("lenalidomide", "dexamethasone"),
    best_response: str | None = None,
    progression: str | None = None,
    refractory: tuple[str, ...] = (),
) -> dict[str, object]:
    """One therapy line of a made-up patient (dates as YYYY-MM-DD; no end: ongoing)."""
    day = dt.date.fromisoformat
    return {
        "regimen": regimen,
        "drugs": list(drugs),
        "start": day(start),
        "end": day(end) if end else None,
        "best_response": best_response,
        "progression_date": day(progression) if progression else None,
        "refractory_drugs": list(refractory),
    }


def patients(lines_by_patient: dict[str, list[dict[str, object]]], record_end: str) -> GoldData:
    """Gold tables of made-up patients: their lines, and the per-line facts the generator writes.

    Each line gives a ``line_start`` and ``line_regimen`` fact (and ``line_best_response``,
    ``line_progression_date`` where it has them), with evidence ``<patient>:<fact>:<line>``.
    """
    facts, lines = [], []
    for patient, rows in lines_by_patient.items():
        for number, row in enumerate(rows, start=1):
            lines.append({"patient_id": patient, "line": number, **row})
            for name, kind, held in (
                ("line_start", "date", row["start"]),
                ("line_regimen", "category", row["regimen"]),
                ("line_best_response", "category", row["best_response"]),
                ("line_progression_date", "date", row["progression_date"]),
            ):
                if held is not None:
                    facts.append(
                        {
                            "patient_id": patient,
                            "fact": name,
                            "line": number,
                            "value": str(held),
                            "value_type": kind,
                            "evidence_documents": [f"{patient}:{name}:{number}"],
                            "evidence_labs": [],
                        }
                    )
    end = dt.date.fromisoformat(record_end)
    return GoldData(
        pl.DataFrame(facts),
        pl.DataFrame(lines),
        pl.DataFrame(),
        record_ends={patient: end for patient in lines_by_patient},
        patient_ids=list(lines_by_patient),
    )


def values(expr: dict, data: GoldData, **params: object) -> dict[str, object]:
    """``expr`` for every patient of ``data``: {patient: value, None when not derivable}."""
    return {patient: value(expr, data, patient, **params) for patient in data.patient_ids}


# -- facts, lines and days ----------------------------------------------------------------------


def test_fact_references_read_typed_values_with_evidence(data: GoldData, facts: pl.DataFrame):
    for patient in data.patient_ids:
        found = evaluate({"fact": "diagnosis_date"}, data, Context(patient))
        assert found is not None
        assert found.value == dt.date.fromisoformat(fact(facts, patient, "diagnosis_date"))
        row = facts.filter((pl.col("patient_id") == patient) & (pl.col("fact") == "isotype"))
        isotype = evaluate({"fact": "isotype"}, data, Context(patient))
        assert isotype is not None and isotype.value == row["value"][0]
        assert set(isotype.evidence) == set(row["evidence_documents"][0])
    assert value({"fact": "asct_date"}, data, "MM-001") is None  # never transplanted


def test_days_between_line_starts():
    data = patients(
        {
            "two-lines": [line("2020-01-01", "2020-05-31"), line("2020-06-10")],
            "one-line": [line("2020-01-01")],
        },
        record_end="2021-01-01",
    )
    expr = {
        "derive": "days_between",
        "from": {"fact": "line_start", "line": 1},
        "to": {"fact": "line_start", "line": 2},
    }
    # No next line: not derivable.
    assert values(expr, data) == {"two-lines": 161, "one-line": None}
    found = evaluate(expr, data, Context("two-lines"))
    assert found is not None
    assert set(found.evidence) == {"two-lines:line_start:1", "two-lines:line_start:2"}


def test_list_and_count_facts():
    data = patients(
        {
            "deep-twice": [
                line("2020-01-01", "2020-06-30", regimen="VRd", best_response="VGPR"),
                line("2020-08-01", "2021-01-31", regimen="Rd", best_response="PR"),
                line("2021-03-01", regimen="VRd", best_response="CR"),
            ],
            "no-response-yet": [line("2020-02-01", regimen="DRd")],
        },
        record_end="2021-06-01",
    )
    regimens = {"derive": "list_facts", "fact": "line_regimen"}
    # Distinct values, in line order.
    assert values(regimens, data) == {"deep-twice": ("VRd", "Rd"), "no-response-yet": ("DRd",)}
    deep = {"derive": "count_facts", "fact": "line_best_response", "in": ["sCR", "CR", "VGPR"]}
    assert values(deep, data) == {"deep-twice": 2, "no-response-yet": 0}
    started = {"derive": "count_facts", "fact": "line_start", "on_or_before": {"param": "d"}}
    assert values(started, data, d=dt.date(2020, 2, 1)) == {
        "deep-twice": 1,
        "no-response-yet": 1,
    }
    assert values(started, data, d=dt.date(2020, 1, 31)) == {
        "deep-twice": 1,
        "no-response-yet": 0,
    }


def test_regimen_and_line_on_a_date():
    data = patients(
        {
            "gap-between-lines": [
                line("2020-01-01", "2020-06-30", regimen="VRd"),
                line("2020-09-01", regimen="DRd"),  # ongoing: runs to the end of the record
            ],
            "not-yet-treated": [line("2021-01-01", regimen="Rd")],
        },
        record_end="2021-06-01",
    )
    regimen = {"derive": "regimen_on", "date": {"param": "d"}}
    number = {"derive": "line_on", "date": {"param": "d"}}
    on = dt.date(2020, 1, 11)
    assert values(regimen, data, d=on) == {"gap-between-lines": "VRd", "not-yet-treated": None}
    assert values(number, data, d=on) == {"gap-between-lines": 1, "not-yet-treated": None}
    # Between the end of line 1 and the start of line 2, no line is given.
    gap = dt.date(2020, 7, 1)
    assert values(regimen, data, d=gap) == {"gap-between-lines": None, "not-yet-treated": None}
    later = dt.date(2021, 5, 1)
    assert values(regimen, data, d=later) == {"gap-between-lines": "DRd", "not-yet-treated": "Rd"}
    assert values(number, data, d=later) == {"gap-between-lines": 2, "not-yet-treated": 1}


# -- labs -----------------------------------------------------------------------------------------


def _mprotein_g_dl(tiny: Path, patient: str) -> pl.DataFrame:
    """M-protein by hand: g/L divided by 10, 'not detected' as 0, one value per draw."""
    return (
        pl.read_parquet(tiny / "labs.parquet")
        .filter((pl.col("patient_id") == patient) & (pl.col("analyte_name") == "M-protein"))
        .with_columns(
            pl.when(pl.col("value_text") == "not detected")
            .then(0.0)
            .when(pl.col("unit") == "g/L")
            .then(pl.col("value_num") / 10)
            .otherwise(pl.col("value_num"))
            .alias("g_dl"),
            pl.col("time").dt.date().alias("day"),
        )
        .unique(subset=["time"], keep="first")
        .sort("time")
    )


def test_mprotein_nadir_during_each_line_by_hand(data: GoldData, tiny: Path, lines: pl.DataFrame):
    checked = 0
    for patient in data.patient_ids:
        if value({"fact": "isotype"}, data, patient) == "light chain":
            continue
        labs = _mprotein_g_dl(tiny, patient)
        rows = lines.filter(pl.col("patient_id") == patient).sort("line")
        for k, start in enumerate(rows["start"].to_list()):
            stop = rows["start"][k + 1] - dt.timedelta(days=1) if k + 1 < rows.height else None
            window = labs.filter(pl.col("day") >= start)
            if stop is not None:
                window = window.filter(pl.col("day") <= stop)
            expr = {
                "derive": "lab_min",
                "analyte": "M-protein",
                "unit": "g/dL",
                "from": {"fact": "line_start", "line": k + 1},
                "to": {
                    "derive": "first_available",
                    "of": [
                        {"fact": "line_start", "line": k + 2, "offset_days": -1},
                        {"derive": "record_end"},
                    ],
                },
            }
            found = evaluate(expr, data, Context(patient))
            assert found is not None
            assert found.value == pytest.approx(window["g_dl"].min())
            lab = window.filter(pl.col("lab_id") == found.evidence[0])
            assert lab["g_dl"][0] == pytest.approx(found.value)
            checked += 1
    assert checked >= 3


def test_creatinine_max_nearest_and_trend_by_hand(data: GoldData, tiny: Path):
    labs = (
        pl.read_parquet(tiny / "labs.parquet")
        .filter(pl.col("analyte_name") == "Creatinine")
        # A flagged correction replaces the first report of the same draw.
        .with_columns((pl.col("flag") == "corrected").fill_null(False).alias("fix"))
        .sort(["patient_id", "time", "fix"], descending=[False, False, True])
        .unique(subset=["patient_id", "time"], keep="first")
        .with_columns(pl.col("time").dt.date().alias("day"))
        .sort("patient_id", "time")
    )
    for patient in ("MM-001", "MM-004"):
        mine = labs.filter(pl.col("patient_id") == patient)
        dx = value({"fact": "diagnosis_date"}, data, patient)
        year = mine.filter((pl.col("day") >= dx) & (pl.col("day") <= dx + dt.timedelta(days=365)))
        expr = {
            "derive": "lab_max",
            "analyte": "Creatinine",
            "unit": "mg/dL",
            "from": {"fact": "diagnosis_date"},
            "to": {"fact": "diagnosis_date", "offset_days": 365},
        }
        assert value(expr, data, patient) == pytest.approx(year["value_num"].max())
        start = value({"fact": "line_start", "line": 1}, data, patient)
        nearest = mine.with_columns(
            (pl.col("day") - start).dt.total_days().abs().alias("gap")
        ).sort("gap", "time")
        expr = {
            "derive": "lab_nearest",
            "analyte": "Creatinine",
            "unit": "mg/dL",
            "date": {"fact": "line_start", "line": 1},
        }
        assert value(expr, data, patient) == pytest.approx(nearest["value_num"][0])
        window = mine.filter(
            (pl.col("day") >= start) & (pl.col("day") <= start + dt.timedelta(days=180))
        )
        change = (window["value_num"][-1] - window["value_num"][0]) / window["value_num"][0]
        trend = "rising" if change >= 0.2 else "falling" if change <= -0.2 else "stable"
        expr = {
            "derive": "lab_trend",
            "analyte": "Creatinine",
            "unit": "mg/dL",
            "from": {"fact": "line_start", "line": 1},
            "to": {"fact": "line_start", "line": 1, "offset_days": 180},
        }
        assert value(expr, data, patient) == trend
        high = {**expr, "derive": "lab_count", "above": 1.2}
        high.pop("threshold", None)
        assert value(high, data, patient) == window.filter(pl.col("value_num") > 1.2).height


def test_lab_cleaning_prefers_corrections_and_reads_not_detected_as_zero():
    time = dt.datetime(2020, 1, 1, 8)
    labs = pl.DataFrame(
        {
            "lab_id": ["L1", "L2", "L3", "L4", "L5"],
            "patient_id": ["P"] * 5,
            "time": [time, time, time, time + dt.timedelta(days=1), time + dt.timedelta(days=2)],
            "analyte_name": ["Creatinine", "Creatinine", "M-protein", "M-protein", "M-protein"],
            "value_num": [9.1, 0.91, None, 12.0, 1.1],
            "value_text": [None, None, "not detected", None, None],
            "unit": ["mg/dL", "mg/dL", "g/dL", "g/L", "g/dL"],
            "flag": [None, "corrected", None, None, None],
        }
    )
    empty = pl.DataFrame(
        schema={
            "patient_id": pl.String,
            "fact": pl.String,
            "line": pl.Int32,
            "value": pl.String,
            "value_type": pl.String,
            "evidence_documents": pl.List(pl.String),
            "evidence_labs": pl.List(pl.String),
        }
    )
    lines = pl.DataFrame(schema={"patient_id": pl.String, "line": pl.Int32})
    data = GoldData(empty, lines, labs, patient_ids=["P"])
    assert [(p.value, p.lab_id) for p in data.labs("P", "Creatinine")] == [(0.91, "L2")]
    expr = {"derive": "lab_max", "analyte": "M-protein", "unit": "g/dL"}
    assert evaluate(expr, data, Context("P")) == GoldValue(1.2, ("L4",))
    expr = {**expr, "derive": "lab_min"}
    assert evaluate(expr, data, Context("P")) == GoldValue(0.0, ("L3",))
    expr = {**expr, "derive": "lab_last", "unit": "g/L"}
    assert evaluate(expr, data, Context("P")) == GoldValue(11.0, ("L5",))


# -- IMWG, refractoriness and criteria -----------------------------------------------------------


def test_imwg_best_response_reproduces_every_line_of_the_gold(data: GoldData, lines: pl.DataFrame):
    for row in lines.iter_rows(named=True):
        if row["best_response"] is None:
            continue
        found = evaluate(
            {"derive": "imwg_best_response", "line": row["line"]}, data, Context(row["patient_id"])
        )
        assert found is not None
        assert found.value == row["best_response"], row
        best_date = data.fact(row["patient_id"], "line_best_response_date", row["line"])
        assert best_date is not None and set(found.evidence) == set(best_date.evidence)
        # Cut off the day before the best response was shown, the response is not yet as deep.
        early = value(
            {"derive": "imwg_best_response", "line": row["line"], "until": {"param": "d"}},
            data,
            row["patient_id"],
            d=row["best_response_date"] - dt.timedelta(days=1),
        )
        assert early != row["best_response"] or early is None


def test_refractoriness_and_exposure_as_of_the_last_progression_match_the_facts(
    data: GoldData, facts: pl.DataFrame, lines: pl.DataFrame
):
    checked = 0
    for patient in data.patient_ids:
        progressions = lines.filter(
            (pl.col("patient_id") == patient) & pl.col("progression_date").is_not_null()
        )["progression_date"]
        if progressions.is_empty():
            continue
        last = progressions.max()
        exprs = {
            "lenalidomide_refractory": {"derive": "refractory_on", "drugs": ["lenalidomide"]},
            "pi_refractory": {"derive": "refractory_on", "drug_class": "PI"},
            "anti_cd38_refractory": {"derive": "refractory_on", "drug_class": "anti-CD38"},
            "triple_class_refractory": {
                "derive": "all_of",
                "of": [{"derive": "refractory_on", "drug_class": c} for c in CLASSES],
            },
            "triple_class_exposed": {
                "derive": "all_of",
                "of": [{"derive": "exposed_on", "drug_class": c} for c in CLASSES],
            },
        }
        for name, expr in exprs.items():
            dated = _with_date(expr, {"param": "d"})
            expected = fact(facts, patient, name) == "true"
            assert value(dated, data, patient, d=last) is expected, (patient, name)
            checked += 1
    assert checked >= 10


def _with_date(expr: dict, date: dict) -> dict:
    if expr["derive"] in ("refractory_on", "exposed_on"):
        return {**expr, "date": date}
    return {**expr, "of": [_with_date(e, date) for e in expr["of"]]}


def test_refractoriness_by_a_date():
    data = patients(
        {
            # Line 1 (Rd) progressed on lenalidomide before line 2 started.
            "len-refractory": [
                line(
                    "2020-01-01",
                    "2020-09-30",
                    progression="2020-09-15",
                    refractory=("lenalidomide", "dexamethasone"),
                ),
                line("2020-10-15", regimen="Kd", drugs=("carfilzomib", "dexamethasone")),
            ],
            "never-progressed": [line("2020-01-01")],
        },
        record_end="2021-06-01",
    )
    lenalidomide = {"derive": "refractory_on", "drugs": ["lenalidomide"], "date": {"param": "d"}}
    pi = {"derive": "refractory_on", "drug_class": "PI", "date": {"param": "d"}}
    line_two = dt.date(2020, 10, 15)
    assert values(lenalidomide, data, d=line_two) == {
        "len-refractory": True,
        "never-progressed": False,
    }
    assert values(pi, data, d=line_two) == {"len-refractory": False, "never-progressed": False}
    # Before the progression, nobody is refractory yet.
    assert values(lenalidomide, data, d=dt.date(2020, 1, 1)) == {
        "len-refractory": False,
        "never-progressed": False,
    }
    found = evaluate(lenalidomide, data, Context("len-refractory", {}, {"d": GoldValue(line_two)}))
    assert found is not None
    assert found.evidence == ("len-refractory:line_progression_date:1",)


def test_shipped_criteria_templates_agree_with_the_staging_facts(
    templates: TemplateSet, tiny: Path, facts: pl.DataFrame
):
    by_id = {i.item.id: i for i in instances(templates, tiny / "gold")}
    for patient in fact_patients(facts):
        riss = fact(facts, patient, "riss_stage")
        assert by_id[f"riss-stage-iii-criteria/{patient}"].value is (riss == "III")
        assert by_id[f"iss-stage-from-labs/{patient}"].value == fact(facts, patient, "iss_stage")
        high = any(fact(facts, patient, k) == "true" for k in ("del17p", "t4_14", "t14_16"))
        assert by_id[f"high-risk-cytogenetics/{patient}"].value is high
        crab = by_id[f"crab-features-at-diagnosis/{patient}"].value
        assert ("anaemia" in crab) is (fact(facts, patient, "crab_anaemia") == "true")


def fact_patients(facts: pl.DataFrame) -> list[str]:
    return sorted(set(facts["patient_id"].to_list()))


# -- instantiating the shipped templates -----------------------------------------------------------


def test_shipped_templates_instantiate_on_tiny_across_three_levels(
    templates: TemplateSet, tiny: Path, lines: pl.DataFrame
):
    every = instances(templates, tiny / "gold")
    items = [i.item for i in every]
    assert len({item.id for item in items}) == len(items)
    assert Counter(item.level for item in items).keys() == {1, 2, 3}
    assert len({item.template_id for item in items}) >= 48
    for instance in every:
        item = instance.item
        template = templates.get(item.template_id or "")
        assert item.id.startswith(f"{template.id}/{item.patient_id}")
        assert "{" not in item.question
        assert (item.as_of is None) is (template.as_of_expr is None)
        assert item.checklist == template.checklist
        if instance.value is not None:
            coerce_value(item.answer, instance.value)  # a valid answer of the item's type
    # Slotted ids, and only the lines a patient has.
    mm2_lines = lines.filter(pl.col("patient_id") == "MM-002").height
    assert "line-start/MM-002/line=1" in {item.id for item in items}
    assert f"line-start/MM-002/line={mm2_lines + 1}" not in {item.id for item in items}
    by_id = {i.item.id: i for i in every}
    assert by_id["time-to-next-treatment/MM-001/line=1"].item.question == (
        "How many days passed from the start of line 1 to the start of line 2?"
    )
    as_of = by_id["pi-refractory-before-line/MM-001/line=2"].item.as_of
    assert as_of == lines.filter(pl.col("patient_id") == "MM-001")["start"][1]
    assert as_of.isoformat() in by_id["pi-refractory-before-line/MM-001/line=2"].item.question


def test_if_missing_null_keeps_patients_without_the_fact(
    templates: TemplateSet, tiny: Path, facts: pl.DataFrame
):
    by_id = {i.item.id: i for i in instances(templates, tiny / "gold")}
    for patient in fact_patients(facts):
        instance = by_id[f"first-progression-date/{patient}"]
        assert instance.value == fact(facts, patient, "first_progression_date")
    assert "death-date/MM-001" not in by_id  # alive: skipped, as the template requires


def test_gold_labels_are_adjudicated_synthetic_labels(templates: TemplateSet, tiny: Path):
    data = GoldData.load(tiny / "gold")
    items = instantiate(templates, data)
    chosen = [i for i in items if i.template_id in ("asct-date", "drugs-received")]
    labels = gold_labels(chosen, data, templates)
    assert [label.item_id for label in labels] == [item.id for item in chosen]
    assert all(isinstance(label, Label) for label in labels)
    assert {(label.annotator, label.adjudicated) for label in labels} == {("gold-synthetic", True)}
    asct = {label.item_id: label for label in labels}["asct-date/MM-002"]
    assert asct.value == data.fact("MM-002", "asct_date").value.isoformat()  # type: ignore[union-attr]
    assert asct.evidence
    drugs = {label.item_id: label for label in labels}["drugs-received/MM-004"]
    assert drugs.value == ["lenalidomide", "dexamethasone", "carfilzomib"]
    stranger = EvalItem.ad_hoc("MM-001", "What?")
    with pytest.raises(UserError, match="not instances of template set"):
        gold_labels([stranger], data, templates)


# -- sampling -------------------------------------------------------------------------------------


def test_sample_of_469_on_small_is_balanced_over_levels_and_templates(
    templates: TemplateSet, small: Path
):
    items = instantiate(templates, small / "gold")
    study = sample(items, n=469, seed=0)
    assert len(study) == len({item.id for item in study}) == 469
    levels = Counter(item.level for item in study)
    assert max(levels.values()) - min(levels.values()) <= 1
    available = Counter(item.template_id for item in items)
    drawn = Counter(item.template_id for item in study)
    for level in (1, 2, 3):
        ids = [t.id for t in templates.templates if t.level == level]
        capped = {t for t in ids if drawn[t] == available[t]}
        free = [drawn[t] for t in ids if t not in capped]
        assert free and max(free) - min(free) <= 1, (level, drawn)
        assert all(available[t] <= min(free) for t in capped)  # capped: all they had
    # Spread over patients: no patient twice in a template while others were not drawn.
    per_template: dict[str, Counter[str]] = defaultdict(Counter)
    for item in study:
        per_template[item.template_id or ""][item.patient_id] += 1
    for template_id, patients in per_template.items():
        assert max(patients.values()) == 1 or len(patients) == len(
            {i.patient_id for i in items if i.template_id == template_id}
        )


def test_sample_is_deterministic_order_independent_and_seeded(templates: TemplateSet, small: Path):
    items = instantiate(templates, small / "gold")
    first = sample(items, n=200, seed=3)
    shuffled = list(items)
    random.Random(1).shuffle(shuffled)
    assert {i.id for i in sample(shuffled, n=200, seed=3)} == {i.id for i in first}
    assert [i.id for i in sample(items, n=200, seed=3)] == [i.id for i in first]
    assert {i.id for i in sample(items, n=200, seed=4)} != {i.id for i in first}
    assert sample(items, n=len(items) + 5) == items
    assert sample(items, n=0) == []
    with pytest.raises(UserError):
        sample(items, n=-1)


def test_a_gold_value_that_does_not_fit_the_answer_stops_instantiation(tiny: Path):
    # A count answer accepts a number gold (grades are stored as numbers), but 4.5 is no count.
    template = QuestionTemplate.model_validate(
        {
            "id": "albumin-count",
            "level": 1,
            "question": "Albumin?",
            "answer": {"type": "count"},
            "gold": {"fact": "albumin_at_diagnosis"},
        }
    )
    assert template_problems(template) == []
    with pytest.raises(UserError, match="template 'albumin-count': the gold of item"):
        instances(TemplateSet(version="x", templates=(template,)), tiny / "gold")
