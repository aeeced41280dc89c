"""The scorecard over one call: one matcher per rule type, one finding per rule (plus extra occurrences).

`score_call` is a pure function over records. Score = 100 minus the deductions of failed findings,
never below 0; a confirmed fatal finding (一票否决) sets it to 0. A finding the pipeline is unsure of
(confidence below the scorecard's `review_below`, a value it could not measure, or text the
recogniser itself was unsure of: pipeline/rules/evidence.py) is marked `needs_review` and deducts
nothing until a person confirms it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from pipeline.metrics.interruptions import words_window
from pipeline.records import (
    SOURCE_LABELS_ZH,
    CallMeta,
    CallMetrics,
    CallScore,
    Finding,
    Hold,
    Interruption,
    Utterance,
    call_type_zh,
)
from pipeline.rules.evidence import doubt
from pipeline.rules.intent import QUESTION_MARKS, Intent
from pipeline.rules.matching import canonical_text, compile_pattern
from pipeline.rules.questions import count_questions
from pipeline.rules.schema import (
    LIST_METRIC_ITEMS,
    ForbiddenPhrase,
    HoldRule,
    MetricRule,
    PhraseCount,
    QuestionCount,
    RequiredPhrase,
    Rule,
    SequenceRule,
)
from pipeline.rules.scorecard import Scorecard
from pipeline.rules.transcript import BY_MEANING, CallView, Hit, Line, Scope

NOT_APPLICABLE = "不适用："
CAP_NOTE = "（已达本规则扣分上限）"  # an occurrence that deducts nothing because the rule's cap is spent
UNKNOWN = "无法判断："


def score_call(
    utterances: Sequence[Utterance], metrics: CallMetrics | None, meta: CallMeta, scorecard: Scorecard
) -> CallScore:
    """Every rule of the scorecard over one call's utterances (with char timings) and metrics."""
    view = CallView.build(utterances, metrics, meta, scorecard.spec.matching, scorecard.costs)
    findings: list[Finding] = []
    for rule in scorecard.spec.rules:
        findings.extend(CHECKERS[rule.type](rule, view))
    return total(findings, scorecard.name, scorecard.hash)


def total(findings: Sequence[Finding], scorecard_name: str, scorecard_hash: str) -> CallScore:
    """The call's score from its findings (also after people's decisions, pipeline/decisions.py)."""
    deducted = sum(f.deduction for f in findings if not f.passed and not f.needs_review)
    fatal = any(f.fatal and not f.passed and not f.needs_review for f in findings)
    score = 0.0 if fatal else max(0.0, 100.0 - deducted)
    return CallScore(round(score, 2), fatal, tuple(findings), scorecard_name, scorecard_hash)


# ---- verdicts ------------------------------------------------------------------------------------


def _threshold(rule: Rule, view: CallView) -> float:
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
        or (confidence is not None and confidence < _threshold(rule, view))
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


def _not_applicable_reason(rule: Rule, view: CallView) -> str | None:
    """Why the rule does not apply to this call, or None when it does."""
    return _applicability(rule, view)[0]


def _applicability(rule: Rule, view: CallView) -> tuple[str | None, str]:
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


def _example(patterns: Iterable[str]) -> str:
    """A pattern a person can read: the first literal one."""
    literal = [p for p in patterns if not p.startswith("re:")]
    return f"如“{literal[0]}”" if literal else ""


def _miss_confidence(view: CallView, patterns: Iterable[str], scope: Scope) -> tuple[float, Hit | None]:
    """Confidence that a required phrase is really absent: lower when something almost matched."""
    excess, near = view.near_miss(list(patterns), scope)
    margin = view.matching.near_miss_margin
    if near is None or margin <= 0:
        return 1.0, None
    return round(0.5 + 0.5 * min(1.0, excess / margin), 3), near


def _occurrences(rule: Rule, view: CallView, items: list[tuple[str, float, dict]]) -> list[Finding]:
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


