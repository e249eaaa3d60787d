"""Finding the CSV tables of an OMOP CDM export (a folder, or a .zip holding one)."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb

from recordagent.errors import DataLoadError, UserError
from recordagent.records.bundle import file_problem

__all__ = ["DATABASE_ALIAS", "TABLES", "OmopFiles", "open_omop_files"]

DATABASE_ALIAS = "_omop_source"
"""Name under which the loader attaches a DuckDB database holding the CDM tables."""

# The CDM tables read; every one but PERSON may be absent and then contributes nothing.
TABLES = (
    "person",
    "death",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "note",
    "concept",
)
REQUIRED = ("person",)


@dataclass(frozen=True)
class OmopFiles:
    """The CSV files of one OMOP export by (lower-case) table name.

    ``labels`` names each file as the user knows it (``PERSON.csv``, or
    ``export.zip:PERSON.csv``, or ``cdm.duckdb:main.person``) for error messages; ``paths`` are
    where DuckDB reads them (a temporary folder for a zip). For a DuckDB database,
    ``database`` is its path, ``relations`` the qualified name of each table under
    :data:`DATABASE_ALIAS` and ``headers`` their columns. ``used`` collects the typed columns
    the SQL reads, for locating a bad value.
    """

    origin: Path
    paths: dict[str, Path]
    labels: dict[str, str]
    fingerprint: str
    database: Path | None = None
    relations: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    used: dict[str, dict[str, str]] = field(default_factory=dict)

    def has(self, table: str) -> bool:
        """Whether the table is present."""
        return table in self.paths or table in self.relations

    def columns(self, table: str) -> dict[str, str]:
        """The table's column names by their lower-case form (exports differ in case)."""
        if table not in self.headers:
            with self.paths[table].open(encoding="utf-8-sig", newline="") as handle:
                first = next(csv.reader(handle), [])
            self.headers[table] = {name.strip().lower(): name.strip() for name in first}
        return self.headers[table]


def _table_of(name: str) -> str | None:
    """The CDM table a file name holds (``PERSON.csv``, ``person.csv``), or None."""
    path = PurePosixPath(name)
    if path.suffix.lower() != ".csv" or path.name.startswith("._"):
        return None
    stem = path.stem.lower()
    return stem if stem in TABLES else None


def _stat_digest(entries: list[tuple[str, int, int]]) -> str:
    digest = hashlib.sha256()
    for name, size, stamp in sorted(entries):
        digest.update(f"{name}\0{size}\0{stamp}\n".encode())
    return digest.hexdigest()


def _missing(origin: Path) -> UserError:
    return UserError(
        f"{origin} does not look like an OMOP CDM export: no PERSON.csv (or person.csv); "
        "point at the folder (or .zip) that holds the CDM tables as CSV files"
    )


@contextmanager
def open_omop_files(origin: Path) -> Iterator[OmopFiles]:
    """The OMOP tables at ``origin``: a folder, a ``.zip`` or a DuckDB database file.

    Temporary files are removed afterwards.

    A zip's members are streamed out to a temporary folder (DuckDB cannot read inside a zip),
    only those of the tables read; ``__MACOSX/`` resource forks are ignored.

    Raises:
        UserError: ``origin`` is neither a folder nor a zip, or holds no PERSON table.
        DataLoadError: A table's file is not a regular file (a named pipe, a broken link).
    """
    if origin.is_dir():
        paths: dict[str, Path] = {}
        problems = []
        for candidate in sorted(origin.iterdir()):
            table = _table_of(candidate.name)
            if table is None or table in paths:
                continue
            # A named pipe would block the load forever; a broken link is no absent table.
            problem = file_problem(candidate, candidate.name)
            if problem is not None:
                problems.append(problem)
            else:
                paths[table] = candidate
        if problems:
            raise DataLoadError(problems)
        if "person" not in paths:
            raise _missing(origin)
        stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values()]
        yield OmopFiles(
            origin=origin,
            paths=paths,
            labels={t: p.name for t, p in paths.items()},
            fingerprint=_stat_digest(stats),
        )
        return
    if os.path.lexists(origin) and (problem := file_problem(origin, str(origin))) is not None:
        raise UserError(f"no OMOP CDM export at {origin}: {problem.message}")
    if origin.is_file() and _is_duckdb(origin):
        yield _database_tables(origin)
        return
    if not (origin.is_file() and zipfile.is_zipfile(origin)):
        raise UserError(f"no OMOP CDM folder, .zip or DuckDB database at {origin}")
    with zipfile.ZipFile(origin) as archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            if info.is_dir() or "__MACOSX" in PurePosixPath(info.filename).parts:
                continue
            table = _table_of(info.filename)
            if table is not None and table not in members:
                members[table] = info
        if "person" not in members:
            raise _missing(origin)
        stat = origin.stat()
        fingerprint = _stat_digest(
            [(origin.name, stat.st_size, stat.st_mtime_ns)]
            + [(i.filename, i.file_size, i.CRC) for i in members.values()]
        )
        with tempfile.TemporaryDirectory(prefix="recordagent-omop-") as temporary:
            paths = {}
            for table, info in members.items():
                target = Path(temporary) / f"{table}.csv"
                with archive.open(info) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                paths[table] = target
            yield OmopFiles(
                origin=origin,
                paths=paths,
                labels={t: f"{origin.name}:{i.filename}" for t, i in members.items()},
                fingerprint=fingerprint,
            )


def _is_duckdb(path: Path) -> bool:
    """Whether ``path`` is a DuckDB database file (its header's magic bytes)."""
    with path.open("rb") as handle:
        head = handle.read(12)
    return head[8:12] == b"DUCK"


def _database_tables(origin: Path) -> OmopFiles:
    """The CDM tables of a DuckDB database (in the schema that holds PERSON)."""
    literal = str(origin).replace("'", "''")
    with duckdb.connect() as con:
        try:
            con.execute(f"ATTACH '{literal}' AS {DATABASE_ALIAS} (READ_ONLY)")
        except duckdb.Error as exc:
            raise UserError(f"cannot open the DuckDB database {origin}: {exc}") from exc
        rows = con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = $db ORDER BY schema_name, table_name, column_index",
            {"db": DATABASE_ALIAS},
        ).fetchall()
    schemas = sorted({s for s, t, _ in rows if t.lower() == "person"})
    if not schemas:
        raise _missing(origin)
    schema = "main" if "main" in schemas else schemas[0]
    relations: dict[str, str] = {}
    headers: dict[str, dict[str, str]] = {}
    labels: dict[str, str] = {}
    for row_schema, name, column in rows:
        table = name.lower()
        if row_schema != schema or table not in TABLES:
            continue
        if table not in relations:
            relations[table] = f'{DATABASE_ALIAS}."{schema}"."{name}"'
            labels[table] = f"{origin.name}:{schema}.{name}"
        headers.setdefault(table, {})[column.lower()] = column
    stat = origin.stat()
    return OmopFiles(
        origin=origin,
        paths={},
        labels=labels,
        fingerprint=_stat_digest([(origin.name, stat.st_size, stat.st_mtime_ns)]),
        database=origin,
        relations=relations,
        headers=headers,
    )
