"""`recordagent questions list|validate|sample`, run as a user runs them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from recordagent.evaluation.labels import read_labels
from recordagent.questions.items import EvalItem
from recordagent.sources.synthetic import generate_cohort, load_preset
from tests.helpers import recordagent


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
