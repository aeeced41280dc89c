"""Build labelled two-party telephone calls from speech clips: the sample and evaluation generator.

A `CallScript` lays speech clips, ringback tone, hold music and silence on a timeline and renders
them as a stereo (one party per channel, with cross-talk leak) or mono telephone recording, plus a
ground-truth dict (turns with exact voiced times and text, overlaps, holds, rings). Used by
tools/make_samples.py (text-to-speech voices) and by the tests (real speech from ../shared/audio).

numpy, scipy and soundfile only, so that it runs in the text-to-speech environment too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfilt

RATE = 16_000


@dataclass
class Clip:
    """Speech audio (16 kHz, leading/trailing silence trimmed) and what is said in it."""

    audio: np.ndarray
    text: str

    @property
    def duration(self) -> float:
        return len(self.audio) / RATE


def load_clip(path: Path, text: str, warp: float = 1.0, gain_db: float = -3.0) -> Clip:
    """A clip from a file. `warp` < 1 lowers pitch and formants together (a different-sounding
    speaker from the same recording), stretching the clip by 1/warp."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE:
        audio = _resample(audio, rate, RATE)
    if warp != 1.0:
        # Resample then play at the original rate: slower, lower pitch, lower formants.
        audio = _resample(audio, 1000, round(1000 / warp))
    return make_clip(audio, text, gain_db)


def make_clip(audio: np.ndarray, text: str, gain_db: float = -3.0) -> Clip:
    audio = np.asarray(audio, dtype=np.float32)
    voiced = voiced_segments(audio)
    if voiced:
        lo, hi = int(voiced[0][0] * RATE), int(voiced[-1][1] * RATE)
        audio = audio[lo:hi]
    peak = float(np.abs(audio).max()) or 1.0
    return Clip(audio * (10 ** (gain_db / 20) / peak), text)


def voiced_segments(audio: np.ndarray, min_pause_s: float = 0.1) -> list[tuple[float, float]]:
    """Voiced stretches of a clean clip (10 ms frames 35 dB below the clip's loudest frames)."""
    hop = RATE // 100
    frames = len(audio) // hop
    if frames == 0:
        return []
    power = np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12
    level = 10 * np.log10(power)
    active = level > np.percentile(level, 99) - 35
    segments: list[list[float]] = []
    for i in np.flatnonzero(active):
        t = i * hop / RATE
        if segments and t - segments[-1][1] <= min_pause_s:
            segments[-1][1] = t + hop / RATE
        else:
            segments.append([t, t + hop / RATE])
    return [(a, b) for a, b in segments if b - a >= 0.03]


@dataclass
class _Placed:
    role: str
    start: float
    clip: Clip
    kind: str = "speech"  # speech | backchannel | checkin


