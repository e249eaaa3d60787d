"""The report's figures per runner and per pair of runners.

Concordance overall, by question level and by record-length decile; answer counts; usage; and
paired McNemar comparisons with Holm adjustment. A new statistic of a runner is computed here
(in :func:`runner_result`) and declared on the model.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recordagent.evaluation.failures import answer_failure
from recordagent.evaluation.log import RunRecord
from recordagent.evaluation.report.model import (
    LEVEL_NAMES,
    SCORE_STATES,
    STATUSES,
    DecileRange,
    PairedComparison,
    RunInfo,
    RunnerResult,
    Stratum,
    UsageSummary,
)
from recordagent.evaluation.report.runs import ScoredRun
from recordagent.evaluation.stats import concordance, deciles, holm, mcnemar
from recordagent.questions.items import EvalItem
from recordagent.runners.timing import time_by_step

__all__ = [
    "RecordLengths",
    "level_order",
    "paired_comparisons",
    "record_lengths",
    "runner_result",
]


@dataclass(frozen=True)
class RecordLengths:
    """Record length per item (documents, tokens) and the patient decile of each."""

    documents: dict[str, int]
    tokens: dict[str, int]
    document_decile: dict[str, int]
    token_decile: dict[str, int]

    def document_ranges(self) -> list[DecileRange]:
        """The documents each decile covers."""
        return _decile_ranges(self.document_decile, self.documents)

    def token_ranges(self) -> list[DecileRange]:
        """The tokens each decile covers."""
        return _decile_ranges(self.token_decile, self.tokens)


def record_lengths(runs: Sequence[ScoredRun], items: Mapping[str, EvalItem]) -> RecordLengths:
    """The record length of every answered item, ranked into deciles of patients."""
    lengths = {
        r.item.id: (r.record_documents, r.record_tokens) for run in runs for r in run.records
    }
    # Record length belongs to the patient: deciles rank patients (each once, however many
    # items they have), and each item takes its patient's decile.
    patient_of = {item_id: items[item_id].patient_id for item_id in lengths}
    by_patient = {patient_of[i]: length for i, length in lengths.items()}
    patients = sorted(by_patient)
    doc_rank = dict(zip(patients, deciles([by_patient[p][0] for p in patients]), strict=True))
    tok_rank = dict(zip(patients, deciles([by_patient[p][1] for p in patients]), strict=True))
    return RecordLengths(
        documents={i: v[0] for i, v in lengths.items()},
        tokens={i: v[1] for i, v in lengths.items()},
        document_decile={i: doc_rank[patient_of[i]] for i in lengths},
        token_decile={i: tok_rank[patient_of[i]] for i in lengths},
    )


def level_order(items: Mapping[str, EvalItem]) -> list[str]:
    """The level keys present among the items, in report order."""
    present = {str(i.level) if i.level is not None else "none" for i in items.values()}
    return [key for key in LEVEL_NAMES if key in present]


def runner_result(
    run: ScoredRun,
    lengths: RecordLengths,
    stats: dict[str, Any],
    levels: Sequence[str],
) -> RunnerResult:
    """Everything the report says about one scored run.

    Args:
        run: The run, scored.
        lengths: Record lengths and deciles of the items.
        stats: ``alpha``, ``n_boot`` and ``seed`` of every concordance.
        levels: The level keys to stratify by, in order.
    """
    correct = run.correct()
    clusters = [r.item.patient_id for r in run.records]

    def strata(
        key_of: Mapping[str, str], order: Iterable[str], names: Mapping[str, str]
    ) -> list[Stratum]:
        out = []
        for key in order:
            chosen = [k for k, r in enumerate(run.records) if key_of[r.item.id] == key]
            if not chosen:
                continue
            result = concordance(
                [correct[k] for k in chosen], [clusters[k] for k in chosen], **stats
            )
            out.append(Stratum(key=key, label=names[key], concordance=result))
        return out

    level_of = {
        r.item.id: str(r.item.level) if r.item.level is not None else "none" for r in run.records
    }
    deciles_named = {str(d): f"decile {d}" for d in range(1, 11)}
    decile_keys = [str(d) for d in range(1, 11)]
    scores = Counter("unscored" if s is None else s.state for s in run.scores)
    return RunnerResult(
        name=run.name,
        run=_run_info(run),
        concordance=concordance(correct, clusters, **stats),
        by_level=strata(level_of, levels, LEVEL_NAMES),
        by_document_decile=strata(
            {i: str(d) for i, d in lengths.document_decile.items()}, decile_keys, deciles_named
        ),
        by_token_decile=strata(
            {i: str(d) for i, d in lengths.token_decile.items()}, decile_keys, deciles_named
        ),
        status_counts={s: sum(1 for r in run.records if r.answer.status == s) for s in STATUSES},
        score_counts={s: scores.get(s, 0) for s in SCORE_STATES},
        usage=_usage(run.records),
        failures=dict(
            # answer_failure: also the causes of logs written before answers kept them.
            Counter(
                cause
                for r in run.records
                if r.error is None and (cause := answer_failure(r.answer)) is not None
            )
        ),
        time_by_step=time_by_step(r.answer for r in run.records),
    )


def _run_info(run: ScoredRun) -> RunInfo:
    m = run.manifest
    return RunInfo(
        run_id=m.run_id,
        runner=m.runner,
        model=m.model,
        mock=m.mock,
        prompt_version=m.prompt_version,
        settings_hash=m.settings_hash,
        data_fingerprint=m.data_fingerprint,
        template_set_version=m.template_set_version,
        package_version=m.package_version,
        git_sha=m.git_sha,
        created=m.created,
        records=len(run.records),
    )


def _usage(records: Sequence[RunRecord]) -> UsageSummary:
    usages = [r.answer.usage for r in records]
    costs = [u.cost_usd for u in usages if u.cost_usd is not None]
    totals = [u.total_tokens for u in usages]
    walls = [u.wall_s for u in usages]
    return UsageSummary(
        answers=len(usages),
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
        total_tokens=sum(totals),
        median_tokens=statistics.median(totals) if totals else 0.0,
        tokens_reported=all(u.tokens_reported for u in usages),
        priced_answers=len(costs),
        cost_usd=sum(costs) if costs else None,
        median_cost_usd=statistics.median(costs) if costs else None,
        median_latency_s=statistics.median(walls) if walls else 0.0,
        total_latency_s=sum(walls),
        model_calls=sum(u.model_calls for u in usages),
        requests=sum(u.requests for u in usages),
        tool_calls=sum(u.tool_calls for u in usages),
    )


def paired_comparisons(runs: Sequence[ScoredRun]) -> list[PairedComparison]:
    """McNemar for every pair of runners, Holm-adjusted over the pairs."""
    graded = []
    for run in runs:
        by_id = {
            r.item.id: c for r, c in zip(run.records, run.correct(), strict=True) if c is not None
        }
        graded.append(by_id)
    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(runs), 2):
        common = sorted(graded[i].keys() & graded[j].keys())
        right_a = [graded[i][k] for k in common]
        right_b = [graded[j][k] for k in common]
        pairs.append((a.name, b.name, common, right_a, right_b, mcnemar(right_a, right_b)))
    exact = holm([p[5].p_exact for p in pairs])
    midp = holm([p[5].p_midp for p in pairs])
    return [
        PairedComparison(
            runner_a=name_a,
            runner_b=name_b,
            n=len(common),
            a_correct=sum(right_a),
            b_correct=sum(right_b),
            test=test,
            p_exact_holm=exact[k],
            p_midp_holm=midp[k],
        )
        for k, (name_a, name_b, common, right_a, right_b, test) in enumerate(pairs)
    ]


def _decile_ranges(decile_of: Mapping[str, int], value_of: Mapping[str, int]) -> list[DecileRange]:
    members: dict[int, list[int]] = defaultdict(list)
    for item_id, decile in decile_of.items():
        members[decile].append(value_of[item_id])
    return [
        DecileRange(decile=d, low=min(v), high=max(v), items=len(v))
        for d, v in sorted(members.items())
    ]
