"""Finding the files of a MIMIC-IV directory as PhysioNet distributes it, and naming them."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from recordagent.errors import DataLoadError, UserError
from recordagent.records.bundle import file_problem

__all__ = ["MimicFiles", "find_mimic_files"]

# Module folder → tables read from it. Only patients is required: every other table that is
# absent simply contributes nothing (a subset export, or a module not downloaded).
TABLES: dict[str, tuple[str, ...]] = {
    "hosp": (
        "patients",
        "admissions",
        "transfers",
        "services",
        "diagnoses_icd",
        "d_icd_diagnoses",
        "procedures_icd",
        "d_icd_procedures",
        "prescriptions",
        "pharmacy",
        "emar",
        "labevents",
        "d_labitems",
        "microbiologyevents",
        "omr",
    ),
    "icu": ("icustays",),
    "note": ("discharge", "radiology", "radiology_detail"),
}
REQUIRED = ("patients",)


@dataclass(frozen=True)
class MimicFiles:
    """The CSV files found under a MIMIC-IV root, by table name.

    ``used`` collects the typed columns each table's reads ask for, so that a value the store
    refuses can be traced back to its file, row and column.
    """

    root: Path
    paths: dict[str, Path]
    used: dict[str, dict[str, str]] = field(default_factory=dict)

    def label(self, table: str) -> str:
        """The table's file as the user knows it, relative to the MIMIC-IV folder."""
        return self.paths[table].relative_to(self.root).as_posix()

    def has(self, table: str) -> bool:
        """Whether the table's file is present."""
        return table in self.paths

    def fingerprint(self) -> str:
        """SHA-256 over every used file's relative path, size and modification time.

        Hashing the contents of a full MIMIC-IV download (tens of GB) would take minutes; a
        changed, added or removed file changes its size, time or presence.
        """
        digest = hashlib.sha256()
        for table in sorted(self.paths):
            path = self.paths[table]
            stat = path.stat()
            relative = path.relative_to(self.root).as_posix()
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def find_mimic_files(root: Path) -> MimicFiles:
    """The MIMIC-IV files under ``root`` (``hosp/``, and ``icu/``, ``note/`` when present).

    Each table is read from ``NAME.csv.gz`` or ``NAME.csv``.

    Raises:
        UserError: ``root`` is not a folder, or has no ``hosp/patients`` table.
        DataLoadError: A table's file is not a regular file (a named pipe would block the load
            forever) or is a symbolic link that leads nowhere.
    """
    if not root.is_dir():
        raise UserError(f"no MIMIC-IV folder at {root}")
    paths: dict[str, Path] = {}
    problems = []
    for module, tables in TABLES.items():
        folder = root / module
        for table in tables:
            for suffix in (".csv.gz", ".csv"):
                candidate = folder / f"{table}{suffix}"
                if not os.path.lexists(candidate):
                    continue
                # Links may lead anywhere (downloads often live on shared storage), but to a
                # regular file: an absent table is skipped, a broken one is not.
                problem = file_problem(candidate, f"{module}/{candidate.name}")
                if problem is not None:
                    problems.append(problem)
                else:
                    paths[table] = candidate
                break
    if problems:
        raise DataLoadError(problems)
    missing = [t for t in REQUIRED if t not in paths]
    if missing:
        raise UserError(
            f"{root} does not look like MIMIC-IV: no hosp/{missing[0]}.csv.gz (or .csv); "
            "point at the folder that holds hosp/ (and optionally icu/ and note/)"
        )
    return MimicFiles(root=root, paths=paths)
