"""Benchmark of cohort extraction: one process against the Ray engine on a local cluster.

The ``small`` synthetic cohort (50 patients) is asked ``QUESTIONS`` date questions each by the
agent (200 items), through the real HTTP client, against the answering fake server
(``tests/answering_server.py``) in a process of its own, answering every request after
``DELAY_S`` (0.3 s), as a remote endpoint would. Both engines run at the same total concurrency
(``CONCURRENCY``): one process with ``concurrency=16``, and Ray with 2 workers (a local cluster
of 2 CPUs) at 8 each. Runs alternate between the engines; the figures are medians.

Where the time goes is measured apart:

* ``ray_init_s``: starting the local cluster (once per process; not in the throughput);
* ``driver``: the driver's CPU per item in each engine (``resource.getrusage`` of this process
  over the run): in one process it does all the work, on Ray only the log and the table;
* ``task_overhead_ms``: a Ray task that opens the store read-only and answers nothing, end to end;
* ``transfer``: how a task gets its patients' records, per shard of ``SHARD_PATIENTS`` patients:
  opening the shared store file read-only and copying the patients' rows into their scopes,
  against the driver exporting those rows (Arrow, as it would ship through Ray's object
  store) and the task building an in-memory store of them.

``python tools/bench_extract.py`` prints the JSON; ``tools/bench.py --only extract`` keeps it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # tests.answering_server lives in the repository
    sys.path.insert(0, str(REPO_ROOT))

import pyarrow as pa  # noqa: E402

from recordagent.extraction import extract  # noqa: E402

try:
    from bench_eval import server_process
except ImportError:  # imported as tools.bench_extract
    from tools.bench_eval import server_process
from recordagent.records.db import connect  # noqa: E402
from recordagent.records.load import load_bundle  # noqa: E402
from recordagent.records.patient_database import PATIENT_TABLES  # noqa: E402
from recordagent.settings import ModelSettings, Settings  # noqa: E402
from recordagent.sources.synthetic import generate_cohort, load_preset  # noqa: E402

__all__ = ["bench_extract", "extract_summary"]

Json = dict[str, Any]
DELAY_S = 0.3
CONCURRENCY = 16
WORKERS = 2
TARGET_RATIO = 0.9  # Ray / one process, items per second, at least
SHARD_PATIENTS = 4
QUESTIONS = (
    "When was multiple myeloma diagnosed?",
    "When did the first line of therapy start?",
    "When was the autologous stem cell transplant?",
    "When was the most recent M-protein measured?",
)


def answering_server() -> contextlib.AbstractContextManager[str]:
    """The answering fake server in a child process; yields its URL."""
    return server_process(["-m", "tests.answering_server", "--delay", str(DELAY_S)])


def _settings(url: str) -> Settings:
    model = ModelSettings(
        provider="openai",
        model="gpt-4o-mini",
        base_url=url,
        timeout_s=30.0,
        max_concurrency=CONCURRENCY * 2,
    )
    return Settings(model=model)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one(db: Path, folder: Path, url: str, engine: str) -> Json:
    cpu = _cpu_s()
    started = time.perf_counter()
    result = extract(
        db,
        out=folder,
        questions=list(QUESTIONS),
        answer="date",
        settings=_settings(url),
        concurrency=CONCURRENCY,
        sample=0,
        engine=engine,  # type: ignore[arg-type]
    )
    wall = time.perf_counter() - started
    summary = result.summary
    assert summary is not None and result.table is not None
    failed = summary.statuses.get("failed", 0)
    latencies = result.table["latency_s"].to_list()
    return {
        "wall_s": round(wall, 3),
        "items": summary.new,
        "failed": failed,
        "items_per_s": round(summary.new / wall, 3),
        "driver_cpu_ms_per_item": round((_cpu_s() - cpu) * 1000 / summary.new, 2),
        "item_latency_median_s": round(statistics.median(latencies), 3),
        "model_calls_per_item": round(statistics.fmean(result.table["model_calls"]), 2),
    }


def _task_overhead(db: Path, settings: Settings, n: int = 20) -> Json:
    """End-to-end time of Ray tasks that open the store and answer nothing."""
    import ray

    from recordagent.extraction.ray_engine import _Shard, answer_shard

    remote = ray.remote(num_cpus=1)(answer_shard)
    empty = _Shard(
        items=[],
        references=None,
        runner="agent",
        settings=settings,
        store=str(db),
        mock=True,
        concurrency=1,
        limiter=None,
    )
    ray.get(remote.remote(empty))  # warm: the worker imports recordagent once
    times = []
    for _ in range(n):
        started = time.perf_counter()
        ray.get(remote.remote(empty))
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "tasks": n}


def _transfer(db: Path, n: int = 5) -> Json:
    """Shared store file against a per-shard export, for one shard of patients."""
    with connect(db, read_only=True) as store:
        patients = store.patient_ids()
    shards = [patients[k : k + SHARD_PATIENTS] for k in range(0, len(patients), SHARD_PATIENTS)]
    shared, export, build, sizes = [], [], [], []
    for shard in shards[:n]:
        started = time.perf_counter()
        with connect(db, read_only=True) as store:
            for patient in shard:
                scope = store.scope(patient)
                scope.documents()
                scope.labs()
                scope.events()
                scope.chunks()
        shared.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with connect(db, read_only=True) as store:
            tables = {
                name: store.connection.sql(
                    f"SELECT * FROM {name} WHERE list_contains($ids, patient_id)",
                    params={"ids": shard},
                ).to_arrow_table()
                for name in PATIENT_TABLES
            }
            whole = {
                name: store.connection.sql(f"SELECT * FROM {name}").to_arrow_table()
                for name in ("sources",)
            }
        sink = pa.BufferOutputStream()
        for table in (*tables.values(), *whole.values()):
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        sizes.append(sink.getvalue().size)
        export.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with connect() as memory:
            for name, table in {**tables, **whole}.items():
                memory.connection.execute(f"DELETE FROM {name}")
                memory.connection.register("_incoming", table)
                memory.connection.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _incoming")
                memory.connection.unregister("_incoming")
            for patient in shard:
                scope = memory.scope(patient)
                scope.documents()
                scope.labs()
                scope.events()
                scope.chunks()
        build.append((time.perf_counter() - started) * 1000)
    return {
        "patients_per_shard": SHARD_PATIENTS,
        "shards": len(shared),
        "shared_file_ms": round(statistics.median(shared), 2),
        "export_on_driver_ms": round(statistics.median(export), 2),
        "build_on_worker_ms": round(statistics.median(build), 2),
        "export_mb": round(statistics.median(sizes) / 1e6, 3),
    }


def bench_extract(repeats: int = 3, seed: int = 0) -> Json:
    """Throughput of one process against Ray at equal total concurrency; where time goes."""
    import ray

    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        folder = Path(tmp)
        bundle = folder / "cohort"
        generate_cohort(load_preset("small"), seed, bundle)
        db = folder / "store.duckdb"
        with connect(db) as store:
            load_bundle(store, bundle)
        started = time.perf_counter()
        ray.init(
            num_cpus=WORKERS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        init_s = time.perf_counter() - started
        try:
            runs: dict[str, list[Json]] = {"local": [], "ray": []}
            with answering_server() as url:
                # Warm-up, not measured: worker processes start and import recordagent once
                # per cluster, and the first scopes and tokenizer are built once per process.
                for engine in ("local", "ray"):
                    _one(db, folder / f"warm-{engine}", url, engine)
                for k in range(repeats):
                    order = ("local", "ray") if k % 2 == 0 else ("ray", "local")
                    for engine in order:
                        out = folder / f"{engine}-{k}"
                        runs[engine].append(_one(db, out, url, engine))
                overhead = _task_overhead(db, _settings(url))
            transfer = _transfer(db)
        finally:
            ray.shutdown()
    local = _medians(runs["local"])
    on_ray = _medians(runs["ray"])
    ratio = on_ray["items_per_s"] / local["items_per_s"]
    items = runs["local"][0]["items"]
    return {
        "items": items,
        "delay_s": DELAY_S,
        "concurrency": CONCURRENCY,
        "workers": WORKERS,
        "repeats": repeats,
        "ray_init_s": round(init_s, 2),
        "local": local,
        "ray": on_ray,
        "runs": runs,
        "ray_over_local": {
            "value": round(ratio, 3),
            "target": TARGET_RATIO,
            "met": ratio >= TARGET_RATIO,
        },
        "ray_overhead_ms_per_item": round((on_ray["wall_s"] - local["wall_s"]) * 1000 / items, 2),
        "task_overhead": overhead,
        "transfer": transfer,
        "driver_ceiling_items_per_s": round(1000 / on_ray["driver_cpu_ms_per_item"], 1),
    }


def _medians(runs: list[Json]) -> Json:
    keys = [k for k in runs[0] if isinstance(runs[0][k], int | float)]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def extract_summary(result: Json) -> list[str]:
    """A few lines for humans."""
    local, on_ray, ratio = result["local"], result["ray"], result["ray_over_local"]
    transfer = result["transfer"]
    return [
        f"extraction: {result['items']} agent items, fake server {result['delay_s']} s per "
        f"call, total concurrency {result['concurrency']}",
        f"  one process: {local['items_per_s']:.2f} items/s ({local['wall_s']:.1f} s); "
        f"Ray, {result['workers']} workers: {on_ray['items_per_s']:.2f} items/s "
        f"({on_ray['wall_s']:.1f} s); Ray / one process = {ratio['value']:.2f} "
        f"(target >= {ratio['target']}: {'ok' if ratio['met'] else 'MISSED'})",
        f"  Ray overhead {result['ray_overhead_ms_per_item']:.1f} ms per item; cluster start "
        f"{result['ray_init_s']:.1f} s (not counted); empty task "
        f"{result['task_overhead']['median_ms']:.1f} ms",
        f"  driver CPU per item: one process {local['driver_cpu_ms_per_item']:.1f} ms, Ray "
        f"{on_ray['driver_cpu_ms_per_item']:.2f} ms (a driver ceiling of "
        f"{result['driver_ceiling_items_per_s']:.0f} items/s)",
        f"  records to a task ({transfer['patients_per_shard']} patients): shared store file "
        f"{transfer['shared_file_ms']:.0f} ms; export {transfer['export_on_driver_ms']:.0f} ms "
        f"on the driver + {transfer['build_on_worker_ms']:.0f} ms on the worker "
        f"({transfer['export_mb']:.2f} MB)",
    ]


if __name__ == "__main__":
    print(json.dumps(bench_extract(), indent=2))
