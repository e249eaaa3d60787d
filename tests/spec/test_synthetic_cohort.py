"""The synthetic cohort: deterministic, sized as asked, and consistent for every patient.

The checks here re-derive what the generator claims from the files it wrote, with their own
code: IMWG responses from the lab rows, refractoriness from the line table, CRAB and ISS from
the diagnosis labs, and that every cited evidence document really states its fact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import polars as pl
import pytest

from recordagent.sources.synthetic import generate_cohort, load_preset
from recordagent.sources.synthetic import phrases as ph
from recordagent.sources.synthetic.regimens import DRUGS, REGIMENS, DrugClass


@pytest.fixture(scope="module", params=[7, 8], ids=["seed7", "seed8"])
def cohort(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort") / f"small-{request.param}"
    generate_cohort(load_preset("small"), request.param, out)
    return out


@pytest.fixture(scope="module")
def tables(cohort: Path) -> dict[str, pl.DataFrame]:
    names = ("patients", "documents", "labs", "events")
    found = {name: pl.read_parquet(cohort / f"{name}.parquet") for name in names}
    found["facts"] = pl.read_parquet(cohort / "gold" / "facts.parquet")
    found["lines"] = pl.read_parquet(cohort / "gold" / "lines.parquet")
    return found


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_the_same_bytes(tmp_path: Path):
    tiny = load_preset("tiny")
    generate_cohort(tiny, 11, tmp_path / "a")
    generate_cohort(tiny, 11, tmp_path / "b")
    generate_cohort(tiny, 12, tmp_path / "c")
    first = digests(tmp_path / "a")
    assert set(first) >= {
        "patients.parquet",
        "documents.parquet",
        "labs.parquet",
        "events.parquet",
        "gold/facts.parquet",
        "gold/lines.parquet",
    }
    assert first == digests(tmp_path / "b")
    assert first["documents.parquet"] != digests(tmp_path / "c")["documents.parquet"]


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_presets_meet_their_size_targets(name: str, tmp_path: Path):
    preset = load_preset(name)
    report = generate_cohort(preset, 0, tmp_path / name)
    assert report.counts["patients"] == preset.patients
    assert abs(report.counts["documents"] / preset.documents - 1) <= 0.05
    assert abs(report.counts["labs"] / preset.labs - 1) <= 0.05


def test_record_length_is_heavy_tailed(tables: dict[str, pl.DataFrame]):
    per_patient = tables["documents"].group_by("patient_id").len()["len"]
    assert per_patient.quantile(0.9) >= 2 * per_patient.median()
    assert tables["documents"]["type"].n_unique() >= 8


# -- IMWG, re-derived from the lab rows ----------------------------------------------------


def assessments(
    labs: pl.DataFrame, patient: dict[str, object]
) -> list[tuple[dt.date, float, float]]:
    """(date, marker, FLC ratio) per draw: M-protein g/dL (0 if not detected), or dFLC mg/L."""
    panel = labs.filter(
        pl.col("analyte_name").is_in(
            [
                "M-protein",
                "Free kappa light chains",
                "Free lambda light chains",
                "Kappa/lambda FLC ratio",
            ]
        )
    ).unique(subset=["time", "analyte_name"], keep="first", maintain_order=True)
    by_time: dict[dt.datetime, dict[str, float]] = {}
    for time, name, value, unit in panel.select(
        "time", "analyte_name", "value_num", "unit"
    ).iter_rows():
        if name == "M-protein":
            value = 0.0 if value is None else value / 10 if unit == "g/L" else value
        by_time.setdefault(time, {})[name] = value
    out = []
    for time in sorted(by_time):
        row = by_time[time]
        kappa, lam = row["Free kappa light chains"], row["Free lambda light chains"]
        marker = abs(kappa - lam) if patient["isotype"] == "light chain" else row["M-protein"]
        out.append((time.date(), marker, row["Kappa/lambda FLC ratio"]))
    return out


def imwg_line(
    baseline: float, series: list[tuple[dt.date, float, float]], light_chain: bool
) -> tuple[str | None, dt.date | None, dt.date | None]:
    ranks = ["sCR", "CR", "VGPR", "PR", "MR", "SD"]
    best, best_day, nadir = None, None, baseline
    rise = 100.0 if light_chain else 0.5

    def worse(value: float) -> bool:
        return round(value - nadir, 9) >= rise and round(value - 1.25 * nadir, 9) >= 0

    for k, (day, value, ratio) in enumerate(series):
        if k + 1 < len(series) and worse(value) and worse(series[k + 1][1]):  # confirmed
            return (best or "PD"), (best_day or day), day
        normal = 0.26 <= ratio <= 1.65
        # A line may start in CR (a switch for toxicity): nothing left to reduce.
        reduction = round(1 - value / baseline, 9) if baseline > 0 else 0.0
        if light_chain:
            cat = (
                "CR"
                if normal
                else "VGPR"
                if reduction >= 0.9
                else "PR"
                if reduction >= 0.5
                else "SD"
            )
        elif value == 0:
            cat = "sCR" if normal else "CR"
        else:
            cat = (
                "VGPR"
                if reduction >= 0.9
                else "PR"
                if reduction >= 0.5
                else "MR"
                if reduction >= 0.25
                else "SD"
            )
        if best is None or ranks.index(cat) < ranks.index(best):
            best, best_day = cat, day
        nadir = min(nadir, value)
    return best, best_day, None


def test_responses_agree_with_the_paraprotein_per_imwg(tables: dict[str, pl.DataFrame]):
    facts = tables["facts"]
    isotype = dict(facts.filter(pl.col("fact") == "isotype").select("patient_id", "value").rows())
    checked = 0
    for (patient_id,), lines in (
        tables["lines"].sort("line").group_by(["patient_id"], maintain_order=True)
    ):
        labs = tables["labs"].filter(pl.col("patient_id") == patient_id)
        series = assessments(labs, {"isotype": isotype[patient_id]})
        starts = lines["start"].to_list()
        end = series[-1][0]
        for k, row in enumerate(lines.iter_rows(named=True)):
            stop = starts[k + 1] if k + 1 < len(starts) else end
            before = [s for s in series if s[0] <= row["start"]]
            during = [s for s in series if row["start"] < s[0] <= stop]
            best, best_day, progression = imwg_line(
                before[-1][1], during, isotype[patient_id] == "light chain"
            )
            assert row["progression_date"] == progression, (patient_id, row["line"])
            if row["best_response"] is not None:
                assert (row["best_response"], row["best_response_date"]) == (best, best_day), (
                    patient_id,
                    row["line"],
                )
            checked += 1
    assert checked >= 100


def test_therapy_lines_follow_each_other(tables: dict[str, pl.DataFrame]):
    for (patient_id,), lines in tables["lines"].sort("line").group_by(["patient_id"]):
        rows = list(lines.iter_rows(named=True))
        assert [r["line"] for r in rows] == list(range(1, len(rows) + 1))
        for earlier, later in zip(rows, rows[1:], strict=False):
            assert earlier["end"] is not None and earlier["end"] < later["start"], patient_id
            if earlier["progression_date"]:
                # Progression may be confirmed by the draw on the day the next line starts.
                assert earlier["progression_date"] <= later["start"], patient_id
        for row in rows:
            assert row["end"] is None or row["start"] <= row["end"]
            if row["asct_date"]:
                assert row["line"] == 1 and row["start"] < row["asct_date"]
            assert REGIMENS[_regimen_key(row["regimen"])].first_year <= row["start"].year


def _regimen_key(name: str) -> str:
    return next(key for key, regimen in REGIMENS.items() if regimen.name == name)


def _refractory_drugs(row: dict[str, object]) -> list[str]:
    progression, end = row["progression_date"], row["end"]
    if progression is None or end is None or progression > end + dt.timedelta(days=60):
        return []
    if row["maintenance"] and row["maintenance_start"] and progression >= row["maintenance_start"]:
        return [row["maintenance"]]
    regimen = REGIMENS[_regimen_key(row["regimen"])]
    return [d for d in regimen.drugs if DRUGS[d].drug_class is not DrugClass.STEROID]


def test_refractoriness_agrees_with_the_regimen_history(tables: dict[str, pl.DataFrame]):
    facts = tables["facts"]
    checked = 0
    for (patient_id,), lines in tables["lines"].sort("line").group_by(["patient_id"]):
        rows = list(lines.iter_rows(named=True))
        for row in rows:
            assert sorted(row["refractory_drugs"]) == sorted(_refractory_drugs(row))
        progressions = [r["progression_date"] for r in rows if r["progression_date"]]
        if not progressions:
            continue
        as_of = max(progressions)
        refractory = [d for r in rows if r["progression_date"] for d in _refractory_drugs(r)]
        exposed = {DRUGS[d].drug_class for r in rows if r["start"] <= as_of for d in r["drugs"]}
        classes = {DRUGS[d].drug_class for d in refractory}
        triple = (DrugClass.IMID, DrugClass.PI, DrugClass.ANTI_CD38)
        expected = {
            "lenalidomide_refractory": "lenalidomide" in refractory,
            "pi_refractory": DrugClass.PI in classes,
            "anti_cd38_refractory": DrugClass.ANTI_CD38 in classes,
            "triple_class_exposed": all(c in exposed for c in triple),
            "triple_class_refractory": all(c in classes for c in triple),
        }
        gold = dict(
            facts.filter(
                (pl.col("patient_id") == patient_id) & pl.col("fact").is_in(list(expected))
            )
            .select("fact", "value")
            .rows()
        )
        assert gold == {k: "true" if v else "false" for k, v in expected.items()}, patient_id
        checked += 1
    assert checked >= 10


def test_crab_and_iss_agree_with_the_diagnosis_labs(tables: dict[str, pl.DataFrame]):
    facts = tables["facts"]
    labs = tables["labs"]
    for patient_id in tables["patients"]["patient_id"]:
        gold = dict(facts.filter(pl.col("patient_id") == patient_id).select("fact", "value").rows())
        dx = dt.date.fromisoformat(gold["diagnosis_date"])
        at_dx = {
            name: value
            for name, value in labs.filter(
                (pl.col("patient_id") == patient_id) & (pl.col("time").dt.date() == dx)
            )
            .select("analyte_name", "value_num")
            .rows()
        }
        assert gold["crab_hypercalcaemia"] == str(at_dx["Calcium"] > 11).lower()
        assert gold["crab_renal_impairment"] == str(at_dx["Creatinine"] > 2).lower()
        assert gold["crab_anaemia"] == str(at_dx["Hemoglobin"] < 10).lower()
        b2m, albumin = at_dx["Beta-2 microglobulin"], at_dx["Albumin"]
        iss = "III" if b2m >= 5.5 else "I" if b2m < 3.5 and albumin >= 3.5 else "II"
        assert gold["iss_stage"] == iss, patient_id


# -- evidence: every gold fact is stated by what it cites -------------------------------------


def mentions(text: str, form: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", text) is not None


def any_form(text: str, forms: tuple[str, ...] | list[str]) -> bool:
    return any(mentions(text, form) for form in forms)


def document_states(fact: dict[str, object], text: str) -> bool:
    name, value = fact["fact"], str(fact["value"])
    spec_type = fact["value_type"]
    if spec_type == "date" and name != "death_date":
        return any(form in text for form in ph.date_forms(dt.date.fromisoformat(value)))
    if name == "death_date":
        return "died" in text and any(
            form in text for form in ph.date_forms(dt.date.fromisoformat(value))
        )
    if name == "isotype":
        return any(
            any_form(text, forms) for (iso, _), forms in ph.ISOTYPE_FORMS.items() if iso == value
        )
    if name == "light_chain":
        return f"{value}-restricted" in text
    if name in ("iss_stage", "riss_stage"):
        stage = {"I": 1, "II": 2, "III": 3}[value]
        return any_form(text, (ph.ISS_FORMS if name == "iss_stage" else ph.RISS_FORMS)[stage])
    if name in ph.CYTOGENETICS:
        verdicts = ph.POSITIVE if value == "true" else ph.NEGATIVE
        return any(
            f"{form}: {verdict}" in text for form in ph.CYTOGENETICS[name] for verdict in verdicts
        )
    if name == "crab_bone_lesions":
        return ("No lytic bone lesions" in text) == (value == "false")
    if name == "bm_plasma_cells_at_diagnosis":
        return f"{value}% " in text or f"{value}%." in text
    if name == "transplant_eligible":
        return ("transplant-eligible" if value == "true" else "transplant-ineligible") in text
    if name == "number_of_lines":
        return any_form(text, ph.line_forms(int(value)))
    if name == "line_regimen":
        return any_form(text, REGIMENS[_regimen_key(value)].names)
    if name == "line_best_response":
        return any_form(text, ph.RESPONSE_FORMS[value])
    if name in ("lenalidomide_refractory", "pi_refractory", "anti_cd38_refractory"):
        refractory_line = next(t for t in text.splitlines() if t.startswith("Refractory to:"))
        drug_class = {
            "lenalidomide_refractory": None,
            "pi_refractory": DrugClass.PI,
            "anti_cd38_refractory": DrugClass.ANTI_CD38,
        }[name]
        drugs = [
            d
            for d in DRUGS.values()
            if (d.key == "lenalidomide" if drug_class is None else d.drug_class is drug_class)
        ]
        named = any(any_form(refractory_line, d.names) for d in drugs)
        return named == (value == "true")
    if name in ("triple_class_exposed", "triple_class_refractory"):
        label = (
            "Triple-class exposed" if name == "triple_class_exposed" else "Triple-class refractory"
        )
        return f"{label}: {'yes' if value == 'true' else 'no'}" in text
    if name == "crs_max_grade":
        return (f"CRS grade {value}" in text) if value != "0" else "No cytokine release" in text
    raise AssertionError(f"no document check for {name}")


def lab_states(
    fact: dict[str, object], rows: list[dict[str, object]], lines: dict[tuple[str, int], dict]
) -> bool:
    name, value = fact["fact"], str(fact["value"])
    if name.endswith("_at_diagnosis"):
        (row,) = rows
        number = row["value_num"] / 10 if row["unit"] == "g/L" else row["value_num"]
        return abs(number - float(value)) < 1e-6
    if name in (
        "line_best_response",
        "line_best_response_date",
        "line_progression_date",
        "first_progression_date",
    ):
        # One assessment (the panel of one draw); its category is re-derived from the lab
        # rows in the IMWG test, and the fact must match the line table checked there.
        days = {row["time"].date() for row in rows}
        line = lines.get((fact["patient_id"], fact["line"]))
        if name == "line_best_response":
            return (
                line is not None
                and value == line["best_response"]
                and days == {line["best_response_date"]}
            )
        return days == {dt.date.fromisoformat(value)}
    values = {row["analyte_name"]: row["value_num"] for row in rows}
    if name == "iss_stage":
        b2m, albumin = values["Beta-2 microglobulin"], values["Albumin"]
        return value == ("III" if b2m >= 5.5 else "I" if b2m < 3.5 and albumin >= 3.5 else "II")
    if name == "crab_hypercalcaemia":
        return value == str(values["Calcium"] > 11).lower()
    if name == "crab_renal_impairment":
        return value == str(values["Creatinine"] > 2).lower()
    if name == "crab_anaemia":
        return value == str(values["Hemoglobin"] < 10).lower()
    raise AssertionError(f"no lab check for {name}")


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def test_every_gold_fact_is_stated_by_its_evidence(tables: dict[str, pl.DataFrame]):
    documents = dict(tables["documents"].select("document_id", "text").rows())
    doc_patient = dict(tables["documents"].select("document_id", "patient_id").rows())
    lab_rows = {row["lab_id"]: row for row in tables["labs"].iter_rows(named=True)}
    lines = {(row["patient_id"], row["line"]): row for row in tables["lines"].iter_rows(named=True)}
    failures = []
    for fact in tables["facts"].iter_rows(named=True):
        docs, labs = fact["evidence_documents"], fact["evidence_labs"]
        assert docs or labs, fact
        assert all(doc_patient[d] == fact["patient_id"] for d in docs), fact
        assert all(lab_rows[lab]["patient_id"] == fact["patient_id"] for lab in labs), fact
        stated = any(document_states(fact, documents[d]) for d in docs)
        if fact["line"] is not None:  # line facts agree with the line table
            line = lines[(fact["patient_id"], fact["line"])]
            column = {
                "line_regimen": "regimen",
                "line_start": "start",
                "line_best_response": "best_response",
                "line_best_response_date": "best_response_date",
                "line_progression_date": "progression_date",
            }[fact["fact"]]
            assert _text(line[column]) == fact["value"], fact
        if labs and not stated:
            stated = lab_states(fact, [lab_rows[lab] for lab in labs], lines)
        if not stated:
            failures.append((fact["patient_id"], fact["fact"], fact["line"], fact["value"]))
    assert not failures, failures[:10]
    assert tables["facts"]["fact"].n_unique() >= 30


def test_some_documents_carry_the_hard_parts(tables: dict[str, pl.DataFrame]):
    text = tables["documents"]["text"]
    assert text.str.contains("CORRECTED REPORT").any()  # a later report corrects an earlier one
    assert text.str.contains(r"No evidence of new lytic lesions").any()  # negation
    assert text.str.contains(r"\d+ (months|weeks) after ASCT").any()  # relative dates
    units = tables["labs"].filter(pl.col("analyte_name") == "M-protein")["unit"].unique()
    assert set(units) == {"g/dL", "g/L"}  # unit changes
    assert (tables["labs"]["flag"] == "corrected").any()  # corrected lab values
    dupes = tables["labs"].select("patient_id", "time", "analyte_code", "value_num")
    assert dupes.is_duplicated().any()  # duplicated rows


def test_no_document_mentions_its_future(tables: dict[str, pl.DataFrame]):
    """Copied-forward text may be stale, never prescient: history dates precede the document."""
    pattern = re.compile(r"(?:^- |ASCT |progression )(\d{2})/(\d{4})", re.MULTILINE)
    checked = 0
    for day, text in tables["documents"].select("date", "text").iter_rows():
        for month, year in pattern.findall(text):
            assert (int(year), int(month)) <= (day.year, day.month), (day, text[:400])
            checked += 1
    assert checked > 1000
