"""Work the spine does once instead of twice, and must still do the same: the speaker encoder on one
thread, the music search asking Silero only where it matters (bench/results/throughput-2026-11-29c.md)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr
import torch
from conftest import SHARED

from pipeline.diarize import models


def _track() -> np.ndarray:
    audio, rate = sf.read(SHARED / "audio" / "misc" / "funasr_vad_example_2spk.flac", dtype="float32")
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    return soxr.resample(mono[: 20 * rate], rate, 16000).astype(np.float32)  # 20 s are enough


def test_the_speaker_encoder_runs_on_one_thread_with_the_same_vectors_and_gives_torch_back() -> None:
    from resemblyzer.audio import wav_to_mel_spectrogram
    from torch.nn.utils.rnn import pack_sequence

    encoder = models.resemblyzer_embedding()
    mel = wav_to_mel_spectrogram(_track())
    partials = [mel[i : i + 160] for i in range(0, len(mel) - 160, 37)] + [mel[5:90]]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen: list[int] = []
        real_lstm = encoder.encoder.lstm.forward
        encoder.encoder.lstm.forward = lambda *a, **k: (
            seen.append(torch.get_num_threads()) or real_lstm(*a, **k)
        )
        try:
            vectors = encoder._encode(partials)
        finally:
            del encoder.encoder.lstm.forward
        assert seen == [1] and torch.get_num_threads() == 2
        with torch.inference_mode():  # the same model on two threads, as before
            sequences = [torch.from_numpy(np.ascontiguousarray(p)).float() for p in partials]
            _, (hidden, _) = encoder.encoder.lstm(pack_sequence(sequences, enforce_sorted=False))
            two = torch.nn.functional.normalize(torch.relu(encoder.encoder.linear(hidden[-1])), dim=1).numpy()
        assert len(partials) > 4 and np.array_equal(vectors, two)
    finally:
        torch.set_num_threads(before)
