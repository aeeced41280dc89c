"""A call prepared for the rules: canonical text per utterance, turns, windows and timed hits.

Times of a hit come from the recogniser's character timings when the utterance has them (one
timing per spoken character), else are spread evenly over the utterance (hand-typed transcripts).
The recogniser's character probabilities lower a hit's confidence: a forbidden word the recogniser
was unsure of goes to a person instead of deducting silently.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from pipeline.records import ROLE_LABELS_ZH, CallMeta, CallMetrics, CharTiming, Hold, Utterance
from pipeline.rules.intent import Intent, search_intent
from pipeline.rules.matching import (
    HOMOPHONE,
    Costs,
    Match,
    NormText,
    canonical,
    compile_pattern,
    relation,
    search_literal,
    sounds_alike,
)
from pipeline.rules.schema import Matching, Window

_SPOKEN = re.compile(r"\w")
_QUOTED = re.compile(r"“[^”]*”|「[^」]*」|『[^』]*』|《[^》]*》|\"[^\"]*\"|‘[^’]*’|'[^']*'")
QUOTE_CONTEXT_CHARS = 24
# A phrase at an utterance's start with at most this many first characters lost, and at least this
# many left, may have been said whole (CallView.clipped_onset).
CLIPPED_HEAD_MAX_CHARS = 2
CLIPPED_TAIL_MIN_CHARS = 4
# Lines this close (seconds) to a line are said in one breath with it (CallView.garbled_beside).
BESIDE_GAP_S = 3.0
# A stretch that sounds like a required phrase (CallView.sounds_like) counts only for phrases this
# long: two or three syllables sound like too much of everyday speech.
SOUNDS_LIKE_MIN_CHARS = 4
BY_MEANING = "按意思："  # the `pattern` of a hit found by an intent (all_of), before its element names


@dataclass(frozen=True, eq=False)
class Line:
    """One utterance, ready for matching."""

    index: int
    utterance: Utterance

    @property
    def speaker(self) -> str:
        return self.utterance.speaker

    @property
    def start(self) -> float:
        return self.utterance.start

    @property
    def end(self) -> float:
        return self.utterance.end

    @property
    def text(self) -> str:
        return self.utterance.text

    @cached_property
    def norm(self) -> NormText:
        return canonical(self.utterance.text)

    @cached_property
    def spoken(self) -> tuple[int, ...]:
        """Index in `text` of each spoken character (what the recogniser timed)."""
        return tuple(i for i, c in enumerate(self.text) if _SPOKEN.match(c) and c != "_")

    @cached_property
    def quoted(self) -> tuple[tuple[int, int], ...]:
        return tuple((m.start(), m.end()) for m in _QUOTED.finditer(self.text))

    def _spoken_range(self, raw_start: int, raw_end: int) -> tuple[int, int]:
        """Indices [first, stop) in `spoken` (and in the character timings) of text[raw_start:raw_end]."""
        return bisect_left(self.spoken, raw_start), bisect_left(self.spoken, raw_end)

    @property
    def _timed(self) -> bool:
        """Whether every spoken character has the recogniser's timing (typed text has none)."""
        return len(self.utterance.chars) == len(self.spoken)

    def timing(self, raw_start: int, raw_end: int) -> tuple[float, float, float | None]:
        """(start s, end s, mean recogniser probability or None) of text[raw_start:raw_end]."""
        first, stop = self._spoken_range(raw_start, raw_end)
        if not self.spoken or stop <= first:
            return self.start, self.end, None
        if self._timed:
            chars = self.utterance.chars[first:stop]
            return chars[0].start, chars[-1].end, sum(c.probability for c in chars) / len(chars)
        span = self.end - self.start
        n = len(self.spoken)
        return self.start + span * first / n, self.start + span * stop / n, None

    def _timed_chars(self, start: int, end: int) -> Sequence[CharTiming]:
        """The recognised characters of the canonical span [start, end); none for typed text, text
        without character timings or an empty span."""
        if not self._timed or end <= start:
            return ()
        first, stop = self._spoken_range(*self.norm.raw_span(start, end))
        return self.utterance.chars[first:stop]

    def unsure(self, start: int, end: int, floor: float) -> bool:
        """Whether the recogniser gave a character of the canonical span [start, end) a probability
        below `floor` (typed text and text without character timings: never)."""
        return any(c.probability < floor for c in self._timed_chars(start, end))

    def unsure_in(self, start: int, end: int, floor: float) -> tuple[int, int]:
        """(how many characters of the canonical span [start, end) the recogniser gave a probability
        below `floor`, how many it timed at all); (0, 0) for typed text or text without timings."""
        chars = self._timed_chars(start, end)
        return sum(c.probability < floor for c in chars), len(chars)

    def unsure_count(self, floor: float) -> int:
        """How many of the line's characters the recogniser gave a probability below `floor`."""
        if not self._timed:
            return 0
        return sum(c.probability < floor for c in self.utterance.chars)

    def all_unsure(self, start: int, end: int, floor: float) -> bool:
        """Whether the recogniser gave every character of the canonical span [start, end) a
        probability below `floor` (an empty span, typed text, text without timings: never)."""
        chars = self._timed_chars(start, end)
        return bool(chars) and all(c.probability < floor for c in chars)

    def quote(self, raw_start: int | None = None, raw_end: int | None = None) -> str:
        """The utterance as evidence, the hit marked 【】, long text cut around it."""
        text = self.text
        if raw_start is None or raw_end is None:
            return text if len(text) <= 2 * QUOTE_CONTEXT_CHARS else text[: 2 * QUOTE_CONTEXT_CHARS] + "…"
        lo = max(0, raw_start - QUOTE_CONTEXT_CHARS)
        hi = min(len(text), raw_end + QUOTE_CONTEXT_CHARS)
        return (
            ("…" if lo > 0 else "")
            + text[lo:raw_start]
            + "【"
            + text[raw_start:raw_end]
            + "】"
            + text[raw_end:hi]
            + ("…" if hi < len(text) else "")
        )


