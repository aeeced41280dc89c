"""Matching by intent: a required phrase recognised by its elements, not by one sentence.

Agents close calls in their own words: 还有别的需要我帮您处理的吗 / 您看还有其他业务要办理吗 /
请问还有其他问题需要咨询吗 all ask whether anything else is needed. What they share is a few
interchangeable key words per element — something *else* (还有、其他、别的 …), a *matter*
(问题、业务、需要、帮 …) and a *question* (吗、呢、有没有、？) — said together in one utterance.
The scorecard lists the words per element (`all_of`, rules/default.yaml); an utterance in which
every element has one of its words, within `within_chars` characters of each other and without
two elements sharing characters, says the intent.

Words match in canonical text (pipeline/rules/matching.py), exactly or, from two characters up,
by sound: every character the same or a homophone (资讯 for 咨询: whisper writes the sound it
heard). A word with one character only near in sound (自信 for 咨询) is a guess: it may fill in
one element of an intent of three or more whose other elements were heard, and such a match counts
as partial (review), never as proof. One-character words (吗、帮) must be exact: any
homophone of a single character is too common. A `？` (or `?`) in the
list stands for the recogniser's question mark, which the canonical text drops.

An utterance with every element but one is a *partial* match (还有其他问题 without a question:
如果还有问题，欢迎您随时来电): the scorecard may send such a call to review instead of deducting.
An element listed in `partial_requires` must be there even for a partial match (the opening's
请问有什么可以帮您 lacks 其他: it is not half a closing ask).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise, product

from pipeline.rules.matching import NEAR, OTHER, Costs, NormText, canonical_text, compile_pattern, relation

QUESTION_MARKS = ("？", "?")
# A near sound (星 xing for 评 ping) is one letter of pinyin away: alone it proves nothing (好评 →
# 好星 in 您好，星河). It may fill in one word of an intent with at least this many elements, the
# others heard, or one character of a word of three or more.
NEAR_NEEDS_ELEMENTS = 3
# A word this long heard with a stretch the recogniser was unsure of may be a misheard word
# (misheard_places): shorter words resemble too much ordinary speech.
MISHEARD_MIN_CHARS = 3
# How far a misheard word's characters may be from the word's: a near sound half, any other sound one.
_MISHEARD_COST = {NEAR: 0.5, OTHER: 1.0}
MISHEARD_MAX_COST = 1.0
MAX_PLACES = 16  # occurrences of one element per utterance considered (closings are short)


@dataclass(frozen=True)
class Intent:
    """Elements that must all be said in one utterance: (element name, interchangeable words)."""

    elements: tuple[tuple[str, tuple[str, ...]], ...]
    within_chars: int = 20
    # Elements a partial match may not lack: without 其他, 请问有什么可以帮您 (the opening) is no
    # half-said closing ask, it is another question altogether.
    partial_requires: tuple[str, ...] = ()
    # Sayings that are not the intent even though they carry its words (the handbook's blunt
    # 还有别的事吗): a match inside one of them does not count, not even as a partial one.
    exceptions: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.elements)


@dataclass(frozen=True)
class IntentMatch:
    start: int  # canonical span [start, end) covering the found elements
    end: int
    found: tuple[str, ...]  # element names, in the intent's order
    missing: tuple[str, ...]
    cost: float  # homophone and near-sound costs of the words used
    near: bool = False  # a word was heard only as a near sound (自信 for 咨询): a guess, not proof

    @property
    def complete(self) -> bool:
        return not self.missing


Place = tuple[int, int, float, bool]  # canonical [start, end), cost, heard only as a near sound


def word_places(word: str, text: NormText, costs: Costs) -> list[Place]:
    """Where `word` is said: exactly, or (two characters up) with every character the same, a
    homophone or — at most one of them — a near sound, never a character dropped or added."""
    t, size = text.text, len(word)
    if size == 1:
        return [(i, i + 1, 0.0, False) for i, c in enumerate(t) if c == word]
    places: list[Place] = []
    for i in range(len(t) - size + 1):
        cost, near = 0.0, 0
        for a, b in zip(word, t[i : i + size], strict=True):
            kind = relation(a, b)
            if kind == OTHER:
                break
            cost += (0.0, costs.homophone, costs.near)[kind]
            near += kind == NEAR
        else:
            if near <= 1:
                places.append((i, i + size, cost, near > 0))
    return places


def misheard_places(word: str, text: NormText, unsure: Callable[[int, int], bool]) -> list[Place]:
    """Where a word of three characters or more may have been misheard (满意度 → 买一都, 打个分 →
    大歌声): every character the same or a homophone but one that sounds like anything or two near
    sounds (调动分 and 大批人 are too far from 打个分), and the recogniser unsure of the stretch
    (`unsure`, canonical span). A guess (near), never proof."""
    t, size = text.text, len(word)
    if size < MISHEARD_MIN_CHARS:
        return []
    places: list[Place] = []
    for i in range(len(t) - size + 1):
        kinds = [relation(a, b) for a, b in zip(word, t[i : i + size], strict=True)]
        misheard = sum(_MISHEARD_COST.get(k, 0.0) for k in kinds)
        if 0 < misheard <= MISHEARD_MAX_COST and unsure(i, i + size):
            places.append((i, i + size, misheard, True))
    return places


def element_places(words: tuple[str, ...], text: NormText, costs: Costs) -> list[Place]:
    """Where any of an element's words is said in `text`."""
    places: list[Place] = []
    for word in words:
        if word in QUESTION_MARKS:
            for i, c in enumerate(text.raw):
                if c in QUESTION_MARKS:
                    at = bisect_left(text.raw_start, i)  # the canonical position right after it
                    places.append((at, at, 0.0, False))
            continue
        places += word_places(canonical_text(word), text, costs)
    places = sorted(set(places), key=lambda p: (p[3], p[2], p[0]))
    return places[:MAX_PLACES]


