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

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import oaconvolve

from pipeline.diarize.stereo import noise_floor_db
from pipeline.diarize.vad import SILERO_FRAME, frame_energy_db
from pipeline.records import ROLES, CallAudio

# A source frame this far above its own quiet level is "clearly talking" (as in stereo.leak_db).
_TALKING_MARGIN_DB = 20.0
_SEGMENT_S = 1.024  # Welch segment: many times the echo path (a short one biases long delays low)


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
    audio: CallAudio, max_delay_s: float = 0.08, min_erle_db: float = 3.0
) -> tuple[CallAudio, list[EchoPath]]:
    """The call with each party's echo removed from the other's channel, and the measured paths."""
    if set(audio.tracks) != set(ROLES):
        return audio, []
    tracks = dict(audio.tracks)
    paths = []
    for target, source in (ROLES, ROLES[::-1]):
        cleaned, path = _cancel_one(
            audio.tracks[source],
            audio.tracks[target],
            audio.sample_rate,
            source,
            target,
            max_delay_s,
            min_erle_db,
        )
        tracks[target] = cleaned
        paths.append(path)
    return replace(audio, tracks=tracks), paths


def _cancel_one(
    source: np.ndarray,
    target: np.ndarray,
    rate: int,
    source_name: str,
    target_name: str,
    max_delay_s: float,
    min_erle_db: float,
) -> tuple[np.ndarray, EchoPath]:
    n = min(len(source), len(target))
    s, t = source[:n].astype(np.float32), target[:n].astype(np.float32)
    segment = int(_SEGMENT_S * rate)
    if n < 4 * segment or not np.any(s):
        return target, EchoPath(source_name, target_name, 0.0, -100.0, 0.0, False)
    response = _echo_response(s, t, segment)
    impulse = np.fft.irfft(response, n=segment)[: int(max_delay_s * rate)]
    echo = oaconvolve(s, impulse.astype(np.float32))[:n]  # overlap-add: memory stays flat on long calls

    residual = t - echo
    s_db, residual_db = frame_energy_db(s), frame_energy_db(residual)
    talking = _samples(s_db >= noise_floor_db(s_db) + _TALKING_MARGIN_DB, n)
    # where the source talks and the target party's own voice (after cancelling) is quiet
    source_only = talking & _samples(residual_db <= noise_floor_db(residual_db) + 10, n)
    before = float(np.sum(t[source_only] ** 2))
    after = float(np.sum(residual[source_only] ** 2))
    erle_db = 10 * np.log10(before / after) if after > 0 and before > 0 else 0.0
    level_db = 10 * np.log10((np.sum(echo[talking] ** 2) + 1e-20) / (np.sum(s[talking] ** 2) + 1e-20))
    delay_s = float(np.argmax(np.abs(impulse))) / rate
    cancel = erle_db >= min_erle_db
    cleaned = residual.astype(target.dtype) if cancel else target
    if len(target) > n:
        cleaned = np.concatenate([cleaned, target[n:]])
    return cleaned, EchoPath(
        source_name,
        target_name,
        round(delay_s, 4),
        round(float(level_db), 1),
        round(float(erle_db), 1),
        cancel,
    )


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


def _samples(frames: np.ndarray, n: int) -> np.ndarray:
    """A per-frame mask (frame_energy_db's grid) as a per-sample mask of length n."""
    return np.repeat(frames, SILERO_FRAME)[:n]
