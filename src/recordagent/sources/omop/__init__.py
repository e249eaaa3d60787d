"""OMOP CDM 5.3 / 5.4 (CSV files in a folder or a .zip) as a record source.

See docs/omop.md for what lands where.
"""

from recordagent.sources.omop.files import OmopFiles, open_omop_files
from recordagent.sources.omop.load import load_omop

__all__ = ["OmopFiles", "load_omop", "open_omop_files"]