def search_intent(
    intent: Intent, text: NormText, costs: Costs, unsure: Callable[[int, int], bool] | None = None
) -> IntentMatch | None:
    """The best match of `intent` in one utterance: complete if possible (heard rather than
    guessed, tightest, cheapest), else one element short (a partial match), else None.

    `unsure(start, end)`: whether the recogniser was unsure of a canonical stretch; with it, a
    misheard word (misheard_places) may stand in for one element, as a guess."""
    blocked = [
        (m.start, m.end) for source in intent.exceptions for m in compile_pattern(source).search(text, costs)
    ]
    places = [
        [
            p
            for p in element_places(words, text, costs)
            if not any(a <= p[0] and p[1] <= b for a, b in blocked)
        ]
        for _, words in intent.elements
    ]
    heard = [[p for p in element if not p[3]] for element in places]
    complete = _best(intent, heard, list(range(len(places))))
    if complete is not None:
        return complete
    # a near sound may stand in for one word when every other element was heard, or within a word
    # of three characters or more whose other characters were heard (买一独 for 满意度): a guess
    guessable = [
        [p for p in element if not p[3] or len(places) >= NEAR_NEEDS_ELEMENTS or p[1] - p[0] >= 3]
        for element in places
    ]
    guessed = _best(intent, guessable, list(range(len(places))))
    if guessed is not None:
        return guessed
    if unsure is not None:
        # one element heard only as a stretch the recogniser was unsure of, the others heard
        for k, (_, words) in enumerate(intent.elements):
            misheard = [
                p
                for word in words
                if word not in QUESTION_MARKS
                for p in misheard_places(canonical_text(word), text, unsure)
                if not any(a <= p[0] and p[1] <= b for a, b in blocked)
            ]
            if misheard:
                trial = [misheard if j == k else element for j, element in enumerate(heard)]
                found = _best(intent, trial, list(range(len(places))))
                if found is not None:
                    return found
    if len(places) < 2:
        return None
    partials = [
        m
        for skip in range(len(places))
        if intent.elements[skip][0] not in intent.partial_requires
        and (m := _best(intent, heard, [k for k in range(len(places)) if k != skip])) is not None
    ]
    return min(partials, key=lambda m: (m.end - m.start, m.cost)) if partials else None


def _best(intent: Intent, places: list[list[Place]], keys: list[int]) -> IntentMatch | None:
    """The best non-overlapping choice of one place per element of `keys`, within the span."""
    if any(not places[k] for k in keys):
        return None
    best: tuple[bool, int, float, int, int] | None = None
    for combo in product(*(places[k] for k in keys)):
        spans = sorted(combo)
        if any(a[1] > b[0] for a, b in pairwise(spans)):
            continue  # two elements on the same characters (还需要 is not 还 + 需要)
        start, end = min(p[0] for p in combo), max(p[1] for p in combo)
        if end - start > intent.within_chars:
            continue
        candidate = (any(p[3] for p in combo), end - start, sum(p[2] for p in combo), start, end)
        if best is None or candidate[:3] < best[:3]:
            best = candidate
    if best is None:
        return None
    names = intent.names
    found = tuple(names[k] for k in sorted(keys))
    missing = tuple(n for k, n in enumerate(names) if k not in keys)
    return IntentMatch(best[3], best[4], found, missing, best[2], best[0])
