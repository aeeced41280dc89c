"""Frame decisions → voiced stretches → turns, with pyannote.core doing the interval algebra."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from pyannote.core import Segment, Timeline

from pipeline.records import SpeechTurn


def mask_to_segments(mask: np.ndarray, frame_s: float) -> list[tuple[float, float]]:
    """Runs of True in a frame mask as (start, end) seconds."""
    if mask.size == 0:
        return []
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(float(a * frame_s), float(b * frame_s)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def clean_segments(
    segments: Iterable[tuple[float, float]], fill_gap_s: float, min_duration_s: float
) -> list[tuple[float, float]]:
    """Close gaps shorter than `fill_gap_s`, then drop stretches shorter than `min_duration_s`."""
    timeline = Timeline([Segment(start, end) for start, end in segments if end > start])
    merged = timeline.support(collar=fill_gap_s)
    return [(seg.start, seg.end) for seg in merged if seg.duration >= min_duration_s]


def build_turns(voice_activity: Sequence[SpeechTurn], turn_gap_s: float) -> list[SpeechTurn]:
    """Merge a party's voiced stretches into turns.

    A turn ends at a pause of `turn_gap_s` or more, or where the other party starts speaking in
    the pause (a turn exchange, even a quick one).
    """
    by_speaker: dict[str, list[SpeechTurn]] = {}
    for stretch in sorted(voice_activity, key=lambda s: (s.start, s.end)):
        by_speaker.setdefault(stretch.speaker, []).append(stretch)
    starts_of_others = {
        speaker: np.array(sorted(s.start for s in voice_activity if s.speaker != speaker))
        for speaker in by_speaker
    }
    turns: list[SpeechTurn] = []
    for speaker, stretches in by_speaker.items():
        others = starts_of_others[speaker]
        current = stretches[0]
        for stretch in stretches[1:]:
            gap_start, gap_end = current.end, stretch.start
            other_spoke = bool(np.any((others >= gap_start) & (others < gap_end)))
            if gap_end - gap_start < turn_gap_s and not other_spoke:
                current = SpeechTurn(speaker, current.start, max(current.end, stretch.end))
            else:
                turns.append(current)
                current = stretch
        turns.append(current)
    return sorted(turns, key=lambda t: (t.start, t.end))


def anchored_runs(candidate: np.ndarray, anchors: np.ndarray, bridge_frames: int = 8) -> np.ndarray:
    """The runs of `candidate` frames (gaps up to `bridge_frames` closed) that contain an anchor frame.

    Voice detection confirms speech (the anchors) but reacts late to an onset after a long
    silence; loudness marks the true extent of the sound (the candidates) but cannot tell a
    voice from a ring tone. A loud stretch holding confirmed speech is speech from its first
    loud frame to its last.
    """
    closed = candidate.astype(bool).copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[1], closed.astype(np.int8), [1]])))
    for gap_start, gap_end in zip(edges[0::2], edges[1::2], strict=True):
        if gap_start > 0 and gap_end < len(closed) and gap_end - gap_start <= bridge_frames:
            closed[gap_start:gap_end] = True
    out = np.zeros_like(closed)
    for start, end in mask_to_segments(closed, 1.0):
        lo, hi = int(start), int(end)
        if anchors[lo:hi].any():
            out[lo:hi] = True
    return out
