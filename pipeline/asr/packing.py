"""Turns laid end to end for whisper, and the 30-second windows they are decoded in.

Each party's turns are cut from its track (with a little padding) and laid one after another
with a short silence between them; with several parties (the two channels of a stereo call) one
party's pieces follow the other's on the same joined signal, so their windows can be decoded in
one batch. Windows start and end between turns and never hold two parties: a word is never cut
by a window's edge, and a window's evidence (avg_logprob, no_speech_prob) is about one party's
speech. A turn longer than a window is cut at its quietest moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.records import SpeechTurn

# Padding kept around each turn: diarization boundaries are frame-accurate, word tails are not.
TURN_PADDING_S = 0.2
# Silence laid between turns: longer than whisper's timestamp error. With half a second whisper
# often dropped a turn's first words (还在为您… → 在为您…, 感谢您的耐心等待 → 您的耐心等待): on the
# tuning set's true agent turns (18 calls, 180 turns) a full second cut turns whose first syllable
# was lost from 20.6 % to 11.1 % and CER from 0.156 to 0.143. A short piece skipped altogether (a
# greeting's 您好 after a ring, seen with a full second before the retry existed) is decoded again
# alone by transcribe._redo_skipped_turns.
TURN_GAP_S = 1.0
# Whisper's input window is 30 s; a hair less, so that faster-whisper's rounding of the window's
# ends to samples never makes it longer (it then drops the last sample and logs a warning).
WINDOW_S = 29.99
# A turn longer than a window is cut at the quietest 20 ms in the last third of the window.
_CUT_FRAME_S = 0.02


@dataclass(frozen=True)
class Piece:
    """One turn (with padding) on the joined signal: where it lies there and on the recording."""

    party: int
    joined_start: float
    recording_start: float
    length: float

    @property
    def joined_end(self) -> float:
        return self.joined_start + self.length


def turn_bounds(track_len: int, sample_rate: int, turn: SpeechTurn) -> tuple[int, int]:
    """Sample range of a turn with its padding, inside the track."""
    lo = max(0, int((turn.start - TURN_PADDING_S) * sample_rate))
    hi = min(track_len, int((turn.end + TURN_PADDING_S) * sample_rate))
    return lo, hi


def join_turns(
    parts: Sequence[tuple[np.ndarray, Sequence[SpeechTurn]]], sample_rate: int
) -> tuple[np.ndarray, list[Piece]]:
    """Every party's turns laid end to end, party after party, silence between turns."""
    gap = np.zeros(int(TURN_GAP_S * sample_rate), dtype=np.float32)
    signals: list[np.ndarray] = []
    pieces: list[Piece] = []
    cursor = 0.0
    for party, (track, turns) in enumerate(parts):
        for turn in sorted(turns, key=lambda t: t.start):
            lo, hi = turn_bounds(len(track), sample_rate, turn)
            if hi <= lo:
                continue
            signals += [track[lo:hi].astype(np.float32), gap]
            pieces.append(Piece(party, cursor, lo / sample_rate, (hi - lo) / sample_rate))
            cursor += (hi - lo + len(gap)) / sample_rate
    joined = np.concatenate(signals) if signals else np.zeros(0, dtype=np.float32)
    return joined, pieces


def windows(
    joined: np.ndarray, sample_rate: int, pieces: Sequence[Piece], max_s: float = WINDOW_S
) -> list[tuple[float, float]]:
    """(start, end) seconds on the joined signal of windows of at most `max_s` covering every piece."""
    out: list[tuple[float, float]] = []
    start: float | None = None
    end = 0.0
    party = -1
    for piece in pieces:
        if start is not None and (piece.party != party or piece.joined_end - start > max_s):
            out.append((start, end))
            start = None
        if start is None:
            start, party = piece.joined_start, piece.party
        while piece.joined_end - start > max_s:
            cut = _quietest(joined, sample_rate, start + max_s * 2 / 3, start + max_s)
            out.append((start, cut))
            start = cut
        end = min(piece.joined_end + TURN_GAP_S, start + max_s, len(joined) / sample_rate)
    if start is not None:
        out.append((start, end))
    return out


def _quietest(signal: np.ndarray, sample_rate: int, lo_s: float, hi_s: float) -> float:
    """Start time of the quietest 20 ms frame between lo_s and hi_s."""
    frame = max(1, int(_CUT_FRAME_S * sample_rate))
    lo, hi = int(lo_s * sample_rate), int(hi_s * sample_rate)
    count = (hi - lo) // frame
    if count < 1:
        return hi_s
    frames = signal[lo : lo + count * frame].reshape(count, frame)
    return (lo + int(np.argmin(np.mean(frames * frames, axis=1))) * frame) / sample_rate


def locate(middle: float, pieces: Sequence[Piece]) -> Piece:
    """The piece a time on the joined signal belongs to (the nearest one when in a gap)."""
    return min(pieces, key=lambda p: max(p.joined_start - middle, middle - p.joined_end, 0.0))