@dataclass(frozen=True, eq=False)
class Hit:
    line: Line
    raw_start: int
    raw_end: int
    start: float
    end: float
    similarity: float
    asr_probability: float | None
    pattern: str
    label: str = ""

    @classmethod
    def of(cls, line: Line, match: Match, source: str, label: str = "") -> Hit:
        """The hit of a match on a line's canonical text, quoted and timed on its original text."""
        raw_start, raw_end = line.norm.raw_span(match.start, match.end)
        start, end, probability = line.timing(raw_start, raw_end)
        return cls(line, raw_start, raw_end, start, end, match.similarity, probability, source, label)

    def confidence(self, asr_full_trust: float) -> float:
        """Text similarity, lowered when the recogniser itself was unsure of these characters."""
        asr = 1.0 if self.asr_probability is None else min(1.0, self.asr_probability / asr_full_trust)
        return round(self.similarity * asr, 3)

    def quote(self) -> str:
        return self.line.quote(self.raw_start, self.raw_end)

    @property
    def said(self) -> str:
        return self.line.text[self.raw_start : self.raw_end]


@dataclass(frozen=True)
class Scope:
    """Lines a rule looks at, and the time range a hit must start in."""

    lines: tuple[Line, ...]
    lo: float = float("-inf")
    hi: float = float("inf")

    def contains(self, t: float) -> bool:
        return self.lo <= t <= self.hi

    @property
    def span(self) -> tuple[float | None, float | None]:
        if not self.lines:
            return None, None
        return min(x.start for x in self.lines), max(x.end for x in self.lines)


