"""full_context: the whole record in order, and the truncation policy when it does not fit."""

from __future__ import annotations

import datetime as dt
import re

from recordagent.llm import MockModel
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners import FullContext, pack_record
from recordagent.runners.full_context import DEFAULT_WINDOW_TOKENS, _split, packing_window
from recordagent.settings import FullContextSettings, ModelSettings, Settings
from tests.helpers import asct_item, final


async def test_the_whole_record_in_date_order(scope_a: PatientScope, settings):
    model = MockModel([final("2020-06-15", ["A-D3", "EA3", "LABS-m-protein", "A-D3:0"])])
    answer = await FullContext(settings).run(asct_item(), scope_a, model)
    prompt = model.requests[0].messages[1].content or ""
    documents = re.findall(r"^\[(A-D\d)\] (\d{4}-\d\d-\d\d)", prompt, flags=re.M)
    assert documents == [
        ("A-D1", "2020-01-05"),
        ("A-D2", "2020-01-10"),
        ("A-D3", "2020-09-01"),
        ("A-D4", "2021-06-01"),
    ]
    assert "B-D1" not in prompt and "LB1" not in prompt and "4.1" not in prompt
    assert "2020-06-15 transplant: Autologous stem cell transplantation" in prompt
    # Values as query_labs gives them: 32 g/L converted, the duplicate LA4 once.
    assert "[LABS-m-protein] M-protein (33358-4): 2020-01-04 3.2 g/dL; 2020-03-01 1.5; " in prompt
    assert answer.details["truncated"] is False
    assert answer.details["documents_kept"] == answer.details["documents_total"] == 4
    # Documents, events and lab lines are citable; chunk ids were never shown.
    kinds = {c.kind for c in answer.citations}
    assert kinds == {"document", "event", "lab"}
    assert [e.refs for e in answer.trace if e.kind == "citation_removed"] == [["A-D3:0"]]


async def test_a_small_window_drops_the_middle_and_says_so(scope_a: PatientScope):
    window = Settings(
        runners={
            "full_context": {
                "window_tokens": 1_000,
                "reserve_tokens": 500,
                "head_share": 0.5,
                "lab_share": 0.05,
                "event_share": 0.05,
            }
        }
    )
    model = MockModel([final(None, [], "insufficient_evidence")])
    answer = await FullContext(window).run(asct_item(), scope_a, model)
    prompt = model.requests[0].messages[1].content or ""
    details = answer.details
    assert details["truncated"] is True
    assert 0 < details["documents_kept"] < details["documents_total"]
    assert details["document_tokens_dropped"] > 0
    kept = re.findall(r"^\[(A-D\d)\]", prompt, flags=re.M)
    # The oldest document (diagnosis work-up) and the newest survive; the middle goes.
    assert kept[0] == "A-D1" and kept[-1] == "A-D4"
    assert "omitted to fit the context window" in prompt
    assert details["lab_values_dropped"] > 0 and details["events_dropped"] > 0
    assert details["tokens"] <= 1_000 - 500


def test_the_lab_table_keeps_the_most_recent_values(scope_a: PatientScope):
    tokenizer = Tokenizer()
    config = FullContextSettings(window_tokens=1_000, lab_share=0.08)
    packed = pack_record(scope_a, tokenizer, 400, config)
    assert packed.lab_values_dropped > 0
    assert "older lab value(s) omitted" in packed.text
    assert "2021-06-01 0.9" in packed.text  # the newest M-protein value stays
    assert "2020-01-04 3.2" not in packed.text  # the oldest goes first
    full = pack_record(scope_a, tokenizer, 100_000, FullContextSettings())
    # 11 rows; the duplicate LA4 and LA9, which LA10 corrects, are shown as query_labs shows them
    assert full.lab_values_dropped == 0 and full.lab_values_total == 9


def test_as_of_packs_only_what_existed_then(scope_a: PatientScope):
    packed = pack_record(
        scope_a, Tokenizer(), 100_000, FullContextSettings(), until=dt.date(2020, 1, 31)
    )
    assert packed.documents_total == 2
    assert "A-D3" not in packed.text and "VRd" in packed.text and "Dara-Pd" not in packed.text
    assert packed.lab_values_total == 3
    assert "2020-01-20 → (ongoing on 2020-01-31) therapy: VRd" in packed.text
    assert "2020-05-10" not in packed.text


