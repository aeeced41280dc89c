"""Phrase matching that survives ASR errors.

Text and patterns are brought to one canonical form first (OpenCC t2s, NFKC full/half width,
punctuation and spaces removed, Latin upper-cased, numbers read digit by digit in Chinese: 24,
二十四 and 二四 all become 二四; 幺 and 〇 become 一 and 零). Every canonical character remembers
which characters of the original text it came from, so a hit can be quoted and timed.

A literal pattern matches a stretch of text by a weighted edit distance over characters and
toneless pinyin: the same character costs nothing, a homophone (清/请, 资讯/咨询) a little, a
near pinyin (您/你, 稍/收: one letter apart) more, anything else, a missing or an extra character
one whole edit. The budget grows with the pattern's length (scorecard `matching.budget`), so
short phrases must match exactly and long ones tolerate a slip. `…` in a literal pattern is a
gap of up to `matching.max_gap_chars` characters (请问您咨询的是…问题吗). A pattern written
`re:...` is a regular expression over the canonical text, matched exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Literal

from pipeline.text import to_simplified

REGEX_PREFIX = "re:"
GAP_MARKS = ("…", "...")

_CN_DIGITS = "零一二三四五六七八九"
_TO_CN_DIGIT = str.maketrans("0123456789〇幺", "零一二三四五六七八九零一")
_DIGIT_VALUE = {c: i for i, c in enumerate(_CN_DIGITS)} | {"两": 2}
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
_NUMERAL_CHARS = set(_DIGIT_VALUE) | set(_SMALL_UNITS) | set(_BIG_UNITS)


# ---- canonical text ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormText:
    """Canonical text with, for each canonical character, the span of original characters it came from."""

    raw: str
    text: str
    raw_start: tuple[int, ...]
    raw_end: tuple[int, ...]

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text span [a, b) of canonical characters [start, end)."""
        return self.raw_start[start], self.raw_end[end - 1]

    @cached_property
    def char_set(self) -> frozenset[str]:
        return frozenset(self.text)

    @cached_property
    def reading_set(self) -> frozenset[str]:
        return frozenset(r for c in self.char_set for r in readings(c))

    @cached_property
    def near_keys(self) -> frozenset[str]:
        return frozenset(k for c in self.char_set for k in near_keys(c))


# Every rule of every call brings its patterns (and the intents their words) to canonical form, and
# OpenCC is most of that: the same few thousand strings, converted once per process here.
@lru_cache(maxsize=1 << 16)
def canonical(raw: str) -> NormText:
    simplified = to_simplified(raw)
    if len(simplified) != len(raw):  # a phrase conversion changed the length: convert char by char
        simplified = "".join(s if len(s := to_simplified(c)) == 1 else c for c in raw)
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    breaks: set[int] = set()  # canonical positions after punctuation: numbers do not run across them
    for i, ch in enumerate(simplified):
        for c in unicodedata.normalize("NFKC", ch):
            if c == "_" or not (c.isalnum()):
                breaks.add(len(chars))
                continue
            chars.append(c.upper().translate(_TO_CN_DIGIT))
            origin.append((i, i + 1))
    chars, origin = _numbers_to_digits(chars, origin, breaks)
    return NormText(raw, "".join(chars), tuple(a for a, _ in origin), tuple(b for _, b in origin))


def canonical_text(raw: str) -> str:
    return canonical(raw).text


def _numbers_to_digits(
    chars: list[str], origin: list[tuple[int, int]], breaks: set[int]
) -> tuple[list[str], list[tuple[int, int]]]:
    """二十四 → 二四, 三千五百零九 → 三五零九, 两百 → 二零零: numbers read the way digits are written."""
    out: list[str] = []
    out_origin: list[tuple[int, int]] = []
    i = 0
    while i < len(chars):
        j = i
        while j < len(chars) and chars[j] in _NUMERAL_CHARS and (j == i or j not in breaks):
            j += 1
        run = chars[i:j]
        value = _numeral_value(run) if run else None
        if value is None:
            out.append(chars[i])
            out_origin.append(origin[i])
            i += 1
            continue
        span = (origin[i][0], origin[j - 1][1])
        for d in str(value).translate(_TO_CN_DIGIT):
            out.append(d)
            out_origin.append(span)
        i = j
    return out, out_origin


