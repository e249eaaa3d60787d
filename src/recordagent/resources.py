"""What ships with the package: its version, the example bundle and the question templates."""

from __future__ import annotations

from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = [
    "cohort_presets_file",
    "example_bundle_path",
    "package_version",
    "question_templates_path",
]


def package_version() -> str:
    """The installed recordagent version ('unknown' when it is not installed)."""
    try:
        return version("recordagent")
    except PackageNotFoundError:
        return "unknown"


def example_bundle_path() -> Path:
    """Folder of the small hand-written example bundle used by ``recordagent demo``."""
    return Path(str(resources.files("recordagent") / "example_bundle"))


def question_templates_path() -> Path:
    """Folder of the packaged question templates.

    Wheels carry them inside the package; an editable checkout reads the repository's
    top-level ``question_templates/`` folder.
    """
    packaged = Path(str(resources.files("recordagent") / "question_templates"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "question_templates"


def cohort_presets_file() -> Path:
    """YAML file of the synthetic cohort presets (tiny, small, reference)."""
    return Path(
        str(resources.files("recordagent") / "sources" / "synthetic" / "cohort_presets.yaml")
    )
