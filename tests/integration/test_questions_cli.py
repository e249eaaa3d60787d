"""`recordagent questions list|validate|sample`, run as a user runs them."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recordagent.cli.main import app
from recordagent.errors import UserError
from recordagent.evaluation.labels import read_labels
from recordagent.questions.items import EvalItem
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.helpers import REPO, recordagent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("questions_cli") / "tiny"
    generate_cohort(load_preset("tiny"), 0, out)
    return out


def test_list_shows_every_packaged_template():
    result = recordagent("questions", "list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "question templates (version" in out
    for template_id in ("diagnosis-date", "time-to-next-treatment", "triple-class-refractory"):
        assert template_id in out
    assert "number (g/dL)" in out


def test_validate_the_packaged_templates_and_a_broken_folder(tmp_path: Path):
    result = recordagent("questions", "validate")
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "templates valid in" in flat and "level 3:" in flat

    (tmp_path / "bad.yaml").write_text(
        "templates:\n  - id: x\n    level: 1\n    question: When?\n"
        "    answer: {type: date}\n    gold: {derive: lab_median}\n",
        encoding="utf-8",
    )
    broken = recordagent("questions", "validate", str(tmp_path))
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr
    flat = " ".join(broken.stderr.split())
    assert "bad.yaml: template 'x': gold.derive: unknown derivation 'lab_median'" in flat


def test_sample_writes_items_and_gold_labels(tmp_path: Path, tiny: Path):
    items_file = tmp_path / "out" / "items.jsonl"
    labels_file = tmp_path / "out" / "labels.csv"
    result = recordagent(
        "questions",
        "sample",
        "--cohort",
        str(tiny),
        "--n",
        "60",
        "--seed",
        "0",
        "--out",
        str(items_file),
        "--labels",
        str(labels_file),
    )
    assert result.returncode == 0, result.stderr
    assert "60 of" in result.stdout
    items = [
        EvalItem.model_validate_json(line)
        for line in items_file.read_text(encoding="utf-8").splitlines()
    ]
    assert len(items) == 60
    assert set(Counter(item.level for item in items).values()) == {20}
    labels = read_labels(labels_file)
    assert [label.item_id for label in labels] == [item.id for item in items]
    assert {label.annotator for label in labels} == {"gold-synthetic"}
    assert all(label.adjudicated for label in labels)

    again = tmp_path / "again.jsonl"
    recordagent("questions", "sample", "--cohort", str(tiny), "--n", "60", "--out", str(again))
    assert again.read_text(encoding="utf-8") == items_file.read_text(encoding="utf-8")


def test_sample_everything_and_a_folder_without_gold(tmp_path: Path, tiny: Path):
    out = tmp_path / "all.jsonl"
    result = recordagent(
        "questions", "sample", "--cohort", str(tiny), "--n", "0", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 200
    assert json.loads(lines[0])["id"].startswith("diagnosis-date/")

    missing = recordagent("questions", "sample", "--cohort", str(tmp_path), "--out", str(out))
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert "facts.parquet not found" in " ".join(missing.stderr.split())


def test_sample_refuses_output_paths_it_cannot_write_before_writing_anything(
    tmp_path: Path, tiny: Path
):
    items_file = tmp_path / "new" / "items.jsonl"
    bad_labels = recordagent(
        "questions", "sample", "--cohort", str(tiny), "--n", "3",
        "--out", str(items_file), "--labels", "/proc/labels.csv",
    )  # fmt: skip
    assert bad_labels.returncode == 2
    assert "--labels /proc/labels.csv cannot be written" in " ".join(bad_labels.stderr.split())
    assert not items_file.exists(), "no items without their labels"
    folder = recordagent("questions", "sample", "--cohort", str(tiny), "--out", str(tmp_path))
    assert folder.returncode == 2
    assert "is a folder; give a file name" in " ".join(folder.stderr.split())
    assert "Traceback" not in bad_labels.stderr + folder.stderr


# --- SQL-derived templates: the same commands, a record store instead of a cohort --------------

GENERAL = REPO / "question_templates" / "general"
MYELOMA = REPO / "question_templates" / "myeloma"
GENERAL_IDS = {
    template["id"]
    for path in GENERAL.glob("level*.yaml")
    for template in yaml.safe_load(path.read_text(encoding="utf-8"))["templates"]
}


@pytest.fixture(scope="module")
def tiny_store(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cohort's bundle loaded into a store file."""
    path = tmp_path_factory.mktemp("questions_cli_store") / "tiny.duckdb"
    with connect(path) as store:
        load_bundle(store, tiny)
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


