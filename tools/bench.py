"""Benchmarks of the record store: loading against a raw DuckDB scan, chunking against tiktoken.

Generates a synthetic bundle at the reference study's scale (see ``bench_bundle.py``) once, then
measures, each ``--repeats`` times (median and every run reported):

a. raw DuckDB scan: ``CREATE TABLE ... AS SELECT * FROM read_parquet(file)`` for the four tables
   in a fresh in-memory connection, the least it costs to get the files into DuckDB;
b. the recordagent load into a fresh in-memory store, per phase (read, validate, chunk, write);
   *tables* time is the total minus the chunk phase, compared with the raw scan;
c. chunking throughput against tiktoken's own encoding throughput on the same texts;
d. peak resident memory of a child process that does the load of (b);
e. the synthetic myeloma cohort (``recordagent synth --preset reference``): generation time,
   documents, lab values, tokens and record-length deciles, and the time to load it.

``--only tools``, ``--only llm`` and ``--only runners`` run the record tools' benchmark
(``bench_tools.py``), the model client's (``bench_llm.py``) and the runners' on the dry-run
mock model (``bench_runners.py``: agent overhead per step, context tokens per runner); each is
also part of ``--only all``. ``--only eval`` runs the evaluation-run throughput benchmark against
the fake OpenAI server (``bench_eval.py``: concurrency 16 against sequential); it is not part
of ``--only all``. ``--only notebook`` measures ``recordagent.answer_many`` against calling
the runner directly (``bench_notebook.py``: overhead per question on the dry-run mock); not
part of ``--only all``. ``--only extract`` measures cohort extraction in one process against the
Ray engine on a 2-worker local cluster (``bench_extract.py``: items per second at equal total
concurrency against the answering fake server at 0.3 s per call, and where the time goes); not
part of ``--only all``. ``--only mcp`` measures the latency of each tool call through the MCP
server (stdio and streamable HTTP, ``bench_mcp.py``) against a direct call; not part of
``--only all``. ``--only mimic`` runs the MIMIC-IV scale benchmark (``bench_mimic.py``:
``--rows`` generated labevents rows, 20 M by default, loaded by the MIMIC-IV loader against a
raw DuckDB scan of the same file, peak memory, extrapolated full load); it takes minutes and
is not part of ``--only all`` either.

(a)-(d) use the ACI-bench-based bundle of ``bench_bundle.py`` (real clinical prose at the
reference scale); (e) is the project's own cohort. ``--only synthetic`` or ``--only load``
runs one part.

Usage::

    python tools/bench.py [--scale 1.0] [--repeats 3] [--out bench-out/bench.json]
                          [--bundle DIR] [--seed 0] [--calls 1000] [--pairs 120]
                          [--only all|load|synthetic|tools|llm|runners|eval|notebook|extract|
                                  mcp|mimic]
                          [--rows 20000000] [--mimic-cache bench-out/mimic]

Figures go to the JSON file (folder created) and a short summary to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from recordagent.records.chunking import Chunker
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.tokens import Tokenizer
from recordagent.settings import ChunkingSettings, Settings

try:
    from bench_bundle import scaled_counts, write_bench_bundle
    from bench_eval import bench_eval, eval_summary
    from bench_extract import bench_extract, extract_summary
    from bench_llm import bench_llm, llm_summary
    from bench_mcp import bench_mcp, mcp_summary
    from bench_mimic import DEFAULT_CACHE as MIMIC_CACHE
    from bench_mimic import DEFAULT_ROWS as MIMIC_ROWS
    from bench_mimic import bench_mimic, mimic_summary
    from bench_notebook import bench_notebook, notebook_summary
    from bench_runners import bench_runners, runners_summary
    from bench_tools import bench_tools, tools_summary
except ImportError:  # imported as tools.bench rather than run as a script
    from tools.bench_bundle import scaled_counts, write_bench_bundle
    from tools.bench_eval import bench_eval, eval_summary
    from tools.bench_extract import bench_extract, extract_summary
    from tools.bench_llm import bench_llm, llm_summary
    from tools.bench_mcp import bench_mcp, mcp_summary
    from tools.bench_mimic import DEFAULT_CACHE as MIMIC_CACHE
    from tools.bench_mimic import DEFAULT_ROWS as MIMIC_ROWS
    from tools.bench_mimic import bench_mimic, mimic_summary
    from tools.bench_notebook import bench_notebook, notebook_summary
    from tools.bench_runners import bench_runners, runners_summary
    from tools.bench_tools import bench_tools, tools_summary

REPO_ROOT = Path(__file__).resolve().parents[1]
TABLES = ("patients", "documents", "labs", "events")
TARGETS = {
    "tables_over_raw_scan": 2.0,  # at most
    "chunking_over_tiktoken": 0.75,  # at least
    "peak_load_rss_gb": 4.0,  # below
}

Json = dict[str, Any]


# -- helpers ------------------------------------------------------------------------------------


def summarise(runs: Sequence[float]) -> Json:
    """Median and every run of a timing, rounded.

    Args:
        runs: Measured values, one per repeat.

    Returns:
        ``{"median": ..., "runs": [...]}``.
    """
    return {"median": round(statistics.median(runs), 4), "runs": [round(r, 4) for r in runs]}


def repeat(measure: Callable[[], Json], repeats: int) -> list[Json]:
    """Run ``measure`` ``repeats`` times, collecting garbage before each run.

    Args:
        measure: A function returning one run's figures.
        repeats: How many runs.

    Returns:
        The figures of every run.
    """
    runs = []
    for _ in range(repeats):
        gc.collect()
        runs.append(measure())
    return runs


def bundle_files(bundle: Path) -> dict[str, Path]:
    """The Parquet file of each bundle table.

    Raises:
        FileNotFoundError: A table file is missing.
    """
    files = {name: bundle / f"{name}.parquet" for name in TABLES}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"bundle is missing {', '.join(missing)}")
    return files


# -- facts --------------------------------------------------------------------------------------


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def machine_facts() -> Json:
    """CPU, memory, Python and library versions, git revision and date of the run."""
    status = _git("status", "--porcelain")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gb": round(memory / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _package(name)
            for name in ("recordagent", "duckdb", "polars", "pyarrow", "tiktoken", "numpy")
        },
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def bundle_facts(bundle: Path, generated_seconds: float | None) -> Json:
    """Row counts, file sizes and document text volume of the bundle."""
    files = bundle_files(bundle)
    counts = {n: pl.scan_parquet(f).select(pl.len()).collect().item() for n, f in files.items()}
    text = pl.scan_parquet(files["documents"]).select(
        pl.col("text").str.len_bytes().sum().alias("bytes"),
        pl.col("text").str.len_chars().median().alias("median_chars"),
        pl.col("text").str.len_chars().quantile(0.99).alias("p99_chars"),
        pl.col("text").str.len_chars().max().alias("max_chars"),
    )
    stats = text.collect().row(0, named=True)
    per_patient = (
        pl.scan_parquet(files["documents"]).group_by("patient_id").len().select("len").collect()
    )["len"]
    return {
        "path": str(bundle),
        "generated_seconds": None if generated_seconds is None else round(generated_seconds, 2),
        "counts": counts,
        "file_mb": {n: round(f.stat().st_size / 1e6, 2) for n, f in files.items()},
        "total_mb": round(sum(f.stat().st_size for f in files.values()) / 1e6, 2),
        "document_text_mb": round(stats["bytes"] / 1e6, 2),
        "document_median_chars": stats["median_chars"],
        "document_p99_chars": stats["p99_chars"],
        "document_max_chars": stats["max_chars"],
        "documents_per_patient": {
            "median": per_patient.median(),
            "p90": per_patient.quantile(0.9),
            "max": per_patient.max(),
        },
    }


# -- a. raw scan --------------------------------------------------------------------------------


def raw_scan_once(files: dict[str, Path]) -> Json:
    """One raw scan: each file into a table of a fresh in-memory DuckDB connection."""
    con = duckdb.connect(":memory:")
    try:
        per_table: dict[str, float] = {}
        start = time.perf_counter()
        for name, file in files.items():
            clock = time.perf_counter()
            literal = str(file).replace("'", "''")
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{literal}')")
            per_table[name] = time.perf_counter() - clock
        total = time.perf_counter() - start
    finally:
        con.close()
    return {"total": total, "tables": per_table}


def bench_raw_scan(files: dict[str, Path], repeats: int) -> Json:
    """Raw DuckDB scan of the four files, ``repeats`` times."""
    runs = repeat(lambda: raw_scan_once(files), repeats)
    return {
        "seconds": summarise([r["total"] for r in runs]),
        "per_table_median": {
            n: round(statistics.median(r["tables"][n] for r in runs), 4) for n in files
        },
    }


# -- b. recordagent load ------------------------------------------------------------------------


def load_settings_as_cli() -> Settings:
    """The settings ``recordagent load`` uses: defaults, chunking on every core."""
    return Settings(chunking={"workers": os.cpu_count() or 1})


def load_once(bundle: Path) -> Json:
    """One load into a fresh in-memory store: wall time, per-phase time and the report."""
    store = connect()
    try:
        clock = time.perf_counter()
        report = load_bundle(store, bundle, settings=load_settings_as_cli())
        wall = time.perf_counter() - clock
    finally:
        store.close()
    phases = dict(report.seconds)
    return {
        "total": wall,
        "phases": phases,
        # Chunking and the search index are text work, measured against tiktoken separately.
        "tables": wall - phases.get("chunk", 0.0) - phases.get("index", 0.0),
        "counts": report.counts,
        "document_tokens": report.document_tokens,
        "tokenizer": report.tokenizer,
    }


def bench_load(bundle: Path, repeats: int) -> Json:
    """The recordagent load, ``repeats`` times."""
    runs = repeat(lambda: load_once(bundle), repeats)
    phases = runs[0]["phases"].keys()
    return {
        "seconds": summarise([r["total"] for r in runs]),
        "tables_seconds": summarise([r["tables"] for r in runs]),
        "phases": {p: summarise([r["phases"][p] for r in runs]) for p in phases},
        "counts": runs[-1]["counts"],
        "document_tokens": runs[-1]["document_tokens"],
        "tokenizer": runs[-1]["tokenizer"],
    }


# -- c. chunking vs tiktoken --------------------------------------------------------------------


def _throughput(seconds: Sequence[float], n_bytes: int, n_tokens: int) -> Json:
    median = statistics.median(seconds)
    return {
        "seconds": summarise(seconds),
        "mb_per_s": round(n_bytes / 1e6 / median, 2),
        "tokens_per_s": round(n_tokens / median),
        "tokens": n_tokens,
    }


def _timed(work: Callable[[], int]) -> tuple[float, int]:
    """Seconds ``work`` took and the token count it returned."""
    gc.collect()
    clock = time.perf_counter()
    tokens = work()
    return time.perf_counter() - clock, tokens


def bench_chunking(documents: Path, repeats: int) -> Json:
    """Chunking against tiktoken's batch and serial encoding, on the bundle's document texts."""
    texts: list[str] = pl.read_parquet(documents, columns=["text"])["text"].to_list()
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    encoding = Tokenizer().encoding
    chunker = Chunker(ChunkingSettings())
    _ = chunker.tokenizer.byte_lengths  # built once, outside the timing

    def tiktoken_batch() -> int:
        return sum(map(len, encoding.encode_ordinary_batch(texts, num_threads=2)))

    def tiktoken_serial() -> int:
        return sum(len(encoding.encode_ordinary(t)) for t in texts)

    def ours() -> int:
        return sum(r.total_tokens for r in chunker.chunk_many(texts, workers=2))

    results: Json = {"documents": len(texts), "text_mb": round(n_bytes / 1e6, 2)}
    for name, work in (
        ("tiktoken_batch", tiktoken_batch),
        ("tiktoken_serial", tiktoken_serial),
        ("recordagent_chunk_many", ours),
    ):
        runs = [_timed(work) for _ in range(repeats)]
        results[name] = _throughput([s for s, _ in runs], n_bytes, runs[0][1])
    baseline = max(("tiktoken_batch", "tiktoken_serial"), key=lambda n: results[n]["mb_per_s"])
    results["best_baseline"] = baseline
    results["ours_over_best_baseline"] = round(
        results["recordagent_chunk_many"]["mb_per_s"] / results[baseline]["mb_per_s"], 3
    )
    results["tokens_agree"] = (
        results["recordagent_chunk_many"]["tokens"] == results["tiktoken_batch"]["tokens"]
    )
    return results


# -- d. peak memory -----------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """Peak resident memory of this process image.

    Reads ``VmHWM`` from ``/proc/self/status``, which starts afresh at ``exec``. ``ru_maxrss``
    would not do: Linux carries it across ``exec``, so a child forked from a large benchmark
    process reports the parent's size. Falls back to ``ru_maxrss`` where there is no ``/proc``.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_load(bundle: Path) -> Json:
    """In a child process: load the bundle as in (b) and report peak resident memory.

    The load's chunking runs in worker processes of its own, so besides this process's peak a
    sampler thread records the peak of the summed RSS of this process and its descendants
    (every 20 ms; a sampled figure, so a very short spike could be missed).
    """
    import threading

    import psutil

    before = peak_rss_bytes()
    me = psutil.Process()
    tree_peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal tree_peak
        while not stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            tree_peak = max(tree_peak, total)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        figures = load_once(bundle)
    finally:
        stop.set()
        sampler.join()
    return {
        "peak_rss_bytes": peak_rss_bytes(),
        "tree_peak_rss_bytes": tree_peak,
        "rss_before_load_bytes": before,
        "seconds": figures["total"],
        "phases": figures["phases"],
    }


