"""What the recogniser tells us about how far to trust an utterance, and a loop detector of our own.

Whisper reports, per 30-second decoding window, the mean token log-probability, the probability
that the window holds no speech and the gzip compression ratio of its text. The pipeline lays a
party's turns end to end, so one window holds several turns: a loop in one short turn
(请您稍后对等从不仅仅仅仅仅仅仅仅) barely moves the window's compression ratio, and a short text
compresses badly whatever it says. So each utterance also gets its own test: a unit of one to six
characters repeated back to back (仅仅仅仅仅仅, 的忙的忙的忙的忙) marks it as looping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Back-to-back repeats of a unit of n characters that make a loop. Short units need more repeats:
# people do say 对对对对 or 好的好的好的, whisper's loops run on far longer.
LOOP_MIN_REPEATS: dict[int, int] = {1: 5, 2: 4, 3: 3, 4: 3, 5: 3, 6: 3}
# Digit runs repeat legitimately (400-888-8888, 幺零幺零): they are never taken for a loop.
_NUMBER_CHARS = set("0123456789零〇一二三四五六七八九十百千万幺两洞拐勾要腰妖")
_SPOKEN = re.compile(r"\w")


@dataclass(frozen=True)
class WindowEvidence:
    """Whisper's figures for the decoding window (segment) a word came from."""

    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float


@dataclass(frozen=True)
class Loop:
    """A repeated unit in a text: text[start:end] is `unit` said `repeats` times."""

    start: int
    end: int
    unit: str
    repeats: int


def find_loops(text: str) -> list[Loop]:
    """Stretches of `text` where a short unit repeats back to back, longest first, not overlapping.

    Punctuation is ignored (whisper puts commas inside loops); offsets are into `text`.
    """
    positions = [i for i, c in enumerate(text) if _SPOKEN.match(c) and c != "_"]
    spoken = "".join(text[i] for i in positions)
    found: list[Loop] = []
    for n, need in LOOP_MIN_REPEATS.items():
        i = 0
        while i + n * need <= len(spoken):
            unit = spoken[i : i + n]
            repeats = 1
            while spoken[i + repeats * n : i + (repeats + 1) * n] == unit:
                repeats += 1
            if repeats >= need and not _is_number(unit) and not _is_shorter_unit(unit):
                end = i + repeats * n
                found.append(Loop(positions[i], positions[end - 1] + 1, unit, repeats))
                i = end
            else:
                i += 1
    kept: list[Loop] = []
    for loop in sorted(found, key=lambda x: -(x.end - x.start)):
        if all(loop.end <= k.start or k.end <= loop.start for k in kept):
            kept.append(loop)
    return sorted(kept, key=lambda x: x.start)


def _is_number(unit: str) -> bool:
    return all(c in _NUMBER_CHARS for c in unit)


def _is_shorter_unit(unit: str) -> bool:
    """仅仅 as a unit of two is the loop of 仅: it is found (and judged) as that."""
    return any(len(unit) % k == 0 and unit == unit[:k] * (len(unit) // k) for k in range(1, len(unit)))


def utterance_evidence(
    windows: Iterable[WindowEvidence],
    text: str,
    spans: Iterable[tuple[float, float]],
    turn: tuple[float, float],
) -> dict[str, float | bool | None]:
    """The recogniser evidence an Utterance carries, from the windows its words came from.

    The weakest window counts: the lowest log-probability, the highest no-speech probability and
    compression ratio. `looping` is our own detector on the utterance's text; `unheard_s` the part
    of the turn that no word's time covers (whisper drops drawn-out speech without a trace in its
    figures: a sentence slowed to a third at its end came back as its first half).
    """
    seen = list(windows)
    return {
        "unheard_s": round(unheard_seconds(spans, turn), 2),
        "avg_logprob": round(min(w.avg_logprob for w in seen), 3) if seen else None,
        "no_speech_prob": round(max(w.no_speech_prob for w in seen), 3) if seen else None,
        "compression_ratio": round(max(w.compression_ratio for w in seen), 3) if seen else None,
        "looping": bool(find_loops(text)),
    }


def unheard_seconds(spans: Iterable[tuple[float, float]], turn: tuple[float, float]) -> float:
    """Seconds of `turn` (start, end) outside every (start, end) span."""
    start, end = turn
    covered, reached = 0.0, start
    for a, b in sorted(spans):
        a, b = max(a, reached), min(b, end)
        if b > a:
            covered += b - a
            reached = b
    return max(0.0, end - start - covered)
