"""Sources: the inputs records are loaded from, and the synthetic cohort that makes one.

Each kind of input - a record bundle (the generic format), MIMIC-IV, FHIR R4, OMOP CDM - has a
loader of the same shape, declared with its name and help in :data:`.registry.SOURCES`; every
loader writes through the one skeleton in :mod:`recordagent.records.source_write`.
:mod:`.synthetic` generates a cohort as a record bundle, with gold facts.
"""
