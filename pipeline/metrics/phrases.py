"""Finding short service phrases (请您稍等, 让您久等了 …) in ASR text that has errors in it.

Text is normalised (simplified, no punctuation, digits as Chinese) and compared syllable by
syllable in toneless pinyin, so homophone errors (清问/请问, 你/您 are different syllables but
稍等/少等 are not) cost nothing; other errors are allowed up to a budget that grows with the
phrase length. The search is a semi-global alignment: the phrase may sit anywhere in the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipeline.text import normalize


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str
    errors: int
    confidence: float  # 1 - errors / phrase length


@lru_cache(maxsize=4096)
def syllables(text: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    normalized = normalize(text)
    return tuple(lazy_pinyin(normalized, style=Style.NORMAL, errors=lambda chars: list(chars)))


def error_budget(phrase_length: int, per_4_chars: int) -> int:
    return (phrase_length // 4) * per_4_chars


def find_phrase(text: str, phrases: Sequence[str], per_4_chars: int = 1) -> PhraseMatch | None:
    """The phrase of `phrases` found in `text` with the fewest errors (within budget), or None."""
    haystack = syllables(text)
    best: PhraseMatch | None = None
    for phrase in phrases:
        needle = syllables(phrase)
        if not needle:
            continue
        budget = error_budget(len(needle), per_4_chars)
        errors = _best_alignment(needle, haystack)
        if errors <= budget:
            match = PhraseMatch(phrase, errors, round(1 - errors / len(needle), 3))
            if best is None or (match.confidence, len(needle)) > (
                best.confidence,
                len(syllables(best.phrase)),
            ):
                best = match
    return best


def _best_alignment(needle: Sequence[str], haystack: Sequence[str]) -> int:
    """Fewest edits to make `needle` equal some substring of `haystack` (Sellers' algorithm)."""
    previous = list(range(len(needle) + 1))
    best = previous[-1]
    for syllable in haystack:
        current = [0]  # the match may start anywhere: no cost before it
        for i, wanted in enumerate(needle, 1):
            current.append(min(previous[i] + 1, current[i - 1] + 1, previous[i - 1] + (wanted != syllable)))
        best = min(best, current[-1])
        previous = current
    return best
