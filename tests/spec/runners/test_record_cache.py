"""Runners keep question-independent work per patient, and never serve it stale."""

from __future__ import annotations

import shutil
from pathlib import Path

from recordagent.llm import MockModel
from recordagent.questions import AnswerSpec
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.records.tokens import Tokenizer
from recordagent.runners import FullContext, IterativeRag, SinglePassRag
from recordagent.runners.full_context import pack_record
from recordagent.settings import Settings
from tests.helpers import FIXTURES, asct_item, final

_MPROTEIN = asct_item(
    id="mprot/A",
    question="What was the latest M-protein value?",
    answer=AnswerSpec(type="number", unit="g/dL"),
)


def _prompt(model: MockModel) -> str:
    return "\n".join(m.content or "" for m in model.requests[-1].messages)


async def test_a_second_question_reuses_the_index_and_sees_the_same_passages(
    runner_store, settings
):
    scope = runner_store.scope("A")
    cached = SinglePassRag(settings)
    uncached = SinglePassRag(
        settings.model_copy(
            update={"runners": settings.runners.model_copy(update={"cache_patients": 0})}
        )
    )
    for item in (asct_item(), _MPROTEIN, asct_item(id="again/A")):
        answers = []
        for runner in (cached, uncached):
            model = MockModel([final(None, [], status="insufficient_evidence")])
            answers.append(await runner.run(item, scope, model))
        assert answers[0].details["passages"] == answers[1].details["passages"]
    entries = cached.record_cache.entries
    assert (entries.misses, entries.hits, len(entries)) == (1, 2, 1)
    assert len(uncached.record_cache.entries) == 0


async def test_a_reloaded_source_is_seen_at_once(tmp_path: Path, settings):
    bundle = tmp_path / "tool_patients"
    shutil.copytree(FIXTURES / "tool_patients", bundle)
    runners = [SinglePassRag(settings), IterativeRag(settings), FullContext(settings)]
    with connect() as store:
        load_bundle(store, bundle)
        before = store.data_version()
        for runner in runners:
            model = MockModel([final(None, [], status="insufficient_evidence")])
            await runner.run(_MPROTEIN, store.scope("A"), model)
            assert "2021-09-09" not in _prompt(model)
        with (bundle / "labs.csv").open("a", encoding="utf-8") as labs:
            labs.write("LA99,A,2021-09-09 08:00,33358-4,M-protein,0.1,,g/dL,,,\n")
        load_bundle(store, bundle, replace=True)
        assert store.data_version() != before
        for runner in runners:
            model = MockModel([final(None, [], status="insufficient_evidence")])
            await runner.run(_MPROTEIN, store.scope("A"), model)
            assert "2021-09-09 0.1" in _prompt(model), runner.name
            assert runner.record_cache.entries.misses == 2


async def test_full_context_packs_a_record_once_for_questions_of_any_length(runner_store, settings):
    runner = FullContext(settings)
    scope = runner_store.scope("A")
    for question in ("ASCT date?", "When was the autologous stem cell transplantation " * 20):
        model = MockModel([final(None, [], status="insufficient_evidence")])
        await runner.run(asct_item(question=question), scope, model)
    assert runner.record_cache.entries.misses == 1
    packings = next(iter(runner.record_cache.entries._entries.values()))
    assert len(packings._by_budget) == 1


def test_a_whole_record_packs_the_same_at_any_budget_from_whole_from(runner_store):
    settings = Settings()
    config = settings.runners.full_context
    tokenizer = Tokenizer(settings.model.encoding)
    scope = runner_store.scope("A")
    roomy = pack_record(scope, tokenizer, 100_000, config)
    assert not roomy.truncated and roomy.whole_from is not None
    assert roomy.tokens <= roomy.whole_from <= 100_000
    at_bound = pack_record(scope, tokenizer, roomy.whole_from, config)
    assert at_bound == roomy
    tight = pack_record(scope, tokenizer, roomy.tokens // 2, config)
    assert tight.truncated and tight.whole_from is None
