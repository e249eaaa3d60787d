"""The Ray engine on a local cluster started here: the same tables and logs as one process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.evaluation.log import RunLog
from recordagent.evaluation.silver_labels import write_silver
from recordagent.evaluation.study import evaluate
from recordagent.evaluation.suite import Suite
from recordagent.extraction import extract
from recordagent.extraction import ray_engine as ray_engine_module
from recordagent.extraction.ray_engine import RayEngine, ray_engine, shard_by_patient
from recordagent.llm import build_model
from recordagent.questions.items import EvalItem
from recordagent.questions.silver import silver_instances
from recordagent.questions.silver_templates import load_silver_templates
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.runners import build_runner
from tests.answering_server import answering_responder
from tests.extraction_support import GENERAL, cohort_store, server_settings
from tests.fake_openai import FakeOpenAI
from tests.helpers import FIXTURES

pytestmark = pytest.mark.xdist_group("ray")

ray = pytest.importorskip("ray", reason="the Ray engine needs ray (pip install 'recordagent[ray]')")

COMPARED = [
    "item_id",
    "patient_id",
    "template_id",
    "question",
    "slots",
    "status",
    "value",
    "value_text",
    "text",
    "citations",
    "cited",
    "prompt_tokens",
    "completion_tokens",
    "model_calls",
    "model",
    "mock",
]


@pytest.fixture
def cluster(ray_cluster: Any) -> None:
    """The session's local Ray cluster."""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cohort_store(tmp_path_factory.mktemp("ray_extract"))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=answering_responder()) as fake:
        yield fake


def test_an_extraction_on_ray_gives_the_table_of_one_process(cluster, db, server, tmp_path):
    settings = server_settings(server.url)
    # Three patients' items (14 each) in shards of one patient: the engine's every path, quickly.
    ask = {
        "templates": GENERAL,
        "patients": ["MM-001", "MM-003", "MM-005"],
        "settings": settings,
        "sample": 0,
        "concurrency": 4,
    }
    local = extract(db, out=tmp_path / "local", **ask)
    on_ray = extract(db, out=tmp_path / "ray", engine="ray", **ask)
    assert local.table is not None and on_ray.table is not None
    assert on_ray.table.select(COMPARED).equals(local.table.select(COMPARED))
    assert on_ray.table["run_id"].n_unique() == 1
    assert on_ray.table["run_id"][0] != local.table["run_id"][0]
    statuses = set(on_ray.table["status"])
    assert "answered" in statuses and "failed" not in statuses
    assert on_ray.table.filter(pl.col("status") == "answered")["value"].n_unique() > 3
    written = pl.read_parquet(tmp_path / "ray" / "results.parquet")
    assert written.equals(on_ray.table)


def test_a_rerun_on_ray_asks_nothing_again(cluster, db, server, tmp_path):
    settings = server_settings(server.url)
    ask = {"questions": ["When was the diagnosis?"], "answer": "date", "sample": 0}
    first = extract(db, out=tmp_path / "out", engine="ray", settings=settings, **ask)
    calls = len(server.requests)
    again = extract(db, out=tmp_path / "out", engine="ray", settings=settings, **ask)
    assert len(server.requests) == calls
    assert again.summary is not None and first.summary is not None
    assert (again.summary.new, again.summary.already) == (0, 5)


def test_an_evaluation_on_ray_logs_what_one_process_logs(cluster, db, server, tmp_path):
    with connect(db, read_only=True) as store:
        run = silver_instances(load_silver_templates(GENERAL), store)
    chosen = [i for i in run.instances if i.item.patient_id in ("MM-002", "MM-004")]
    items, labels = write_silver(chosen, tmp_path / "silver")
    settings = server_settings(server.url)
    logs = {}
    for engine in ("local", "ray"):
        suite = Suite(
            name=engine,
            store=db,
            items=items,
            labels=labels,
            runners=["single_pass_rag", "agent"],
            model="settings",
            concurrency=4,
            output=tmp_path / engine,
        )
        factory = (lambda store, s: ray_engine(store, s)) if engine == "ray" else None
        logs[engine] = evaluate(suite, settings, engine=factory)
    for local, on_ray in zip(logs["local"], logs["ray"], strict=True):
        assert local.manifest.runner == on_ray.manifest.runner
        assert answers(local) == answers(on_ray)
        assert {r.score.correct for r in on_ray.records if r.score} != set()


