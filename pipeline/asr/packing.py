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


class TurnSamples:
    """A party's track cut down to its turns with their padding (`turn_bounds`), all that whisper
    reads of it: a slice inside one turn's bounds gives the track's own samples. The rest of a long
    recording's track need not be held while whisper runs (a three-hour line left open: 1.3 GB of
    tracks, minutes of turns).

    Turns that cover half the track or more keep the track itself: copying them would hold more,
    while both exist, than releasing the track gives back."""

    def __init__(self, track: np.ndarray, sample_rate: int, turns: Sequence[SpeechTurn]) -> None:
        self._length = len(track)
        self._dtype = track.dtype
        spans: list[list[int]] = []
        for lo, hi in sorted(turn_bounds(len(track), sample_rate, turn) for turn in turns):
            if hi <= lo:
                continue
            if spans and lo <= spans[-1][1]:  # overlapping bounds: one span, so a slice lies in one
                spans[-1][1] = max(spans[-1][1], hi)
            else:
                spans.append([lo, hi])
        if 2 * sum(hi - lo for lo, hi in spans) >= len(track):
            self._starts = np.zeros(1, dtype=np.int64)
            self._spans = [track]
            return
        self._starts = np.array([lo for lo, _ in spans], dtype=np.int64)
        self._spans = [np.array(track[lo:hi]) for lo, hi in spans]

    def __len__(self) -> int:
        return self._length

    @property
    def nbytes(self) -> int:
        return sum(span.nbytes for span in self._spans)

    def __getitem__(self, key: slice) -> np.ndarray:
        lo, hi, step = key.indices(self._length)
        if hi <= lo:
            return np.zeros(0, dtype=self._dtype)
        index = int(np.searchsorted(self._starts, lo, side="right")) - 1
        if step != 1 or index < 0 or hi > self._starts[index] + len(self._spans[index]):
            raise IndexError(f"samples {lo}:{hi} are not within one turn's bounds")
        first = int(self._starts[index])
        return self._spans[index][lo - first : hi - first]


# A party's samples as the recogniser reads them: the whole track, or only its turns.
Samples = np.ndarray | TurnSamples


def join_turns(
    parts: Sequence[tuple[Samples, Sequence[SpeechTurn]]], sample_rate: int
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


def locate_words(words: Sequence[tuple[float, float, int]], pieces: Sequence[Piece]) -> list[Piece]:
    """The piece each word — (start, end, whisper segment; segment < 0: unknown) on the joined
    signal — belongs to.

    A word inside a piece belongs to it. A word whisper timed into the silence between two pieces
    belongs to the piece the rest of its sentence (whisper's segment) is in: whisper often starts a
    turn's first word early, in the silence before it, and the nearer piece was then the turn before
    (感谢 of 感谢您的耐心等待 after hold music went to the last check-in, and HOLD-THANK deducted a
    thanks that was said). But a nearer piece with no word of its own keeps it: whisper also writes
    a short turn and the next one as one sentence (a backchannel 是的 timed into the silence after
    it, 是的，这个不对), and a voiced turn left without words is decoded again alone, worse. A word
    whose sentence lies on both sides goes to the nearer piece.
    """
    middles = [(start + end) / 2 for start, end, _ in words]
    inside = [next((p for p in pieces if p.joined_start <= m <= p.joined_end), None) for m in middles]
    worded = {p for p in inside if p is not None}
    out: list[Piece] = []
    for i, (_, _, segment) in enumerate(words):
        piece = inside[i]
        if piece is None:
            nearest = locate(middles[i], pieces)
            sides = {
                side
                for side in (
                    _sentence_neighbour(words, inside, i, -1, segment),
                    _sentence_neighbour(words, inside, i, 1, segment),
                )
                if side is not None
            }
            piece = sides.pop() if len(sides) == 1 and nearest in worded else nearest
        out.append(piece)
    return out


def _sentence_neighbour(
    words: Sequence[tuple[float, float, int]], inside: Sequence[Piece | None], i: int, step: int, segment: int
) -> Piece | None:
    """The piece of the nearest word of the same segment before (step -1) or after (+1) word i
    that lies inside a piece; None when there is none."""
    if segment < 0:
        return None
    j = i + step
    while 0 <= j < len(words) and words[j][2] == segment:
        if inside[j] is not None:
            return inside[j]
        j += step
    return None
