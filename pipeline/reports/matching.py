"""Customer-side abuse phrases, for grievance-award (委屈奖) candidates.

Matching is kept in this one function so it can be switched to the scorecard's ASR-robust matcher
(`pipeline/rules/`) later: it takes a text and the configured phrases and returns the phrases found.
"""

from __future__ import annotations

from functools import lru_cache

from pipeline.text import normalize


def abuse_phrases_in(text: str | None, phrases: tuple[str, ...]) -> list[str]:
    """The configured phrases that occur in `text`, compared on normalised text (simplified,
    no punctuation or spaces, digits as Chinese), in the order of the phrase list."""
    if not text:
        return []
    spoken = normalize(text)
    return [phrase for phrase, norm in _normalised(phrases) if norm in spoken]


@lru_cache(maxsize=8)
def _normalised(phrases: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((phrase, normalize(phrase)) for phrase in phrases)