def test_split_keeps_the_head_and_the_tail_within_budget():
    sizes = [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    head, tail = _split(sizes, 500, 0.4)
    assert head == [0, 1]
    assert sorted(tail) == [7, 8, 9]
    assert sum(sizes[k] for k in head + tail) <= 500
    # A huge newest document does not let older ones jump the gap.
    head, tail = _split([50, 50, 50, 10_000], 300, 0.5)
    assert head == [0, 1, 2] and tail == []
    # Nothing fits: nothing is kept.
    assert _split([500, 500], 100, 0.3) == ([], [])


def test_the_packed_record_fits_its_budget_and_says_how_big_it_is(scope_a: PatientScope):
    tokenizer = Tokenizer()
    for budget in (60, 150, 300, 450, 100_000):
        config = FullContextSettings(window_tokens=1_000, lab_share=0.1, event_share=0.08)
        packed = pack_record(scope_a, tokenizer, budget, config)
        exact = tokenizer.count(packed.text)
        assert exact <= budget, (budget, exact)
        # The reported size is within a few tokens of the exact count.
        assert abs(packed.tokens - exact) <= max(3, 0.03 * exact), (budget, packed.tokens, exact)


def test_a_cut_lab_table_keeps_units_on_what_remains(scope_a: PatientScope):
    config = FullContextSettings(window_tokens=1_000, lab_share=0.08)
    packed = pack_record(scope_a, Tokenizer(), 400, config)
    line = next(x for x in packed.text.splitlines() if x.startswith("[LABS-m-protein]"))
    first_value = line.split(": ", 1)[1].split("; ")[0]
    assert first_value.endswith("g/dL"), line


def test_the_tables_are_capped_only_when_the_record_does_not_fit(scope_a: PatientScope):
    tokenizer = Tokenizer()
    config = FullContextSettings(window_tokens=1_000, lab_share=0.01, event_share=0.01)
    whole = pack_record(scope_a, tokenizer, 100_000, FullContextSettings())
    fits = pack_record(scope_a, tokenizer, tokenizer.count(whole.text) + 40, config)
    assert not fits.truncated and fits.text == whole.text
    # A record just too large keeps every document and cuts the tables to what is left.
    tight = pack_record(scope_a, tokenizer, tokenizer.count(whole.text) - 30, config)
    assert tight.documents_kept == tight.documents_total
    assert 0 < tight.lab_values_dropped + tight.events_dropped < 8


# --- the window: from the settings, the model, or the default ------------------------------


def silent() -> dict[str, object]:
    return final(None, [], "insufficient_evidence")


def test_the_packing_window_comes_from_the_setting_the_model_or_the_default():
    model = ModelSettings(window_margin=1.25)
    unset = FullContextSettings()
    assert packing_window(unset, model, None) == (DEFAULT_WINDOW_TOKENS, "default")
    assert packing_window(unset, model, 10_000) == (8_000, "model")
    assert packing_window(FullContextSettings(window_tokens=5_000), model, 10_000) == (
        5_000,
        "setting",
    )


async def test_without_a_setting_the_record_is_packed_to_the_models_window(scope_a):
    runner = FullContext(Settings(runners={"full_context": {"reserve_tokens": 500}}))
    small = await runner.run(asct_item(), scope_a, MockModel([silent()], window=1_350))
    assert (small.details["window_tokens"], small.details["window_source"]) == (1_000, "model")
    assert small.details["truncated"] is True and small.details["tokens"] <= 1_000 - 500
    assert small.status == "insufficient_evidence" and small.failure is None
    pack = next(e for e in small.trace if e.name == "pack")
    assert "1,000-token window (model)" in pack.summary
    # The same window set by hand packs the same record.
    by_hand = Settings(runners={"full_context": {"reserve_tokens": 500, "window_tokens": 1_000}})
    model = MockModel([silent()])
    same = await FullContext(by_hand).run(asct_item(), scope_a, model)
    assert same.details["window_source"] == "setting"
    assert {k: v for k, v in same.details.items() if k != "window_source"} == {
        k: v for k, v in small.details.items() if k != "window_source"
    }
    # Packings are kept per window: a model with a large window gets the whole record, from
    # the same runner, after the small packing and before another one.
    for window, truncated in ((100_000, False), (1_350, True), (None, False)):
        answer = await runner.run(asct_item(), scope_a, MockModel([silent()], window=window))
        assert answer.details["truncated"] is truncated
    assert answer.details["window_source"] == "default"
    assert answer.details["window_tokens"] == DEFAULT_WINDOW_TOKENS
    # The model's window can be set for a server that does not say it.
    told = Settings(
        model={"context_window": 1_350}, runners={"full_context": {"reserve_tokens": 500}}
    )
    answer = await FullContext(told).run(asct_item(), scope_a, MockModel([silent()]))
    assert (answer.details["window_tokens"], answer.details["window_source"]) == (1_000, "model")


async def test_a_prompt_too_long_for_the_models_window_fails_before_it_is_sent(scope_a):
    # A window set by hand larger than the model's: the whole record (758 local tokens, 1,023
    # with the 1.35 margin) does not fit a 1,000-token model.
    settings = Settings(runners={"full_context": {"window_tokens": 5_000}})
    model = MockModel([silent()], window=1_000)
    answer = await FullContext(settings).run(asct_item(), scope_a, model)
    assert model.requests == []
    assert answer.status == "failed" and answer.failure == "context_overflow"
    assert "does not fit the model's context window of 1,000 tokens" in (
        answer.failure_message or ""
    )
    assert "prompt does not fit the model's context window" in answer.text
    assert answer.details["window_tokens"] == 5_000 and answer.details["window_source"] == "setting"
    assert answer.details["documents_kept"] == 4  # what was packed, for the record
    assert answer.usage.model_calls == 0 and answer.usage.requests == 0
    errors = [(e.name, e.error) for e in answer.trace if e.kind == "error"]
    assert errors == [("answer", "context_overflow")]
    # A model window with room enough: sent.
    roomy = MockModel([silent()], window=1_100)
    answer = await FullContext(settings).run(asct_item(), scope_a, roomy)
    assert answer.status == "insufficient_evidence" and len(roomy.requests) == 1


async def test_a_window_with_no_room_for_the_record_fails_and_says_which_setting(scope_a):
    # 4,096 server tokens are 3,034 local ones: less than the default 4,000-token reserve.
    model = MockModel([silent()], window=4_096)
    answer = await FullContext(Settings()).run(asct_item(), scope_a, model)
    assert model.requests == []
    assert answer.status == "failed" and answer.failure == "context_overflow"
    assert "leaves no room for the record" in (answer.failure_message or "")
    assert "reserve_tokens" in (answer.failure_message or "")
    assert answer.details["window_tokens"] == 3_034
    lower = Settings(runners={"full_context": {"reserve_tokens": 1_000}})
    answer = await FullContext(lower).run(asct_item(), scope_a, MockModel([silent()], window=4_096))
    assert answer.status == "insufficient_evidence" and answer.details["documents_kept"] > 0
