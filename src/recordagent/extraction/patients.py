"""Which patients an extraction asks about: all, a list file, or a SQL filter over ``patients``.

The filter is an analyst's SQL (never a model's), yet it is still run where it can do nothing
but filter: one expression (DuckDB parses it as such, never as a statement), over a copy of the
``patients`` table in an in-memory database that cannot read files, attach databases or load
extensions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from recordagent.errors import UserError
from recordagent.paths import read_text
from recordagent.records.db import RecordStore
from recordagent.records.ids import normalise_id
from recordagent.records.patient_database import ISOLATED_CONFIG

__all__ = ["patients_from_file", "patients_where", "select_patients"]

_ISOLATED = {**ISOLATED_CONFIG, "memory_limit": "2GB"}


def select_patients(
    store: RecordStore,
    *,
    patients: Sequence[str] | None = None,
    patients_file: Path | None = None,
    where: str | None = None,
) -> list[str]:
    """The patients to ask about, in the store's order, each once.

    At most one of ``patients`` and ``patients_file`` may be given; ``where`` narrows either
    (or the whole store).

    Raises:
        UserError: Both lists given; a listed patient the store does not hold (with the file's
            line); a filter that is not one SQL expression over ``patients``' columns; no
            patient left.
    """
    if patients is not None and patients_file is not None:
        raise UserError("give the patients as a list or as a file, not both")
    if patients_file is not None:
        listed = patients_from_file(store, patients_file)
    elif patients is not None:
        listed = _known(store, list(patients), lambda n: f"patient #{n}")
    else:
        listed = store.patient_ids()
    chosen = listed
    if where is not None:
        kept = set(patients_where(store, where))
        chosen = [p for p in listed if p in kept]
    if not chosen:
        said = f" match the filter {where!r}" if where is not None else " were given"
        raise UserError(f"no patients{said}: nothing to extract")
    return chosen


def patients_from_file(store: RecordStore, path: Path) -> list[str]:
    """Patient ids from a text file: one per line; blank lines and ``#`` comments ignored.

    Raises:
        UserError: The file cannot be read, or names patients the store does not hold.
    """
    text = read_text(path, "patient list")
    ids: list[str] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if value and not value.startswith("#"):
            ids.append(value)
            lines.append(number)
    if not ids:
        raise UserError(f"{path}: no patient ids (one a line; # starts a comment)")
    return _known(store, ids, lambda n: f"{path}:{lines[n - 1]}")


def patients_where(store: RecordStore, where: str) -> list[str]:
    """The store's patients for which ``where`` (a SQL condition over ``patients``) is true.

    Raises:
        UserError: The condition is not one expression over the columns of ``patients``
            (DuckDB's message says what is wrong), or it cannot be evaluated.
    """
    with store.connection.cursor() as cursor:
        rows = cursor.sql("SELECT * FROM patients").to_arrow_table()
    columns = ", ".join(rows.column_names)
    isolated = duckdb.connect(":memory:", config=_ISOLATED)
    try:
        isolated.from_arrow(rows).create("patients")
        # A relation's filter parses one expression, never a statement: `1=1) UNION …` is a
        # syntax error, not a second query.
        chosen = isolated.table("patients").filter(where).project("patient_id")
        found = chosen.order("patient_id").fetchall()
    except (duckdb.Error, duckdb.ParserException) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(
            f"the patient filter {where!r} is not a condition over the columns of patients "
            f"({columns}): {first}"
        ) from None
    finally:
        isolated.close()
    return [str(row[0]) for row in found]


def _known(store: RecordStore, ids: list[str], describe: Callable[[int], str]) -> list[str]:
    """``ids`` in order, each once, all in the store (in the form the store holds them)."""
    missing = [(n, p) for n, p in enumerate(ids, start=1) if not store.has_patient(p)]
    if missing:
        shown = ", ".join(f"{describe(n)}: {p!r}" for n, p in missing[:5])
        raise UserError(
            f"{len(missing)} patient(s) not in the store {store.location}: {shown}"
            + (" …" if len(missing) > 5 else "")
        )
    return list(dict.fromkeys(normalise_id(p) for p in ids))
