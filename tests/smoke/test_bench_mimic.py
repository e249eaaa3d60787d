"""The MIMIC-IV scale benchmark runs end to end on a tiny generated MIMIC-IV (plumbing only).

Timings are reported by the benchmark, never asserted here.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, SHARED_DATA

DEMO = SHARED_DATA / "mimic-iv-demo"
ROWS = 20_000

pytestmark = [
    pytest.mark.mimic,
    pytest.mark.skipif(
        not (DEMO / "hosp" / "labevents.csv.gz").is_file(),
        reason=f"the MIMIC-IV demo is absent ({DEMO}); the benchmark draws its data from it",
    ),
]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    folder = tmp_path_factory.mktemp("bench-mimic")
    out = folder / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "bench.py"),
            "--only",
            "mimic",
            "--rows",
            str(ROWS),
            "--repeats",
            "2",
            "--mimic-cache",
            str(folder / "cache"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text()), done.stdout, folder / "cache"


def test_figures_have_the_fields_and_sane_values(bench_run):
    result, _, _ = bench_run
    assert result["config"] == {"rows": ROWS, "repeats": 2, "seed": 0, "only": "mimic"}
    assert "cpu_count" in result["machine"]
    mimic = result["mimic"]
    data = mimic["data"]
    assert data["rows"] == ROWS and data["patients"] == 50
    assert data["admissions"] > 0 and data["labevents_mb"] > 0
    for part in ("raw_scan", "raw_scan_loader_columns", "raw_ingest", "loader"):
        figures = mimic[part]
        assert len(figures["seconds"]["runs"]) == 2
        assert figures["seconds"]["median"] > 0
        assert figures["rows_per_s"] > 0
        assert figures["cpu_seconds"]["median"] > 0
        assert 0 < figures["peak_rss_gb"]["median"] < 24
        assert len(figures["load_average_before_runs"]) == 2
    assert len(mimic["raw_scan"]["columns"]) == 16  # the whole file
    assert 10 <= len(mimic["raw_scan_loader_columns"]["columns"]) < 16
    loader = mimic["loader"]
    assert loader["labs_in_store"] == ROWS
    assert loader["counts"]["labs"] == ROWS and loader["counts"]["patients"] == 50
    assert "labevents" in loader["phases_seconds"]
    figures = mimic["figures"]
    ratio = figures["loader_over_raw_scan_speed"]
    assert ratio["value"] > 0 and ratio["target_at_least"] == 0.5
    assert isinstance(ratio["met"], bool)
    strict = figures["loader_over_loader_column_scan_speed"]
    assert 0 < strict["value"] and isinstance(strict["met"], bool)
    assert figures["raw_scan_over_loader_cpu_seconds"]["value"] > 0
    peak = figures["loader_peak_rss_gb"]
    assert peak["target_below"] == 6.0 and isinstance(peak["met"], bool)
    extrapolated = figures["extrapolated_full_load"]
    assert "EXTRAPOLATION" in extrapolated["note"]
    full = extrapolated["mimic-iv-2.2"]
    assert full["labevents_rows"] == 118_171_367
    assert full["seconds"] == round(118_171_367 / loader["rows_per_s"])


def test_summary_is_printed(bench_run):
    _, stdout, _ = bench_run
    assert "MIMIC-IV scale: 20,000 labevents rows, 50 patients" in stdout
    assert "loader / raw scan speed = " in stdout
    assert "extrapolated (not measured)" in stdout


def test_generated_folder_is_mimic_shaped_and_cached(bench_run):
    _, _, cache = bench_run
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert folder.name == "rows20000-seed0-v1"
    hosp = folder / "hosp"
    for table in ("patients", "admissions", "labevents", "d_labitems"):
        with gzip.open(hosp / f"{table}.csv.gz", "rt") as handle:
            header = handle.readline().strip()
        with gzip.open(DEMO / "hosp" / f"{table}.csv.gz", "rt") as handle:
            assert header == handle.readline().strip(), table
    with gzip.open(hosp / "labevents.csv.gz", "rt") as handle:
        assert sum(1 for _ in handle) == ROWS + 1
    facts = json.loads((folder / "generated.json").read_text())
    assert facts["rows"] == ROWS and facts["generated_seconds"] >= 0
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no partial leftovers