def _numeral_value(run: list[str]) -> int | None:
    """The value of a Chinese number with units (十百千万亿), or None when `run` is not one.

    Colloquial endings count: 一千三百八 = 1380, 七千八百四 = 7840.
    """
    if not any(c in _SMALL_UNITS or c in _BIG_UNITS for c in run):
        return None
    if run[0] not in _DIGIT_VALUE and run[0] != "十":
        return None
    if len(run) == 1 and run[0] in ("两",):
        return None
    total = section = 0
    number: int | None = None
    last_unit = 1
    for c in run:
        if c in _DIGIT_VALUE:
            number = _DIGIT_VALUE[c]
            if c == "零":
                last_unit = 1
        elif c in _SMALL_UNITS:
            unit = _SMALL_UNITS[c]
            section += (1 if number is None else number) * unit
            number = None
            last_unit = unit
        else:
            unit = _BIG_UNITS[c]
            section = (section + (number or 0)) * unit
            total += section
            section = 0
            number = None
            last_unit = unit
    if number is not None:
        section += number * (last_unit // 10 if last_unit >= 100 and run[-2] != "零" else 1)
    return total + section


# ---- pinyin --------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def readings(char: str) -> frozenset[str]:
    """A character's usual toneless pinyin (other characters read as themselves).

    Only the usual reading: pypinyin's rare readings (册 also “zha”) would make unrelated
    characters homophones. A polyphone reads the same way in a pattern and in the text.
    """
    if "\u3400" <= char <= "\u9fff":
        from pypinyin import Style, pinyin

        found = pinyin(char, style=Style.NORMAL, heteronym=False)
        if found and found[0] and found[0][0].isascii() and found[0][0].isalpha():
            return frozenset({found[0][0].lower()})
    return frozenset({char.lower()})


_INITIALS = (
    "zh",
    "ch",
    "sh",
    "b",
    "p",
    "m",
    "f",
    "d",
    "t",
    "n",
    "l",
    "g",
    "k",
    "h",
    "j",
    "q",
    "x",
    "r",
    "z",
    "c",
    "s",
    "y",
    "w",
)
_SHORT_FINAL = 3


def _split(syllable: str) -> tuple[str, str]:
    for initial in _INITIALS:
        if syllable.startswith(initial) and len(syllable) > len(initial):
            return initial, syllable[len(initial) :]
    return "", syllable


@lru_cache(maxsize=65536)
def near_keys(char: str) -> frozenset[str]:
    """Keys that any two near readings share (a superset test for the matcher's lower bound)."""
    keys: set[str] = set()
    for r in readings(char):
        keys.add(r)
        keys.update(r[:k] + r[k + 1 :] for k in range(len(r)))  # one letter apart: symmetric deletes
        initial, final = _split(r)
        if initial and len(final) <= _SHORT_FINAL:
            keys.add(initial + "*")
    return frozenset(keys)


SAME, HOMOPHONE, NEAR, OTHER = 0, 1, 2, 3


@lru_cache(maxsize=262144)
def relation(a: str, b: str) -> int:
    """How alike two canonical characters sound: SAME, HOMOPHONE, NEAR or OTHER.

    Near: readings one letter apart (您 nin / 你 ni, 吗 ma / 卖 mai, zh/z, in/ing), or the same initial
    with short finals at most two letters apart (稍 shao / 收 shou, 吗 ma / 没 mei).
    """
    if a == b:
        return SAME
    ra, rb = readings(a), readings(b)
    if ra & rb:
        return HOMOPHONE
    if any(_near(x, y) for x in ra for y in rb):
        return NEAR
    return OTHER


def heard_as(want: str, heard: str) -> bool:
    """Whether `want` occurs in `heard` as the same characters or homophones, character for character
    (客服 written 克服, 工号 written 功耗: whisper writes what it hears, in whatever characters).
    Both are canonical text (`canonical_text`); no other edit is allowed."""
    if not want:
        return False
    return any(
        all(relation(c, h) <= HOMOPHONE for c, h in zip(want, heard[at : at + len(want)], strict=True))
        for at in range(len(heard) - len(want) + 1)
    )


SOUNDS_ALIKE_MAX_MISHEARD = 2
# A sentence this long (请您稍后为本次服务打分) may come out with more syllables misheard and still
# be recognisable: each character the same or a homophone scores 1, a near reading or a syllable
# with the same initial ½, anything else 0, and three quarters of the full score with at most one
# character unlike is enough (请你收护为本次服务打增, said with confidence: seven characters exact,
# three near, one other). Two unlike characters are another word (好的，您的耐心等待 is not
# 感谢您的耐心等待). By chance a different sentence of eight or more syllables does not sound
# three-quarters like a service phrase.
LONG_ALIKE_MIN_CHARS = 8
LONG_ALIKE_SHARE = 0.75


def initials(char: str) -> frozenset[str]:
    """The initial consonants of a character's usual readings (none for 安 an, or a non-Han character)."""
    return frozenset(i for r in readings(char) if (i := _split(r)[0]))


def sounds_alike(expected: str, heard: str, unsure: Sequence[bool] = ()) -> bool:
    """Whether `heard` may be `expected` misheard by the recogniser: as many characters, each the
    same, a homophone, a near reading, or a syllable that begins with the same consonant (稍等 shao
    deng heard as 收到 shou dao, with confidence, on three tuning calls), at most
    `SOUNDS_ALIKE_MAX_MISHEARD` of them neither the same nor homophones (as for a misheard word,
    intent.misheard_places) and at least half of them the same or homophones. A different word that
    sounds like the phrase is rare; a phrase said and misheard this way is common on companded
    telephone audio. Three syllables changed is another sentence (管您去问一下 is not 跟您确认一下),
    except in a sentence of `LONG_ALIKE_MIN_CHARS` or more, judged by its share of alike sounds.
    `unsure` marks characters the recogniser was unsure of: such a character may be anything, so it
    counts as misheard rather than as another syllable (请医生等 for 请您稍等, 医 0.14)."""
    if len(expected) != len(heard) or not expected:
        return False
    if len(expected) >= LONG_ALIKE_MIN_CHARS:
        score, unlike = _alike_score(expected, heard)
        if unlike <= 1 and score >= LONG_ALIKE_SHARE * len(expected):
            return True
    misheard = 0
    for i, (a, b) in enumerate(zip(expected, heard, strict=True)):
        kind = relation(a, b)
        if kind <= HOMOPHONE:
            continue
        if kind == OTHER and not (initials(a) & initials(b)) and not (i < len(unsure) and unsure[i]):
            return False
        misheard += 1
    return misheard <= SOUNDS_ALIKE_MAX_MISHEARD and 2 * misheard <= len(expected)


def _alike_score(expected: str, heard: str) -> tuple[float, int]:
    """1 per character the same or a homophone, ½ per near reading or same initial consonant; and
    how many characters sound like nothing of the phrase's."""
    score, unlike = 0.0, 0
    for a, b in zip(expected, heard, strict=True):
        kind = relation(a, b)
        if kind <= HOMOPHONE:
            score += 1.0
        elif kind != OTHER or initials(a) & initials(b):
            score += 0.5
        else:
            unlike += 1
    return score, unlike


def _near(x: str, y: str) -> bool:
    if not x.isalpha() or not y.isalpha() or min(len(x), len(y)) < 2:
        return False
    if _distance(x, y) <= 1:
        return True
    ix, fx = _split(x)
    iy, fy = _split(y)
    return bool(ix) and ix == iy and max(len(fx), len(fy)) <= _SHORT_FINAL and _distance(fx, fy) <= 2


def _distance(x: str, y: str) -> int:
    previous = list(range(len(y) + 1))
    for i, cx in enumerate(x, 1):
        current = [i]
        for j, cy in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (cx != cy)))
        previous = current
    return previous[-1]


