"""The voice prints' mel spectrogram without librosa equals resemblyzer's own, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import SHARED
from resemblyzer.audio import normalize_volume
from resemblyzer.audio import wav_to_mel_spectrogram as resemblyzer_mel

from pipeline.diarize import melspec


def _speech() -> np.ndarray:
    audio, rate = sf.read(SHARED / "audio" / "misc" / "funasr_vad_example_2spk.flac", dtype="float32")
    return soxr.resample(audio if audio.ndim == 1 else audio[:, 0], rate, 16000).astype(np.float32)


def test_mel_filterbank_equals_librosas() -> None:
    import librosa

    expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    assert expected.dtype == melspec.mel_basis().dtype and np.array_equal(melspec.mel_basis(), expected)


# 65,536 samples: the 4.096 s chunks pyannote hands the voice-print model; the others reach the
# short-signal branch (one padded copy), a partial last block, and a signal just over one frame.
@pytest.mark.parametrize("length", [65536, 160 * 163 * 2 + 77, 16000, 1001, 519, 401])
def test_mel_spectrogram_equals_resemblyzers(length: int) -> None:
    speech = _speech()
    starts = [0, len(speech) // 3, len(speech) - length]
    for start in starts:
        wav = normalize_volume(speech[start : start + length], -30, increase_only=True)
        expected = resemblyzer_mel(wav)
        found = melspec.wav_to_mel_spectrogram(wav)
        assert found.dtype == expected.dtype == np.float32
        assert found.shape == expected.shape and np.array_equal(found, expected), (length, start)
    assert np.any(found > 0)


def test_mel_spectrogram_of_silence_and_of_double_precision() -> None:
    silence = np.zeros(65536, dtype=np.float32)
    assert np.array_equal(melspec.wav_to_mel_spectrogram(silence), resemblyzer_mel(silence))
    wav = _speech()[:30000].astype(np.float64)
    assert np.array_equal(melspec.wav_to_mel_spectrogram(wav), resemblyzer_mel(wav))
