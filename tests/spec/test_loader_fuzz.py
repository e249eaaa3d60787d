"""Hypothesis throws malformed tables at the loader: DataLoadError only, store unchanged."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordagent.errors import DataLoadError
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.schema import BUNDLE_TABLES
from tests.helpers import FIXTURES, store_snapshot

CELL = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(
        [
            "",
            " ",
            "A",
            "B",
            "Z",
            "-1",
            "nan",
            "inf",
            "1e309",
            "2020-02-30",
            "2020-01-01",
            "2020-01-01 25:00",
            "therapy",
            "x" * 300,
            "\x00",
            "é",
            "1,5",
            '"',
            "\n",
        ]
    ),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@st.composite
def malformed_table(draw: st.DrawFn) -> tuple[str, list[str], list[list[str | None]]]:
    table = draw(st.sampled_from(sorted(BUNDLE_TABLES)))
    spec = BUNDLE_TABLES[table]
    columns = draw(
        st.lists(
            st.one_of(st.sampled_from(spec.column_names), st.text(min_size=1, max_size=6)),
            min_size=1,
            max_size=len(spec.column_names) + 2,
            unique=True,
        )
    )
    rows = draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=6))
    return table, columns, rows


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=malformed_table(), as_parquet=st.booleans(), truncate=st.booleans())
def test_malformed_tables_raise_data_load_error_and_change_nothing(case, as_parquet, truncate):
    table, columns, rows = case
    with tempfile.TemporaryDirectory() as tmp, connect() as store:
        load_bundle(store, FIXTURES / "two_patients", source="base")
        before = store_snapshot(store)
        bundle = Path(tmp) / "bundle"
        shutil.copytree(FIXTURES / "two_patients", bundle)
        (bundle / f"{table}.csv").unlink()
        frame = pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")
        target = bundle / f"{table}.{'parquet' if as_parquet else 'csv'}"
        if as_parquet:
            frame.write_parquet(target)
        else:
            frame.write_csv(target)
        if truncate:
            data = target.read_bytes()
            target.write_bytes(data[: len(data) // 2])
        try:
            load_bundle(store, bundle, source="fuzzed")
        except DataLoadError as error:
            assert error.problems
        assert store_snapshot(store) == before or _loaded_cleanly(store)


def _loaded_cleanly(store) -> bool:
    """A malformed-looking table may still be valid: then it loaded as the source 'fuzzed'."""
    names = [r[0] for r in store.connection.execute("SELECT name FROM sources").fetchall()]
    return sorted(names) == ["base", "fuzzed"]
