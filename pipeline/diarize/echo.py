"""Line echo removed from a stereo call before anyone asks who spoke when.

On a telephone line each party's voice comes back, faintly and late, in the other party's channel:
the hybrid's echo (−15…−35 dB, 2–60 ms late, band-limited and smeared by a second reflection) or a
headset's leak. A loudness rule alone cannot tell a loud echo from a quiet speaker, so the echo got
into the agent's transcript (the customer's 你好 as the agent's 你, customer words inflating the
agent's speaking rate, echo overlaps taken for interruptions).

The echo is a linear, time-invariant filtering of the other channel, so it can be measured and
subtracted (what a telephone echo canceller does, here with the whole call at hand):

* the echo path `h` is the Wiener solution H(f) = S_ts(f) / S_ss(f), from the cross-spectrum of the
  source channel s and the target channel t over the whole call. The target party's own speech is
  uncorrelated with the source, so it adds variance but no bias: double talk (interruptions) does
  not spoil the estimate, unlike an adaptive canceller that must freeze during it;
* `h` is kept causal and `max_delay_s` long (the echo comes after the voice that causes it), and
* the estimate s * h is subtracted from the target channel only when doing so removes a real part of
  the target's energy while the source talks (`min_erle_db`); a call without echo is left as it is.

G.711 companding adds noise about 38 dB below the signal, so a −20 dB echo is cancelled to far
below the level where the louder-than-the-leak rule in `stereo.py` lets anything through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from pipeline.diarize.convolution import convolve, convolve_pieces
from pipeline.diarize.stereo import noise_floor_db
from pipeline.diarize.vad import SILERO_FRAME, frame_energy_db
from pipeline.records import ROLES, CallAudio

# A source frame this far above its own quiet level is "clearly talking" (as in stereo.leak_db).
_TALKING_MARGIN_DB = 20.0
_SEGMENT_S = 1.024  # Welch segment: many times the echo path (a short one biases long delays low)
# The echo is measured and subtracted ten minutes at a time: memory stays flat on long calls, and a
# call up to that long is one window, so its echo estimate is bit for bit the whole-call convolution
# (split elsewhere, windows differ by ~1e-8, but whisper's int8 activations can round differently on
# that and change a word: only calls longer than a window see it).
_WINDOW_S = 600


@dataclass(frozen=True)
class EchoPath:
    """The measured echo of `source` in `target`'s channel."""

    source: str
    target: str
    delay_s: float  # where the echo path peaks
    level_db: float  # echo power relative to the source's power, while the source talks
    erle_db: float  # how much cancelling lowered the target channel while only the source talked
    cancelled: bool


def cancel_echo(
    audio: CallAudio, max_delay_s: float = 0.08, min_erle_db: float = 3.0, in_place: bool = False
) -> tuple[CallAudio, list[EchoPath]]:
    """The call with each party's echo removed from the other's channel, and the measured paths.

    Each path is measured and, where it is cancelled, subtracted window by window, so that a long
    recording costs a few windows of memory besides its tracks. `in_place` writes the cleaned
    channels over the call's own tracks, in its own `tracks` dict (the caller gives the recorded
    channels up: a three-hour stereo call's tracks are 1.3 GB); otherwise only cancelled channels
    are copied."""
    if set(audio.tracks) != set(ROLES):
        return audio, []
    plans = [
        _measure(
            audio.tracks[source],
            audio.tracks[target],
            audio.sample_rate,
            source,
            target,
            max_delay_s,
            min_erle_db,
        )
        for target, source in (ROLES, ROLES[::-1])
    ]
    tracks = audio.tracks if in_place else dict(audio.tracks)
    for plan in plans:
        if plan.impulse is not None and not (in_place and tracks[plan.path.target].flags.writeable):
            tracks[plan.path.target] = np.array(tracks[plan.path.target])
    cancelled = [plan for plan in plans if plan.impulse is not None]
    if cancelled:
        # Last window first, and in a window last piece first: a piece's echo needs only its own and
        # earlier samples of the source, which are still the original ones even when the source
        # channel is itself being cleaned. Both echoes of a piece are computed (each channel is the
        # other's source) before either is subtracted, as t - echo, from samples still as recorded.
        n = max(plan.n for plan in cancelled)
        window = _WINDOW_S * audio.sample_rate // SILERO_FRAME * SILERO_FRAME
        for start in reversed(range(0, n, window)):
            active = [
                (plan, plan.impulse) for plan in cancelled if start < plan.n and plan.impulse is not None
            ]
            pieces = [
                _echo_pieces(audio.tracks[plan.path.source], impulse, start, min(plan.n, start + window))
                for plan, impulse in active
            ]
            for echoes in zip(*pieces, strict=True):
                for (plan, _), (first, echo) in zip(active, echoes, strict=True):
                    target = tracks[plan.path.target][first : first + len(echo)]
                    np.subtract(target, echo, out=target)
    return replace(audio, tracks=tracks), [plan.path for plan in plans]


@dataclass(frozen=True)
class _Plan:
    """A measured echo path, with its impulse response where it is to be cancelled."""

    path: EchoPath
    impulse: np.ndarray | None
    n: int  # samples both channels have


