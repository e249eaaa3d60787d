"""Generate the tiny synthetic cohort, load it, and audit one patient's gold facts.

For each gold fact of the first patient, print its value and the first line of a cited
document that states it, read through the patient's PatientScope.

Run: python examples/synthetic_gold_evidence.py [SEED]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

import recordagent as ra
from recordagent.sources.synthetic import FACTS, generate_cohort, load_preset


def main(seed: int = 0) -> None:
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "tiny"
        generate_cohort(load_preset("tiny"), seed, bundle)
        facts = pl.read_parquet(bundle / "gold" / "facts.parquet")
        with ra.connect() as store:
            ra.load_bundle(store, bundle)
            scope = store.scope(store.patient_ids()[0])
            mine = facts.filter(pl.col("patient_id") == scope.patient_id)
            print(f"patient {scope.patient_id}: {mine.height} gold facts")
            for fact in mine.head(12).iter_rows(named=True):
                where = f" (line {fact['line']})" if fact["line"] is not None else ""
                about = FACTS[fact["fact"]].description
                print(f"- {fact['fact']}{where} = {fact['value']}  # {about}")
                if fact["evidence_documents"]:
                    document = scope.document(fact["evidence_documents"][0])
                    assert document is not None
                    print(f"    {document.document_id} [{document.type}, {document.date:%Y-%m-%d}]")
                else:
                    labs = {lab.lab_id: lab for lab in scope.labs()}
                    lab = labs[fact["evidence_labs"][0]]
                    print(f"    {lab.lab_id} [{lab.analyte_name} {lab.value_num} {lab.unit}]")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
