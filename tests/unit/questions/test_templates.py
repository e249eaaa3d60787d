"""Question templates: the schema, and the validator's located problems."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.questions.gold import DERIVATIONS, check_expr
from recordagent.questions.gold_expr import render_text
from recordagent.questions.templates import TemplateSet, load_templates
from recordagent.resources import question_templates_path

GOOD = """
templates:
  - id: asct-date
    level: 1
    question: When was the ASCT?
    answer: {type: date}
    scoring: {tolerance_days: 3}
    applicability: {requires: [asct_date]}
    gold: {fact: asct_date}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(folder: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_templates(folder)
    return str(caught.value)


def template(body: str, *, template_id: str = "t", level: int = 2) -> str:
    """One template in a file; ``body`` is YAML indented as a template's fields."""
    fields = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f"templates:\n  - id: {template_id}\n    level: {level}\n{fields}\n"


# -- the shipped templates --------------------------------------------------------------------


def test_shipped_templates_validate_with_at_least_48_over_three_levels():
    template_set = load_templates(question_templates_path() / "myeloma")
    assert isinstance(template_set, TemplateSet)
    assert len(template_set.templates) >= 48
    levels = Counter(t.level for t in template_set.templates)
    assert set(levels) == {1, 2, 3}
    assert min(levels.values()) >= 15
    assert all(t.checklist for t in template_set.templates if t.level == 3)
    assert len({t.id for t in template_set.templates}) == len(template_set.templates)


def test_each_packaged_template_family_validates_with_its_own_loader():
    from recordagent.questions.silver_templates import is_silver_folder, load_silver_templates

    root = question_templates_path()
    families = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert families == ["general", "mimic_iv", "myeloma"]
    myeloma = load_templates(root / "myeloma")
    assert len(myeloma.version) == 16 and len(myeloma.templates) == 60
    assert not is_silver_folder(root / "myeloma") and is_silver_folder(root / "mimic_iv")
    assert len(load_silver_templates(root / "mimic_iv").templates) >= 20


def test_readme_documents_every_derivation():
    readme = (question_templates_path() / "README.md").read_text(encoding="utf-8")
    for name in DERIVATIONS:
        assert f"`{name}`" in readme, name


# -- loading ------------------------------------------------------------------------------------


def test_a_good_file_loads_and_the_version_follows_the_contents(tmp_path: Path):
    write(tmp_path / "a", "one.yaml", GOOD)
    first = load_templates(tmp_path / "a")
    assert [t.id for t in first.templates] == ["asct-date"]
    assert first.get("asct-date").scoring.tolerance_days == 3
    with pytest.raises(KeyError):
        first.get("nope")
    write(tmp_path / "b", "renamed.yml", GOOD)
    assert load_templates(tmp_path / "b").version == first.version
    write(tmp_path / "a", "one.yaml", GOOD.replace("When was", "On what date was"))
    assert load_templates(tmp_path / "a").version != first.version


def test_missing_and_empty_folders_are_user_errors(tmp_path: Path):
    assert "does not exist" in problems_of(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "no question templates" in problems_of(tmp_path / "empty")


def test_file_level_problems(tmp_path: Path):
    write(tmp_path, "broken.yaml", "templates: [\n")
    write(tmp_path, "list.yaml", "- id: x\n")
    write(tmp_path, "extra.yaml", GOOD + "notes: hello\n")
    message = problems_of(tmp_path)
    assert "3 problems" in message
    assert "broken.yaml: not valid YAML" in message
    assert "list.yaml: expected a mapping with a 'templates' list" in message
    assert "extra.yaml: unknown top-level key 'notes'" in message


def test_schema_errors_name_file_template_and_field(tmp_path: Path):
    write(
        tmp_path,
        "bad.yaml",
        """
        templates:
          - id: too-deep
            level: 4
            question: What?
            answer: {type: date}
            gold: {fact: asct_date}
          - id: Bad Id
            level: 1
            question: What?
            answer: {type: date}
            gold: {fact: asct_date}
          - id: no-gold
            level: 1
            question: What?
            answer: {type: date}
            colour: blue
          - level: 1
            question: What?
            answer: {type: category}
            gold: {fact: isotype}
        """,
    )
    message = problems_of(tmp_path)
    assert "bad.yaml: template 'too-deep': level:" in message
    assert "bad.yaml: template 'Bad Id': id:" in message
    assert "bad.yaml: template 'no-gold': gold: Field required" in message
    assert "bad.yaml: template 'no-gold': colour: Extra inputs are not permitted" in message
    assert "bad.yaml: template #4: id: Field required" in message
    assert "bad.yaml: template #4: answer: a category answer needs its allowed values" in message


def test_duplicate_ids_across_files(tmp_path: Path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    assert "b.yaml: template 'asct-date': id: also defined in a.yaml" in problems_of(tmp_path)


# -- slots ----------------------------------------------------------------------------------------


def test_question_placeholders_must_be_slots_params_or_as_of(tmp_path: Path):
    write(
        tmp_path,
        "s.yaml",
        template(
            """
            question: When did line {lines} start?
            slots: {line: [1, 2]}
            answer: {type: date}
            gold: {fact: line_start, line: "{line}"}
            """
        ),
    )
    message = problems_of(tmp_path)
    assert "s.yaml: template 't': question: unknown slot '{lines}'" in message
    assert "template 't': slots.line: not shown in the question" in message


def test_slot_arithmetic_needs_whole_numbers_and_known_slots(tmp_path: Path):
    write(
        tmp_path,
        "s.yaml",
        template(
            """
            question: What about {drug+1} at line {line}?
            slots: {drug: [a, b], line: [1]}
            answer: {type: date}
            gold: {fact: line_start, line: "{drug}"}
            applicability: {requires_line: true, requires: [{fact: line_start, line: "{lane}"}]}
            """
        ),
    )
    message = problems_of(tmp_path)
    assert "question: '{drug+1}' needs a whole-number slot" in message
    assert "gold.line: slot 'drug' must have whole-number values" in message
    assert "applicability.requires[0].line: unknown slot 'lane'" in message


def test_a_slot_shown_through_a_param_is_used(tmp_path: Path):
    write(
        tmp_path,
        "s.yaml",
        template(
            """
            question: Which regimen was given on {date}?
            slots: {line: [1, 2]}
            params: {date: {fact: line_start, line: "{line}", offset_days: 30}}
            answer: {type: category, allowed: [Rd, VRd]}
            gold: {derive: regimen_on, date: {param: date}}
            """
        ),
    )
    message = problems_of(tmp_path)
    assert "slots.line" not in message  # shown through {date}
    assert "answer.allowed: misses" in message  # the regimen catalogue is larger


def test_per_line_requirements_need_a_line_slot(tmp_path: Path):
    write(
        tmp_path,
        "s.yaml",
        template(
            """
            question: Progression?
            answer: {type: boolean}
            applicability: {requires: [line_progression_date, no_such_fact], requires_line: true}
            gold: {fact: del17p}
            """
        ),
    )
    message = problems_of(tmp_path)
    assert "applicability.requires[0]: 'line_progression_date' is per line" in message
    assert "applicability.requires[1]: unknown fact 'no_such_fact'" in message
    assert "applicability.requires_line: the template has no 'line' slot" in message


# -- gold expressions ------------------------------------------------------------------------


def test_unknown_derivation_fact_and_arguments(tmp_path: Path):
    write(
        tmp_path,
        "g.yaml",
        template(
            """
            question: Median creatinine?
            answer: {type: number, unit: mg/dL}
            gold: {derive: lab_median, analyte: Creatinine}
            """,
            template_id="median",
        )
        + textwrap.indent(
            textwrap.dedent(
                """
                - id: facts
                  level: 1
                  question: Which?
                  answer: {type: boolean}
                  gold:
                    derive: all_of
                    of:
                      - {fact: del_17p}
                      - {fact: line_regimen}
                      - {derive: exposed_on, drug_class: steroids, colour: red}
                      - {derive: compare, left: {fact: diagnosis_date}, op: "~", right: {value: 2}}
                      - {fact: del17p, derive: not}
                """
            ),
            "  ",
        ),
    )
    message = problems_of(tmp_path)
    assert "g.yaml: template 'median': gold.derive: unknown derivation 'lab_median'" in message
    assert "(known: all_of, any_of, case," in message
    assert "template 'facts': gold(all_of).of[0].fact: unknown fact 'del_17p'" in message
    assert "gold(all_of).of[1]: fact 'line_regimen' is per line: give line" in message
    assert "of[2](exposed_on).colour: unknown argument" in message
    assert "of[3](compare).op: unknown comparison" in message
    assert "of[3](compare): cannot compare date with count" in message
    assert "of[4](not): missing argument 'of'" in message


def test_lab_derivations_check_analyte_unit_and_window_types(tmp_path: Path):
    write(
        tmp_path,
        "g.yaml",
        template(
            """
            question: Lowest?
            answer: {type: number, unit: g/dL}
            gold:
              derive: lab_min
              analyte: Creatinin
              unit: g/dL
              from: {fact: del17p}
            """
        ),
    )
    message = problems_of(tmp_path)
    assert "gold(lab_min).analyte: unknown analyte 'Creatinin'" in message
    assert "gold(lab_min).from: expected a date value, got boolean" in message
    info, problems = check_expr(
        {"derive": "lab_min", "analyte": "Creatinine", "unit": "g/dL"}, "gold", {}
    )
    assert problems == ["gold(lab_min).unit: Creatinine is reported in mg/dL"]
    info, problems = check_expr(
        {"derive": "lab_min", "analyte": "M-protein", "unit": "g/L"}, "gold", {}
    )
    assert problems == [] and info is not None and info.unit == "g/L"


def test_offset_days_only_on_dates_and_params_must_exist():
    _, problems = check_expr({"fact": "del17p", "offset_days": 3}, "gold", {})
    assert problems == ["gold.offset_days: applies to dates, not boolean"]
    _, problems = check_expr({"param": "when"}, "gold", {})
    assert problems == ["gold.param: unknown param 'when' (none)"]
    _, problems = check_expr({"fact": "asct_date", "value": 1}, "gold", {})
    assert problems[0].startswith("gold: needs exactly one of")


def test_in_values_and_case_outcomes_are_checked():
    _, problems = check_expr(
        {"derive": "in", "value": {"fact": "isotype"}, "values": ["IgG", "IgM"]}, "gold", {}
    )
    assert problems == ["gold(in).values: never taken: IgM"]
    info, problems = check_expr(
        {"derive": "case", "when": [{"if": {"fact": "del17p"}, "then": "high"}], "else": "std"},
        "gold",
        {},
    )
    assert problems == [] and info is not None and info.domain == {"high", "std"}


# -- answer and scoring agree with the gold -------------------------------------------------


def test_answer_must_fit_the_gold(tmp_path: Path):
    write(
        tmp_path,
        "a.yaml",
        """
        templates:
          - id: wrong-type
            level: 1
            question: When?
            answer: {type: date}
            gold: {fact: del17p}
          - id: wrong-unit
            level: 1
            question: Creatinine?
            answer: {type: number, unit: umol/L}
            gold: {fact: creatinine_at_diagnosis}
          - id: narrow-allowed
            level: 2
            question: Best response to line {line}?
            slots: {line: [1]}
            answer: {type: category, allowed: [CR, PR]}
            gold: {fact: line_best_response, line: "{line}"}
        """,
    )
    message = problems_of(tmp_path)
    assert "'wrong-type': answer.type: date does not fit the gold, which is a boolean" in message
    assert "'wrong-unit': answer.unit: the gold is in mg/dL, not umol/L" in message
    assert "'narrow-allowed': answer.allowed: misses MR, PD, SD, VGPR, sCR" in message


def test_scoring_must_fit_the_answer(tmp_path: Path):
    write(
        tmp_path,
        "a.yaml",
        template(
            """
            question: del(17p)?
            answer: {type: boolean}
            scoring: {tolerance_days: 3, abs_tol: 0.1, list_match: f1, synonyms: {x: [y]}}
            gold: {fact: del17p}
            """
        )
        + textwrap.indent(
            textwrap.dedent(
                """
                - id: light
                  level: 1
                  question: Light chain?
                  answer: {type: category, allowed: [kappa, lambda]}
                  scoring: {synonyms: {kapa: [κ]}}
                  gold: {fact: light_chain}
                """
            ),
            "  ",
        ),
    )
    message = problems_of(tmp_path)
    assert "scoring.tolerance_days: applies to dates, not boolean" in message
    assert "scoring.abs_tol: applies to numbers, not boolean" in message
    assert "scoring.list_match: applies to lists, not boolean" in message
    assert "scoring.synonyms: apply to categories and lists, not boolean" in message
    assert "'light': scoring.synonyms: not allowed values: kapa" in message


def test_level_three_needs_a_checklist(tmp_path: Path):
    write(
        tmp_path,
        "c.yaml",
        template(
            """
            question: High risk?
            answer: {type: boolean}
            gold: {derive: any_of, of: [{fact: del17p}, {fact: t4_14}]}
            """,
            level=3,
        ),
    )
    assert "template 't': checklist: a level-3 template lists" in problems_of(tmp_path)


def test_every_problem_is_reported_at_once(tmp_path: Path):
    write(tmp_path, "one.yaml", GOOD.replace("asct_date}", "asct_day}"))
    write(tmp_path, "two.yaml", GOOD.replace("asct-date", "other").replace("level: 1", "level: 0"))
    message = problems_of(tmp_path)
    assert "one.yaml: template 'asct-date': gold.fact: unknown fact 'asct_day'" in message
    assert "two.yaml: template 'other': level:" in message


def test_render_text_fills_slots_offsets_and_dates():
    import datetime as dt

    text = "From line {line} to line {line+1} on {day} ({drugs})"
    values = {"line": 2, "day": dt.date(2021, 3, 4), "drugs": ("a", "b")}
    assert render_text(text, values) == "From line 2 to line 3 on 2021-03-04 (a, b)"
