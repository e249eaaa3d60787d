"""Query results as polars DataFrames: the one way the records layer reads rows out."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

__all__ = ["query_frame"]


def query_frame(
    connection: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Run ``sql`` with bound ``params`` and return the result as a polars DataFrame."""
    frame: pl.DataFrame = connection.sql(sql, params=params or {}).pl()
    return frame
