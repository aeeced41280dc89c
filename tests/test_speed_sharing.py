"""Work the spine does once instead of twice, and must still do the same: the speaker encoder on one
thread, the music search asking Silero only where it matters (bench/results/throughput-2026-11-29c.md)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import SHARED

from pipeline.diarize import models, vad


def _track() -> np.ndarray:
    audio, rate = sf.read(SHARED / "audio" / "misc" / "funasr_vad_example_2spk.flac", dtype="float32")
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    return soxr.resample(mono[: 20 * rate], rate, 16000).astype(np.float32)  # 20 s are enough


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)


def test_the_speaker_encoder_runs_on_one_thread_with_the_same_vectors_and_gives_the_threads_back() -> None:
    from resemblyzer.audio import wav_to_mel_spectrogram
    from torch.nn.utils.rnn import pack_sequence

    encoder = models.resemblyzer_embedding()
    mel = wav_to_mel_spectrogram(_track())
    partials = [mel[i : i + 160] for i in range(0, len(mel) - 160, 37)] + [mel[5:90]]
    before, blas_before = torch.get_num_threads(), _blas_threads()
    torch.set_num_threads(2)
    try:
        seen: list[tuple[int, int]] = []
        real_lstm = encoder.encoder.lstm.forward
        encoder.encoder.lstm.forward = lambda *a, **k: (
            seen.append((torch.get_num_threads(), _blas_threads())) or real_lstm(*a, **k)
        )
        try:
            vectors = encoder._encode(partials)
        finally:
            del encoder.encoder.lstm.forward
        assert seen == [(1, 1)] and torch.get_num_threads() == 2
        assert _blas_threads() == blas_before
        with torch.inference_mode():  # the same model on two threads, as before
            sequences = [torch.from_numpy(np.ascontiguousarray(p)).float() for p in partials]
            _, (hidden, _) = encoder.encoder.lstm(pack_sequence(sequences, enforce_sorted=False))
            two = torch.nn.functional.normalize(torch.relu(encoder.encoder.linear(hidden[-1])), dim=1).numpy()
        assert len(partials) > 4 and np.array_equal(vectors, two)
    finally:
        torch.set_num_threads(before)


def _music_as_before(track: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """The music search as it was, asking Silero about every second (the reference)."""
    from pipeline.config import AcousticConfig
    from pipeline.diarize.timeline import clean_segments, mask_to_segments
    from pipeline.metrics.acoustic import HOP, frame_features

    config = AcousticConfig()
    frames = frame_features(track, rate, config)
    count = frames.count
    floor_db = float(np.percentile(frames.level_db, 10))
    speech = vad.speech_probabilities(track)
    if config.music_speech_window_s:  # speech where either the whole-call or the restarted pass says so
        speech = np.maximum(
            speech, vad.speech_probabilities(track, config.music_speech_window_s)[: len(speech)]
        )
    speech = np.pad(speech, (0, max(0, count - len(speech))))[:count]
    music = np.zeros(count, dtype=bool)
    for start in range(0, count, round(rate / HOP)):
        window = slice(start, min(count, start + round(rate / HOP)))
        audible = np.mean(frames.level_db[window] >= floor_db + 15) >= 0.7
        tonal = np.median(frames.flatness[window]) < 0.05
        music[window] = audible and tonal and np.mean(speech[window] >= 0.5) < 0.3
    return clean_segments(mask_to_segments(music, HOP / rate), 1.01, config.music_min_s)


def _melody(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    notes = np.repeat([262.0, 330.0, 392.0, 523.0], rate)[: len(t)]
    notes = np.pad(notes, (0, len(t) - len(notes)), mode="wrap")
    return (0.1 * np.sin(2 * np.pi * notes * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("music_s", "asks_silero"),
    [(0.0, False), (1.5, False), (8.0, True)],  # speech only; a beep shorter than music_min_s; a hold
)
def test_the_music_search_asks_silero_only_where_music_can_be_and_finds_what_it_found(
    monkeypatch: pytest.MonkeyPatch, music_s: float, asks_silero: bool
) -> None:
    from pipeline.config import AcousticConfig
    from pipeline.metrics import acoustic

    rate = 16000
    speech = _track()[: 8 * rate]
    quiet = np.random.default_rng(0).normal(0, 0.001, 2 * rate).astype(np.float32)
    track = np.concatenate([speech, quiet, _melody(music_s), quiet, speech])
    expected = _music_as_before(track, rate)
    asked: list[int] = []
    real = acoustic.speech_probabilities
    monkeypatch.setattr(acoustic, "speech_probabilities", lambda *a: asked.append(1) or real(*a))
    config = AcousticConfig()
    found = acoustic.music_stretches(
        track, acoustic.frame_features(track, rate, config), rate, config, "agent"
    )
    assert [(e.start, e.end) for e in found] == [(round(a, 3), round(b, 3)) for a, b in expected]
    assert bool(asked) == asks_silero and bool(found) == (music_s >= config.music_min_s)
