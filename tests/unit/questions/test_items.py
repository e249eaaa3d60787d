"""Items files: one writer and one reader, every problem one error naming the file and line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.questions.items import read_items, write_items

ITEMS = [
    EvalItem(id="asct/A", patient_id="A", question="When?", answer=AnswerSpec(type="date")),
    EvalItem.ad_hoc("B", "Which drugs?", AnswerSpec(type="list")),
]


def test_written_items_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "items.jsonl"
    write_items(path, ITEMS)
    assert read_items(path) == ITEMS
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [
        "asct/A",
        ITEMS[1].id,
    ]


def test_a_repeated_id_is_refused_with_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    write_items(path, [ITEMS[0], ITEMS[1], ITEMS[0]])
    with pytest.raises(UserError, match=r"items.jsonl, line 3: item id 'asct/A' repeated"):
        read_items(path)


def test_an_invalid_line_names_the_line_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    good = ITEMS[0].model_dump_json()
    path.write_text(f"{good}\n\n{good.replace('asct/A', 'x').replace('date', 'dat')}\n")
    with pytest.raises(UserError, match=r"items.jsonl, line 3: answer.type: Input should be"):
        read_items(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"\n\n", "has no items"),
        (b"\xff\xfe not text", "is not UTF-8 text"),
        (b"{not json\n", "line 1: (line): Invalid JSON"),
    ],
)
def test_an_unreadable_file_is_one_error(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "items.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_items(path)


def test_a_folder_is_neither_read_nor_written(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a folder, not a file"):
        read_items(tmp_path)
    with pytest.raises(UserError, match="is a folder; give a file name"):
        write_items(tmp_path, ITEMS)


def test_ad_hoc_ids_tell_apart_every_way_of_asking_about_one_patient() -> None:
    asks = [
        EvalItem.ad_hoc("A", "When was the transplant?", AnswerSpec(type="date")),
        EvalItem.ad_hoc("A", "When was the transplant?", AnswerSpec(type="text")),
        EvalItem.ad_hoc("A", "When was the transplant?"),  # text by default: same as above
        EvalItem.ad_hoc(
            "A", "When was the transplant?", AnswerSpec(type="date"), as_of=dt.date(2020, 1, 1)
        ),
        EvalItem.ad_hoc("A", "Which drugs?", AnswerSpec(type="list")),
        EvalItem.ad_hoc("B", "Which drugs?", AnswerSpec(type="list")),
    ]
    ids = [item.id for item in asks]
    assert ids[1] == ids[2]  # the same ask twice is the same item (a log holds it once)
    assert len(set(ids)) == len(ids) - 1
    assert all(item.id.startswith(f"ad-hoc/{item.patient_id}/") for item in asks)
