"""A synthetic longitudinal multiple-myeloma cohort with gold facts.

``generate_cohort(load_preset("tiny"), seed=0, out_dir=...)`` writes a record bundle (the
generic format, loadable with :func:`recordagent.records.load.load_bundle`) and ``gold/``
tables: every latent fact with the ids of the documents and lab rows that state it.
"""

from recordagent.sources.synthetic.generate import (
    CohortPreset,
    SynthReport,
    generate_cohort,
    load_preset,
)
from recordagent.sources.synthetic.vocabulary import FACTS, FactSpec

__all__ = ["FACTS", "CohortPreset", "FactSpec", "SynthReport", "generate_cohort", "load_preset"]
