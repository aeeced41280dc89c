"""People's verdicts on findings — a supervisor's review of a `needs_review` finding, a decided
appeal (申诉) — and how every scoring of a call applies them.

A verdict names its finding by rule and evidence time, which survive re-scoring (finding indexes do
not). `deducts`: a finding the pipeline was unsure of deducts its rule's amount; `void`: the finding
deducts nothing. The latest verdict per finding wins. `callqa rescore` applies them too (in
`rescore_call`), so a re-score with a tuned scorecard does not undo a person's decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb

from pipeline.errors import CallQAError
from pipeline.records import CallScore, Finding
from pipeline.rules.calibrate import Label
from pipeline.rules.scorecard import Scorecard
from pipeline.rules.verdicts import CAP_NOTE, total
from pipeline.store import Store

SAME_TIME_S = 0.05  # evidence times stored as DOUBLE: a verdict's time matches within this
_REVIEW_NOTE = re.compile(r"（待人工复核[^）]*）")
CONFIRMED_NOTE = "（人工复核：确认扣分）"
VOID_NOTE = "（人工结论：不扣分）"


@dataclass(frozen=True)
class Decision:
    rule_id: str
    start_s: float | None
    verdict: str  # deducts | void
    source: str  # review | appeal


def decisions_for(db: duckdb.DuckDBPyConnection, call_id: str) -> list[Decision]:
    """The call's verdicts, oldest first (so that a later one overrides an earlier one)."""
    rows = db.execute(
        "SELECT rule_id, start_s, verdict, source FROM finding_decisions WHERE call_id = ? "
        "ORDER BY decided_at",
        [call_id],
    ).fetchall()
    return [Decision(*row) for row in rows]


def same_finding(finding: Finding, rule_id: str, start_s: float | None) -> bool:
    if finding.rule_id != rule_id:
        return False
    if finding.start is None or start_s is None:
        return finding.start is None and start_s is None
    return abs(finding.start - start_s) <= SAME_TIME_S


def rule_deductions(card: Scorecard) -> Callable[[str], float | None]:
    amounts = {rule.id: rule.deduction for rule in card.spec.rules}
    return amounts.get


def rule_caps(card: Scorecard) -> Callable[[str], float | None]:
    """Each per-occurrence rule's `max_deduction` (None: no cap)."""
    caps = {rule.id: getattr(rule, "max_deduction", None) for rule in card.spec.rules}
    return caps.get


def apply_decisions(
    findings: Sequence[Finding],
    decisions: Sequence[Decision],
    deduction_of: Callable[[str], float | None],
    cap_of: Callable[[str], float | None] | None = None,
) -> tuple[Finding, ...]:
    """The findings with each one's latest verdict applied, capped rules kept within their caps.
    Applying twice changes nothing more."""
    out = []
    for finding in findings:
        verdicts = [d for d in decisions if same_finding(finding, d.rule_id, d.start_s)]
        if verdicts and not finding.passed:
            finding = _decided(finding, verdicts[-1].verdict, deduction_of)
        out.append(finding)
    return _within_caps(out, deduction_of, cap_of) if cap_of is not None else tuple(out)


def _within_caps(
    findings: Sequence[Finding],
    deduction_of: Callable[[str], float | None],
    cap_of: Callable[[str], float | None],
) -> tuple[Finding, ...]:
    """A capped rule's deductions shared out again in order after people's verdicts: a confirmed
    occurrence cannot take the rule past its cap, and a voided one frees its share for the next."""
    spent: dict[str, float] = {}
    out = []
    for finding in findings:
        cap, amount = cap_of(finding.rule_id), deduction_of(finding.rule_id)
        if cap is not None and amount is not None and not finding.passed and not finding.needs_review:
            left = max(0.0, min(amount, cap - spent.get(finding.rule_id, 0.0)))
            evidence = (finding.evidence or "").replace(CAP_NOTE, "")
            finding = replace(
                finding, deduction=left, evidence=evidence + (CAP_NOTE if left < amount else "")
            )
            spent[finding.rule_id] = spent.get(finding.rule_id, 0.0) + left
        out.append(finding)
    return tuple(out)


def _decided(finding: Finding, verdict: str, deduction_of: Callable[[str], float | None]) -> Finding:
    evidence = _REVIEW_NOTE.sub("", finding.evidence or "")
    if verdict == "void":
        return replace(finding, passed=True, deduction=0.0, needs_review=False, evidence=evidence + VOID_NOTE)
    if not finding.needs_review:
        return finding  # it deducts already
    amount = deduction_of(finding.rule_id)
    if amount is None:
        raise CallQAError(f"评分表中没有规则 {finding.rule_id}，无法确认扣分")
    return replace(finding, needs_review=False, deduction=amount, evidence=evidence + CONFIRMED_NOTE)


def with_decisions(store: Store, call_id: str, score: CallScore, card: Scorecard) -> CallScore:
    """A fresh scoring of the call with people's verdicts applied (for `rescore_call`)."""
    return with_verdicts(score, decisions_for(store.db, call_id), card)


def with_verdicts(score: CallScore, decisions: Sequence[Decision], card: Scorecard) -> CallScore:
    """A fresh scoring with these verdicts applied (the bulk rescore reads them per chunk)."""
    if not decisions:
        return score
    findings = apply_decisions(score.findings, decisions, rule_deductions(card), rule_caps(card))
    return total(findings, score.scorecard_name, score.scorecard_hash)


@dataclass(frozen=True)
class Decided:
    call_id: str
    before: float
    after: float
    changed: bool


def record_decision(
    store: Store,
    call_id: str,
    rule_id: str,
    start_s: float | None,
    verdict: str,
    source: str,
    decided_by: str,
    card: Scorecard,
    comment: str | None = None,
    appeal_id: int | None = None,
) -> Decided:
    """Store a verdict and re-score the call from its current findings (no ASR, no other rule run
    again), in one transaction; the old score stays in the history."""
    current = store.current_score(call_id)
    if current is None:
        raise CallQAError(f"通话 {call_id} 还没有评分")
    if not any(same_finding(f, rule_id, start_s) for f in current.findings):
        raise CallQAError(f"通话 {call_id} 的当前评分中没有这一项（{rule_id}）")
    with store.transaction() as db:
        db.execute(
            "INSERT INTO finding_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [call_id, rule_id, start_s, verdict, source, appeal_id, decided_by, datetime.now(UTC), comment],
        )
        findings = apply_decisions(
            current.findings, decisions_for(db, call_id), rule_deductions(card), rule_caps(card)
        )
        score = total(findings, current.scorecard_name, current.scorecard_hash)
        changed = store.save_decided_score(call_id, score, db)
    return Decided(call_id, current.score, score.score, changed)


def human_labels(db: duckdb.DuckDBPyConnection) -> list[Label]:
    """People's verdicts as calibration labels (`callqa calibrate --portal`): per call and rule, a
    violation when any decided finding of it deducts (a confirmed review, an upheld appeal), passed
    when every decided one was voided (a rejected review, an overturned appeal)."""
    rows = db.execute(
        "WITH latest AS (SELECT call_id, rule_id, arg_max(verdict, decided_at) AS verdict "
        "  FROM finding_decisions GROUP BY call_id, rule_id, start_s "
        "  UNION ALL SELECT call_id, rule_id, 'deducts' FROM appeals WHERE state = 'upheld') "
        "SELECT call_id, rule_id, bool_and(verdict = 'void') FROM latest GROUP BY call_id, rule_id "
        "ORDER BY call_id, rule_id"
    ).fetchall()
    return [Label(call_id, rule_id, bool(passed), None, 0) for call_id, rule_id, passed in rows]
