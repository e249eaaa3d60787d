"""Load a record bundle into a store and read one patient's record through a PatientScope.

Run: python examples/load_and_query.py [BUNDLE_FOLDER]
"""

from __future__ import annotations

import sys

import recordagent as ra


def main(bundle: str | None = None) -> None:
    settings = ra.load_settings("small-chunks")
    with ra.connect(settings=settings.store) as store:
        report = ra.load_bundle(store, bundle or ra.example_bundle_path(), settings=settings)
        print(f"loaded {report.counts} with {report.tokenizer}")

        scope = store.scope(store.patient_ids()[0])
        print(f"patient {scope.patient_id}: {scope.counts()}")
        for lab in scope.labs(analyte_names=["M-protein"]):
            if lab.value_num is not None:
                shown = f"{lab.value_num:g} {lab.unit or ''}".strip()
            else:
                shown = lab.value_text or ""
            print(f"  {lab.time:%Y-%m-%d}  M-protein {shown}  [{lab.lab_id}]")
        for chunk in scope.chunks()[:3]:
            print(f"  chunk {chunk.chunk_id} ({chunk.section}, {chunk.token_count} tokens)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