# ---- required_phrase -----------------------------------------------------------------------------


def check_required_phrase(rule: RequiredPhrase, view: CallView) -> list[Finding]:
    reason, because = _applicability(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    scope = view.scope(rule.speaker, rule.window)
    who = view.speaker_label(rule.speaker)
    if not scope.lines:
        return [
            failed(rule, view, f"规定范围内没有{who}的话语（转写或角色可能有误）", 0.0, speaker=rule.speaker)
        ]
    found: list[Hit] = []
    missing: list[tuple[str, list[str]]] = []
    partial: list[Hit] = []  # an utterance with all elements of a group's intent but one
    intents = rule.intents()
    for name, patterns in rule.pattern_groups().items():
        hits = view.find(patterns, scope, label=name) if patterns else []
        intent = intents.get(name)
        if intent is not None:
            by_meaning, almost = view.find_intent(intent, scope, label=name)
            hits += by_meaning
            if almost is not None and not hits:
                partial.append(almost)
        if hits:
            found.append(max(hits, key=lambda h: (h.similarity, -h.start)))
        else:
            missing.append((name, patterns or _intent_example(intent)))
    if not missing:
        return [
            passed(
                rule,
                " / ".join(
                    dict.fromkeys(
                        h.quote() + (f"（{h.pattern}）" if h.pattern.startswith(BY_MEANING) else "")
                        for h in found
                    )
                ),
                confidence=round(min(h.similarity for h in found), 3),
                start=min(h.start for h in found),
                end=max(h.end for h in found),
                speaker=rule.speaker,
            )
        ]
    sentences = rule.pattern_groups()
    confidence, near = _miss_confidence(view, [p for name, _ in missing for p in sentences[name]], scope)
    wanted = "；".join(
        f"{name or rule.title}{'（' + _example(patterns) + '）' if _example(patterns) else ''}"
        for name, patterns in missing
    )
    evidence = f"{who}没有说到：{wanted}" + (f"（本通话需要：{because}）" if because else "")
    if near is not None and confidence < 1.0:
        evidence += f"；最接近的是 {near.quote()}"
    start, end = scope.span
    unsure = doubt(scope.lines, view.matching, missing_chars=_fewest_chars(rule, [n for n, _ in missing]))
    if rule.partial == "review" and (found or partial):
        # part of it was said: the rest may be in other words or misheard — a person decides
        heard = "、".join(
            [f"{h.label or rule.title} {h.quote()}" for h in found]
            + [f"{h.label or rule.title}（{h.pattern}）{h.quote()}" for h in partial]
        )
        evidence += f"；只说到了一部分：{heard}"
        confidence = min(confidence, PARTIAL_CONFIDENCE)
        unsure = unsure or "其余部分可能换了说法，或者没有识别出来"
    return [
        failed(rule, view, evidence, confidence, start=start, end=end, speaker=rule.speaker, unsure=unsure)
    ]


def _fewest_chars(rule: RequiredPhrase, groups: list[str]) -> int:
    """The fewest spoken characters that could say any of the missing groups (a sentence, or one
    word of every element of its intent)."""
    sentences = rule.pattern_groups()
    intents = rule.intents()
    counts: list[int] = []
    for name in groups:
        counts += [compile_pattern(p).length or 1 for p in sentences[name]]
        intent = intents.get(name)
        if intent is not None:
            counts.append(sum(_shortest_word(words) for _, words in intent.elements))
    return min(counts, default=0)


def _shortest_word(words: tuple[str, ...]) -> int:
    """Characters of an element's shortest word (a question mark is no spoken character)."""
    return min((len(canonical_text(w)) for w in words if w not in QUESTION_MARKS), default=0)


PARTIAL_CONFIDENCE = 0.5  # part of a required phrase heard: below any sensible review_below


def _intent_example(intent: Intent | None) -> list[str]:
    """A readable stand-in for an intent in evidence: the first word of each element, joined by …."""
    if intent is None:
        return []
    return ["…".join(words[0] for _, words in intent.elements if words[0] not in QUESTION_MARKS)]


# ---- forbidden_phrase ----------------------------------------------------------------------------


def check_forbidden_phrase(rule: ForbiddenPhrase, view: CallView) -> list[Finding]:
    reason = _not_applicable_reason(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    scope = view.scope(rule.speaker, rule.window)
    hits: list[tuple[Hit, str | None]] = []
    for entry in rule.entries():
        for hit in view.find(
            entry.patterns,
            scope,
            exceptions=[*rule.exceptions, *entry.exceptions],
            ignore_quoted=rule.ignore_quoted,
            label=entry.name or "",
        ):
            hits.append((hit, entry.replacement or rule.replacement))
    hits = _distinct(hits)
    if not hits:
        return [passed(rule, None, speaker=rule.speaker)]
    trust = rule.asr_full_trust if rule.asr_full_trust is not None else view.matching.asr_full_trust
    if rule.per_occurrence:
        items = [
            (
                f"{hit.quote()}" + _confidence_note(hit, trust),
                hit.confidence(trust),
                {
                    "start": hit.start,
                    "end": hit.end,
                    "speaker": hit.line.speaker,
                    "replacement": replacement,
                    "unsure": hit_doubt(rule, hit, replacement, view),
                },
            )
            for hit, replacement in hits
        ]
        return _occurrences(rule, view, items)
    best, replacement = max(
        hits,
        key=lambda x: (
            hit_doubt(rule, x[0], x[1], view) is None,
            x[0].confidence(trust),
            -x[0].start,
        ),
    )
    count = f"（共 {len(hits)} 处，首次 {_clock(hits[0][0].start)}）" if len(hits) > 1 else ""
    return [
        failed(
            rule,
            view,
            best.quote() + count + _confidence_note(best, trust),
            best.confidence(trust),
            start=best.start,
            end=best.end,
            speaker=best.line.speaker,
            replacement=replacement,
            unsure=hit_doubt(rule, best, replacement, view),
        )
    ]


def hit_doubt(rule: ForbiddenPhrase, hit: Hit, replacement: str | None, view: CallView) -> str | None:
    """Why this hit cannot deduct by itself: its text is weak, or it is a word the recogniser is
    known to write for the permitted one (`recognised_needs_review`; typed text is not doubted)."""
    weak = doubt([hit.line], view.matching, absence=False)
    if weak is not None or not (rule.recognised_needs_review and hit.line.utterance.chars):
        return weak
    instead = f"“{replacement}”" if replacement else "规范用语"
    return f"识别模型常把{instead}认成“{hit.said}”，要听录音确认"


def _distinct(hits: list[tuple[Hit, str | None]]) -> list[tuple[Hit, str | None]]:
    """One occurrence per stretch of speech, even when several phrases of the list cover it."""
    kept: list[tuple[Hit, str | None]] = []
    for hit, replacement in sorted(hits, key=lambda x: (-(x[0].raw_end - x[0].raw_start), -x[0].similarity)):
        if any(
            k.line is hit.line and hit.raw_start < k.raw_end and k.raw_start < hit.raw_end for k, _ in kept
        ):
            continue
        kept.append((hit, replacement))
    return sorted(kept, key=lambda x: (x[0].start, x[0].raw_start))


def _confidence_note(hit: Hit, trust: float) -> str:
    notes = []
    if hit.similarity < 1.0:
        notes.append(f"与“{hit.pattern}”近似匹配 {hit.similarity:.2f}")
    if hit.asr_probability is not None and hit.asr_probability < trust:
        notes.append(f"识别把握 {hit.asr_probability:.2f}")
    return f"（{'，'.join(notes)}）" if notes else ""


# ---- sequence ------------------------------------------------------------------------------------


def check_sequence(rule: SequenceRule, view: CallView) -> list[Finding]:
    reason = _not_applicable_reason(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    scope = view.scope(rule.speaker, rule.window)
    slack = view.matching.time_slack_s
    done: list[Hit] = []
    for number, step in enumerate(rule.steps):
        hits = view.find(step.patterns, scope, label=step.name)
        if done:
            after = done[-1].end + step.min_gap_s - slack
            latest = done[-1].end + step.max_gap_s + slack if step.max_gap_s is not None else float("inf")
            hits = [h for h in hits if after <= h.start <= latest and h.start >= done[-1].start]
        if not hits:
            confidence, near = _miss_confidence(view, step.patterns, scope)
            so_far = f"（已做到：{'、'.join(s.name for s in rule.steps[:number])}）" if number else ""
            gap = f"，且与上一步间隔不少于 {step.min_gap_s:g} 秒" if number and step.min_gap_s else ""
            detail = (_example(step.patterns) + gap).lstrip("，")
            evidence = f"没有做到“{step.name}”{'（' + detail + '）' if detail else ''}{so_far}"
            if near is not None and confidence < 1.0:
                evidence += f"；最接近的是 {near.quote()}"
            start, end = (done[0].start, done[-1].end) if done else scope.span
            unsure = doubt(scope.lines, view.matching)
            return [
                failed(
                    rule,
                    view,
                    evidence,
                    confidence,
                    start=start,
                    end=end,
                    speaker=rule.speaker,
                    unsure=unsure,
                )
            ]
        done.append(hits[0])
    return [
        passed(
            rule,
            " → ".join(h.quote() for h in done),
            confidence=round(min(h.similarity for h in done), 3),
            start=done[0].start,
            end=done[-1].end,
            speaker=rule.speaker,
        )
    ]


# ---- metric --------------------------------------------------------------------------------------

METRIC_LABELS: dict[str, tuple[str, str]] = {
    # metric: (what it is, unit)
    "agent_chars_per_min": ("客服语速", "字/分钟"),
    "customer_chars_per_min": ("客户语速", "字/分钟"),
    "rings": ("振铃", "声"),
    "answer_delay_s": ("接通后开口用时", "秒"),
    "duration_s": ("通话时长", "秒"),
    "interruptions": ("打断", "次"),
    "holds": ("等待", "次"),
    "dead_air": ("冷场", "次"),
    "hangup_by": ("先挂机的一方", ""),
    "silence_ratio": ("静音占比", ""),
    "longest_silence_s": ("最长静音", "秒"),
    "overlap_s": ("抢话时长", "秒"),
}
SOURCE_FIELDS = {
    "rings": "rings_source",
    "answer_delay_s": "answer_delay_source",
    "hangup_by": "hangup_source",
}
VALUE_ZH = {"agent": "客服", "customer": "客户"}


def check_metric(rule: MetricRule, view: CallView) -> list[Finding]:
    reason = _not_applicable_reason(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    m = view.metrics
    label, unit = METRIC_LABELS.get(rule.metric, (rule.metric, ""))
    if m is None:
        return [unknown(rule, view, "这通电话还没有计算通话指标")]
    raw = getattr(m, rule.metric)
    items: list = []
    if rule.metric in LIST_METRIC_ITEMS:
        items = [x for x in raw if all(getattr(x, k) == v for k, v in (rule.where or {}).items())]
        value: object = len(items)
    else:
        value = raw
    if value is None:
        return [unknown(rule, view, f"{label}未知（没有话务系统记录，录音里也测不出）")]
    source = getattr(m, SOURCE_FIELDS[rule.metric]) if rule.metric in SOURCE_FIELDS else None
    said = f"{label} {_show(value, unit)}" + (
        f"（来源：{SOURCE_LABELS_ZH.get(source, source)}）" if source else ""
    )
    problem, confidence = _compare(rule, value, view.matching.metric_margin)
    where = _metric_where(rule.metric, m, view, items)
    if problem is None:
        return [passed(rule, f"{said}，{_limits(rule, unit)}", **where)]
    quiet = view.metrics.duration_s - view.last_speech_end if view.metrics else 0.0
    if rule.excused_if_quiet_before_end_s is not None and quiet >= rule.excused_if_quiet_before_end_s:
        return [
            passed(
                rule,
                f"{said}，但挂机前已有 {quiet:.1f} 秒无人说话（≥ {rule.excused_if_quiet_before_end_s:g} 秒，手册允许）",
                **where,
            )
        ]
    doubts = [_item_doubt(x, view) for x in items]
    if rule.per_occurrence and items:
        allowed = int(rule.max) if rule.max is not None else 0
        occurrences = [
            (_item_evidence(x, label), confidence, {**_item_where(x), "unsure": d})
            for x, d in list(zip(items, doubts, strict=True))[allowed:]
        ]
        return _occurrences(rule, view, occurrences)
    evidence = f"{said}，{problem}"
    sure = [x for x, d in zip(items, doubts, strict=True) if d is None]
    if items and _compare(rule, len(sure), view.matching.metric_margin)[0] is None:
        # counted only with occurrences read from weak text: a person decides
        first, why = next((x, d) for x, d in zip(items, doubts, strict=True) if d is not None)
        return [
            failed(
                rule,
                view,
                f"{evidence}；首次：{_item_evidence(first, label)}",
                confidence,
                unsure=why,
                **where,
            )
        ]
    if items:
        evidence += f"；首次：{_item_evidence(sure[0], label)}"
        where = _item_where(sure[0])
    guessed = (
        f"{label}是从{SOURCE_LABELS_ZH.get(source, source)}推测的，录音本身证明不了"
        if source in rule.review_if_source
        else None
    )
    return [failed(rule, view, evidence, confidence, unsure=guessed, **where)]


def _item_doubt(item: object, view: CallView) -> str | None:
    """An interruption is told from a back-channel (嗯、对) by the words said over the other party:
    when the recogniser's text of them is weak (a 嗯 heard as 人 with probability 0.29), so is the
    finding."""
    if not isinstance(item, Interruption):
        return None
    lo, hi = words_window(item.start, item.end)
    lines = [line for line in view.of(item.by) if line.start <= hi and line.end >= lo]
    return doubt(lines, view.matching, absence=False)


def _compare(rule: MetricRule, value: object, margin: float) -> tuple[str | None, float]:
    """(what is wrong or None, confidence). Values within `margin` of a limit are uncertain."""

    def closeness(excess: float, limit: float) -> float:
        if margin <= 0 or limit == 0:
            return 1.0
        return round(min(1.0, excess / (margin * abs(limit))), 3)

    if rule.equals is not None and value != rule.equals:
        return f"应为 {_show_value(rule.equals)}", 1.0
    if rule.not_equals is not None and value == rule.not_equals:
        return f"不应为 {_show_value(rule.not_equals)}", 1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, 1.0
    if rule.max is not None and value > rule.max:
        return f"超过上限 {rule.max:g}", closeness(value - rule.max, rule.max)
    if rule.min is not None and value < rule.min:
        return f"低于下限 {rule.min:g}", closeness(rule.min - value, rule.min)
    return None, 1.0


def _limits(rule: MetricRule, unit: str) -> str:
    parts = []
    if rule.min is not None and rule.max is not None:
        parts.append(f"标准 {rule.min:g}–{rule.max:g}{unit}")
    elif rule.max is not None:
        parts.append(f"标准 ≤ {rule.max:g}{unit}")
    elif rule.min is not None:
        parts.append(f"标准 ≥ {rule.min:g}{unit}")
    if rule.equals is not None:
        parts.append(f"应为 {_show_value(rule.equals)}")
    if rule.not_equals is not None:
        parts.append(f"不应为 {_show_value(rule.not_equals)}")
    return "，".join(parts) + "，合格"


def _show(value: object, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.1f}{unit}" if unit else f"{value:.2f}"
    return f"{_show_value(value)}{unit}"


def _show_value(value: object) -> str:
    return VALUE_ZH.get(value, str(value)) if isinstance(value, str) else str(value)


def _metric_where(metric: str, m: CallMetrics, view: CallView, items: list) -> dict:
    if items:
        return _item_where(items[0])
    if metric == "answer_delay_s" and m.answered_at is not None and m.answer_delay_s is not None:
        return {"start": m.answered_at, "end": m.answered_at + m.answer_delay_s, "speaker": "agent"}
    if metric == "rings" and m.answered_at is not None:
        return {"start": 0.0, "end": m.answered_at}
    if metric == "hangup_by":
        return {"start": view.last_speech_end, "end": m.duration_s, "speaker": m.hangup_by}
    return {}


def _item_where(item: object) -> dict:
    where: dict = {}
    for key in ("start", "end"):
        if hasattr(item, key):
            where[key] = getattr(item, key)
    if hasattr(item, "by"):
        where["speaker"] = item.by
    elif hasattr(item, "speaker"):
        where["speaker"] = item.speaker
    return where


def _item_evidence(item: object, label: str) -> str:
    if hasattr(item, "interrupted_text"):
        who = VALUE_ZH.get(item.by, item.by)
        other = "客户" if item.by == "agent" else "客服"
        return f"{_clock(item.start)} {who}说“{item.text}”打断了{other}“{item.interrupted_text}”（重叠 {item.overlap_s:.1f} 秒）"
    start = getattr(item, "start", None)
    end = getattr(item, "end", None)
    if start is not None and end is not None:
        return f"{label} {_clock(start)}–{_clock(end)}（{end - start:.0f} 秒）"
    return label


# ---- hold ----------------------------------------------------------------------------------------


def check_hold(rule: HoldRule, view: CallView) -> list[Finding]:
    reason = _not_applicable_reason(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    if view.metrics is None:
        return [unknown(rule, view, "这通电话还没有计算通话指标（等待）")]
    holds = [h for h in view.metrics.holds if h.duration >= rule.min_hold_s]
    if rule.check == "thanked":
        holds = [h for h in holds if not h.ends_call]
    if not holds:
        longer = f"超过 {rule.min_hold_s:g} 秒的" if rule.min_hold_s else ""
        return [passed(rule, f"{NOT_APPLICABLE}本通话没有{longer}等待")]
    verdicts = [(h, *_judge_hold(rule, view, h)) for h in holds]
    bad = [(h, e, c) for h, ok, e, c in verdicts if ok is False]
    unsure = [(h, e) for h, ok, e, _ in verdicts if ok is None]
    if bad:
        items = [
            (
                e,
                c,
                {
                    "start": h.start,
                    "end": h.end,
                    "speaker": rule.speaker,
                    "unsure": _hold_doubt(rule, view, h),
                },
            )
            for h, e, c in bad
        ]
        if rule.per_occurrence:
            return _occurrences(rule, view, items)
        # the first hold judged on good text speaks for the rule: one is enough to deduct
        evidence, confidence, where = min(items, key=lambda x: x[2]["unsure"] is not None)
        if len(bad) > 1:
            evidence += f"（共 {len(bad)} 次等待不合规）"
        return [failed(rule, view, evidence, min(c for _, c, _ in items), **where)]
    if unsure:
        hold, why = unsure[0]
        return [replace(unknown(rule, view, why), start=hold.start, end=hold.end)]
    hold, _, evidence, confidence = verdicts[0]
    more = f"（共 {len(holds)} 次等待，均合格）" if len(holds) > 1 else ""
    return [
        passed(
            rule, evidence + more, confidence=confidence, start=hold.start, end=hold.end, speaker=rule.speaker
        )
    ]


def _hold_doubt(rule: HoldRule, view: CallView, hold: Hold) -> str | None:
    """A missing ask or thanks is only as sure as the text of the window it should be in."""
    if rule.check not in ("asked", "thanked") or rule.window is None:
        return None
    window = rule.window
    return doubt(
        view.hold_scope(rule.speaker, hold, window.before_hold_s, window.after_hold_s).lines, view.matching
    )


def _judge_hold(rule: HoldRule, view: CallView, hold: Hold) -> tuple[bool | None, str, float]:
    """(ok, evidence, confidence) for one hold; ok None when it cannot be judged."""
    span = f"{_clock(hold.start)}–{_clock(hold.end)} 等待 {hold.duration:.0f} 秒"
    window = rule.window
    if rule.check in ("asked", "thanked"):
        assert window is not None and rule.patterns is not None
        scope = view.hold_scope(rule.speaker, hold, window.before_hold_s, window.after_hold_s)
        hits = view.find(rule.patterns, scope)
        if hits:
            best = max(hits, key=lambda h: h.similarity)
            return True, f"{span}：{best.quote()}", best.similarity
        flagged, text = (
            (hold.asked, hold.ask_text) if rule.check == "asked" else (hold.thanked, hold.thank_text)
        )
        what = "等待前没有征求客户同意" if rule.check == "asked" else "等待后没有致谢"
        if flagged:  # the metrics stage heard something the scorecard's phrases do not cover
            heard = f"：“{text}”" if text else ""
            return False, f"{span}，评分表的说法里{what}，但通话指标认为有{heard}", 0.5
        confidence, near = _miss_confidence(view, rule.patterns, scope)
        close = f"；最接近的是 {near.quote()}" if near is not None and confidence < 1.0 else ""
        return False, f"{span}，{what}{close}", confidence
    if rule.check == "checkins":
        assert rule.max_gap_s is not None
        if hold.duration <= rule.max_gap_s:
            return True, f"{span}，不超过 {rule.max_gap_s:g} 秒，无需中途回应", 1.0
        gap = hold.max_checkin_gap_s
        if gap is None:
            if hold.checkins:
                return None, f"{span}，回应 {hold.checkins} 次，但不知道最长间隔", 1.0
            gap = hold.duration
        said = f"{span}，中途回应 {hold.checkins} 次，最长 {gap:.0f} 秒没有回应客户"
        if gap <= rule.max_gap_s:
            return True, f"{said}（标准 ≤ {rule.max_gap_s:g} 秒）", 1.0
        margin = view.matching.metric_margin
        confidence = min(1.0, (gap - rule.max_gap_s) / (margin * rule.max_gap_s)) if margin > 0 else 1.0
        return False, f"{said}（超过 {rule.max_gap_s:g} 秒）", round(confidence, 3)
    assert rule.max_s is not None
    limit, kind = rule.max_s, ""
    if rule.lookup_patterns is not None and rule.lookup_max_s is not None and window is not None:
        scope = view.hold_scope(rule.speaker, hold, window.before_hold_s, None)
        if view.find(rule.lookup_patterns, scope):
            limit, kind = rule.lookup_max_s, "查询类"
        elif hold.lookup and rule.lookup_max_s < hold.duration <= limit:
            # the metrics heard a look-up (请您稍等，我帮您合时一下) the scorecard's phrases do not cover
            heard = f"：“{hold.ask_text}”" if hold.ask_text else ""
            return (
                False,
                f"{span}，评分表的说法里不是查询类等待，但通话指标认为是{heard}，超过查询类上限 {rule.lookup_max_s:g} 秒",
                0.5,
            )
    if hold.duration <= limit:
        return True, f"{span}（{kind}标准 ≤ {limit:g} 秒）", 1.0
    margin = view.matching.metric_margin
    confidence = min(1.0, (hold.duration - limit) / (margin * limit)) if margin > 0 else 1.0
    return False, f"{span}，超过{kind}上限 {limit:g} 秒", round(confidence, 3)


# ---- question_count ------------------------------------------------------------------------------


def check_question_count(rule: QuestionCount, view: CallView) -> list[Finding]:
    reason = _not_applicable_reason(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    scope = view.scope(rule.speaker, rule.window)
    offenders = []
    for stretch in _stretches(view, scope, rule.answer_gap_s):
        questions = count_questions([x.norm for x in stretch], rule, view.costs)
        if questions > rule.max_questions:
            quote = "".join(x.text for x in stretch)
            offenders.append(
                (
                    f"一口气问了 {questions} 个问题：“{quote}”",
                    1.0,
                    {"start": stretch[0].start, "end": stretch[-1].end, "speaker": stretch[0].speaker},
                )
            )
    if not offenders:
        return [passed(rule, f"每次最多问 {rule.max_questions} 个问题", speaker=rule.speaker)]
    if rule.per_occurrence:
        return _occurrences(rule, view, offenders)
    evidence, confidence, where = offenders[0]
    more = f"（共 {len(offenders)} 处）" if len(offenders) > 1 else ""
    return [failed(rule, view, evidence + more, confidence, **where)]


def _stretches(view: CallView, scope: Scope, gap_s: float) -> list[list[Line]]:
    """Runs of one party's speech with no pause long enough (or other speech) for an answer."""
    inside = {id(x) for x in scope.lines}
    stretches: list[list[Line]] = []
    current: list[Line] = []
    for line in view.lines:
        if id(line) not in inside:
            if current and line.speaker != current[-1].speaker:
                stretches.append(current)
                current = []
            continue
        if current and (line.speaker != current[-1].speaker or line.start - current[-1].end >= gap_s):
            stretches.append(current)
            current = []
        current.append(line)
    if current:
        stretches.append(current)
    return stretches


# ---- phrase_count --------------------------------------------------------------------------------


def check_phrase_count(rule: PhraseCount, view: CallView) -> list[Finding]:
    reason = _not_applicable_reason(rule, view)
    if reason:
        return [passed(rule, NOT_APPLICABLE + reason)]
    scope = view.scope(rule.speaker, rule.window)
    hits = view.find(rule.patterns, scope)
    if rule.whole_utterance:  # only utterances that are nothing but these words (嗯。/ 好的好的)
        by_line: dict[int, list[Hit]] = {}
        for h in hits:
            by_line.setdefault(h.line.index, []).append(h)
        hits = [hs[0] for hs in by_line.values() if _covers_line(hs)]
    count = len(hits)
    if rule.per == "customer_talk":
        if view.metrics is not None:
            seconds = view.metrics.customer_talk_s
        else:
            seconds = sum(x.end - x.start for x in view.of("customer"))
        per = "客户说话时间"
    else:
        seconds = view.metrics.duration_s if view.metrics is not None else view.last_speech_end
        per = "通话时长"
    minutes = max(seconds, 1.0) / 60
    rate = count / minutes
    said = f"{count} 次，按{per} {minutes:.1f} 分钟计每分钟 {rate:.1f} 次（上限 {rule.max_per_minute:g}）"
    if count < rule.min_count or rate <= rule.max_per_minute:
        example = f"，如 {hits[0].quote()}" if hits else ""
        return [passed(rule, said + example, speaker=rule.speaker)]
    first = hits[0]
    return [
        failed(
            rule,
            view,
            f"过于频繁：{said}；如 {first.quote()}",
            1.0,
            start=first.start,
            end=hits[-1].end,
            speaker=first.line.speaker,
        )
    ]


def _covers_line(hits: list[Hit]) -> bool:
    norm = hits[0].line.norm
    return all(
        any(h.raw_start <= a and b <= h.raw_end for h in hits)
        for a, b in zip(norm.raw_start, norm.raw_end, strict=True)
    )


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


def _clock(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"
