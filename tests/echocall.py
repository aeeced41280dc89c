"""A two-party stereo call of real speech with line echo, G.711 A-law, telephone band: the test
fixture for echo cancellation and stereo diarization. Truth is where each party's clean track has
voice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfilt

MAGICDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "audio" / "magicdata_cs"
RATE = 16000
AGENT_CLIPS = ("insurance_000002.flac", "general_400020.flac", "tourism_300039.flac")
CUSTOMER_CLIPS = ("education_100001.flac", "education_100003.flac")


@dataclass(frozen=True)
class EchoCall:
    path: Path
    agent_speech: np.ndarray  # 0.1 s frames where the agent truly talks
    customer_speech: np.ndarray


def _clip(name: str, warp: float = 1.0) -> np.ndarray:
    audio, rate = sf.read(MAGICDATA / name, dtype="float32")
    audio = resample_poly(audio, RATE, rate) if rate != RATE else audio
    if warp != 1.0:  # lower pitch and formants: another voice
        audio = resample_poly(audio, int(RATE / warp), RATE).astype(np.float32)
    return audio / (np.max(np.abs(audio)) or 1.0) * 0.5


def _echo_path(level_db: float, delay_ms: float) -> np.ndarray:
    """A hybrid's echo: late, band-passed, with a weaker second reflection 4 ms later."""
    taps = np.zeros(int((delay_ms + 10) / 1000 * RATE) + 64)
    first = int(delay_ms / 1000 * RATE)
    taps[first] = 1.0
    taps[first + int(0.004 * RATE)] = -0.5
    taps = sosfilt(butter(2, [250, 3000], btype="band", fs=RATE, output="sos"), taps)
    return taps


def make_echo_call(folder: Path, level_db: float, delay_ms: float, quiet_agent_db: float = 0.0) -> EchoCall:
    agent_lines = [_clip(n) * 10 ** (quiet_agent_db / 20) for n in AGENT_CLIPS]
    customer_lines = [_clip(n, warp=0.76) for n in CUSTOMER_CLIPS]
    gap = int(0.7 * RATE)
    placed: list[tuple[str, int, np.ndarray]] = []
    cursor = int(0.5 * RATE)
    order = [("agent", agent_lines[0]), ("customer", customer_lines[0]), ("agent", agent_lines[1])]
    for role, clip in order:
        placed.append((role, cursor, clip))
        cursor += len(clip) + gap
    placed.append(("customer", cursor, customer_lines[1]))
    overlap_start = cursor + len(customer_lines[1]) - int(1.2 * RATE)  # the agent cuts in
    placed.append(("agent", overlap_start, agent_lines[2]))
    total = overlap_start + len(agent_lines[2]) + RATE
    tracks = {"agent": np.zeros(total, np.float32), "customer": np.zeros(total, np.float32)}
    for role, start, clip in placed:
        tracks[role][start : start + len(clip)] += clip

    def speech(track: np.ndarray) -> np.ndarray:
        frames = len(track) // (RATE // 10)
        power = np.mean(track[: frames * RATE // 10].reshape(frames, -1) ** 2, axis=1)
        return 10 * np.log10(power + 1e-12) > 10 * np.log10(np.max(power)) - 35

    truth = {role: speech(track) for role, track in tracks.items()}
    path_taps = _echo_path(level_db, delay_ms)
    channels = {}
    for role, other in (("agent", "customer"), ("customer", "agent")):
        echo = np.convolve(tracks[other], path_taps)[:total]
        # the echo's level relative to the talker while the talker speaks
        talking = np.zeros(total, bool)
        talking[: len(truth[other]) * (RATE // 10)] = np.repeat(truth[other], RATE // 10)
        gain = 10 ** (level_db / 20) * np.sqrt(
            np.mean(tracks[other][talking] ** 2) / np.mean(echo[talking] ** 2)
        )
        noise = np.random.default_rng(7).normal(0, 10 ** (-60 / 20), total)
        channels[role] = tracks[role] + gain * echo + noise
    band = butter(4, [300, 3400], btype="band", fs=RATE, output="sos")
    stereo = np.stack(
        [resample_poly(sosfilt(band, channels[r]), 1, 2) for r in ("agent", "customer")], axis=1
    )
    path = folder / "A01_20261120-101500.wav"
    sf.write(path, np.clip(stereo, -1, 1).astype(np.float32), RATE // 2, subtype="ALAW")
    return EchoCall(path, truth["agent"], truth["customer"])
