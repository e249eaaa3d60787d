"""MIMIC-IV (hosp, icu, note modules as PhysioNet distributes them) as a record source.

See docs/mimic_iv.md for what lands where.
"""

from recordagent.sources.mimic_iv.files import MimicFiles, find_mimic_files
from recordagent.sources.mimic_iv.load import load_mimic_iv, packaged_labitem_loinc

__all__ = ["MimicFiles", "find_mimic_files", "load_mimic_iv", "packaged_labitem_loinc"]
