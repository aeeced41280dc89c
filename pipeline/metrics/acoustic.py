"""Non-speech sounds, found while the audio is at hand: ringback-tone bursts and hold music.

They are stored as `AudioEvent`s, so that metrics (and re-scoring) never need the audio again.

* Ringback: frames whose energy sits in narrow bands around the configured ring frequencies
  (China 450 Hz; North America 440+480 Hz), grouped into bursts.
* Music: stretches of at least a few seconds that are clearly audible, tonal (low spectral
  flatness) and not speech (Silero VAD, run over the whole call and also restarted every
  `music_speech_window_s`, so that a long stretch of music does not teach it to ignore the voices
  after it), e.g. music-on-hold.

The spectrogram is computed a minute at a time and only its per-frame features are kept, so
a long recording costs a window's spectrogram, not the whole call's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import get_window

from pipeline.config import AcousticConfig
from pipeline.diarize.timeline import clean_segments, mask_to_segments
from pipeline.diarize.vad import SILERO_FRAME, speech_probabilities
from pipeline.records import AudioEvent, CallAudio

N_FFT = 1024  # 64 ms at 16 kHz: 15.6 Hz bins, fine enough to see a 450 Hz tone
HOP = SILERO_FRAME  # 32 ms, the same grid as the voice activity
_WINDOW_FRAMES = 1875  # a minute of frames per spectrogram window
_FFT_COLUMNS = 64  # frames per FFT call, as librosa (its MAX_MEM_BLOCK of 256 KiB)
_HANN = get_window("hann", N_FFT, fftbins=True)[:, np.newaxis]  # librosa's periodic Hann, float64
_FLATNESS_AMIN = 1e-10  # librosa.feature.spectral_flatness's floor


def detect_audio_events(audio: CallAudio, config: AcousticConfig) -> list[AudioEvent]:
    events: list[AudioEvent] = []
    for channel, track in audio.tracks.items():
        frames = frame_features(track, audio.sample_rate, config)
        events += ringback_bursts(frames, audio.sample_rate, config, channel)
        events += music_stretches(track, frames, audio.sample_rate, config, channel)
    return sorted(events, key=lambda e: (e.start, e.kind, e.channel))


def music_heard_without_echo(
    events: Sequence[AudioEvent], cleaned: CallAudio, config: AcousticConfig
) -> list[AudioEvent]:
    """The music found on a stereo call's channels as recorded, kept only where the channel still
    sounds (audible and tonal, `sounding_frames`) once the other party's echo is removed from it.

    The other party's voice leaks into a quiet channel at -15 to -35 dB: audible over that channel's
    own floor, tonal, and too faint for the speech detector, which is what music looks like (a
    text-to-speech agent's echo in the customer's channel made a false 15 s hold and a HOLD-THANK
    deduction on a tuning call). Cancelled, the echo no longer sounds. The speech detector's verdict
    stays that of the channel as recorded: on the cleaned channel it rates some drawn-out speech
    lower, which would turn it into music."""
    kept = [e for e in events if e.kind != "music"]
    frame_s = HOP / cleaned.sample_rate
    for channel, track in cleaned.tracks.items():
        found = [e for e in events if e.kind == "music" and e.channel == channel]
        if not found:
            continue
        sounding = sounding_frames(frame_features(track, cleaned.sample_rate, config), cleaned.sample_rate)
        music = np.zeros(len(sounding), dtype=bool)
        for e in found:
            music[round(e.start / frame_s) : round(e.end / frame_s)] = True
        kept += [
            AudioEvent("music", round(a, 3), round(b, 3), channel)
            for a, b in _music_spans(music & sounding, frame_s, config)
        ]
    return sorted(kept, key=lambda e: (e.start, e.kind, e.channel))


@dataclass(frozen=True)
class FrameFeatures:
    """What the detectors need of the power spectrogram, per 32 ms frame (its small outputs)."""

    ring_band: np.ndarray  # power at the ring frequencies
    telephone: np.ndarray  # power in the telephone band (250–3600 Hz)
    level_db: np.ndarray  # total power, dB
    flatness: np.ndarray  # spectral flatness, as librosa.feature.spectral_flatness computes it

    @property
    def count(self) -> int:
        return len(self.level_db)


def frame_features(track: np.ndarray, rate: int, config: AcousticConfig) -> FrameFeatures:
    """The spectrogram's per-frame features, computed `_WINDOW_FRAMES` frames at a time: each
    frame's spectrum is its own (no centring, no overlap between windows but the frame's own
    length), so the features are those of the whole spectrogram, without holding it (a
    three-hour track's spectrogram is 1.4 GB)."""
    if len(track) < N_FFT:
        track = np.pad(track, (0, N_FFT - len(track)))
    freqs = np.fft.rfftfreq(N_FFT, 1 / rate)
    telephone = (freqs >= 250) & (freqs <= 3600)
    in_band = np.zeros_like(freqs, dtype=bool)
    for hz in config.ring.frequencies_hz:
        in_band |= np.abs(freqs - hz) <= config.ring_band_hz
    count = 1 + (len(track) - N_FFT) // HOP
    parts: list[tuple[np.ndarray, ...]] = []
    for first in range(0, count, _WINDOW_FRAMES):
        last = min(count, first + _WINDOW_FRAMES)
        chunk = np.asarray(track[first * HOP : (last - 1) * HOP + N_FFT], dtype=np.float32)
        power = _power_spectrogram(chunk)
        floored = np.maximum(_FLATNESS_AMIN, power)
        parts.append(
            (
                power[in_band].sum(axis=0),
                power[telephone].sum(axis=0),
                10 * np.log10(power.sum(axis=0) + 1e-12),
                np.exp(np.mean(np.log(floored), axis=0)) / np.mean(floored, axis=0),
            )
        )
    return FrameFeatures(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _power_spectrogram(signal: np.ndarray) -> np.ndarray:
    """|STFT|² of a float32 signal (Hann window, no centring), computed as librosa.stft computes
    it — float64 windowed frames, complex64 result in Fortran order (the order decides the sums'
    rounding) — without importing librosa, whose numba and LLVM cost a worker 136 MB."""
    frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP].T  # a view, frames as columns
    spectrum = np.zeros((N_FFT // 2 + 1, frames.shape[1]), dtype=np.complex64, order="F")
    for first in range(0, frames.shape[1], _FFT_COLUMNS):
        block = frames[:, first : first + _FFT_COLUMNS]
        spectrum[:, first : first + block.shape[1]] = np.fft.rfft(_HANN * block, axis=-2)
    return np.abs(spectrum) ** 2


def ringback_bursts(
    frames: FrameFeatures, rate: int, config: AcousticConfig, channel: str
) -> list[AudioEvent]:
    """Bursts of ringback tone: most of the telephone-band energy sits at the ring frequencies."""
    band_energy = frames.ring_band
    total = frames.telephone + 1e-12
    level_db = 10 * np.log10(band_energy + 1e-12)
    floor_db = np.percentile(10 * np.log10(total), 10)
    tone = (band_energy / total >= config.ring_band_share) & (level_db >= floor_db + 15)
    frame_s = HOP / rate
    # A burst is at least half the cadence's "on" time; gaps of a frame or two are closed.
    bursts = clean_segments(mask_to_segments(tone, frame_s), 2.5 * frame_s, 0.5 * config.ring.on_s)
    detail = "+".join(f"{hz:g}" for hz in config.ring.frequencies_hz) + " Hz"
    # Frame times are window starts: the tone ends one window length after the last frame starts.
    window_s = N_FFT / rate
    return [
        AudioEvent("ring", round(a, 3), round(b + window_s - frame_s, 3), channel, detail) for a, b in bursts
    ]


def sounding_frames(frames: FrameFeatures, rate: int) -> np.ndarray:
    """Frames of the seconds that are audible (15 dB over the channel's quiet level most of the
    second) and tonal (low spectral flatness): what music and voices have, noise and silence not."""
    count = frames.count
    level_db, flatness = frames.level_db, frames.flatness
    floor_db = float(np.percentile(level_db, 10)) if count else 0.0
    per_second = max(1, round(rate / HOP))
    sounding = np.zeros(count, dtype=bool)
    for start in range(0, count, per_second):
        window = slice(start, min(count, start + per_second))
        sounding[window] = (
            np.mean(level_db[window] >= floor_db + 15) >= 0.7 and np.median(flatness[window]) < 0.05
        )
    return sounding


def _music_spans(mask: np.ndarray, frame_s: float, config: AcousticConfig) -> list[tuple[float, float]]:
    """(start, end) seconds of the frame mask's runs, gaps of up to a second closed, runs shorter
    than `music_min_s` dropped: how long music must go on to count."""
    return clean_segments(mask_to_segments(mask, frame_s), 1.01, config.music_min_s)


def music_stretches(
    track: np.ndarray, frames: FrameFeatures, rate: int, config: AcousticConfig, channel: str
) -> list[AudioEvent]:
    """Audible, tonal, non-speech stretches (music-on-hold), in one-second steps."""
    count = frames.count
    if count == 0:
        return []
    per_second = max(1, round(rate / HOP))  # frames per second
    frame_s = HOP / rate
    sounding = sounding_frames(frames, rate)

    # Music is the sounding seconds that are not speech: when the sounding ones alone make no stretch,
    # Silero has nothing to decide and is not run (a stereo call's two passes over its channels as
    # recorded, where no music plays).
    if not _music_spans(sounding, frame_s, config):
        return []
    speech = speech_probabilities(track)
    if config.music_speech_window_s:
        # a second is speech when either says so: the pass over the whole call hears drawn-out
        # speech that a freshly restarted one now and then misses; the restarted one hears the
        # voices after (and check-ins over) a long stretch of music that the whole-call pass has
        # learned as background
        restarted = speech_probabilities(track, config.music_speech_window_s)
        speech = np.maximum(speech, restarted[: len(speech)])
    speech = np.pad(speech, (0, max(0, count - len(speech))))[:count]
    music = np.zeros(count, dtype=bool)
    for start in range(0, count, per_second):
        window = slice(start, min(count, start + per_second))
        music[window] = sounding[start] and np.mean(speech[window] >= 0.5) < 0.3
    return [
        AudioEvent("music", round(a, 3), round(b, 3), channel)
        for a, b in _music_spans(music, frame_s, config)
    ]
