"""Interval algebra on (start, end) pairs, with the thresholds' edges exactly as documented.

(pyannote.core's Timeline.support merges gaps strictly shorter than its collar; the metric
definitions say "pauses longer than 0.3 s", so a 0.3 s pause must be bridged: hence our own.)
"""

from __future__ import annotations

from collections.abc import Iterable

Span = tuple[float, float]
_EPS = 1e-9


def union(spans: Iterable[Span], bridge_s: float = 0.0) -> list[Span]:
    """Merged spans; gaps up to and including `bridge_s` are closed."""
    merged: list[list[float]] = []
    for a, b in sorted((a, b) for a, b in spans if b > a):
        if merged and a - merged[-1][1] <= bridge_s + _EPS:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def total(spans: Iterable[Span]) -> float:
    return float(sum(b - a for a, b in union(spans)))


def intersect(first: Iterable[Span], second: Iterable[Span]) -> list[Span]:
    a, b = union(first), union(second)
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def gaps(spans: Iterable[Span], start: float, end: float) -> list[Span]:
    """The parts of [start, end] that no span covers."""
    out, cursor = [], start
    for a, b in union(spans):
        if b <= start or a >= end:
            continue
        if a > cursor:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def containing(spans: Iterable[Span], t: float) -> Span | None:
    """The span that contains time t (start inclusive), if any."""
    return next(((a, b) for a, b in spans if a <= t < b), None)
