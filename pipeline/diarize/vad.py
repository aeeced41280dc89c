"""Frame-level speech probability from Silero VAD, the ONNX model that ships inside faster-whisper.

One model serves the stereo rule and the built-in mono diarization; frames are 512 samples
(32 ms at 16 kHz), the model's native hop.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from pipeline.diarize.timeline import mask_to_segments

SILERO_FRAME = 512  # samples at 16 kHz
# With `window_s`, each window starts from fresh state, warmed up on the audio just before it.
WARMUP_S = 2.0
# A call's track is scored by more than one stage (a mono call's diarization, then the search for
# hold music): the last few results are kept, keyed by the samples themselves, and reused.
_REMEMBERED = 8
_remembered: OrderedDict[tuple[bytes, float | None, float | None], np.ndarray] = OrderedDict()
_remembered_lock = threading.Lock()
# Frames scored per session call (faster-whisper's SileroVADModel uses 10,000), and the context each
# frame carries. ONNX Runtime's buffers for 10,000 frames took 136 MB at once; the recurrent state is
# carried from batch to batch, and the scores are the same bit for bit at 1,000 (test_windowed_analysis).
_ENCODER_BATCH = 1000
_CONTEXT = 64
_ENERGY_BLOCK_FRAMES = 1875  # a minute of 32 ms frames (float64 within a block)


@lru_cache(maxsize=1)
def _silero():
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def speech_probabilities(
    signal: np.ndarray, window_s: float | None = None, fresh_after_quiet_s: float | None = None
) -> np.ndarray:
    """Speech probability per 512-sample frame of a 16 kHz signal (the last partial frame padded).

    Silero's recurrent state adapts to whatever plays for long: after a minute of hold music on the
    agent's channel it scored the agent's check-ins over that music below 0.2. `window_s` restarts
    the state every so many seconds, so nothing that came minutes earlier decides a frame.
    `fresh_after_quiet_s` also restarts it where sound begins after that long a quiet
    (`quiet_restarts`): after 90 s of hold music it stayed under 0.25 for the first 1.5 s of the
    agent's clear return (a 50 dB onset out of digital silence).
    """
    if signal.size == 0:
        return np.zeros(0, dtype=np.float32)
    samples = np.ascontiguousarray(signal, dtype=np.float32)
    key = (hashlib.blake2b(samples.data, digest_size=16).digest(), window_s or None, fresh_after_quiet_s)
    with _remembered_lock:
        if key in _remembered:
            _remembered.move_to_end(key)
            return _remembered[key].copy()
    if fresh_after_quiet_s:
        cuts = [0, *quiet_restarts(samples, fresh_after_quiet_s), samples.shape[0]]
        scores = np.concatenate(
            [_speech_probabilities(samples[a:b], window_s) for a, b in itertools.pairwise(cuts)]
        )
    else:
        scores = _speech_probabilities(samples, window_s)
    with _remembered_lock:
        _remembered[key] = scores
        while len(_remembered) > _REMEMBERED:
            _remembered.popitem(last=False)
    return scores.copy()


# Quiet: a frame within this much of the signal's quiet level (its 10th percentile of frame power)
# and this far below its loud level (the 90th percentile), so that a signal with little silence
# (speech or music almost throughout) does not take its own quieter stretches for silence.
QUIET_MARGIN_DB = 6.0
QUIET_BELOW_LOUD_DB = 30.0
# A fresh state starts this long before the sound that ends a quiet (inside the quiet, on a frame).
_FRESH_LEAD_S = 0.256


def quiet_restarts(signal: np.ndarray, min_quiet_s: float) -> list[int]:
    """Sample offsets (on Silero's frame grid) shortly before each sound that follows at least
    `min_quiet_s` of quiet: where a speech detector can start afresh without missing anything."""
    energy = frame_energy_db(signal)
    if energy.size == 0:
        return []
    floor, loud = np.percentile(energy, [10, 90])
    quiet = (energy < floor + QUIET_MARGIN_DB) & (energy < loud - QUIET_BELOW_LOUD_DB)
    frame_s = SILERO_FRAME / 16000
    lead = round(_FRESH_LEAD_S / frame_s)
    return [
        (int(b) - lead) * SILERO_FRAME
        for a, b in mask_to_segments(quiet, 1.0)  # runs of quiet frames, in frames
        if (b - a) * frame_s >= min_quiet_s and b < energy.size and b - lead > 0
    ]


# A short-memory restart is warmed up on this much of the sound before it.
SHORT_MEMORY_WARMUP_S = 1.0


def short_memory_probabilities(
    signal: np.ndarray, within: np.ndarray, window_s: float, warmup_s: float = SHORT_MEMORY_WARMUP_S
) -> np.ndarray:
    """Speech probability per frame inside the runs of `within` (a frame mask), from a Silero
    restarted every `window_s` seconds and warmed up on the `warmup_s` before each restart; 0
    elsewhere. Silero's state learns a sound that has played for a few seconds as background: 3 s
    into hold music it scored a check-in spoken 20 dB over it 0.00 for 3 s, where a state started
    2 s before the words scored the same frames 0.4–0.7. Only the given frames are scored."""
    scores = np.zeros(within.shape[0], dtype=np.float32)
    warmup_frames = round(warmup_s * 16000 / SILERO_FRAME)
    for start, end in mask_to_segments(within, 1.0):
        a, b = int(start), int(end)
        lo = max(0, a - warmup_frames)
        piece = np.ascontiguousarray(signal[lo * SILERO_FRAME : b * SILERO_FRAME], dtype=np.float32)
        scored = _speech_probabilities(piece, window_s, warmup_s)
        scores[a : a + len(scored) - (a - lo)] = scored[a - lo :]
    return scores


def _speech_probabilities(
    signal: np.ndarray, window_s: float | None, warmup_s: float = WARMUP_S
) -> np.ndarray:
    if not window_s:
        return _silero_scores(signal)
    window = max(1, int(window_s * 16000) // SILERO_FRAME) * SILERO_FRAME
    warmup = int(warmup_s * 16000) // SILERO_FRAME * SILERO_FRAME
    pieces = []
    for start in range(0, signal.shape[0], window):
        begin = max(0, start - warmup)
        piece = np.array(signal[begin : start + window], dtype=np.float32)  # a window's copy only
        # faster-whisper's model zeroes the last context's worth of samples of the array it is given
        # (its own input, in place): the windows before this one left those zeros in its warm-up.
        for end in range(start, begin, -window):
            piece[max(0, end - _CONTEXT - begin) : end - begin] = 0.0
        scores = _silero_scores(piece)
        pieces.append(scores[(start - begin) // SILERO_FRAME :])
    return np.concatenate(pieces)


def _silero_scores(signal: np.ndarray) -> np.ndarray:
    """Silero over the whole signal as faster-whisper's `SileroVADModel.__call__` scores it — each
    frame with the previous frame's last 64 samples as context, the last frame's own last 64
    samples zeroed, the recurrent state carried from one encoder batch to the next — but batch by
    batch, so that no padded or framed copy of a long recording is made (the same session calls
    on the same inputs: the same scores)."""
    model = _silero()
    frames = -(-signal.shape[0] // SILERO_FRAME)
    state = [np.zeros((1, 1, 128), dtype=np.float32), np.zeros((1, 1, 128), dtype=np.float32)]
    outputs = []
    for first in range(0, frames, _ENCODER_BATCH):
        last = min(frames, first + _ENCODER_BATCH)
        chunk = signal[first * SILERO_FRAME : last * SILERO_FRAME]
        framed = np.zeros((last - first, _CONTEXT + SILERO_FRAME), dtype=np.float32)
        framed[:, _CONTEXT:] = np.pad(chunk, (0, (last - first) * SILERO_FRAME - chunk.shape[0])).reshape(
            -1, SILERO_FRAME
        )
        framed[1:, :_CONTEXT] = framed[:-1, -_CONTEXT:]
        if first > 0:  # a batch's first frame takes its context from the previous batch's last frame
            framed[0, :_CONTEXT] = signal[first * SILERO_FRAME - _CONTEXT : first * SILERO_FRAME]
        if last == frames:
            framed[-1, -_CONTEXT:] = 0.0
        output, *state = model.session.run(None, {"input": framed, "h": state[0], "c": state[1]})
        outputs.append(np.asarray(output, dtype=np.float32).reshape(-1))
    return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)


def frame_energy_db(signal: np.ndarray, frame: int = SILERO_FRAME) -> np.ndarray:
    """Mean power per frame in dBFS, on the same frame grid as `speech_probabilities`.

    Computed a block of frames at a time (float64 within the block): the same numbers as over the
    whole signal at once, without a float64 copy of a long recording."""
    frames = -(-signal.shape[0] // frame)
    energy = np.empty(frames, dtype=np.float32)
    block = _ENERGY_BLOCK_FRAMES
    for first in range(0, frames, block):
        chunk = np.asarray(signal[first * frame : (first + block) * frame], dtype=np.float64)
        padded = np.pad(chunk, (0, (-chunk.shape[0]) % frame)).reshape(-1, frame)
        energy[first : first + padded.shape[0]] = 10.0 * np.log10(np.mean(padded**2, axis=1) + 1e-10)
    return energy
