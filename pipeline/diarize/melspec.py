"""The mel spectrogram resemblyzer's speaker encoder reads, without loading librosa's machinery.

`resemblyzer.audio.wav_to_mel_spectrogram` calls `librosa.feature.melspectrogram`. Importing
librosa's feature and spectrum modules, with their numba-compiled helpers, costs about 120 MiB of
resident memory that stays for the life of the process — a sixth of a 3-hour mono recording's
diarization peak (bench/results/long-recording-2026-11-29d.md) — for one short-time Fourier
transform and a 40-band filter product. This module does the same operations in the same order,
with the same libraries underneath (scipy.fft, scipy.signal's window, numpy's einsum), so the
numbers are equal bit for bit (tests/test_melspec.py compares them with librosa's).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# resemblyzer.hparams: 16 kHz, 25 ms windows every 10 ms, 40 mel bands.
SAMPLE_RATE = 16000
N_FFT = SAMPLE_RATE * 25 // 1000
HOP = SAMPLE_RATE * 10 // 1000
N_MELS = 40
# librosa.util.MAX_MEM_BLOCK: librosa transforms the frames in blocks of this many bytes.
_MAX_MEM_BLOCK = 2**8 * 2**10


def wav_to_mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) float32 power mel spectrogram, as resemblyzer's function of the same name."""
    power = np.abs(_stft(wav)) ** 2.0
    mel = np.einsum("...ft,mf->...mt", power, mel_basis(), optimize=True)
    return mel.astype(np.float32).T


def _frames(signal: np.ndarray) -> np.ndarray:
    """(N_FFT, frames) strided view, one column every HOP samples (librosa.util.frame)."""
    if signal.shape[-1] < N_FFT:
        raise ValueError(f"too short for one frame: {signal.shape[-1]} samples")
    return np.lib.stride_tricks.sliding_window_view(signal, N_FFT).T[:, ::HOP]


def _stft(y: np.ndarray) -> np.ndarray:
    """librosa.stft(y, n_fft=400, hop_length=160), centred with zero padding, as librosa computes it:
    the first and last frames from padded copies of the ends, the rest in column blocks."""
    window = _window()
    half = N_FFT // 2
    start_k = int(np.ceil(half / HOP))
    tail_k = (y.shape[-1] + half - N_FFT) // HOP + 1
    pre = post = None
    if tail_k <= start_k:
        start, extra = 0, 0
        y = np.pad(y, (half, half), mode="constant")
    else:
        start = start_k * HOP - half
        pre = _frames(np.pad(y[: (start_k - 1) * HOP - half + N_FFT + 1], (half, 0), mode="constant"))
        pre = pre[..., :start_k]
        extra = pre.shape[-1]
        if tail_k * HOP - half + N_FFT <= y.shape[-1] + half:
            post = _frames(np.pad(y[tail_k * HOP - half :], (0, half), mode="constant"))
            extra += post.shape[-1]
    frames = _frames(y[start:])
    complex_type = np.complex128 if y.dtype == np.float64 else np.complex64
    stft = np.zeros((1 + N_FFT // 2, frames.shape[-1] + extra), dtype=complex_type, order="F")
    import scipy.fft

    offset = 0
    if pre is not None:
        offset = pre.shape[-1]
        stft[..., :offset] = scipy.fft.rfft(window * pre, axis=-2)
        if post is not None and post.shape[-1] > 0:
            stft[..., -post.shape[-1] :] = scipy.fft.rfft(window * post, axis=-2)
    columns = max(int(_MAX_MEM_BLOCK // (frames.shape[0] * frames.itemsize)), 1)
    for first in range(0, frames.shape[-1], columns):
        last = min(first + columns, frames.shape[-1])
        stft[..., first + offset : last + offset] = scipy.fft.rfft(window * frames[..., first:last], axis=-2)
    return stft


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """The periodic Hann window as a (N_FFT, 1) column (librosa.filters.get_window)."""
    from scipy.signal import get_window

    return get_window("hann", N_FFT, fftbins=True).reshape(N_FFT, 1)


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(40, 201) float32 Slaney-style mel filterbank from 0 to 8 kHz (librosa.filters.mel)."""
    weights = np.zeros((N_MELS, 1 + N_FFT // 2), dtype=np.float32)
    fft_frequencies = np.fft.rfftfreq(n=N_FFT, d=1.0 / SAMPLE_RATE)
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2)
    mel_f = _mel_to_hz(mels)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_frequencies)
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS]))[:, np.newaxis]
    weights.setflags(write=False)
    return weights


# Slaney's mel scale: linear to 1 kHz, logarithmic above (librosa.hz_to_mel / mel_to_hz, htk=False).
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(frequency: float) -> float:
    frequencies = np.asanyarray(frequency)
    mels = (frequencies - 0.0) / _F_SP
    if frequencies >= _MIN_LOG_HZ:
        mels = _MIN_LOG_MEL + np.log(frequencies / _MIN_LOG_HZ) / _LOGSTEP
    return float(mels)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = 0.0 + _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs
