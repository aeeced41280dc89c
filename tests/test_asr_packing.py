"""Turns laid end to end for whisper and cut into windows; the batched path maps words back."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.asr.packing import (
    TURN_GAP_S,
    TURN_PADDING_S,
    WINDOW_S,
    TurnSamples,
    join_turns,
    turn_bounds,
    windows,
)
from pipeline.asr.transcribe import AsrWord, transcribe_parties
from pipeline.config import AsrConfig
from pipeline.records import SpeechTurn

RATE = 16000


def _turns(speaker: str, spans: list[tuple[float, float]]) -> list[SpeechTurn]:
    return [SpeechTurn(speaker, a, b) for a, b in spans]  # type: ignore[arg-type]


def test_parties_follow_each_other_and_windows_never_mix_them() -> None:
    agent = np.ones(RATE * 120, dtype=np.float32)
    customer = np.full(RATE * 120, 0.5, dtype=np.float32)
    # 12 agent turns of 4 s (each 4.4 s with padding, 5.4 s with its one-second gap): 5 fit in a window
    agent_turns = _turns("agent", [(5.0 + 9 * i, 9.0 + 9 * i) for i in range(12)])
    customer_turns = _turns("customer", [(10.0, 12.0), (30.0, 31.0)])
    joined, pieces = join_turns([(agent, agent_turns), (customer, customer_turns)], RATE)
    assert [p.party for p in pieces] == [0] * 12 + [1] * 2
    assert pieces[0].recording_start == pytest.approx(5.0 - TURN_PADDING_S)
    assert pieces[1].joined_start == pytest.approx(4.0 + 2 * TURN_PADDING_S + TURN_GAP_S)
    assert np.all(joined[: int(4.4 * RATE)] == 1.0)  # the agent's own samples, then silence
    assert np.all(joined[int(4.41 * RATE) : int(4.89 * RATE)] == 0.0)
    cut = windows(joined, RATE, pieces)
    per_window = int((WINDOW_S + TURN_GAP_S) // (4.4 + TURN_GAP_S))
    assert len(cut) == -(-12 // per_window) + 1  # the agent's turns, then the customer's two
    for start, end in cut:
        assert end - start <= WINDOW_S + 1e-9
        inside = [p for p in pieces if start - 1e-6 <= p.joined_start and p.joined_end <= end + 1e-6]
        assert len({p.party for p in inside}) == 1
    # every piece lies inside one window: no word is cut by a window's edge
    for piece in pieces:
        assert any(s - 1e-6 <= piece.joined_start and piece.joined_end <= e + 1e-6 for s, e in cut)


def test_a_turn_longer_than_a_window_is_cut_where_it_is_quietest() -> None:
    track = np.ones(RATE * 80, dtype=np.float32)
    track[int(26.0 * RATE) : int(26.1 * RATE)] = 0.0  # a breath 26 s into a 70 s monologue
    joined, pieces = join_turns([(track, _turns("agent", [(0.2, 70.0)]))], RATE)
    cut = windows(joined, RATE, pieces)
    assert cut[0] == (0.0, pytest.approx(26.0, abs=0.02))
    assert all(e - s <= WINDOW_S for s, e in cut) and cut[-1][1] == pytest.approx(
        pieces[0].joined_end + TURN_GAP_S
    )
    assert [cut[i][1] for i in range(len(cut) - 1)] == [cut[i + 1][0] for i in range(len(cut) - 1)]


class _WindowRecognizer:
    """Stands in for whisper's batched decoding: one word in the middle of every window."""

    def __init__(self) -> None:
        self.config = AsrConfig(batch_size=4, loop_retry_no_repeat_ngram_size=0)
        self.clips: list[tuple[float, float]] = []

    def window_words(self, signal: np.ndarray, clips: list[tuple[float, float]]) -> list[AsrWord]:
        self.clips = list(clips)
        return [AsrWord("好的", s + 0.3, s + 0.8, 0.9) for s, _ in clips]

    def words(
        self, signal: np.ndarray, vad: bool = True, no_repeat_ngram_size: int | None = None
    ) -> list[AsrWord]:
        raise AssertionError("no turn needed decoding again")


def test_batched_words_return_to_their_party_and_turn() -> None:
    agent = np.ones(RATE * 60, dtype=np.float32)
    customer = np.ones(RATE * 60, dtype=np.float32)
    recognizer = _WindowRecognizer()
    utterances = transcribe_parties(
        [(agent, _turns("agent", [(2.0, 2.9)])), (customer, _turns("customer", [(40.0, 40.9)]))],
        RATE,
        recognizer,  # type: ignore[arg-type]
    )
    assert len(recognizer.clips) == 2  # one window per party, decoded in one call
    assert [(u.speaker, u.text) for u in utterances] == [("agent", "好的"), ("customer", "好的")]
    # the customer's word was heard 0.3 s into the customer's window: 40.1 s on the recording
    assert utterances[1].chars[0].start == pytest.approx(40.0 - TURN_PADDING_S + 0.3)


def test_a_party_cut_down_to_its_turns_reads_as_its_track() -> None:
    """What whisper reads of a stereo party (each turn with its padding, turns whose padding meets
    merged) is the track's own samples; anything else of the track is gone."""
    track = np.random.default_rng(3).normal(size=RATE * 60).astype(np.float32)
    turns = _turns("agent", [(0.1, 2.0), (2.3, 4.0), (10.0, 12.5), (59.0, 60.0)])  # the first two meet
    kept = TurnSamples(track, RATE, turns)
    assert len(kept) == len(track)
    spans = [(0.0, 4.2), (9.8, 12.7), (58.8, 60.0)]  # seconds, padding included
    assert kept.nbytes == 4 * sum(int(b * RATE) - int(a * RATE) for a, b in spans)
    for turn in turns:
        lo, hi = turn_bounds(len(track), RATE, turn)
        assert np.array_equal(kept[lo:hi], track[lo:hi])
        assert np.array_equal(kept[lo + 7 : hi - 3], track[lo + 7 : hi - 3])
    assert np.array_equal(kept[int(1.0 * RATE) : int(3.0 * RATE)], track[int(1.0 * RATE) : int(3.0 * RATE)])
    with pytest.raises(IndexError):
        kept[int(5.0 * RATE) : int(6.0 * RATE)]
    with pytest.raises(IndexError):
        kept[int(11.0 * RATE) : int(13.0 * RATE)]  # runs past a turn's bounds
    joined, pieces = join_turns([(kept, turns)], RATE)
    expected, expected_pieces = join_turns([(track, turns)], RATE)
    assert pieces == expected_pieces and np.array_equal(joined, expected)
    # a party that talks most of the time: its track is kept as it is, not copied
    talkative = TurnSamples(track, RATE, _turns("agent", [(1.0, 20.0), (21.0, 40.0)]))
    assert talkative.nbytes == track.nbytes and np.shares_memory(talkative[RATE : 2 * RATE], track)
    assert np.array_equal(talkative[RATE : 40 * RATE], track[RATE : 40 * RATE])