def memory_once(bundle: Path) -> Json:
    """Run one load in a fresh child process and read its peak RSS."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child-load", str(bundle)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child load failed ({done.returncode}):\n{done.stderr[-4000:]}")
    figures: Json = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def bench_memory(bundle: Path, repeats: int) -> Json:
    """Peak RSS of a child process loading the bundle, ``repeats`` times."""
    runs = repeat(lambda: memory_once(bundle), repeats)
    return {
        "peak_rss_gb": summarise([r["peak_rss_bytes"] / 1e9 for r in runs]),
        "tree_peak_rss_gb": summarise([r["tree_peak_rss_bytes"] / 1e9 for r in runs]),
        "peak_rss_before_load_gb": summarise([r["rss_before_load_bytes"] / 1e9 for r in runs]),
        "child_load_seconds": summarise([r["seconds"] for r in runs]),
    }


# -- orchestration ------------------------------------------------------------------------------


@contextlib.contextmanager
def prepared_bundle(
    given: Path | None, scale: float, seed: int
) -> Iterator[tuple[Path, float | None]]:
    """The bundle folder to measure, and how long generating it took (None if reused).

    A given folder that already holds the tables is reused; otherwise the bundle is written
    there, or into a temporary folder removed afterwards.
    """
    if given is not None and all((given / f"{t}.parquet").is_file() for t in TABLES):
        yield given, None
        return
    with contextlib.ExitStack() as stack:
        folder = given or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        clock = time.perf_counter()
        write_bench_bundle(folder, **scaled_counts(scale), seed=seed)
        yield folder, time.perf_counter() - clock


def bench_synthetic(repeats: int, seed: int) -> Json:
    """Generate the reference cohort ``repeats`` times; load the last one once."""
    from recordagent.sources.synthetic import generate_cohort, load_preset

    preset = load_preset("reference")
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as folder:
        for k in range(repeats):
            out = Path(folder) / f"run{k}"
            clock = time.perf_counter()
            report = generate_cohort(preset, seed, out)
            seconds.append(time.perf_counter() - clock)
        with connect() as store:
            clock = time.perf_counter()
            loaded = load_bundle(store, out, settings=load_settings_as_cli())
            load_seconds = time.perf_counter() - clock
            per_patient = store.connection.execute(
                "SELECT p.patient_id, count(DISTINCT d.document_id), "
                "coalesce(sum(c.token_count), 0) FROM patients p "
                "LEFT JOIN documents d USING (patient_id) "
                "LEFT JOIN chunks c ON c.document_id = d.document_id GROUP BY 1"
            ).fetchall()
            text_mb = store.connection.execute(
                "SELECT sum(strlen(text)) / 1e6 FROM documents"
            ).fetchall()[0][0]
    documents = [int(r[1]) for r in per_patient]
    tokens = [int(r[2]) for r in per_patient]

    def deciles(values: list[int]) -> list[int]:
        ordered = sorted(values)
        return [ordered[min(len(ordered) - 1, int(q / 10 * len(ordered)))] for q in range(1, 10)]

    return {
        "preset": preset.model_dump(),
        "generate_seconds": summarise(seconds),
        "counts": report.counts,
        "targets_met_within_5pct": {
            name: abs(report.counts[name] / getattr(preset, name) - 1) <= 0.05
            for name in ("documents", "labs")
        },
        "document_text_mb": round(float(text_mb), 2),
        "document_tokens": loaded.document_tokens,
        "tokenizer": loaded.tokenizer,
        "load_seconds": round(load_seconds, 3),
        "documents_per_patient_deciles": deciles(documents),
        "documents_per_patient_max": max(documents),
        "tokens_per_patient_deciles": deciles(tokens),
        "tokens_per_patient_max": max(tokens),
        "generate_target_seconds": 120,
    }


def figures(raw: Json, load: Json, chunking: Json, memory: Json) -> Json:
    """The headline ratios, each with its target and whether it is met."""
    raw_s = raw["seconds"]["median"]
    tables_ratio = load["tables_seconds"]["median"] / raw_s
    # Judged on the whole process tree (loader plus chunking workers) where that is larger.
    peak = max(memory["peak_rss_gb"]["median"], memory["tree_peak_rss_gb"]["median"])
    return {
        "tables_over_raw_scan": {
            "value": round(tables_ratio, 3),
            "target_at_most": TARGETS["tables_over_raw_scan"],
            "met": tables_ratio <= TARGETS["tables_over_raw_scan"],
        },
        "total_load_over_raw_scan": {"value": round(load["seconds"]["median"] / raw_s, 3)},
        "chunking_over_tiktoken": {
            "value": chunking["ours_over_best_baseline"],
            "baseline": chunking["best_baseline"],
            "target_at_least": TARGETS["chunking_over_tiktoken"],
            "met": chunking["ours_over_best_baseline"] >= TARGETS["chunking_over_tiktoken"],
        },
        "peak_load_rss_gb": {
            "value": peak,
            "target_below": TARGETS["peak_load_rss_gb"],
            "met": peak < TARGETS["peak_load_rss_gb"],
        },
    }


def run(
    scale: float,
    repeats: int,
    bundle: Path | None,
    seed: int,
    only: str = "all",
    calls: int = 1000,
    pairs: int = 120,
    rows: int = MIMIC_ROWS,
    mimic_cache: Path = MIMIC_CACHE,
) -> Json:
    """Generate (or reuse) the bundle and take every measurement."""
    if only == "mimic":
        return {
            "config": {"rows": rows, "repeats": repeats, "seed": seed, "only": only},
            "machine": machine_facts(),
            "mimic": bench_mimic(rows, repeats, seed, mimic_cache),
        }
    if only == "eval":
        return {"config": {"only": only}, "machine": machine_facts(), "eval": bench_eval()}
    if only == "extract":
        return {
            "config": {"repeats": repeats, "seed": seed, "only": only},
            "machine": machine_facts(),
            "extract": bench_extract(repeats, seed),
        }
    if only == "mcp":
        return {"config": {"only": only}, "machine": machine_facts(), "mcp": bench_mcp()}
    if only == "notebook":
        return {
            "config": {"repeats": repeats, "seed": seed, "only": only},
            "machine": machine_facts(),
            "notebook": bench_notebook(repeats, seed),
        }
    if only == "runners":
        return {
            "config": {"seed": seed, "only": only, "pairs": pairs},
            "machine": machine_facts(),
            "runners": bench_runners(pairs, seed),
        }
    if only == "llm":
        return {"config": {"only": only}, "machine": machine_facts(), "llm": bench_llm()}
    if only == "tools":
        return {
            "config": {"seed": seed, "only": only, "calls": calls},
            "machine": machine_facts(),
            "tools": bench_tools(calls, seed),
        }
    if only == "synthetic":
        return {
            "config": {"repeats": repeats, "seed": seed, "only": only},
            "machine": machine_facts(),
            "synthetic": bench_synthetic(repeats, seed),
        }
    with prepared_bundle(bundle, scale, seed) as (folder, generated):
        files = bundle_files(folder)
        result: Json = {
            "config": {"scale": scale, "repeats": repeats, "seed": seed, "pairs": pairs},
            "machine": machine_facts(),
            "bundle": bundle_facts(folder, generated),
        }
        result["raw_scan"] = bench_raw_scan(files, repeats)
        result["load"] = bench_load(folder, repeats)
        result["chunking"] = bench_chunking(files["documents"], repeats)
        result["memory"] = bench_memory(folder, repeats)
        result["figures"] = figures(
            result["raw_scan"], result["load"], result["chunking"], result["memory"]
        )
    if only == "all":
        result["synthetic"] = bench_synthetic(repeats, seed)
        result["tools"] = bench_tools(calls, seed)
        result["llm"] = bench_llm()
        result["runners"] = bench_runners(pairs, seed)
    return result


def synthetic_summary(syn: Json) -> list[str]:
    """Lines for the synthetic cohort."""
    return [
        f"synthetic reference cohort: generated in {syn['generate_seconds']['median']:.1f} s "
        f"(target <= {syn['generate_target_seconds']} s); {syn['counts']}",
        f"  {syn['document_text_mb']} MB text, {syn['document_tokens']:,} tokens, "
        f"loaded in {syn['load_seconds']:.1f} s",
        f"  documents per patient, deciles: {syn['documents_per_patient_deciles']} "
        f"(max {syn['documents_per_patient_max']})",
        f"  tokens per patient, deciles: {syn['tokens_per_patient_deciles']} "
        f"(max {syn['tokens_per_patient_max']})",
    ]


def summary(result: Json) -> str:
    """A few lines for humans."""
    if "bundle" not in result:
        if "mimic" in result:
            return "\n".join(mimic_summary(result["mimic"]))
        if "eval" in result:
            return "\n".join(eval_summary(result["eval"]))
        if "notebook" in result:
            return "\n".join(notebook_summary(result["notebook"]))
        if "mcp" in result:
            return "\n".join(mcp_summary(result["mcp"]))
        if "extract" in result:
            return "\n".join(extract_summary(result["extract"]))
        if "runners" in result:
            return "\n".join(runners_summary(result["runners"]))
        if "llm" in result:
            return "\n".join(llm_summary(result["llm"]))
        if "tools" in result:
            return "\n".join(tools_summary(result["tools"]))
        return "\n".join(synthetic_summary(result["synthetic"]))
    extra = synthetic_summary(result["synthetic"]) if "synthetic" in result else []
    extra += tools_summary(result["tools"]) if "tools" in result else []
    extra += llm_summary(result["llm"]) if "llm" in result else []
    extra += runners_summary(result["runners"]) if "runners" in result else []
    b, raw, load = result["bundle"], result["raw_scan"], result["load"]
    ch, fig = result["chunking"], result["figures"]
    phases = ", ".join(f"{p} {v['median']:.2f}" for p, v in load["phases"].items())
    ok = {True: "ok", False: "MISSED"}
    return "\n".join(
        [
            f"bundle: {b['counts']} | {b['total_mb']} MB on disk, "
            f"{b['document_text_mb']} MB text, median doc {b['document_median_chars']:.0f} chars",
            f"raw DuckDB scan: {raw['seconds']['median']:.2f} s",
            f"recordagent load: {load['seconds']['median']:.2f} s ({phases}); "
            f"tables {load['tables_seconds']['median']:.2f} s",
            f"  tables / raw scan = {fig['tables_over_raw_scan']['value']:.2f} "
            f"(target <= 2.0: {ok[fig['tables_over_raw_scan']['met']]}); "
            f"total / raw scan = {fig['total_load_over_raw_scan']['value']:.2f}",
            f"chunking: ours {ch['recordagent_chunk_many']['mb_per_s']} MB/s, "
            f"tiktoken batch {ch['tiktoken_batch']['mb_per_s']} MB/s, "
            f"serial {ch['tiktoken_serial']['mb_per_s']} MB/s",
            f"  ours / best baseline = {fig['chunking_over_tiktoken']['value']:.2f} "
            f"(target >= 0.75: {ok[fig['chunking_over_tiktoken']['met']]})",
            f"peak RSS while loading (loader + chunking workers): "
            f"{fig['peak_load_rss_gb']['value']:.2f} GB "
            f"(target < 4: {ok[fig['peak_load_rss_gb']['met']]})",
            *extra,
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full scale")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement")
    parser.add_argument("--out", type=Path, default=Path("bench-out/bench.json"))
    parser.add_argument("--bundle", type=Path, help="bundle folder to reuse or to write into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only",
        choices=(
            "all",
            "load",
            "synthetic",
            "tools",
            "llm",
            "runners",
            "eval",
            "notebook",
            "extract",
            "mcp",
            "mimic",
        ),
        default="all",
        help="run one part",
    )
    parser.add_argument("--calls", type=int, default=1000, help="tool calls per tool")
    parser.add_argument(
        "--pairs", type=int, default=120, help="(patient, question) pairs per runner measurement"
    )
    parser.add_argument(
        "--rows", type=int, default=MIMIC_ROWS, help="--only mimic: generated labevents rows"
    )
    parser.add_argument(
        "--mimic-cache",
        type=Path,
        default=MIMIC_CACHE,
        help="--only mimic: folder caching the generated MIMIC-IV data (by rows and seed)",
    )
    parser.add_argument("--child-load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.scale <= 0 or args.pairs < 2 or args.rows < 1000:
        parser.error(
            "--repeats must be at least 1, --scale positive, --pairs at least 2 and --rows at "
            "least 1000"
        )
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks (or, with ``--child-load``, one load for the memory measurement)."""
    args = parse_args(argv)
    if args.child_load is not None:
        print(json.dumps(child_load(args.child_load)))
        return
    result = run(
        args.scale,
        args.repeats,
        args.bundle,
        args.seed,
        args.only,
        args.calls,
        args.pairs,
        args.rows,
        args.mimic_cache,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
