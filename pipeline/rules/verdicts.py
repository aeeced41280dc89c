"""Findings as every rule type writes them: passed, failed (to money or to a person), unknown, and
the call's total. The one place a deduction and the review note enter a finding
(pipeline/rules/incremental.py and pipeline/store/reprice.py re-price stored findings by them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from pipeline.records import (
    CallScore,
    Finding,
    call_type_zh,
)
from pipeline.rules.schema import (
    Rule,
)
from pipeline.rules.transcript import CallView, Hit, Scope

NOT_APPLICABLE = "不适用："
CAP_NOTE = "（已达本规则扣分上限）"  # an occurrence that deducts nothing because the rule's cap is spent
UNKNOWN = "无法判断："


def total(findings: Sequence[Finding], scorecard_name: str, scorecard_hash: str) -> CallScore:
    """The call's score from its findings (also after people's decisions, pipeline/decisions.py)."""
    deducted = sum(f.deduction for f in findings if not f.passed and not f.needs_review)
    fatal = any(f.fatal and not f.passed and not f.needs_review for f in findings)
    score = 0.0 if fatal else max(0.0, 100.0 - deducted)
    return CallScore(round(score, 2), fatal, tuple(findings), scorecard_name, scorecard_hash)


# ---- verdicts ------------------------------------------------------------------------------------


def review_threshold(rule: Rule, view: CallView) -> float:
    return rule.review_below if rule.review_below is not None else view.matching.review_below


def passed(
    rule: Rule, evidence: str | None = None, *, confidence: float | None = 1.0, **where: object
) -> Finding:
    return Finding(
        rule_id=rule.id,
        passed=True,
        deduction=0.0,
        evidence=evidence,
        confidence=confidence,
        title=rule.title,
        category=rule.category,
        fatal=rule.fatal,
        **where,  # type: ignore[arg-type]
    )


def failed(
    rule: Rule,
    view: CallView,
    evidence: str,
    confidence: float | None,
    *,
    deduction: float | None = None,
    replacement: str | None = None,
    unsure: str | None = None,
    **where: object,
) -> Finding:
    """A violation; it deducts only when the pipeline is sure enough, else a person reviews it.

    `unsure` says why the transcript it was read from is too weak to deduct on (evidence.doubt)."""
    amount = rule.deduction if deduction is None else deduction
    review = (
        rule.always_review
        or unsure is not None
        or (confidence is not None and confidence < review_threshold(rule, view))
    )
    if unsure is not None:
        evidence = f"{evidence}；{unsure}"
    if review:
        evidence = evidence + review_note(amount)
    return Finding(
        rule_id=rule.id,
        passed=False,
        deduction=0.0 if review else amount,
        evidence=evidence,
        confidence=None if confidence is None else round(confidence, 3),
        needs_review=review,
        title=rule.title,
        category=rule.category,
        fatal=rule.fatal,
        replacement=replacement,
        **where,  # type: ignore[arg-type]
    )


def review_note(amount: float) -> str:
    """What ends the evidence of a finding sent to review (the one place a deduction enters a
    finding's text: pipeline/rules/incremental.py re-prices stored findings by it)."""
    return f"（待人工复核{f'，确认后扣 {amount:g} 分' if amount else ''}）"


def unknown(rule: Rule, view: CallView, reason: str) -> Finding:
    """The rule could not be judged (a metric is missing): never a silent pass."""
    if rule.when_unknown == "fail":
        return failed(rule, view, UNKNOWN + reason + "（评分表规定按不合格处理）", 1.0)
    if rule.when_unknown == "pass":
        return passed(rule, UNKNOWN + reason + "（评分表规定按合格处理）", confidence=None)
    return replace(
        passed(rule, UNKNOWN + reason + "（待人工复核）", confidence=None),
        needs_review=True,
    )


def not_applicable_reason(rule: Rule, view: CallView) -> str | None:
    """Why the rule does not apply to this call, or None when it does."""
    return applicability(rule, view)[0]


def applicability(rule: Rule, view: CallView) -> tuple[str | None, str]:
    """(why the rule does not apply, or None; what made it apply, for the evidence)."""
    condition = rule.applies_if
    if condition is None:
        return None, ""
    because = []
    if condition.call_type is not None:
        call_type = (view.metrics.call_type if view.metrics else None) or view.meta.call_type
        if call_type not in condition.call_type:
            allowed = "、".join(call_type_zh(code) for code in condition.call_type)
            return f"来电类型为 {call_type_zh(call_type)}，本规则只适用于 {allowed}", ""
        because.append(f"来电类型 {call_type_zh(call_type)}")
    if condition.customer_chars_max is not None:
        said = sum(len(x.norm.text) for x in view.of("customer"))
        if said > condition.customer_chars_max:
            return (
                f"客户说了 {said} 个字（本规则只看客户不超过 {condition.customer_chars_max} 个字的电话）",
                "",
            )
        because.append(f"客户只说了 {said} 个字")
    if condition.said is not None:
        hits = view.find(condition.said.patterns, view.scope(condition.said.speaker, None))
        if not hits:
            examples = "、".join(p for p in condition.said.patterns[:3] if not p.startswith("re:"))
            who = view.speaker_label(condition.said.speaker)
            return f"{who}没有说到“{examples}”这类话", ""
        because.append(f"{view.speaker_label(condition.said.speaker)}说了 {hits[0].quote()}")
    return None, "；".join(because)


def pattern_example(patterns: Iterable[str]) -> str:
    """A pattern a person can read: the first literal one."""
    literal = [p for p in patterns if not p.startswith("re:")]
    return f"如“{literal[0]}”" if literal else ""


# An almost-match the recogniser was unsure of: below any sensible review_below.
UNSURE_NEAR_CONFIDENCE = 0.5


def miss_confidence(view: CallView, patterns: Iterable[str], scope: Scope) -> tuple[float, Hit | None]:
    """Confidence that a required phrase is really absent: lower when something almost matched, and
    at most `UNSURE_NEAR_CONFIDENCE` when the recogniser was unsure of a character of that
    almost-match (在西民的耐心等待 for 感谢您的耐心等待: said, and misheard, is as likely as not) or
    when an utterance begins with the phrase but for its first characters (您的耐心等待: whisper
    lost the turn's first syllable, CallView.clipped_onset), or when a stretch sounds like the
    phrase syllable by syllable (请您收到 for 请您稍等, CallView.sounds_like)."""
    patterns = list(patterns)
    clipped = view.clipped_onset(patterns, scope)
    if clipped is not None:
        return UNSURE_NEAR_CONFIDENCE, clipped
    alike = view.sounds_like(patterns, scope, unsure_as_misheard=True)
    if alike is not None:
        return UNSURE_NEAR_CONFIDENCE, alike
    excess, near, unsure = view.near_miss(patterns, scope)
    margin = view.matching.near_miss_margin
    if near is None or margin <= 0:
        return 1.0, None
    confidence = round(0.5 + 0.5 * min(1.0, excess / margin), 3)
    return (min(confidence, UNSURE_NEAR_CONFIDENCE) if unsure else confidence), near


def occurrence_findings(rule: Rule, view: CallView, items: list[tuple[str, float, dict]]) -> list[Finding]:
    """One finding per occurrence (per_occurrence rules), deductions capped at max_deduction."""
    findings = []
    cap = rule.max_deduction
    total = 0.0
    for evidence, confidence, where in items:
        left = rule.deduction if cap is None else max(0.0, min(rule.deduction, cap - total))
        note = "" if left > 0 or rule.deduction == 0 else CAP_NOTE
        finding = failed(rule, view, evidence + note, confidence, deduction=left, **where)
        if not finding.needs_review:
            total += finding.deduction
        findings.append(finding)
    return findings


def clock(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"
