"""Every record tool on one patient of the tiny synthetic cohort, as a model would call them.

Run: python examples/tools_tour.py [PATIENT_ID]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import recordagent as ra
from recordagent.errors import ToolError
from recordagent.sources.synthetic import generate_cohort, load_preset
from recordagent.tools import default_registry


def main(patient_id: str = "MM-001") -> None:
    registry = default_registry()
    tokenizer = ra.Tokenizer()
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "tiny"
        generate_cohort(load_preset("tiny"), 0, bundle)
        with ra.connect() as store:
            ra.load_bundle(store, bundle)
            scope = store.scope(patient_id)
            calls = [
                ("get_timeline", '{"kinds": ["diagnosis", "therapy", "transplant", "death"]}'),
                ("search_documents", '{"query": "del(17p) FISH", "k": 3}'),
                ("query_labs", '{"analyte": "M-spike", "aggregate": "min"}'),
                ("query_labs", '{"analyte": "hemoglobn"}'),  # a typo: the closest, with a note
                ("query_labs", '{"analyte": "light chain level"}'),  # unknown: the nearest names
                ("list_analytes", '{"contains": "globulin"}'),  # the record's own names
            ]
            for name, arguments in calls:
                print(f">>> {name}({arguments})")
                try:
                    result = registry.call(scope, name, arguments)
                except ToolError as exc:
                    print(f"ToolError: {exc}")
                    continue
                print(result.render(tokenizer, max_tokens=300))
                if name == "search_documents" and result.citations:
                    document = result.citations[0].document_id
                    page = registry.call(scope, "read_document", {"document_id": document})
                    print(f">>> read_document({document})")
                    print(page.render(tokenizer, max_tokens=200))


if __name__ == "__main__":
    main(*sys.argv[1:2])
