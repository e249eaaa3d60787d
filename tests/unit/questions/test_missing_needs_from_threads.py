"""What a store lacks for some templates, asked from several threads at once."""

from __future__ import annotations

import threading

from recordagent.questions.silver import missing_needs
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from tests.helpers import FIXTURES


def test_missing_needs_is_safe_on_a_connection_shared_by_threads() -> None:
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        errors: list[BaseException] = []
        answers: list[dict[str, str]] = []

        def ask() -> None:
            for _ in range(200):
                try:
                    answers.append(dict(missing_needs(store)))
                except Exception as exc:  # collected, and asserted below
                    errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(answers) == 800
    assert all(a == {"icu": "needs icu; the store has no ICU stays"} for a in answers)
