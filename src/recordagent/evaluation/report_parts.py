"""The pieces of the evaluation report, computed from the runs.

Runs named and checked against each other, per-runner results (concordance overall and by
level and record-length decile, answer counts, usage), paired McNemar comparisons, annotator
agreement and the error tables. :func:`~recordagent.evaluation.report.build_report` puts them
together into an :class:`~recordagent.evaluation.report.EvaluationReport`.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, ReferenceLabel, Severity
from recordagent.evaluation.log import RunLog, RunManifest, RunRecord
from recordagent.evaluation.report import (
    _LEVEL_NAMES,
    _STATUSES,
    EXPERTS,
    Agreement,
    AnnotatorPair,
    DecileRange,
    ErrorItem,
    ErrorRow,
    PairedComparison,
    RunInfo,
    RunInput,
    RunnerResult,
    Stratum,
    UsageSummary,
)
from recordagent.evaluation.scorers import Score, values_match
from recordagent.evaluation.stats import (
    cohen_kappa,
    concordance,
    holm,
    mcnemar,
    percent_agreement,
)
from recordagent.questions.items import EvalItem

_SEVERITY_RANK = {"minor": 1, "clinically_significant": 2}


@dataclass
class _Run:
    name: str
    manifest: RunManifest
    records: list[RunRecord]
    scores: list[Score | None] = field(default_factory=list)

    def correct(self) -> list[bool | None]:
        return [
            None if s is None or s.state == "ungraded" else s.state == "correct"
            for s in self.scores
        ]


def _named_runs(runs: Sequence[RunInput]) -> list[_Run]:
    """Each run with its report name: the runner, or runner@model when a runner ran twice."""
    pairs = [(r.manifest, r.records) if isinstance(r, RunLog) else (r[0], list(r[1])) for r in runs]
    runner_count = Counter(m.runner for m, _ in pairs)
    loaded = []
    seen: set[str] = set()
    for manifest, records in pairs:
        name = (
            manifest.runner
            if runner_count[manifest.runner] == 1
            else f"{manifest.runner}@{manifest.model}"
        )
        if name in seen:
            raise UserError(
                f"two runs of runner {manifest.runner!r} on model {manifest.model!r}: "
                "report each once (a resumed run continues its own log)"
            )
        seen.add(name)
        loaded.append(_Run(name=name, manifest=manifest, records=list(records)))
    # Runs compared item by item must have read the same records and the same questions.
    for attribute in ("data_fingerprint", "template_set_version"):
        values = {getattr(m, attribute) for m, _ in pairs}
        if len(values) > 1:
            shown = ", ".join(sorted(str(v) for v in values))
            raise UserError(
                f"the runs differ in {attribute} ({shown}): they did not answer the same "
                "questions over the same data, so they cannot be compared item by item"
            )
    return loaded


def _items(runs: Sequence[_Run]) -> dict[str, EvalItem]:
    """Every item of the runs by id; an id must mean the same item in every run."""
    items: dict[str, EvalItem] = {}
    for run in runs:
        for record in run.records:
            known = items.setdefault(record.item.id, record.item)
            if known != record.item:
                raise UserError(
                    f"item {record.item.id!r} differs between the runs (run {run.manifest.run_id} "
                    "has another question or answer type): compare runs over the same items"
                )
    return items


def _level_order(items: Mapping[str, EvalItem]) -> list[str]:
    present = {str(i.level) if i.level is not None else "none" for i in items.values()}
    return [key for key in _LEVEL_NAMES if key in present]


def _runner_result(
    run: _Run,
    doc_decile: Mapping[str, int],
    tok_decile: Mapping[str, int],
    stats: dict[str, Any],
    levels: Sequence[str],
) -> RunnerResult:
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
        by_level=strata(level_of, levels, _LEVEL_NAMES),
        by_document_decile=strata(
            {i: str(d) for i, d in doc_decile.items()}, decile_keys, deciles_named
        ),
        by_token_decile=strata(
            {i: str(d) for i, d in tok_decile.items()}, decile_keys, deciles_named
        ),
        status_counts={s: sum(1 for r in run.records if r.answer.status == s) for s in _STATUSES},
        score_counts={
            s: scores.get(s, 0) for s in ("correct", "incorrect", "ungraded", "unscored")
        },
        usage=_usage(run.records),
    )


def _run_info(run: _Run) -> RunInfo:
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
        tool_calls=sum(u.tool_calls for u in usages),
    )


def _comparisons(runs: Sequence[_Run]) -> list[PairedComparison]:
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


def _labels_by_item(labels: Sequence[Label]) -> dict[str, list[Label]]:
    grouped: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        grouped[label.item_id].append(label)
    return grouped


def _worst(severities: Iterable[Severity | None]) -> Severity | None:
    """The most severe of the given severities (clinically significant over minor)."""
    worst: Severity | None = None
    for severity in severities:
        if severity is not None and (
            worst is None or _SEVERITY_RANK[severity] > _SEVERITY_RANK[worst]
        ):
            worst = severity
    return worst


def _error_items(
    runs: Sequence[_Run],
    references: Mapping[str, ReferenceLabel] | None,
    review: Mapping[tuple[str, str], Severity],
    item_severity: Mapping[str, Severity | None],
) -> list[ErrorItem]:
    out = []
    for run in runs:
        for record, score in zip(run.records, run.scores, strict=True):
            if score is None or score.state != "incorrect":
                continue
            item, answer = record.item, record.answer
            reference = references.get(item.id) if references is not None else None
            severity = review.get((item.id, run.name), item_severity.get(item.id))
            out.append(
                ErrorItem(
                    item_id=item.id,
                    patient_id=item.patient_id,
                    runner=run.name,
                    question=item.question,
                    level=item.level,
                    reference=_jsonable(reference.value) if reference is not None else None,
                    answer=_jsonable(answer.value),
                    status=answer.status,
                    citations=[c.id for c in answer.citations],
                    explanation=score.explanation,
                    severity=severity,
                )
            )
    return out


def _jsonable(value: Any) -> Any:
    """A value as JSON would carry it (dates as ISO strings)."""
    return json.loads(json.dumps(value, default=str))


def _system_errors(result: RunnerResult, errors: Sequence[ErrorItem]) -> ErrorRow:
    severities = Counter(e.severity or "unrated" for e in errors)
    n = result.concordance.n
    return ErrorRow(
        source=result.name,
        kind="system",
        items=n,
        errors=len(errors),
        rate=len(errors) / n if n else 0.0,
        clinically_significant=severities["clinically_significant"],
        minor=severities["minor"],
        unrated=severities["unrated"],
    )


def _expert_errors(
    agreement: Agreement, disagreeing: Sequence[str], item_severity: Mapping[str, Severity | None]
) -> ErrorRow:
    severities = Counter(item_severity.get(i) or "unrated" for i in disagreeing)
    return ErrorRow(
        source=EXPERTS,
        kind="expert",
        items=agreement.labelled_items,
        errors=agreement.disagreeing_items,
        rate=agreement.disagreement_rate,
        clinically_significant=severities["clinically_significant"],
        minor=severities["minor"],
        unrated=severities["unrated"],
    )


def _agreement(
    labels: Sequence[Label], items: Mapping[str, EvalItem]
) -> tuple[Agreement | None, list[str]]:
    """Agreement of the annotators' own labels (adjudications resolve, they do not vote).

    Two labels agree when the scorer matches them (``values_match``: tolerances and synonyms
    apply). For kappa, a value the scorer matches with the first annotator's is given the first
    annotator's category, so that kappa and percent agreement count the same agreements.
    """
    own = [lab for lab in labels if not lab.adjudicated and lab.item_id in items]
    annotators = sorted({lab.annotator for lab in own})
    if len(annotators) < 2:
        return None, []
    value: dict[tuple[str, str], Any] = {(lab.item_id, lab.annotator): lab.value for lab in own}
    by_item: dict[str, set[str]] = defaultdict(set)
    for item_id, annotator in value:
        by_item[item_id].add(annotator)
    agree: dict[tuple[str, str, str], bool] = {}
    for item_id, who in by_item.items():
        for a, b in itertools.combinations(sorted(who), 2):
            agree[(item_id, a, b)] = values_match(
                items[item_id], value[(item_id, a)], value[(item_id, b)]
            )

    pairs = []
    for a, b in itertools.combinations(annotators, 2):
        shared = sorted(i for i, who in by_item.items() if a in who and b in who)
        if not shared:
            continue
        first = [_category(value[(i, a)]) for i in shared]
        second = [
            first[k] if agree[(i, a, b)] else _category(value[(i, b)]) for k, i in enumerate(shared)
        ]
        pairs.append(
            AnnotatorPair(
                annotator_a=a,
                annotator_b=b,
                items=len(shared),
                percent_agreement=percent_agreement(first, second),
                kappa=cohen_kappa(first, second),
            )
        )
    labelled = sorted(i for i, who in by_item.items() if len(who) >= 2)
    disagreeing = [i for i in labelled if not all(v for (j, _, _), v in agree.items() if j == i)]
    return (
        Agreement(
            annotators=annotators,
            labelled_items=len(labelled),
            disagreeing_items=len(disagreeing),
            disagreement_rate=len(disagreeing) / len(labelled) if labelled else 0.0,
            pairs=pairs,
        ),
        disagreeing,
    )


def _category(value: Any) -> str:
    """A hashable stand-in for a label value (lists compared as sets)."""
    if isinstance(value, list):
        value = sorted(json.dumps(v, default=str, sort_keys=True) for v in value)
    return json.dumps(value, default=str, sort_keys=True)
