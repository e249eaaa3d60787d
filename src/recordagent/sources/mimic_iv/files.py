"""Finding the files of a MIMIC-IV directory as PhysioNet distributes it, and naming them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from recordagent.errors import UserError

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
    """The CSV files found under a MIMIC-IV root, by table name."""

    root: Path
    paths: dict[str, Path]

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
    """
    if not root.is_dir():
        raise UserError(f"no MIMIC-IV folder at {root}")
    paths: dict[str, Path] = {}
    for module, tables in TABLES.items():
        folder = root / module
        for table in tables:
            for suffix in (".csv.gz", ".csv"):
                candidate = folder / f"{table}{suffix}"
                if candidate.is_file():
                    paths[table] = candidate
                    break
    missing = [t for t in REQUIRED if t not in paths]
    if missing:
        raise UserError(
            f"{root} does not look like MIMIC-IV: no hosp/{missing[0]}.csv.gz (or .csv); "
            "point at the folder that holds hosp/ (and optionally icu/ and note/)"
        )
    return MimicFiles(root=root, paths=paths)
