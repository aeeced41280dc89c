"""Frame-level speech probability from Silero VAD, the ONNX model that ships inside faster-whisper.

One model serves the stereo rule and the built-in mono diarization; frames are 512 samples
(32 ms at 16 kHz), the model's native hop.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SILERO_FRAME = 512  # samples at 16 kHz


@lru_cache(maxsize=1)
def _silero():
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def speech_probabilities(signal: np.ndarray) -> np.ndarray:
    """Speech probability per 512-sample frame of a 16 kHz signal (the last partial frame padded)."""
    if signal.size == 0:
        return np.zeros(0, dtype=np.float32)
    padding = (-signal.shape[0]) % SILERO_FRAME
    padded = np.pad(np.asarray(signal, dtype=np.float32), (0, padding))
    return np.asarray(_silero()(padded), dtype=np.float32).reshape(-1)


def frame_energy_db(signal: np.ndarray, frame: int = SILERO_FRAME) -> np.ndarray:
    """Mean power per frame in dBFS, on the same frame grid as `speech_probabilities`."""
    padding = (-signal.shape[0]) % frame
    frames = np.pad(np.asarray(signal, dtype=np.float64), (0, padding)).reshape(-1, frame)
    return (10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-10)).astype(np.float32)