def test_validate_and_list_know_the_general_sql_templates():
    listed = recordagent("questions", "list", str(GENERAL))
    assert listed.returncode == 0, listed.stderr
    assert "latest-hba1c" in listed.stdout and "number (mg/dL)" in listed.stdout
    every = recordagent("questions", "validate")
    assert every.returncode == 0, every.stderr
    assert re.search(r"\d+ silver templates valid in \S*general", flat(every.stdout))
    for family in ("mimic_iv", "myeloma"):
        assert re.search(rf"templates valid in \S*{family}", flat(every.stdout)), family


def test_sample_over_a_store_with_sql_templates_writes_items_and_silver_labels(
    tmp_path: Path, tiny_store: Path
):
    items_file, labels_file = tmp_path / "items.jsonl", tmp_path / "labels.csv"
    result = recordagent(
        "questions", "sample", "--db", str(tiny_store), "--n", "0",
        "--out", str(items_file), "--labels", str(labels_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "silver templates" in result.stdout
    items = [
        EvalItem.model_validate_json(line)
        for line in items_file.read_text(encoding="utf-8").splitlines()
    ]
    assert {item.level for item in items} == {1, 2, 3}
    assert all(item.template_id in GENERAL_IDS for item in items)
    labels = read_labels(labels_file)
    assert [label.item_id for label in labels] == [item.id for item in items]
    assert {label.annotator for label in labels} == {"silver-sql"}

    drawn = tmp_path / "drawn.jsonl"
    again = recordagent(
        "questions", "sample", "--db", str(tiny_store), "--templates", str(GENERAL),
        "--n", "6", "--seed", "3", "--out", str(drawn),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(drawn.read_text(encoding="utf-8").splitlines()) == 6


def test_sample_says_what_a_folder_of_the_other_kind_needs(tiny: Path, tiny_store: Path,
                                                           tmp_path: Path):  # fmt: skip
    out = str(tmp_path / "items.jsonl")
    sql_on_cohort = recordagent(
        "questions", "sample", "--cohort", str(tiny), "--templates", str(GENERAL), "--out", out
    )
    assert sql_on_cohort.returncode == 2, sql_on_cohort.stdout + sql_on_cohort.stderr
    assert "Traceback" not in sql_on_cohort.stderr
    assert "validation error" not in sql_on_cohort.stderr
    assert "Field required" not in sql_on_cohort.stderr
    assert "holds SQL-derived templates" in flat(sql_on_cohort.stderr)
    assert "give --db STORE instead of --cohort" in flat(sql_on_cohort.stderr)

    def refused(*args: str) -> str:
        result = CliRunner().invoke(app, ["questions", *args], env={"COLUMNS": "200"})
        assert isinstance(result.exception, UserError), (args, result.output, result.exception)
        return flat(str(result.exception))

    assert "holds gold-derived templates" in refused(
        "sample", "--db", str(tiny_store), "--templates", str(MYELOMA), "--out", out
    )
    assert "give --cohort DIR" in refused("sample", "--out", out)
    assert "not both" in refused(
        "sample", "--cohort", str(tiny), "--db", str(tiny_store), "--out", out
    )
    assert "questions sample --cohort" in refused(
        "silver", "--templates", str(MYELOMA), "--db", str(tiny_store),
        "--out", str(tmp_path / "silver"),
    )  # fmt: skip
    assert not Path(out).exists() and not (tmp_path / "silver").exists()


def test_a_folder_mixing_both_kinds_is_one_clear_error(tmp_path: Path):
    for name in ("level1.yaml",):
        shutil.copy(MYELOMA / name, tmp_path / f"gold_{name}")
        shutil.copy(GENERAL / name, tmp_path / f"sql_{name}")
    for command in ("validate", "list"):
        result = recordagent("questions", command, str(tmp_path))
        assert result.returncode == 2
        message = flat(result.stderr)
        assert "mixes gold-derived templates" in message and "put each kind in a folder" in message
        assert "Traceback" not in result.stderr


def test_questions_list_into_a_pipe_keeps_a_long_template_id_whole(tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(REPO / "question_templates" / "general", folder)
    long_id = "latest-creatinine-" + "as-measured-by-the-hospital-laboratory-" * 2 + "x"
    level1 = folder / "level1.yaml"
    level1.write_text(level1.read_text().replace("id: latest-creatinine\n", f"id: {long_id}\n"))
    listed = recordagent("questions", "list", str(folder))
    assert listed.returncode == 0, listed.stderr
    assert long_id in listed.stdout and "…" not in listed.stdout