def answers(log: RunLog) -> dict[str, tuple[object, ...]]:
    return {
        r.item.id: (
            r.answer.status,
            r.answer.value,
            tuple(c.id for c in r.answer.citations),
            r.score.correct if r.score else None,
            r.answer.usage.prompt_tokens,
        )
        for r in log.records
    }


def test_the_ray_engine_needs_a_store_file(cluster, server):
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        with pytest.raises(UserError, match="give a store file"):
            ray_engine(store, server_settings(server.url))


def test_shards_keep_each_patient_whole_and_the_items_in_order():
    items = [
        EvalItem.ad_hoc(patient, f"question {n}")
        for patient, count in (("A", 3), ("B", 1), ("C", 5), ("D", 2))
        for n in range(count)
    ]
    shards = shard_by_patient(items, 4)
    assert [[i.patient_id for i in shard] for shard in shards] == [
        ["A", "A", "A", "B"],
        ["C"] * 5,
        ["D", "D"],
    ]
    assert [i for shard in shards for i in shard] == items


def test_a_user_error_inside_a_task_stops_the_run_with_its_message(cluster, db, server, tmp_path):
    settings = server_settings(server.url)
    runner = build_runner("single_pass_rag", settings)
    items = [EvalItem.ad_hoc("MM-001", "When was the diagnosis?")]
    # The workers look for the store where the driver says it is: here, nowhere.
    engine = RayEngine(tmp_path / "not-there.duckdb", settings, address=None)
    calls = len(server.requests)
    with connect(db, read_only=True) as store, pytest.raises(UserError, match="not-there"):
        asyncio.run(engine(items, runner, build_model(settings.model), store))
    assert len(server.requests) == calls


def test_a_rate_limited_extraction_on_ray_is_paced_and_ends_its_actor(
    cluster, db, server, tmp_path
):
    settings = server_settings(server.url, requests_per_minute=120)
    before = len(server.arrivals)
    result = extract(
        db,
        out=tmp_path / "out",
        questions=["When was the diagnosis?"],
        runner="single_pass_rag",
        settings=settings,
        sample=0,
        engine="ray",
    )
    assert result.summary is not None and result.summary.new == 5
    arrivals = server.arrivals[before:]
    assert len(arrivals) == 5  # one call per item
    # 120 a minute, a burst of 1 s (2 requests): the other 3 follow 0.5 s apart.
    assert arrivals[-1] - arrivals[0] >= 1.4
    named = ray.util.list_named_actors(all_namespaces=True)
    assert not [actor for actor in named if "recordagent-rate" in str(actor)]


def lost(shard: object) -> list[str]:
    """A task that never answers: what a node that went away leaves behind, to the driver."""
    raise RuntimeError("the node went away")


def test_a_lost_task_fails_its_items_and_a_rerun_asks_them_again(
    cluster, db, server, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    ask = {"questions": ["When was the diagnosis?"], "answer": "date", "sample": 0}
    settings = server_settings(server.url)
    monkeypatch.setattr(ray_engine_module, "answer_shard", lost)
    broken = extract(db, out=out, engine="ray", settings=settings, **ask)
    assert broken.summary is not None and broken.table is not None
    assert broken.summary.failed_by_error == 5
    assert set(broken.table["status"]) == {"failed"}
    assert all("RayTaskError" in kind for kind in broken.table["error"])
    monkeypatch.undo()
    again = extract(db, out=out, engine="ray", settings=settings, **ask)
    assert again.summary is not None and again.table is not None
    assert again.summary.failed_by_error == 0 and again.summary.new == 5
    assert "failed" not in set(again.table["status"])