@dataclass
class CallScript:
    """A call laid out on a timeline. Times are seconds from the start of the recording."""

    call_id: str
    seed: int = 0
    placed: list[_Placed] = field(default_factory=list)
    rings: int = 0
    ring_on_s: float = 1.0
    ring_off_s: float = 4.0
    ring_hz: tuple[float, ...] = (450.0,)
    answered_at: float = 0.0
    holds: list[dict] = field(default_factory=list)
    overlaps: list[dict] = field(default_factory=list)
    cursor: float = 0.0
    _open_hold: int | None = None

    def ring(self, count: int, answer_after_last_s: float = 0.5) -> None:
        """Ringback before the answer; China's cadence by default (450 Hz, 1 s on / 4 s off)."""
        self.rings = count
        if count:
            last_on = (count - 1) * (self.ring_on_s + self.ring_off_s)
            self.answered_at = last_on + self.ring_on_s + answer_after_last_s
        else:
            self.answered_at = answer_after_last_s
        self.cursor = self.answered_at

    def say(self, role: str, clip: Clip, gap: float = 0.6, kind: str = "speech") -> float:
        """Start `gap` seconds after the previous speech ends; returns the start time."""
        start = self.cursor + gap
        self.placed.append(_Placed(role, start, clip, kind))
        self.cursor = max(self.cursor, start + clip.duration)
        if role == "agent" and self._open_hold is not None:
            self.holds[self._open_hold]["end"] = round(start, 3)
            self._open_hold = None
        return start

    def cut_in(self, role: str, clip: Clip, into: float, kind: str = "interruption") -> float:
        """Start while the previous speaker is still talking, `into` seconds before they finish."""
        previous = self.placed[-1]
        previous_end = previous.start + previous.clip.duration
        start = previous_end - into
        self.placed.append(_Placed(role, start, clip, "speech" if kind == "interruption" else kind))
        self.overlaps.append(
            {"start": round(start, 3), "end": round(previous_end, 3), "by": role, "kind": kind}
        )
        self.cursor = max(self.cursor, start + clip.duration)
        return start

    def backchannel(self, role: str, clip: Clip, at_fraction: float = 0.5) -> float:
        """A short 嗯/对/好的 while the other party keeps talking (not a turn, not an interruption)."""
        previous = self.placed[-1]
        start = previous.start + previous.clip.duration * at_fraction
        end = start + clip.duration
        self.placed.append(_Placed(role, start, clip, "backchannel"))
        self.overlaps.append(
            {"start": round(start, 3), "end": round(end, 3), "by": role, "kind": "backchannel"}
        )
        return start

    def hold(
        self,
        seconds: float,
        music: bool,
        asked: bool,
        thanked: bool,
        checkins: list[Clip] | None = None,
        replies: list[Clip | None] | None = None,
        prompt: Clip | None = None,
    ) -> None:
        """The agent goes away for about `seconds` (music or dead air), checking in with `checkins` evenly.

        `replies` (one per check-in, None for none) are the customer's answers to the check-ins
        (好的, 行你慢慢查), said 0.5 s after each; `prompt` is the customer asking whether anyone is
        still there (喂，还在吗) 1.5 s before the first check-in. Both are part of the waiting: the
        agent has not come back with the answer.

        In the ground truth the hold runs from the end of the last speech before it to the start of
        the agent's next speech (set when that speech is placed): the metric's own definition.
        """
        start = self.cursor
        checkin_clips = checkins or []
        reply_clips = replies or []
        placed_checkins = []
        for i, clip in enumerate(checkin_clips, 1):
            at = start + seconds * i / (len(checkin_clips) + 1) - clip.duration / 2
            if i == 1 and prompt is not None:
                self.placed.append(_Placed("customer", at - 1.5 - prompt.duration, prompt))
            self.placed.append(_Placed("agent", at, clip, "checkin"))
            placed_checkins.append(at)
            reply = reply_clips[i - 1] if i <= len(reply_clips) else None
            if reply is not None:
                self.placed.append(_Placed("customer", at + clip.duration + 0.5, reply))
        end = start + seconds
        self.holds.append(
            {
                "start": round(start, 3),
                "end": round(end, 3),  # replaced by the agent's return, see say()
                "asked": asked,
                "thanked": thanked,
                "music": music,
                "checkins": len(checkin_clips),
                "checkin_times": [round(t, 3) for t in placed_checkins],
                "music_span": [round(start + 0.3, 3), round(end - 0.3, 3)] if music else None,
            }
        )
        self._open_hold = len(self.holds) - 1
        self.cursor = end

    # ---- rendering ------------------------------------------------------------------------------

    def render(
        self,
        stereo: bool,
        agent_left: bool = True,
        leak_db: float = -24.0,
        noise_db: float = -62.0,
        telephone: bool = True,
        out_rate: int = 8000,
        tail_s: float = 1.5,
        echo: dict | None = None,
    ) -> tuple[np.ndarray, int, dict]:
        """(samples [frames, channels], rate, truth). Stereo leaks each party into the other's channel:
        by default a plain copy at `leak_db` 12 ms late; with `echo` ({"agent_to_customer_db",
        "agent_to_customer_ms", "customer_to_agent_db", "customer_to_agent_ms"}) each direction is a
        line echo of its own level and delay through a hybrid's band-limited, smeared echo path."""
        rng = np.random.default_rng(self.seed)
        total = self.cursor + tail_s
        n = int(total * RATE)
        tracks = {"agent": np.zeros(n, np.float32), "customer": np.zeros(n, np.float32)}
        for p in self.placed:
            lo = int(p.start * RATE)
            hi = min(n, lo + len(p.clip.audio))
            tracks[p.role][lo:hi] += p.clip.audio[: hi - lo]
        ringback = self._ringback(n)
        music = self._hold_music(n, rng)

        if stereo and echo is not None:
            agent_side = tracks["agent"] + music
            agent = agent_side + _line_echo(
                tracks["customer"], echo["customer_to_agent_db"], echo["customer_to_agent_ms"]
            )
            customer = (
                tracks["customer"]
                + ringback
                + _line_echo(agent_side, echo["agent_to_customer_db"], echo["agent_to_customer_ms"])
            )
            channels = [agent, customer] if agent_left else [customer, agent]
        elif stereo:
            leak = 10 ** (leak_db / 20)
            delay = int(0.012 * RATE)  # line echo arrives a little late
            agent = tracks["agent"] + music + leak * _delayed(tracks["customer"], delay)
            customer = tracks["customer"] + ringback + leak * _delayed(tracks["agent"] + music, delay)
            channels = [agent, customer] if agent_left else [customer, agent]
        else:
            channels = [tracks["agent"] + tracks["customer"] + ringback + music]
        noise_level = 10 ** (noise_db / 20)
        out = []
        for signal in channels:
            signal = signal + rng.normal(0, noise_level, n).astype(np.float32)
            if telephone:
                signal = sosfilt(butter(6, [300, 3400], btype="band", fs=RATE, output="sos"), signal)
            if out_rate != RATE:
                signal = _resample(signal, RATE, out_rate)
            out.append(np.clip(signal, -1, 1).astype(np.float32))
        samples = np.stack(out, axis=1)
        return samples, out_rate, self.truth(total, stereo, agent_left)

    def truth(self, duration: float, stereo: bool, agent_left: bool) -> dict:
        turns = []
        for p in sorted(self.placed, key=lambda p: p.start):
            voiced = [(p.start + a, p.start + b) for a, b in voiced_segments(p.clip.audio)]
            turns.append(
                {
                    "speaker": p.role,
                    "start": round(voiced[0][0] if voiced else p.start, 3),
                    "end": round(voiced[-1][1] if voiced else p.start + p.clip.duration, 3),
                    "text": p.clip.text,
                    "kind": p.kind,
                    "voiced": [[round(a, 3), round(b, 3)] for a, b in voiced],
                }
            )
        return {
            "call_id": self.call_id,
            "channels": ("stereo-agent-left" if agent_left else "stereo-agent-right") if stereo else "mono",
            "duration_s": round(duration, 3),
            "rings": self.rings,
            "ring_cadence_s": [self.ring_on_s, self.ring_off_s],
            "ring_hz": list(self.ring_hz),
            "answered_at": round(self.answered_at, 3),
            "turns": turns,
            "overlaps": self.overlaps,
            "holds": self.holds,
        }

    def _ringback(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        t = np.arange(int(self.ring_on_s * RATE)) / RATE
        tone = sum(np.sin(2 * np.pi * hz * t) for hz in self.ring_hz) / len(self.ring_hz)
        tone = (0.18 * tone).astype(np.float32)
        for k in range(self.rings):
            lo = int(k * (self.ring_on_s + self.ring_off_s) * RATE)
            hi = min(n, lo + len(tone))
            out[lo:hi] += tone[: hi - lo]
        return out

    def _hold_music(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(n, np.float32)
        notes = [261.6, 329.6, 392.0, 523.3, 392.0, 329.6, 293.7, 349.2]  # a slow arpeggio
        for hold in self.holds:
            if not hold["music"]:
                continue
            lo, hi = int(hold["music_span"][0] * RATE), min(n, int(hold["music_span"][1] * RATE))
            note_len = int(0.45 * RATE)
            t = np.arange(note_len) / RATE
            envelope = np.exp(-3 * t)
            pos = lo
            k = int(rng.integers(0, len(notes)))
            while pos < hi:
                f = notes[k % len(notes)]
                note = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3)) * envelope * 0.08
                end = min(hi, pos + note_len)
                out[pos:end] += note[: end - pos].astype(np.float32)
                pos += note_len
                k += 1
        return out


