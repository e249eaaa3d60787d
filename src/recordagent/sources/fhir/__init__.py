"""FHIR R4 (JSON bundles and Bulk Data NDJSON) as a record source.

See docs/fhir.md for what lands where.
"""

from recordagent.sources.fhir.load import find_fhir_files, load_fhir

__all__ = ["find_fhir_files", "load_fhir"]
