"""Frame-level speech probability from Silero VAD, the ONNX model that ships inside faster-whisper.

One model serves the stereo rule and the built-in mono diarization; frames are 512 samples
(32 ms at 16 kHz), the model's native hop.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

SILERO_FRAME = 512  # samples at 16 kHz
# With `window_s`, each window starts from fresh state, warmed up on the audio just before it.
WARMUP_S = 2.0
# A call's track is scored by more than one stage (a mono call's diarization, then the search for
# hold music): the last few results are kept, keyed by the samples themselves, and reused.
_REMEMBERED = 8
_remembered: OrderedDict[tuple[bytes, float | None], np.ndarray] = OrderedDict()
_remembered_lock = threading.Lock()


@lru_cache(maxsize=1)
def _silero():
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def speech_probabilities(signal: np.ndarray, window_s: float | None = None) -> np.ndarray:
    """Speech probability per 512-sample frame of a 16 kHz signal (the last partial frame padded).

    Silero's recurrent state adapts to whatever plays for long: after a minute of hold music on the
    agent's channel it scored the agent's check-ins over that music below 0.2. `window_s` restarts
    the state every so many seconds, so nothing that came minutes earlier decides a frame.
    """
    if signal.size == 0:
        return np.zeros(0, dtype=np.float32)
    samples = np.ascontiguousarray(signal, dtype=np.float32)
    key = (hashlib.blake2b(samples.data, digest_size=16).digest(), window_s or None)
    with _remembered_lock:
        if key in _remembered:
            _remembered.move_to_end(key)
            return _remembered[key].copy()
    scores = _speech_probabilities(samples, window_s)
    with _remembered_lock:
        _remembered[key] = scores
        while len(_remembered) > _REMEMBERED:
            _remembered.popitem(last=False)
    return scores.copy()


def _speech_probabilities(signal: np.ndarray, window_s: float | None) -> np.ndarray:
    padding = (-signal.shape[0]) % SILERO_FRAME
    padded = np.pad(np.asarray(signal, dtype=np.float32), (0, padding))
    model = _silero()
    if not window_s:
        return np.asarray(model(padded), dtype=np.float32).reshape(-1)
    window = max(1, int(window_s * 16000) // SILERO_FRAME) * SILERO_FRAME
    warmup = int(WARMUP_S * 16000) // SILERO_FRAME * SILERO_FRAME
    pieces = []
    for start in range(0, padded.shape[0], window):
        begin = max(0, start - warmup)
        scores = np.asarray(model(padded[begin : start + window]), dtype=np.float32).reshape(-1)
        pieces.append(scores[(start - begin) // SILERO_FRAME :])
    return np.concatenate(pieces)


def frame_energy_db(signal: np.ndarray, frame: int = SILERO_FRAME) -> np.ndarray:
    """Mean power per frame in dBFS, on the same frame grid as `speech_probabilities`."""
    padding = (-signal.shape[0]) % frame
    frames = np.pad(np.asarray(signal, dtype=np.float64), (0, padding)).reshape(-1, frame)
    return (10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-10)).astype(np.float32)