@dataclass(frozen=True, eq=False)
class CallView:
    lines: tuple[Line, ...]
    metrics: CallMetrics | None
    meta: CallMeta
    matching: Matching
    costs: Costs

    @classmethod
    def build(
        cls,
        utterances: Iterable[Utterance],
        metrics: CallMetrics | None,
        meta: CallMeta,
        matching: Matching,
        costs: Costs,
    ) -> CallView:
        ordered = sorted(utterances, key=lambda u: (u.start, u.end))
        return cls(tuple(Line(i, u) for i, u in enumerate(ordered)), metrics, meta, matching, costs)

    # ---- where ---------------------------------------------------------------------------------

    def of(self, speaker: str) -> list[Line]:
        return [x for x in self.lines if speaker == "any" or x.speaker == speaker]

    def turns(self, speaker: str) -> list[list[Line]]:
        """A party's turns: its consecutive utterances until the other party says something."""
        turns: list[list[Line]] = []
        current: list[Line] = []
        for line in self.lines:
            if speaker == "any" or line.speaker == speaker:
                current.append(line)
            elif current:
                turns.append(current)
                current = []
        if current:
            turns.append(current)
        return turns

    @property
    def connected_at(self) -> float:
        if self.metrics is not None and self.metrics.answered_at is not None:
            return self.metrics.answered_at
        return self.lines[0].start if self.lines else 0.0

    @property
    def last_speech_end(self) -> float:
        return max((x.end for x in self.lines), default=0.0)

    def scope(self, speaker: str, window: Window | None) -> Scope:
        slack = self.matching.time_slack_s
        lines = self.of(speaker)
        if window is None:
            return Scope(tuple(lines))
        if window.first_turns is not None:
            return Scope(tuple(x for turn in self.turns(speaker)[: window.first_turns] for x in turn))
        if window.last_turns is not None:
            return Scope(tuple(x for turn in self.turns(speaker)[-window.last_turns :] for x in turn))
        if window.first_s is not None:
            lo, hi = self.connected_at - slack, self.connected_at + window.first_s + slack
        elif window.last_s is not None:
            lo, hi = self.last_speech_end - window.last_s - slack, self.last_speech_end + slack
        else:
            raise ValueError("a hold window needs a hold: use hold_scope")
        return Scope(tuple(x for x in lines if x.end >= lo and x.start <= hi), lo, hi)

    def hold_scope(self, speaker: str, hold: Hold, before_s: float | None, after_s: float | None) -> Scope:
        slack = self.matching.time_slack_s
        if before_s is not None:
            lo, hi = hold.start - before_s - slack, hold.start + slack
        elif after_s is not None:
            lo, hi = hold.end - slack, hold.end + after_s + slack
        else:
            lo, hi = hold.start, hold.end
        return Scope(tuple(x for x in self.of(speaker) if x.end >= lo and x.start <= hi), lo, hi)

    # ---- what ----------------------------------------------------------------------------------

    def find(
        self,
        patterns: Iterable[str],
        scope: Scope,
        exceptions: Iterable[str] = (),
        ignore_quoted: bool = False,
        label: str = "",
    ) -> list[Hit]:
        """Hits of any of `patterns` in the scope, overlapping hits merged (the closest kept), in time order."""
        compiled = [compile_pattern(p) for p in patterns]
        guards = [compile_pattern(p) for p in exceptions]
        hits: list[Hit] = []
        for line in scope.lines:
            found: list[tuple[Match, str]] = [
                (m, p.source) for p in compiled for m in p.search(line.norm, self.costs)
            ]
            if not found:
                continue
            blocked = [g for p in guards for g in p.search(line.norm, self.costs)]
            kept: list[tuple[Match, str]] = []
            for m, source in sorted(
                found, key=lambda x: (-x[0].similarity, -(x[0].end - x[0].start), x[0].start)
            ):
                if any(g.start <= m.start and g.end >= m.end for g in blocked):
                    continue
                if any(m.start < k.end and k.start < m.end for k, _ in kept):
                    continue
                kept.append((m, source))
            for m, source in kept:
                hit = Hit.of(line, m, source, label)
                if ignore_quoted and any(a <= hit.raw_start and hit.raw_end <= b for a, b in line.quoted):
                    continue
                if scope.contains(hit.start):
                    hits.append(hit)
        return sorted(hits, key=lambda h: (h.start, h.raw_start))

    def find_intent(self, intent: Intent, scope: Scope, label: str = "") -> tuple[list[Hit], Hit | None]:
        """(utterances that say the intent, in time order; the closest partial match when none does).

        A partial hit's `similarity` is the share of elements found, its `pattern` names the missing."""
        hits: list[Hit] = []
        partial: tuple[Hit, int] | None = None
        floor = self.matching.asr_unsure_char_probability
        for line in scope.lines:
            m = search_intent(
                intent, line.norm, self.costs, unsure=lambda a, b, line=line: line.unsure(a, b, floor)
            )
            if m is None:
                continue
            raw_start, raw_end = line.norm.raw_span(m.start, m.end) if m.end > m.start else (0, 0)
            start, end, probability = line.timing(raw_start, raw_end)
            if not scope.contains(start):
                continue
            size = len(intent.elements)
            if m.complete and not m.near:
                similarity = max(0.0, 1.0 - m.cost / max(1, m.end - m.start))
                source = f"{BY_MEANING}{'+'.join(m.found)}"
                hits.append(Hit(line, raw_start, raw_end, start, end, similarity, probability, source, label))
            elif partial is None or len(m.found) - m.near > partial[1]:
                missing = f"缺“{'、'.join(m.missing)}”" if m.missing else ""
                source = "，".join(x for x in (missing, "有的词只是音近" if m.near else "") if x)
                hit = Hit(
                    line, raw_start, raw_end, start, end, len(m.found) / size, probability, source, label
                )
                partial = (hit, len(m.found) - m.near)
        return sorted(hits, key=lambda h: (h.start, h.raw_start)), (partial[0] if partial else None)

    def near_miss(self, patterns: Iterable[str], scope: Scope) -> tuple[float, Hit | None, bool]:
        """How far (edit cost beyond the budget) the closest almost-match is, where, and whether the
        recogniser was unsure of a character in it (below `asr_unsure_char_probability`) while it is
        at least `near_miss_unsure_similarity` like the phrase; inf when none. Of equally close ones,
        an unsure one is taken: it is the one that may have been said."""
        margin = self.matching.near_miss_margin
        floor = self.matching.asr_unsure_char_probability
        alike = self.matching.near_miss_unsure_similarity
        best: tuple[float, Hit | None, bool] = (float("inf"), None, False)
        for source in patterns:
            pattern = compile_pattern(source)
            if pattern.kind != "literal":
                continue
            budget = sum(self.costs.budget(len(p)) for p in pattern.parts)
            for line in scope.lines:
                for m in pattern.search(line.norm, self.costs, slack=margin):
                    hit = Hit.of(line, m, source)
                    if not scope.contains(hit.start):
                        continue
                    excess = max(0.0, m.cost - budget)
                    unsure = m.similarity >= alike and line.unsure(m.start, m.end, floor)
                    if (excess, not unsure) < (best[0], not best[2]):
                        best = (excess, hit, unsure)
        return best

    def garbled_beside(self, hits: Iterable[Hit], scope: Scope, chars: int) -> Line | None:
        """A line of the scope, the one a hit is in or the scope's line right before or after it
        (less than `BESIDE_GAP_S` apart), with at least `chars` characters the recogniser was unsure
        of (below `asr_unsure_char_probability`), or None. One part of a sentence said in full (祝您
        一切顺利) makes it likely that the other was said beside it: where the words beside it are
        garbled (改善您知电 for 感谢您致电, 改 0.4), it may be there, misheard."""
        floor = self.matching.asr_unsure_char_probability
        lines = list(scope.lines)
        for hit in hits:
            if hit.line not in lines:
                continue
            at = lines.index(hit.line)
            beside = [hit.line]
            if at > 0 and hit.line.start - lines[at - 1].end < BESIDE_GAP_S:
                beside.append(lines[at - 1])
            if at + 1 < len(lines) and lines[at + 1].start - hit.line.end < BESIDE_GAP_S:
                beside.append(lines[at + 1])
            for line in beside:
                if line.unsure_count(floor) >= chars:
                    return line
        return None

    def clipped_onset(self, patterns: Iterable[str], scope: Scope) -> Hit | None:
        """An utterance that begins with one of `patterns` but for its first one or two characters
        (您的耐心等待 for 感谢您的耐心等待), or None. Whisper drops a turn's first syllable after the
        silence before it (pipeline/asr/packing.py, TURN_GAP_S: one turn in nine on the tuning set),
        or mishears it, unsure (在新年的耐心等待, 在 0.3 新 0.2): the phrase may well have been said
        whole. The tail may start after as many characters as were cut, if the recogniser was unsure
        of every one of them. Tails shorter than `CLIPPED_TAIL_MIN_CHARS` do not count: anything
        begins like two characters of a phrase."""
        floor = self.matching.asr_unsure_char_probability
        for source in patterns:
            pattern = compile_pattern(source)
            if pattern.kind != "literal" or len(pattern.parts) != 1:
                continue
            (part,) = pattern.parts
            required = pattern.required[0] if pattern.required else ()
            for head in range(1, CLIPPED_HEAD_MAX_CHARS + 1):
                tail = part[head:]
                if len(tail) < CLIPPED_TAIL_MIN_CHARS:
                    break
                budget = self.costs.budget(len(tail))
                for line in scope.lines:
                    for m in search_literal(tail, line.norm, self.costs, budget, required[head:]):
                        misheard = 0 < m.start <= head and line.all_unsure(0, m.start, floor)
                        hit = Hit.of(line, m, source) if m.start == 0 or misheard else None
                        if hit is not None and scope.contains(hit.start):
                            return hit
        return None

    def sounds_like(
        self, patterns: Iterable[str], scope: Scope, unsure_as_misheard: bool = False
    ) -> Hit | None:
        """A stretch of text that sounds like one of `patterns` (matching.sounds_alike: 请您收到 for
        请您稍等), or None. The recogniser was sure of such words, so the near-miss test above does
        not see them, yet the phrase may well have been said. Characters a pattern marks as
        required ([…]) must be heard as themselves or homophones. `unsure_as_misheard`: a character
        the recogniser was unsure of may be anything (请医生等 for 请您稍等, 请 0.12 医 0.14) — for
        doubting an absence only, never for passing."""
        floor = self.matching.asr_unsure_char_probability
        # per line, which of its characters the recogniser was unsure of (worked out once, not per
        # pattern and window)
        unsure_chars = [
            [line.unsure(i, i + 1, floor) for i in range(len(line.norm.text))] if unsure_as_misheard else []
            for line in scope.lines
        ]
        for source in patterns:
            pattern = compile_pattern(source)
            if pattern.kind != "literal" or len(pattern.parts) != 1:
                continue
            (part,) = pattern.parts
            if len(part) < SOUNDS_LIKE_MIN_CHARS:
                continue
            required = pattern.required[0] if pattern.required else (False,) * len(part)
            for line, unsure in zip(scope.lines, unsure_chars, strict=True):
                text = line.norm.text
                for at in range(len(text) - len(part) + 1):
                    heard = text[at : at + len(part)]
                    if not sounds_alike(part, heard, unsure[at : at + len(part)]) or any(
                        must and relation(c, h) > HOMOPHONE
                        for must, c, h in zip(required, part, heard, strict=True)
                    ):
                        continue
                    cost = sum(self.costs.substitution(c, h) for c, h in zip(part, heard, strict=True))
                    hit = Hit.of(line, Match(at, at + len(part), cost, len(part)), source)
                    if scope.contains(hit.start):
                        return hit
        return None

    def speaker_label(self, speaker: str) -> str:
        return ROLE_LABELS_ZH.get(speaker, "双方" if speaker == "any" else speaker)