def _measure(
    source: np.ndarray,
    target: np.ndarray,
    rate: int,
    source_name: str,
    target_name: str,
    max_delay_s: float,
    min_erle_db: float,
) -> _Plan:
    n = min(len(source), len(target))
    s, t = np.asarray(source[:n], dtype=np.float32), np.asarray(target[:n], dtype=np.float32)
    segment = int(_SEGMENT_S * rate)
    if n < 4 * segment or not np.any(s):
        return _Plan(EchoPath(source_name, target_name, 0.0, -100.0, 0.0, False), None, n)
    response = _echo_response(s, t, segment)
    response_64 = np.fft.irfft(response, n=segment)[: int(max_delay_s * rate)]
    delay_s = float(np.argmax(np.abs(response_64))) / rate
    impulse = response_64.astype(np.float32)

    # Per frame (frame_energy_db's grid): levels, and the energies the masks below sum over.
    window = _WINDOW_S * rate // SILERO_FRAME * SILERO_FRAME
    residual_db, source_energy, target_energy, residual_energy, echo_energy = [], [], [], [], []
    for start in range(0, n, window):
        echo = _echo(s, impulse, start, min(n, start + window))
        echo_energy.append(_frame_energy(echo))
        residual = np.subtract(t[start : start + window], echo, out=echo)  # the echo's buffer, reused
        residual_db.append(frame_energy_db(residual))
        source_energy.append(_frame_energy(s[start : start + window]))
        target_energy.append(_frame_energy(t[start : start + window]))
        residual_energy.append(_frame_energy(residual))
        del echo, residual
    s_db, r_db = frame_energy_db(s), np.concatenate(residual_db)
    talking = s_db >= noise_floor_db(s_db) + _TALKING_MARGIN_DB
    # where the source talks and the target party's own voice (after cancelling) is quiet
    source_only = talking & (r_db <= noise_floor_db(r_db) + 10)
    before = float(np.sum(np.concatenate(target_energy)[source_only]))
    after = float(np.sum(np.concatenate(residual_energy)[source_only]))
    erle_db = 10 * np.log10(before / after) if after > 0 and before > 0 else 0.0
    echo_talking = float(np.sum(np.concatenate(echo_energy)[talking]))
    level_db = 10 * np.log10(
        (echo_talking + 1e-20) / (float(np.sum(np.concatenate(source_energy)[talking])) + 1e-20)
    )
    cancel = erle_db >= min_erle_db
    path = EchoPath(
        source_name,
        target_name,
        round(delay_s, 4),
        round(float(level_db), 1),
        round(float(erle_db), 1),
        cancel,
    )
    return _Plan(path, impulse if cancel else None, n)


def _echo(source: np.ndarray, impulse: np.ndarray, start: int, end: int) -> np.ndarray:
    """source * impulse over samples [start, end), from the source samples that reach them."""
    begin = max(0, start - len(impulse) + 1)
    return convolve(np.asarray(source[begin:end], dtype=np.float32), impulse)[start - begin :]


def _echo_pieces(
    source: np.ndarray, impulse: np.ndarray, start: int, end: int
) -> Iterator[tuple[int, np.ndarray]]:
    """`_echo` as (sample, echo) pieces from the end backwards, each read from the source samples
    before the pieces handed out earlier (`convolution.convolve_pieces`)."""
    begin = max(0, start - len(impulse) + 1)
    for offset, samples in convolve_pieces(np.asarray(source[begin:end], dtype=np.float32), impulse):
        skip = max(0, start - begin - offset)
        if skip < len(samples):
            yield begin + offset + skip, samples[skip:]


def _frame_energy(signal: np.ndarray) -> np.ndarray:
    """Sum of squares per frame (float64), on frame_energy_db's grid, a minute of frames at a time."""
    block = 1875 * SILERO_FRAME
    sums = []
    for first in range(0, len(signal), block):
        chunk = np.asarray(signal[first : first + block], dtype=np.float64)
        padded = np.pad(chunk, (0, (-len(chunk)) % SILERO_FRAME))
        sums.append(np.sum(padded.reshape(-1, SILERO_FRAME) ** 2, axis=1))
    return np.concatenate(sums) if sums else np.zeros(0)


def _echo_response(s: np.ndarray, t: np.ndarray, segment: int) -> np.ndarray:
    """H(f) = Σ conj(S)·T / Σ |S|², over the segments where the source is louder than the target.

    Echo is at least 15 dB below its talker, so in those segments the target party is quiet or
    faint and the estimate is not swamped by its voice (where the target party talks loudly over a
    quiet source, its own speech would dominate the cross-spectrum's variance)."""
    window = np.hanning(segment)
    hop = segment // 4
    starts = np.arange(0, len(s) - segment + 1, hop)
    s_energy = np.array([np.dot(s[i : i + segment], s[i : i + segment]) for i in starts])
    t_energy = np.array([np.dot(t[i : i + segment], t[i : i + segment]) for i in starts])
    chosen = starts[(s_energy > 2 * t_energy) & (s_energy > np.percentile(s_energy, 50))]
    if len(chosen) < 4:
        chosen = starts
    cross = np.zeros(segment // 2 + 1, complex)
    power = np.zeros(segment // 2 + 1)
    for i in chosen:
        spectrum_s = np.fft.rfft(s[i : i + segment] * window)
        spectrum_t = np.fft.rfft(t[i : i + segment] * window)
        cross += np.conj(spectrum_s) * spectrum_t
        power += np.abs(spectrum_s) ** 2
    return np.where(power > power.max() * 1e-8, cross / np.maximum(power, 1e-30), 0.0)