def _line_echo(signal: np.ndarray, level_db: float, delay_ms: float) -> np.ndarray:
    """What a 2-to-4-wire hybrid returns: the far signal `delay_ms` late, band-limited (the echo
    path passes 300-2800 Hz best) and smeared by a second, weaker reflection 2.5 ms after the first."""
    delayed = _delayed(signal, round(delay_ms / 1000 * RATE))
    shaped = sosfilt(butter(2, [300, 2800], btype="band", fs=RATE, output="sos"), delayed)
    shaped = shaped + 0.4 * _delayed(shaped, int(0.0025 * RATE))
    # the level is the echo's power relative to the talker's, over the whole track
    power_ratio = float(np.sqrt(np.mean(shaped**2) / (np.mean(signal**2) or 1.0))) or 1.0
    return (shaped / power_ratio * 10 ** (level_db / 20)).astype(np.float32)


def _delayed(signal: np.ndarray, samples: int) -> np.ndarray:
    if samples <= 0:
        return signal
    return np.concatenate([np.zeros(samples, signal.dtype), signal[: len(signal) - samples]])


def _resample(signal: np.ndarray, src: int, dst: int) -> np.ndarray:
    g = gcd(int(src), int(dst))
    return resample_poly(signal, dst // g, src // g).astype(np.float32)


def write_call(
    folder: Path,
    name: str,
    samples: np.ndarray,
    rate: int,
    truth: dict,
    sidecar: dict | None,
    subtype: str | None = None,
    fmt: str | None = None,
) -> Path:
    """Write NAME.<ext> (+ NAME.json sidecar) + NAME.truth.json; returns the audio path."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    sf.write(str(path), samples, rate, subtype=subtype, format=fmt)
    truth = dict(truth, file=path.name)
    (folder / f"{path.stem}.truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    if sidecar is not None:
        (folder / f"{path.stem}.json").write_text(
            json.dumps(sidecar, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return path


def spoken_chars(text: str) -> int:
    return len(re.findall(r"[\u4e00-\u9fffA-Za-z0-9]", text))


def true_rate(truth: dict, pause_excluded_s: float = 0.3) -> float | None:
    """docs/metrics.md's rate on the truth: spoken chars over voiced time joined across short pauses."""
    agent = [t for t in truth["turns"] if t["speaker"] == "agent"]
    stretches = sorted(tuple(v) for t in agent for v in t["voiced"])
    joined: list[list[float]] = []
    for a, b in stretches:
        if joined and a - joined[-1][1] <= pause_excluded_s:
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    speaking = sum(b - a for a, b in joined)
    chars = sum(spoken_chars(t["text"]) for t in agent)
    return round(chars / speaking * 60, 1) if speaking > 1 else None


def longest_gap(start: float, end: float, spans: list[tuple[float, float]]) -> float:
    """The longest stretch of [start, end] outside the (sorted, non-overlapping) spans: a hold's
    longest silence between the agent's check-ins, as both generators label HOLD-CHECKIN."""
    edges = [start] + [x for a, b in spans for x in (a, b)] + [end]
    return max(edges[i + 1] - edges[i] for i in range(0, len(edges), 2))
