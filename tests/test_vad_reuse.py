"""Voice activity is computed once per track: a second stage asking for the same samples gets the
same scores without running Silero again, and cannot spoil them for the next one."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr
from conftest import SHARED

from pipeline.diarize import vad


def test_the_same_track_is_scored_once_and_the_answer_is_not_shared(monkeypatch) -> None:
    audio, rate = sf.read(SHARED / "audio" / "misc" / "wenet_nst_ID003.flac", dtype="float32")
    track = soxr.resample(audio if audio.ndim == 1 else audio.mean(axis=1), rate, 16000).astype(np.float32)
    fresh = vad._speech_probabilities(track, None)
    runs: list[int] = []
    real = vad._speech_probabilities
    monkeypatch.setattr(vad, "_speech_probabilities", lambda s, w: runs.append(1) or real(s, w))
    first = vad.speech_probabilities(track)
    first[:] = -1.0  # a caller that writes into its scores
    second = vad.speech_probabilities(track.copy())  # equal samples, another array
    assert len(runs) == 1 and np.array_equal(second, fresh) and fresh.max() > 0.5
    windowed = vad.speech_probabilities(track, 1.0)  # another question about the same samples
    assert len(runs) == 2 and np.array_equal(windowed, real(track, 1.0))