# ---- patterns ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Edit costs and budgets (the scorecard's `matching` section)."""

    homophone: float = 0.25
    near: float = 0.5
    budget_steps: tuple[tuple[int, float], ...] = ((3, 0.25), (5, 0.5), (8, 1.0), (12, 1.5))
    max_gap_chars: int = 30

    def budget(self, length: int) -> float:
        allowed = 0.0
        for min_chars, budget in self.budget_steps:
            if length >= min_chars:
                allowed = budget
        return allowed

    def substitution(self, a: str, b: str) -> float:
        kind = relation(a, b)
        return (0.0, self.homophone, self.near, 1.0)[kind]


@dataclass(frozen=True)
class Match:
    start: int  # canonical character span [start, end)
    end: int
    cost: float
    length: int  # pattern length the cost is relative to

    @property
    def similarity(self) -> float:
        return max(0.0, 1.0 - self.cost / self.length) if self.length else 1.0


@dataclass(frozen=True)
class Pattern:
    source: str
    kind: Literal["literal", "regex"]
    parts: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = field(default=None, compare=False)
    required: tuple[tuple[bool, ...], ...] = ()  # per part, per character: written in [brackets]

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.parts)

    def search(self, text: NormText, costs: Costs, slack: float = 0.0) -> list[Match]:
        """Non-overlapping matches, best first then left to right; `slack` widens the budget (near misses)."""
        if self.kind == "regex":
            assert self.regex is not None
            return [
                Match(m.start(), m.end(), 0.0, 1)
                for m in self.regex.finditer(text.text)
                if m.end() > m.start()
            ]
        found = _search_parts(self.parts, self.required, text, costs, slack)
        return _non_overlapping(found)


