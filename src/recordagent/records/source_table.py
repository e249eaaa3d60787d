"""The ``sources`` table: what each load registered, and how a new load is named and matched.

Every row a loader writes carries the ``source_id`` of its ``sources`` row, so a source can be
replaced or removed as a whole. The writes here run inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from recordagent.errors import UserError
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, first_row
from recordagent.records.ids import invisible_character
from recordagent.resources import package_version

__all__ = [
    "COUNTED_TABLES",
    "delete_source",
    "register_source",
    "set_source_counts",
    "source_by_name",
    "source_name",
    "source_with_fingerprint",
    "store_fingerprints",
]

# Children before parents: the rows of every table a source writes, then the source itself.
_SOURCE_TABLES = (
    "chunk_terms",
    "search_index",
    "chunks",
    "events",
    "labs",
    "documents",
    "patients",
    "sources",
)
COUNTED_TABLES = ("patients", "documents", "labs", "events", "chunks")
"""The tables whose rows ``sources`` counts per source, in the order load reports list them."""


def source_name(source: str | None, default: str) -> str:
    """The name a load registers under: ``source`` when given, else ``default``.

    Raises:
        UserError: ``source`` is empty, or holds characters no name should (controls,
            invisible format characters, or lone surrogates that are not text at all).
    """
    if source is None:
        return default
    name = source.strip()
    if not name:
        raise UserError("the source name is empty; give a visible name or leave it out")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise UserError(f"the source name {name!r} is not valid UTF-8 text")
    invisible = invisible_character(name)
    if invisible is not None:
        raise UserError(
            f"the source name {name!r} contains the invisible character {invisible}; "
            "give a visible name"
        )
    return name


def source_with_fingerprint(store: RecordStore, name: str, fingerprint: str) -> str | None:
    """Name of a source loaded from exactly these files (preferring ``name``), if any."""
    row = first_row(
        store.connection.execute(
            "SELECT name FROM sources WHERE fingerprint = $f ORDER BY name = $n DESC LIMIT 1",
            {"f": fingerprint, "n": name},
        ).fetchall()
    )
    return str(row[0]) if row else None


def source_by_name(store: RecordStore, name: str) -> int | None:
    """Id of the source called ``name``, if any."""
    row = first_row(
        store.connection.execute(
            "SELECT source_id FROM sources WHERE name = $n", {"n": name}
        ).fetchall()
    )
    return int(row[0]) if row else None


def store_fingerprints(store: RecordStore) -> dict[str, str]:
    """Fingerprint of every loaded source, by name (a data fingerprint for run manifests)."""
    rows = store.connection.execute(
        "SELECT name, fingerprint FROM sources ORDER BY name"
    ).fetchall()
    return {str(n): str(f) for n, f in rows}


def delete_source(con: duckdb.DuckDBPyConnection, source_id: int) -> None:
    """Delete every row a source wrote, and the source (inside the caller's transaction)."""
    for table in _SOURCE_TABLES:
        con.execute(f"DELETE FROM {table} WHERE source_id = $s", {"s": source_id})


def register_source(
    con: duckdb.DuckDBPyConnection,
    name: str,
    location: Path,
    fingerprint: str,
    chunker: Chunker,
) -> int:
    """Add a row to ``sources`` (inside the caller's transaction); returns the new source id.

    Its row counts start at zero: :func:`set_source_counts` records them once the rows are in.
    """
    row = first_row(con.execute("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchall())
    source_id = int(row[0]) if row else 1
    con.execute(
        "INSERT INTO sources VALUES ($id, $name, $loc, $fp, $at, $ver, $tok, $max, 0, 0, 0, 0, 0)",
        {
            "id": source_id,
            "name": name,
            "loc": str(location),
            "fp": fingerprint,
            "at": dt.datetime.now(),
            "ver": package_version(),
            "tok": chunker.tokenizer.description,
            "max": chunker.settings.max_tokens,
        },
    )
    return source_id


def set_source_counts(
    con: duckdb.DuckDBPyConnection, source_id: int, counts: dict[str, int]
) -> None:
    """Record a source's row counts per table (those given; the others keep their value)."""
    for table in COUNTED_TABLES:
        if table in counts:
            con.execute(
                f"UPDATE sources SET n_{table} = $n WHERE source_id = $id",
                {"n": counts[table], "id": source_id},
            )
