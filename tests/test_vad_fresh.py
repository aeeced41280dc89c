"""Silero starts afresh where sound follows a quiet: after a minute of hold music, run over the whole
call, it scores the agent's clear return low for its first second or more (the words never reach
whisper); started in the quiet just before, it hears the return at once."""

from __future__ import annotations

import csv

import numpy as np
from callsim import load_clip
from conftest import MAGICDATA

from pipeline.diarize import vad
from pipeline.diarize.vad import (
    SILERO_FRAME,
    quiet_restarts,
    short_memory_probabilities,
    speech_probabilities,
)

RATE = 16000


def _hold_music(seconds: float) -> np.ndarray:
    """tools/callsim.py's hold music: a slow arpeggio of decaying notes with two overtones."""
    notes = [261.6, 329.6, 392.0, 523.3, 392.0, 329.6, 293.7, 349.2]
    t = np.arange(int(0.45 * RATE)) / RATE
    envelope = np.exp(-3 * t)
    return np.concatenate(
        [
            (sum(np.sin(2 * np.pi * notes[k % 8] * h * t) / h for h in (1, 2, 3)) * envelope * 0.08).astype(
                np.float32
            )
            for k in range(int(seconds / 0.45))
        ]
    )


def test_the_return_after_hold_music_is_heard_from_its_first_frames() -> None:
    with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
        name = next(csv.DictReader(handle, delimiter="\t"))["file"]
    speech = load_clip(MAGICDATA / name, "").audio.astype(np.float32)[: 3 * RATE]
    music = _hold_music(60.0)
    quiet = np.zeros(int(0.9 * RATE), np.float32)
    signal = np.concatenate([music, quiet, speech])
    signal += np.random.default_rng(0).normal(0, 1e-4, len(signal)).astype(np.float32)
    onset = len(music) + len(quiet)

    (restart,) = quiet_restarts(signal, 0.5)
    assert restart % SILERO_FRAME == 0 and onset - 0.4 * RATE <= restart < onset

    first = slice(onset // SILERO_FRAME, (onset + int(1.5 * RATE)) // SILERO_FRAME)
    fresh = speech_probabilities(signal, fresh_after_quiet_s=0.5)
    assert float(np.mean(fresh[first])) >= 0.85
    # before the restart the scores are those of the whole run (but the last frame, whose context
    # ends there)
    whole = speech_probabilities(signal)
    before = restart // SILERO_FRAME - 1
    assert np.array_equal(fresh[:before], whole[:before])


def test_no_restart_without_a_long_enough_quiet() -> None:
    t = np.arange(5 * RATE) / RATE
    tone = (0.05 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    signal = np.concatenate([tone, np.zeros(int(0.3 * RATE), np.float32), tone])
    signal += np.random.default_rng(1).normal(0, 1e-4, len(signal)).astype(np.float32)
    assert quiet_restarts(signal, 0.5) == []
    assert np.array_equal(speech_probabilities(signal, fresh_after_quiet_s=0.5), speech_probabilities(signal))
    longer = np.concatenate([tone, np.zeros(int(0.8 * RATE), np.float32), tone])
    longer += np.random.default_rng(2).normal(0, 1e-4, len(longer)).astype(np.float32)
    assert len(quiet_restarts(longer, 0.5)) == 1


def test_short_memory_scores_only_the_given_frames_each_run_on_its_own() -> None:
    # two runs of music: each is scored from a state warmed up on the second before it, restarted
    # every window; frames outside the runs are never scored
    music = _hold_music(20.0)
    music += np.random.default_rng(3).normal(0, 1e-4, len(music)).astype(np.float32)
    frames = -(-len(music) // SILERO_FRAME)
    within = np.zeros(frames, dtype=bool)
    within[100:250] = within[400:500] = True
    scores = short_memory_probabilities(music, within, 3.0, 1.0)
    assert scores.shape == (frames,)
    assert not scores[~within].any()
    warmup = round(1.0 * RATE / SILERO_FRAME)
    piece = music[(400 - warmup) * SILERO_FRAME : 500 * SILERO_FRAME]
    alone = vad._speech_probabilities(np.ascontiguousarray(piece), 3.0, 1.0)
    assert np.array_equal(scores[400:500], alone[warmup:])
    assert scores[100:250].any() and scores[400:500].any()