class PatternError(ValueError):
    pass


@lru_cache(maxsize=8192)
def compile_pattern(source: str) -> Pattern:
    """A scorecard pattern: `re:REGEX` over canonical text, else a literal phrase (… = gap)."""
    if not isinstance(source, str) or not source.strip():
        raise PatternError("模式不能为空")
    if source.startswith(REGEX_PREFIX):
        expression = source[len(REGEX_PREFIX) :]
        try:
            compiled = re.compile(expression)
        except re.error as exc:
            raise PatternError(f"正则表达式 {expression!r} 无法编译：{exc}") from exc
        if compiled.match(""):
            raise PatternError(f"正则表达式 {expression!r} 能匹配空字符串，会到处命中")
        return Pattern(source, "regex", (), compiled)
    text = source
    for mark in GAP_MARKS:
        text = text.replace(mark, "\x00")
    parts: list[str] = []
    required: list[tuple[bool, ...]] = []
    for raw_part in text.split("\x00"):
        part, flags = _parse_required(raw_part, source)
        if not part:
            where = "有一段是空的（省略号两边都要有字）" if "\x00" in text else "是空的"
            raise PatternError(f"模式 {source!r} 去掉标点和空格后{where}")
        parts.append(part)
        required.append(flags)
    return Pattern(source, "literal", tuple(parts), None, tuple(required))


def _parse_required(raw: str, source: str) -> tuple[str, tuple[bool, ...]]:
    """Canonical text of one part and, per character, whether it was written in [brackets] (must match)."""
    pieces = re.split(r"(\[[^\[\]]*\])", raw)
    text, flags = "", []
    for piece in pieces:
        inside = piece.startswith("[") and piece.endswith("]")
        if not inside and ("[" in piece or "]" in piece):
            raise PatternError(f"模式 {source!r} 的方括号不成对")
        canon = canonical_text(piece[1:-1] if inside else piece)
        if inside and not canon:
            raise PatternError(f"模式 {source!r} 里有空的方括号")
        text += canon
        flags += [inside] * len(canon)
    return text, tuple(flags)


def _search_parts(
    parts: tuple[str, ...], required: tuple[tuple[bool, ...], ...], text: NormText, costs: Costs, slack: float
) -> list[Match]:
    flags = required or tuple((False,) * len(p) for p in parts)
    first = search_literal(parts[0], text, costs, costs.budget(len(parts[0])) + slack, flags[0])
    chains = [(m.start, m.end, m.cost) for m in first]
    for part, must in zip(parts[1:], flags[1:], strict=True):
        later = search_literal(part, text, costs, costs.budget(len(part)) + slack, must)
        chains = [
            (start, m.end, cost + m.cost)
            for start, end, cost in chains
            for m in later
            if end <= m.start <= end + costs.max_gap_chars
        ]
        if not chains:
            return []
    total = sum(len(p) for p in parts)
    return [Match(s, e, c, total) for s, e, c in chains]


def _non_overlapping(matches: list[Match]) -> list[Match]:
    chosen: list[Match] = []
    for m in sorted(matches, key=lambda m: (m.cost, m.start, m.end - m.start)):
        if all(m.end <= c.start or m.start >= c.end for c in chosen):
            chosen.append(m)
    return sorted(chosen, key=lambda m: m.start)


REQUIRED_MISSING = 1e9  # the cost of losing or replacing a [bracketed] character: never within budget


def lower_bound(pattern: str, text: NormText, costs: Costs, required: tuple[bool, ...] = ()) -> float:
    """A cost no alignment of `pattern` inside `text` can beat (each pattern character's cheapest fate)."""
    bound = 0.0
    for i, c in enumerate(pattern):
        if c in text.char_set:
            continue
        homophone = bool(readings(c) & text.reading_set)
        if required and required[i] and not homophone:
            return REQUIRED_MISSING
        if homophone:
            bound += costs.homophone
        elif near_keys(c) & text.near_keys:
            bound += min(costs.near, 1.0)
        else:
            bound += 1.0
    return bound


