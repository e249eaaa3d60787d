"""Sources: producers of record bundles (synthetic cohort, and later MIMIC-IV, FHIR, files)."""
