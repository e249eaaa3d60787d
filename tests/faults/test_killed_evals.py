"""An eval killed at any moment (SIGKILL) and resumed ends with the log an uninterrupted run writes.

``recordagent eval`` runs two runners (the agent and single-pass RAG, two items at a time) on
the mock model. A reference run goes uninterrupted. Then a run in a child process is killed
again and again — at seeded random moments across the time the reference run took, and once as
soon as its log holds a few more records — each time resumed with ``--resume``, and finally
resumed to its end. Its logs must hold every item exactly once, no broken line, and the same
item ids, answer statuses and scores as the reference run's. A run whose log cannot be written
(a full disk) ends with one error line and resumes the same way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from recordagent.cli.main import run
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.settings import Settings
from tests.helpers import FIXTURES

SEED = 20261204
RUNNERS = ("agent", "single_pass_rag")

# Runs the command line after saying its imports are done, so that a kill's delay is measured
# from the start of the command's own work, not Python's start. An optional file size limit
# makes every write past it fail (EFBIG), as on a full disk.
_DRIVER = """
import resource, signal, sys
limit = int(sys.argv.pop(1))
from recordagent.cli.main import run
if limit >= 0:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
print("imported", flush=True)
run(sys.argv[1:])
"""

_QUESTIONS = [
    ("asct", "When was the autologous stem cell transplantation?", "date"),
    ("diagnosis", "When was multiple myeloma diagnosed?", "date"),
    ("del17p", "Was del(17p) detected on FISH?", "boolean"),
    ("t414", "Was t(4;14) detected on FISH?", "boolean"),
    ("mprotein", "What was the M-protein at diagnosis?", "number"),
]


@dataclass(frozen=True)
class Study:
    """The files an eval reads, and its arguments up to --out."""

    db: Path
    items: Path
    labels: Path

    def args(self, out: Path) -> list[str]:
        runners = [part for name in RUNNERS for part in ("--runner", name)]
        return [
            "eval", "--items", str(self.items), "--labels", str(self.labels),
            "--db", str(self.db), *runners, "--model", "mock", "--concurrency", "2",
            "--out", str(out),
        ]  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    root = tmp_path_factory.mktemp("killed_evals")
    db = root / "store.duckdb"
    with connect(db) as store:
        load_bundle(store, FIXTURES / "tool_patients", settings=Settings())
    items = [
        EvalItem(
            id=f"{key}/{patient}",
            patient_id=patient,
            question=question,
            answer=AnswerSpec(type=kind),  # type: ignore[arg-type]
            level=1,
        )
        for patient in ("A", "B")
        for key, question, kind in _QUESTIONS
    ]
    items_file = root / "items.jsonl"
    items_file.write_text("".join(i.model_dump_json() + "\n" for i in items), encoding="utf-8")
    # Half the references say the record is silent (what the dry-run model answers), so the
    # scores are a mix of correct and incorrect.
    labels = root / "labels.csv"
    rows = ["item_id,annotator,value"] + [
        f"{item.id},md1," + ("" if k % 2 else "2020-06-15" if item.answer.type == "date" else "1")
        for k, item in enumerate(items)
    ]
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return Study(db, items_file, labels)


class Eval:
    """``recordagent eval`` in a child process."""

    def __init__(self, args: list[str], file_size_limit: int = -1) -> None:
        env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(file_size_limit), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "imported", (line, self.process.communicate()[1])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=30)

    def finish(self) -> tuple[int, str, str]:
        stdout, stderr = self.process.communicate(timeout=120)
        return self.process.returncode, stdout, stderr


def outcome(out: Path) -> dict[str, list[tuple[str, str, str | None]]]:
    """Per runner: (item id, answer status, score) of every record, in id order.

    Every line must be whole JSON and every item appear once.
    """
    result = {}
    for runner in RUNNERS:
        lines = (out / f"{runner}.jsonl").read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines]  # no broken line is left behind
        assert entries[0]["kind"] == "manifest"
        records = entries[1:]
        ids = [r["item"]["id"] for r in records]
        assert len(ids) == len(set(ids)), f"{runner}: an item is logged twice"
        result[runner] = sorted(
            (r["item"]["id"], r["answer"]["status"], (r["score"] or {}).get("state"))
            for r in records
        )
    return result


def records_in(out: Path) -> int:
    return sum(max(0, len(path.read_bytes().split(b"\n")) - 2) for path in out.glob("*.jsonl"))


@pytest.fixture(scope="module")
def reference(study: Study, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, float]:
    """The uninterrupted run's outcome, and how long its work took after the imports."""
    out = tmp_path_factory.mktemp("reference") / "run"
    started = time.perf_counter()
    try:
        run(study.args(out))  # in this process: nothing to kill here, and no second start-up
    except SystemExit as exc:  # the command line's way of returning
        assert exc.code in (0, None), exc.code
    seconds = time.perf_counter() - started
    result = outcome(out)
    assert all(len(rows) == 2 * len(_QUESTIONS) for rows in result.values())
    return result, seconds


def test_an_eval_killed_at_random_moments_resumes_to_the_uninterrupted_result(
    study: Study, reference: tuple[dict, float], tmp_path: Path
) -> None:
    expected, seconds = reference
    out = tmp_path / "run"
    rng = random.Random(SEED)
    # One moment from each half of the reference run's time, in a random order.
    delays = [rng.uniform(k * seconds / 2, (k + 1) * seconds / 2) for k in range(2)]
    rng.shuffle(delays)
    kills = []
    for number, delay in enumerate(delays):
        command = Eval([*study.args(out), *(["--resume"] if number else [])])
        time.sleep(delay)
        kills.append((round(delay, 2), command.process.poll() is None, records_in(out)))
        command.kill()
    # And once as soon as the log holds a few more records: a kill among written records.
    command = Eval([*study.args(out), "--resume"])
    floor = records_in(out) + rng.randint(1, 3)
    deadline = time.monotonic() + 60
    while records_in(out) < floor and command.process.poll() is None:
        assert time.monotonic() < deadline, "the resumed run wrote no records"
        time.sleep(0.01)
    command.kill()
    kills.append(("records", floor, records_in(out)))

    code, stdout, stderr = Eval([*study.args(out), "--resume"]).finish()
    assert code == 0, (kills, stderr)
    assert "Traceback" not in stdout + stderr
    assert outcome(out) == expected, kills


def test_an_eval_whose_log_cannot_be_written_stops_with_one_line_and_resumes(
    study: Study, reference: tuple[dict, float], tmp_path: Path
) -> None:
    expected, _ = reference
    out = tmp_path / "run"
    # Room for the manifests and a few records: the disk is "full" in the middle of the run.
    code, stdout, stderr = Eval(study.args(out), file_size_limit=40_000).finish()
    assert code != 0 and "Traceback" not in stdout + stderr, stderr
    errors = " ".join(stderr.split())
    assert errors.startswith("error: cannot write the run log"), stderr
    assert "--resume continues from them" in errors
    code, _, stderr = Eval([*study.args(out), "--resume"]).finish()
    assert code == 0, stderr
    assert outcome(out) == expected