def search_literal(
    pattern: str, text: NormText, costs: Costs, limit: float, required: tuple[bool, ...] = ()
) -> list[Match]:
    """Every end position where `pattern` matches a stretch of `text` within `limit` (Sellers' algorithm),
    each with the start of its cheapest alignment. A [bracketed] character may only be itself or a
    homophone, never dropped."""
    m, n = len(pattern), len(text.text)
    if m == 0 or n == 0:
        return []
    eps = 1e-9
    if limit < min(costs.homophone, costs.near, 1.0) - eps:  # nothing but an exact match fits
        found, at = [], text.text.find(pattern)
        while at >= 0:
            found.append(Match(at, at + m, 0.0, m))
            at = text.text.find(pattern, at + 1)
        return found
    must = required or (False,) * m
    if lower_bound(pattern, text, costs, must) > limit + eps:
        return []
    t = text.text
    skip = [REQUIRED_MISSING if must[i] else 1.0 for i in range(m)]
    prev = [0.0] * (m + 1)
    for i in range(1, m + 1):
        prev[i] = prev[i - 1] + skip[i - 1]
    prev_start = [0] * (m + 1)
    found = []
    for j in range(1, n + 1):
        tj = t[j - 1]
        cur = [0.0] * (m + 1)
        cur_start = [j] * (m + 1)
        for i in range(1, m + 1):
            cost = costs.substitution(pattern[i - 1], tj)
            if must[i - 1] and cost > costs.homophone:
                cost = REQUIRED_MISSING
            best = prev[i - 1] + cost
            start = prev_start[i - 1]
            skip_pattern = cur[i - 1] + skip[i - 1]
            if skip_pattern < best - eps:
                best, start = skip_pattern, cur_start[i - 1]
            extra_text = prev[i] + 1.0
            if extra_text < best - eps:
                best, start = extra_text, prev_start[i]
            cur[i] = best
            cur_start[i] = start
        if cur[m] <= limit + eps and j > cur_start[m]:
            found.append(Match(cur_start[m], j, round(cur[m], 6), m))
        prev, prev_start = cur, cur_start
    return found


# ---- the scorecard's phrase vocabulary, for the metrics stage -----------------------------------


@dataclass(frozen=True)
class ServicePhrases:
    """The scorecard's `phrases` section as the metrics stage receives it: the service phrases that
    decide facts about holds, with the scorecard's matching costs. The rules reference the same lists
    (`patterns: phrases.hold_ask`), and both are matched by this module, so a phrase a supervisor
    adds counts for the rule and for the metric alike."""

    hold_ask: tuple[str, ...] = ()  # asking the customer to wait (请您稍等)
    hold_checkin: tuple[str, ...] = ()  # words of a check-in during a hold (还在为您查询)
    hold_thanks: tuple[str, ...] = ()  # thanks after a hold (让您久等了)
    hold_lookup: tuple[str, ...] = ()  # the wait is a look-up (查询, 核实)
    goodbye: tuple[str, ...] = ()  # the agent is ending the call (再见)
    customer_waits: tuple[str, ...] = ()  # the customer agrees to wait on (你慢慢查，我不着急)
    costs: Costs = Costs()
    # Extra edit cost allowed when the metrics ask "was it said" (scorecard matching.metrics_slack):
    # a fact about the call must not flip on one near-sounding character (请您收等 for 请您稍等);
    # the rules keep their own budget and send such near misses to review.
    slack: float = 0.5

    def find(self, text: str, patterns: Sequence[str]) -> str | None:
        """The pattern of `patterns` said in `text` (the closest match), or None."""
        found = best_match(text, patterns, self.costs, self.slack)
        return found[0] if found is not None else None

    def outside(self, text: str, patterns: Sequence[str]) -> tuple[str, ...]:
        """The pieces of `text` (canonical) left when every stretch that matches one of `patterns` is
        cut out, apart so that nothing matches across a cut (不好意思让您久等了，我还在帮您查 less
        the thanks is 我还在帮您查)."""
        norm = canonical(text)
        cuts = sorted(
            (m.start, m.end)
            for source in patterns
            for m in compile_pattern(source).search(norm, self.costs, self.slack)
        )
        pieces, at = [], 0
        for start, end in cuts:
            pieces.append(norm.text[at:start])
            at = max(at, end)
        pieces.append(norm.text[at:])
        return tuple(piece for piece in pieces if piece)


def best_match(
    text: str, patterns: Sequence[str], costs: Costs, slack: float = 0.0
) -> tuple[str, Match] | None:
    """The pattern of `patterns` that matches `text` most closely (longer first on a tie), with its
    match; `slack` widens every pattern's budget."""
    norm = canonical(text)
    best: tuple[str, Match] | None = None
    for source in patterns:
        for match in compile_pattern(source).search(norm, costs, slack):
            if best is None or (match.similarity, match.length) > (best[1].similarity, best[1].length):
                best = (source, match)
    return best
