"""The matchers of what is said: required and forbidden phrases, sequences, counted phrases and
questions. Each reads the call's lines (pipeline/rules/transcript.py) and writes findings through
pipeline/rules/verdicts.py.
"""

from __future__ import annotations

from pipeline.records import (
    Finding,
)
from pipeline.rules.evidence import doubt
from pipeline.rules.intent import QUESTION_MARKS, Intent
from pipeline.rules.matching import canonical_text, compile_pattern
from pipeline.rules.questions import count_questions
from pipeline.rules.schema import (
    ForbiddenPhrase,
    PhraseCount,
    QuestionCount,
    RequiredPhrase,
    SequenceRule,
)
from pipeline.rules.transcript import BY_MEANING, CallView, Hit, Line, Scope
from pipeline.rules.verdicts import (
    NOT_APPLICABLE,
    applicability,
    clock,
    failed,
    miss_confidence,
    not_applicable_reason,
    occurrence_findings,
    passed,
    pattern_example,
)

# ---- required_phrase -----------------------------------------------------------------------------


def check_required_phrase(rule: RequiredPhrase, view: CallView) -> list[Finding]:
    reason, because = applicability(rule, view)
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
    confidence, near = miss_confidence(view, [p for name, _ in missing for p in sentences[name]], scope)
    wanted = "；".join(
        f"{name or rule.title}{'（' + pattern_example(patterns) + '）' if pattern_example(patterns) else ''}"
        for name, patterns in missing
    )
    evidence = f"{who}没有说到：{wanted}" + (f"（本通话需要：{because}）" if because else "")
    if near is not None and confidence < 1.0:
        evidence += f"；最接近的是 {near.quote()}"
    start, end = scope.span
    fewest = _fewest_chars(rule, [n for n, _ in missing])
    unsure = doubt(scope.lines, view.matching, missing_chars=fewest)
    if found or partial:
        heard = "、".join(
            [f"{h.label or rule.title} {h.quote()}" for h in found]
            + [f"{h.label or rule.title}（{h.pattern}）{h.quote()}" for h in partial]
        )
        evidence += f"；只说到了一部分：{heard}"
    if rule.partial == "review" and partial:
        # a missing part itself was half said (every element of its meaning but one): it may be in
        # other words or misheard — a person decides
        confidence = min(confidence, PARTIAL_CONFIDENCE)
        unsure = unsure or "其余部分可能换了说法，或者没有识别出来"
    elif rule.partial == "review" and found:
        # another part said in full: the missing one would be beside it; garbled words there may be
        # it, misheard. Clear words beside it mean it was not said.
        garbled = view.garbled_beside(found, scope, max(1, fewest))
        if garbled is not None:
            confidence = min(confidence, PARTIAL_CONFIDENCE)
            unsure = unsure or f"说到的那部分旁边 {clock(garbled.start)} 有没听准的字，其余部分可能说了没听清"
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
    reason = not_applicable_reason(rule, view)
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
        return occurrence_findings(rule, view, items)
    best, replacement = max(
        hits,
        key=lambda x: (
            hit_doubt(rule, x[0], x[1], view) is None,
            x[0].confidence(trust),
            -x[0].start,
        ),
    )
    count = f"（共 {len(hits)} 处，首次 {clock(hits[0][0].start)}）" if len(hits) > 1 else ""
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
    reason = not_applicable_reason(rule, view)
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
            confidence, near = miss_confidence(view, step.patterns, scope)
            so_far = f"（已做到：{'、'.join(s.name for s in rule.steps[:number])}）" if number else ""
            gap = f"，且与上一步间隔不少于 {step.min_gap_s:g} 秒" if number and step.min_gap_s else ""
            detail = (pattern_example(step.patterns) + gap).lstrip("，")
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


# ---- question_count ------------------------------------------------------------------------------


def check_question_count(rule: QuestionCount, view: CallView) -> list[Finding]:
    reason = not_applicable_reason(rule, view)
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
        return occurrence_findings(rule, view, offenders)
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
    reason = not_applicable_reason(rule, view)
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
