"""Every numeric lab row of each real export is reached by its own analyte name and code.

For each source in ../shared/data (Synthea FHIR New York, the MIMIC-IV demo, OMOP
Synthea27Nj), query_labs is asked by every series' own name and own code
(:func:`recordagent.tools.lab_reach.lab_reach`); at least 99 % of numeric rows must be reached
each way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.sources.fhir import load_fhir
from recordagent.sources.mimic_iv import load_mimic_iv
from recordagent.sources.omop import load_omop
from recordagent.tools.lab_reach import lab_reach
from tests.helpers import SHARED_DATA

SOURCES: dict[str, tuple[Path, Callable[[RecordStore, Path], object]]] = {
    "synthea-fhir-ny": (SHARED_DATA / "synthea-fhir-ny" / "fhir", load_fhir),
    "mimic-iv-demo": (SHARED_DATA / "mimic-iv-demo", load_mimic_iv),
    "omop-synthea27nj": (SHARED_DATA / "omop-synthea27nj" / "Synthea27Nj_5.4.zip", load_omop),
}


@pytest.fixture(scope="module", params=sorted(SOURCES))
def real_store(request: pytest.FixtureRequest) -> Iterator[RecordStore]:
    path, load = SOURCES[request.param]
    if not path.exists():
        pytest.skip(f"{request.param} is not at {path} (../shared/data is absent)")
    with connect() as store:
        load(store, path)
        yield store


def test_every_numeric_lab_row_is_reached_by_its_own_name_and_code(real_store: RecordStore):
    report = lab_reach(real_store, local_codes=False)
    assert report.rows > 1000
    assert report.name_share >= 0.99, report.missed_by_name
    assert report.code_share >= 0.99, report.missed_by_code


def test_rows_with_a_local_code_are_reached_by_it(real_store: RecordStore):
    # A third pass over every patient costs minutes on MIMIC-IV: here 15 patients that have
    # local codes; tools/bench.py --only tools measures all of them.
    patients = [
        p
        for (p,) in real_store.connection.execute(
            "SELECT DISTINCT patient_id FROM labs "
            "WHERE local_code IS NOT NULL AND value_num IS NOT NULL "
            "ORDER BY patient_id LIMIT 15"
        ).fetchall()
    ]
    if not patients:
        pytest.skip("this export keeps no local codes beside its standard codes")
    report = lab_reach(real_store, patients=patients)
    assert report.local_coded_rows > 0
    assert report.local_code_share >= 0.99, report.missed_by_code
