"""The write skeleton every loader shares: the replace check, the transaction, the source row.

A loader locates its input, fingerprints it and then runs the same frame (after ehrQL's
``query_engines/base.py``: transactions and errors in one place)::

    plan = plan_source(store, name, location, fingerprint, replace=replace, what="these files")
    if plan.unchanged:
        return plan.report()
    with source_write(store, plan, chunker, clock) as write:
        ...  # insert rows on write.con under write.source_id; add them to write.counts
    return plan.report(counts=write.counts, ...)

Loading is all-or-nothing: the write is one transaction on a cursor of its own, rolled back on
any failure (an interrupt included), so a failed load leaves the store exactly as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from recordagent.errors import DataLoadError, LoadProblem, UserError
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, roll_back
from recordagent.records.load_report import LoadReport
from recordagent.records.source_table import (
    COUNTED_TABLES,
    delete_source,
    register_source,
    set_source_counts,
    source_by_name,
    source_with_fingerprint,
)

__all__ = [
    "LOAD_PHASES",
    "ConnectionSetup",
    "PhaseClock",
    "SourcePlan",
    "SourceWrite",
    "plan_source",
    "source_write",
]

LOAD_PHASES = ("read", "validate", "chunk", "index", "write")
"""The phases a :class:`LoadReport` times, in its order."""

ConnectionSetup = Callable[[duckdb.DuckDBPyConnection], AbstractContextManager[object]]
"""What a loader needs on the loading cursor around the transaction (an ATTACH, say)."""


class PhaseClock:
    """Wall time per load phase: ``with clock("write"): ...`` adds to that phase."""

    def __init__(self, phases: tuple[str, ...] = LOAD_PHASES) -> None:
        """Start every phase of ``phases`` at zero seconds."""
        self.seconds = dict.fromkeys(phases, 0.0)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        """Time the block as part of ``phase``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        """Seconds per phase as a report gives them."""
        return {phase: round(seconds, 4) for phase, seconds in self.seconds.items()}


@dataclass(frozen=True)
class SourcePlan:
    """What a load will do to the ``sources`` table: nothing, add a source, or replace one."""

    name: str
    location: Path
    fingerprint: str
    loaded_as: str | None = None
    """The source already loaded from these files, when the load has nothing to do."""
    replaced_id: int | None = None
    """The source of the same name that the load deletes, when replacing."""

    @property
    def unchanged(self) -> bool:
        """Whether these files are loaded already (and are not to be loaded again)."""
        return self.loaded_as is not None

    def report(
        self,
        *,
        counts: dict[str, int] | None = None,
        document_tokens: int = 0,
        tokenizer: str = "",
        ignored_files: list[str] | None = None,
        warnings: list[str] | None = None,
        seconds: dict[str, float] | None = None,
    ) -> LoadReport:
        """The load's report, its status and source taken from the plan."""
        status = (
            "unchanged"
            if self.unchanged
            else "replaced"
            if self.replaced_id is not None
            else "loaded"
        )
        return LoadReport(
            source=self.loaded_as or self.name,
            location=str(self.location),
            fingerprint=self.fingerprint,
            status=status,
            counts=counts or {},
            document_tokens=document_tokens,
            tokenizer=tokenizer,
            ignored_files=ignored_files or [],
            warnings=warnings or [],
            seconds=seconds or {},
        )


def plan_source(
    store: RecordStore,
    name: str,
    location: Path,
    fingerprint: str,
    *,
    replace: bool,
    what: str,
) -> SourcePlan:
    """Check the files ``fingerprint`` stands for against the sources already loaded.

    Args:
        store: The store to load into.
        name: The name to register the source under.
        location: The absolute path of the input, as recorded.
        fingerprint: What identifies the input's content.
        replace: Replace a source called ``name`` loaded from other files.
        what: The input as the refusal names it ("this bundle", "these files").

    Raises:
        UserError: A source called ``name`` holds other files and ``replace`` is not set.
    """
    loaded_as = source_with_fingerprint(store, name, fingerprint)
    if loaded_as is not None and not replace:
        return SourcePlan(name, location, fingerprint, loaded_as=loaded_as)
    named = source_by_name(store, name)
    if named is not None and not replace:
        raise UserError(
            f"source '{name}' is already loaded from different files; pass --replace "
            f"(replace=True in code) to swap it for {what}, or load it under another source name"
        )
    return SourcePlan(name, location, fingerprint, replaced_id=named)


@dataclass
class SourceWrite:
    """A load in progress: its cursor (inside the transaction), source id and tallies."""

    con: duckdb.DuckDBPyConnection
    source_id: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_TABLES, 0))
    """Rows written per table, recorded in ``sources`` when the load commits."""


@contextmanager
def source_write(
    store: RecordStore,
    plan: SourcePlan,
    chunker: Chunker,
    clock: PhaseClock,
    *,
    setup: ConnectionSetup | None = None,
) -> Iterator[SourceWrite]:
    """Write one source in one transaction: committed when the block ends, else rolled back.

    Deletes the source ``plan`` replaces, registers the new one, hands the block a
    :class:`SourceWrite`, records its counts and commits. Registering and committing count
    as the ``write`` phase of ``clock``.

    Args:
        store: The store to write to.
        plan: From :func:`plan_source`, not unchanged.
        chunker: The chunker the documents are cut with (recorded with the source).
        clock: Timings of the load.
        setup: Entered on the loading cursor before the transaction and left after it.

    Raises:
        DataLoadError: The store refused the rows (a constraint); nothing was written.
        UserError: The write conflicts with uncommitted changes to the store.
    """
    # A cursor of its own: the load is one transaction whatever transaction the caller may
    # have open on the store's connection.
    con = store.connection.cursor()
    try:
        with setup(con) if setup is not None else nullcontext():
            with clock("write"):
                con.execute("BEGIN TRANSACTION")
            try:
                with clock("write"):
                    if plan.replaced_id is not None:
                        delete_source(con, plan.replaced_id)
                    source_id = register_source(
                        con, plan.name, plan.location, plan.fingerprint, chunker
                    )
                write = SourceWrite(con, source_id)
                yield write
                with clock("write"):
                    set_source_counts(con, source_id, write.counts)
                    con.execute("COMMIT")
            except duckdb.ConstraintException as exc:
                roll_back(con)
                raise DataLoadError(
                    [LoadProblem(plan.location.name, f"the store refused the rows: {exc}")]
                ) from exc
            except duckdb.TransactionException as exc:
                roll_back(con)
                raise UserError(
                    f"the load conflicts with uncommitted changes to the store ({exc}); commit "
                    "or roll them back and load again"
                ) from exc
            except BaseException:
                # roll_back never raises: a failed rollback must not hide why the load failed.
                roll_back(con)
                raise
    finally:
        con.close()
