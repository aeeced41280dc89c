"""Speaking time (RATE) against the stopwatch truth, for drawn-out, normal and fast real speech,
stereo and mono.

Silero VAD scores a drawn-out vowel like a steady tone, so frame by frame it cut slow speakers'
words into pieces and the rate came out too high. The calls here are real agent sentences
(../shared/audio/magicdata_cs) time-stretched with librosa, laid out by tools/callsim.py with a
real customer, rendered as 8 kHz telephone audio (stereo with cross-talk, or mono); the truth is
callsim's voiced stretches (what a person with a stopwatch counts), joined across pauses
≤ pause_excluded_s.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
from callsim import CallScript, load_clip, make_clip
from conftest import MAGICDATA
from realcalls import AGENT_LINES, CUSTOMER_LINES

from pipeline.config import MetricsConfig, MonoConfig, StereoConfig, TurnConfig
from pipeline.diarize.mono import diarize_mono
from pipeline.diarize.stereo import diarize_stereo
from pipeline.diarize.timeline import confirmed_islands, mask_to_segments
from pipeline.metrics.intervals import intersect, total, union
from pipeline.metrics.rate import party_rate
from pipeline.records import CallAudio, Utterance
from pipeline.text import spoken_chars


def _frames(*runs: tuple[int, int], total_frames: int = 400) -> np.ndarray:
    mask = np.zeros(total_frames, dtype=bool)
    for start, end in runs:
        mask[start:end] = True
    return mask


def test_an_island_confirmed_anywhere_is_voiced_throughout() -> None:
    # one breath: loud 10-90 with 2-frame dips (not breaks); Silero confirms only frames 12-17
    loud = _frames((10, 40), (42, 70), (72, 90))
    voice = _frames((12, 17))
    assert mask_to_segments(confirmed_islands(loud, voice, max_frames=300), 1.0) == [
        (10.0, 40.0),
        (42.0, 70.0),
        (72.0, 90.0),
    ]
    # a 4-frame break ends the island: the sound after it needs its own confirmation
    loud = _frames((10, 40), (44, 90))
    assert mask_to_segments(confirmed_islands(loud, voice, max_frames=300), 1.0) == [(10.0, 40.0)]
    # too few confirmed frames (a blip of Silero on a noise burst) confirm nothing
    assert not confirmed_islands(loud, _frames((12, 14)), max_frames=300).any()


def test_a_run_of_sound_longer_than_a_breath_is_left_to_frame_decisions() -> None:
    # hold music with a check-in over it: the island is longer than max_frames, nothing is added
    loud = _frames((0, 380))
    voice = _frames((100, 150))
    assert not confirmed_islands(loud, voice, max_frames=300).any()
    assert mask_to_segments(confirmed_islands(loud, voice, max_frames=380), 1.0) == [(0.0, 380.0)]


def _stretched(name: str, text: str, stretch: float):
    audio, rate = sf.read(MAGICDATA / name, dtype="float32")
    assert rate == 16000
    return make_clip(librosa.effects.time_stretch(audio, rate=stretch) if stretch != 1.0 else audio, text)


def _call(texts: dict[str, str], stretch: float, stereo: bool = True):
    script = CallScript(call_id=f"rate-{stretch}", seed=3)
    script.ring(0)
    for i, name in enumerate(AGENT_LINES):
        script.say("agent", _stretched(name, texts[name], stretch), gap=0.6)
        if i < len(CUSTOMER_LINES):
            customer = CUSTOMER_LINES[i]
            script.say("customer", load_clip(MAGICDATA / customer, texts[customer], warp=0.78))
    return script.render(stereo=stereo, leak_db=-24.0)


@pytest.mark.parametrize("stretch", [0.55, 0.8, 1.0, 1.3])
def test_speaking_time_matches_the_stopwatch_for_drawn_out_normal_and_fast_speech(
    magicdata_texts: dict[str, str], stretch: float
) -> None:
    samples, rate, truth = _call(magicdata_texts, stretch)
    tracks = {
        role: librosa.resample(samples[:, channel], orig_sr=rate, target_sr=16000)
        for channel, role in enumerate(("agent", "customer"))
    }
    audio = CallAudio(
        "rate",
        16000,
        tracks,
        "stereo-agent-left",
        "config",
        rate,
        2,
        "WAV/PCM_16",
        tracks["agent"].size / 16000,
    )
    diarization = diarize_stereo(audio, StereoConfig(), TurnConfig())
    config = MetricsConfig()
    agent_turns = [t for t in truth["turns"] if t["speaker"] == "agent"]
    true_s = total(union([tuple(v) for t in agent_turns for v in t["voiced"]], config.pause_excluded_s))
    true_chars = sum(spoken_chars(t["text"]) for t in agent_turns)
    # the recogniser runs on the diarization's turns: those are the utterances the rate sees
    utterances = [Utterance("agent", t.start, t.end, "") for t in diarization.turns if t.speaker == "agent"]
    _, speaking_s = party_rate("agent", utterances, diarization.voice_activity, config)
    true_rate = true_chars / true_s * 60
    assert speaking_s == pytest.approx(true_s, rel=0.05), (stretch, round(true_rate), speaking_s, true_s)


@pytest.mark.parametrize("stretch", [0.55, 1.0])
def test_mono_voicing_matches_the_stopwatch_for_drawn_out_and_fast_speech(
    magicdata_texts: dict[str, str], stretch: float
) -> None:
    samples, rate, truth = _call(magicdata_texts, stretch, stereo=False)
    track = librosa.resample(samples[:, 0], orig_sr=rate, target_sr=16000)
    audio = CallAudio(
        "rate", 16000, {"mono": track}, "mono", "config", rate, 1, "WAV/PCM_16", track.size / 16000
    )
    diarization = diarize_mono(audio, MonoConfig(), TurnConfig())
    pause = MetricsConfig().pause_excluded_s
    agent_turns = [t for t in truth["turns"] if t["speaker"] == "agent"]
    true_s = total(union([tuple(v) for t in agent_turns for v in t["voiced"]], pause))
    # voicing only (which cluster is the agent is decided later, from the words): voiced time,
    # whoever it was given to, inside the agent's turns
    voiced = union([(v.start, v.end) for v in diarization.voice_activity], pause)
    measured_s = total(intersect(voiced, [(t["start"], t["end"]) for t in agent_turns]))
    assert measured_s == pytest.approx(true_s, rel=0.05), (stretch, measured_s, true_s)
