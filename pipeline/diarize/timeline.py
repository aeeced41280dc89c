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


def merged_by_speaker(voice_activity: Iterable[SpeechTurn]) -> list[SpeechTurn]:
    """Each speaker's overlapping stretches as one, in time order. Where a speaker is voiced is a
    set of times: a stretch found again inside a silence, or a sentence given to the other voice,
    can overlap one the speaker already had (two stretches of one speaker starting at the same
    moment once stopped a call from being stored)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for v in voice_activity:
        spans.setdefault(v.speaker, []).append((v.start, v.end))
    merged = [
        SpeechTurn(speaker, start, end)
        for speaker, stretches in spans.items()
        for start, end in clean_segments(stretches, 0.0, 0.0)
    ]
    return sorted(merged, key=lambda s: (s.start, s.end))


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


def extend_onsets(
    candidate: np.ndarray, anchors: np.ndarray, max_frames: int, bridge_frames: int = 8
) -> np.ndarray:
    """Anchor frames, each stretch of them started earlier through the loud frames just before it.

    Voice detection (the anchors) confirms speech but reacts late to an onset after a long silence
    — a second or more of loud speech at low probability. Loudness (the candidates) marks where
    the sound really starts but cannot tell a voice from music, so the start moves back through
    loud frames (gaps of up to `bridge_frames` allowed) by at most `max_frames`. Where the sound
    had been going on for another `max_frames` before that (hold music, a steady noise), loudness
    shows no onset and the anchor's start stands.
    """
    out = anchors.astype(bool).copy()
    loud = candidate.astype(bool)
    for segment_start, _ in mask_to_segments(out, 1.0):
        start = int(segment_start)
        limit = max(0, start - max_frames)
        i, reached = _back_through_loud(loud, start, limit, bridge_frames)
        # Loud all the way to the limit and for max_frames before it: music or noise, no onset.
        if (
            reached
            and limit >= max_frames
            and _back_through_loud(loud, limit, limit - max_frames, bridge_frames)[1]
        ):
            continue
        while i < start and not loud[i]:  # never start on a quiet frame
            i += 1
        out[i:start] = True
    return out


def _back_through_loud(loud: np.ndarray, end: int, limit: int, bridge_frames: int) -> tuple[int, bool]:
    """Step back from `end` through loud frames (gaps of up to `bridge_frames`), not past `limit`:
    the frame reached, and whether that is `limit` itself."""
    i, quiet = end, 0
    while i - 1 >= limit:
        quiet = 0 if loud[i - 1] else quiet + 1
        if quiet > bridge_frames:
            return i, False
        i -= 1
    return i, True


def confirmed_islands(
    loud: np.ndarray, anchors: np.ndarray, max_frames: int, join_frames: int = 3, min_anchor_frames: int = 4
) -> np.ndarray:
    """The loud frames of every sound island that voice detection confirms somewhere.

    An island is a run of loud frames in which quiet dips of at most `join_frames` (0.1 s at 32 ms,
    the ground truth's own pause convention) do not count as breaks. Silero scores a drawn-out
    vowel like a steady tone (below 0.1 over whole slow syllables, measured), so frame-by-frame it
    cuts a slow speaker's words into pieces; but one breath of speech is one island, and an island
    with at least `min_anchor_frames` confirmed frames is one voice throughout. Islands longer than
    `max_frames` are not one breath of speech (hold music, a tone, steady noise, speech over music):
    there only the anchors count.
    """
    loud = loud.astype(bool)
    anchors = anchors.astype(bool)
    out = np.zeros_like(loud)
    for a, b in sound_islands(loud, join_frames):
        if b - a <= max_frames and np.count_nonzero(anchors[a:b]) >= min_anchor_frames:
            out[a:b] = loud[a:b]
    return out


def sound_islands(loud: np.ndarray, join_frames: int = 3) -> list[tuple[int, int]]:
    """(start, end) frames of the runs of loud frames, quiet dips of at most `join_frames` bridged."""
    loud = loud.astype(bool)
    joined = loud.copy()
    for start, end in mask_to_segments(~loud, 1.0):
        a, b = int(start), int(end)
        if b - a <= join_frames and a > 0 and b < loud.size:
            joined[a:b] = True
    return [(int(start), int(end)) for start, end in mask_to_segments(joined, 1.0)]


def long_sound(loud: np.ndarray, max_frames: int, settle_frames: int = 0, join_frames: int = 3) -> np.ndarray:
    """The frames of sound islands longer than `max_frames` — longer than a breath of speech: hold
    music, a tone, steady noise, or speech over them — without each island's first `settle_frames`."""
    out = np.zeros(loud.shape, dtype=bool)
    for a, b in sound_islands(loud, join_frames):
        if b - a > max_frames:
            out[a + settle_frames : b] = True
    return out


def runs_at_least(mask: np.ndarray, frames: int) -> np.ndarray:
    """The runs of True in `mask` that last at least `frames` frames."""
    out = np.zeros(mask.shape, dtype=bool)
    for start, end in mask_to_segments(mask, 1.0):
        if int(end) - int(start) >= frames:
            out[int(start) : int(end)] = True
    return out
