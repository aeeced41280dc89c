"""The scorecard over one call: one matcher per rule type, one finding per rule (plus extra occurrences).

`score_call` is a pure function over records. Score = 100 minus the deductions of failed findings,
never below 0; a confirmed fatal finding (一票否决) sets it to 0. A finding the pipeline is unsure of
(confidence below the scorecard's `review_below`, a value it could not measure, or text the
recogniser itself was unsure of: pipeline/rules/evidence.py) is marked `needs_review` and deducts
nothing until a person confirms it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.records import (
    CallMeta,
    CallMetrics,
    CallScore,
    Finding,
    Utterance,
)
from pipeline.rules.metric_checks import check_hold, check_metric
from pipeline.rules.phrase_checks import (
    check_forbidden_phrase,
    check_phrase_count,
    check_question_count,
    check_required_phrase,
    check_sequence,
)
from pipeline.rules.scorecard import Scorecard
from pipeline.rules.transcript import CallView
from pipeline.rules.verdicts import (
    total,
)


def score_call(
    utterances: Sequence[Utterance], metrics: CallMetrics | None, meta: CallMeta, scorecard: Scorecard
) -> CallScore:
    """Every rule of the scorecard over one call's utterances (with char timings) and metrics."""
    view = CallView.build(utterances, metrics, meta, scorecard.spec.matching, scorecard.costs)
    findings: list[Finding] = []
    for rule in scorecard.spec.rules:
        findings.extend(CHECKERS[rule.type](rule, view))
    return total(findings, scorecard.name, scorecard.hash)


# ---- dispatch ------------------------------------------------------------------------------------

CHECKERS: dict[str, Callable[..., list[Finding]]] = {
    "required_phrase": check_required_phrase,
    "forbidden_phrase": check_forbidden_phrase,
    "sequence": check_sequence,
    "metric": check_metric,
    "hold": check_hold,
    "question_count": check_question_count,
    "phrase_count": check_phrase_count,
}
