"""Each metric definition (docs/metrics.md) on hand-built timelines, including the edges."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import AcousticConfig, MetricsConfig, RingConfig, Settings, TurnConfig
from pipeline.metrics import compute_metrics
from pipeline.metrics.acoustic import detect_audio_events
from pipeline.metrics.interruptions import find_interruptions, is_backchannel
from pipeline.metrics.rate import party_rate, share_outside, utterance_rates
from pipeline.metrics.timing import answer_timing, hangup, nuisance_over_max, rings_from_metadata
from pipeline.records import AudioEvent, CallAudio, CallMeta, CharTiming, SpeechTurn, Utterance
from pipeline.rules.scorecard import default_phrases

CONFIG = MetricsConfig()
EXACT = MetricsConfig(voicing_pad_s=0.0)  # the definitions' arithmetic, whatever the default padding
TURNS = TurnConfig()
RING = RingConfig()


def utt(speaker: str, start: float, end: float, text: str) -> Utterance:
    """An utterance whose spoken characters are spread evenly over its time."""
    spoken = [c for c in text if c.isalnum()]
    step = (end - start) / max(len(spoken), 1)
    chars = tuple(CharTiming(c, start + i * step, start + (i + 1) * step, 0.9) for i, c in enumerate(spoken))
    return Utterance(speaker, start, end, text, chars, 0.9)


def va(speaker: str, *spans: tuple[float, float]) -> list[SpeechTurn]:
    return [SpeechTurn(speaker, a, b) for a, b in spans]


# ---- RATE ---------------------------------------------------------------------------------------


def test_rate_counts_spoken_characters_over_voiced_time() -> None:
    text = "您好，这里是星河电器客户服务中心，请问有什么可以帮到您？"  # 25 spoken characters
    utterances = [utt("agent", 0.0, 10.0, text)]
    # 0.2 s and exactly-0.3 s pauses count as speaking; the 1.0 s pause does not
    activity = va("agent", (0.0, 3.0), (3.2, 5.0), (5.3, 7.0), (8.0, 10.0))
    rate, speaking_s = party_rate("agent", utterances, activity, EXACT)
    assert speaking_s == pytest.approx(9.0)
    assert rate == pytest.approx(25 / 9.0 * 60, abs=0.1)
    # with 0.06 s of padding each voiced stretch (and the utterance) gains 0.06 s on both sides:
    # two stretches, -0.06-7.06 and 7.94-10.06 (the 1.0 s pause shrinks to 0.88 s, still a pause)
    assert party_rate("agent", utterances, activity, MetricsConfig(voicing_pad_s=0.06))[1] == pytest.approx(
        9.24
    )


def test_rate_counts_a_recogniser_loop_once() -> None:
    """Whisper looped over a one-second click before the greeting (请问问问… 350 times): those
    characters were never said, and counted they put a 193 chars/min agent at 470."""
    greeting = "您好，这里是星河电器客户服务中心，请问有什么可以帮到您？"  # 25 spoken characters
    looped = utt("agent", 0.0, 1.0, "请问" + "问" * 300)
    said = utt("agent", 2.0, 12.0, greeting)
    activity = va("agent", (0.0, 1.0), (2.0, 12.0))
    rate, speaking_s = party_rate("agent", [looped, said], activity, MetricsConfig())
    assert speaking_s == pytest.approx(11.0)
    assert rate == pytest.approx((2 + 25) / 11.0 * 60, abs=0.1)
    # people do repeat short words: 对对对对 (four times) is not a loop and counts in full
    repeated = utt("agent", 0.0, 2.0, "对对对对")
    assert party_rate("agent", [repeated], va("agent", (0.0, 2.0)), MetricsConfig())[0] == pytest.approx(
        120.0
    )


def test_rate_ignores_voice_outside_utterances_and_punctuation() -> None:
    utterances = [utt("agent", 0.0, 4.0, "好的，没问题！OK，3号。")]  # 好的没问题OK3号: 9 spoken
    activity = va("agent", (0.0, 4.0), (10.0, 20.0))  # hold music taken for voice: no words there
    rate, speaking_s = party_rate("agent", utterances, activity, EXACT)
    assert speaking_s == pytest.approx(4.0) and rate == pytest.approx(135.0)


def test_per_utterance_rates_skip_short_ones_and_report_the_share_outside_100_200() -> None:
    utterances = [
        utt("agent", 0.0, 6.0, "一二三四五六七八九十一二三四五六七八九十一二三四五"),  # 25 in 6 s: 250/min
        utt("agent", 8.0, 14.0, "一二三四五六七八九十一二三四五"),  # 15 in 6 s: 150/min
        utt("agent", 16.0, 16.5, "好的"),  # too short to judge
    ]
    activity = va("agent", (0.0, 6.0), (8.0, 14.0), (16.0, 16.5))
    rates = utterance_rates(utterances, activity, CONFIG)
    assert [(r.utterance_index, r.chars_per_min) for r in rates] == [(0, 250.0), (1, 150.0)]
    assert share_outside(rates, "agent", CONFIG) == pytest.approx(0.5)


def test_rate_is_unknown_without_speech() -> None:
    assert party_rate("agent", [], [], CONFIG) == (None, 0.0)


# ---- NO-INTERRUPT ---------------------------------------------------------------------------


def _interruptions(
    agent_span: tuple[float, float], agent_text: str, customer_span: tuple[float, float] = (0.0, 5.0)
):
    utterances = [
        utt("customer", *customer_span, "我想问一下我的订单为什么还没有发货"),
        utt("agent", *agent_span, agent_text),
    ]
    activity = va("customer", customer_span) + va("agent", agent_span)
    return find_interruptions(utterances, activity, CONFIG, TURNS)


def test_agent_cutting_in_is_an_interruption_with_both_parties_words() -> None:
    (event,) = _interruptions((3.0, 6.0), "您先听我说，这个不对")
    assert (event.by, event.start, event.end, event.overlap_s) == ("agent", 3.0, 5.0, 2.0)
    assert event.text.startswith("您先听我") and "订单" in event.interrupted_text


def test_overlap_exactly_at_the_threshold_counts_and_just_below_does_not() -> None:
    assert len(_interruptions((4.7, 7.0), "您先听我说这个不对")) == 1  # 0.3 s overlap
    assert _interruptions((4.71, 7.0), "您先听我说这个不对") == []  # 0.29 s


def test_customer_must_have_spoken_one_second_first() -> None:
    assert len(_interruptions((1.0, 7.0), "您先听我说这个不对您听我说")) == 1  # exactly 1.0 s before
    assert _interruptions((0.9, 7.0), "您先听我说这个不对您听我说") == []


def test_backchannels_during_a_customer_turn_are_not_interruptions() -> None:
    assert _interruptions((2.0, 2.4), "嗯") == []
    assert _interruptions((2.0, 3.5), "对对，是的") == []  # acknowledgement words only
    assert _interruptions((2.0, 2.6), "文") == []  # a short chime-in the customer talks through
    assert is_backchannel("嗯嗯，好的。", CONFIG.backchannels) and not is_backchannel(
        "好的您说", CONFIG.backchannels
    )


def test_an_overlap_without_recognised_words_is_not_counted() -> None:
    utterances = [utt("customer", 0.0, 5.0, "我想问一下我的订单为什么还没有发货")]
    activity = va("customer", (0.0, 5.0)) + va("agent", (3.0, 6.0))
    assert find_interruptions(utterances, activity, CONFIG, TURNS) == []


def test_words_the_recogniser_only_guessed_are_not_heard_words() -> None:
    """A 嗯 over the customer (1.2 s with the echo's tail) written 可以 at 0.05: nothing was heard;
    the same overlap with words heard at 0.9 is an interruption."""
    customer = utt("customer", 0.0, 5.0, "我们这边健康A的产品可以保七十种重大疾病")
    activity = va("customer", (0.0, 5.0)) + va("agent", (2.0, 3.2))

    def agent(probability: float) -> Utterance:
        chars = (CharTiming("可", 2.1, 2.6, probability), CharTiming("以", 2.6, 3.1, probability))
        return Utterance("agent", 2.0, 3.2, "可以", chars, probability)

    assert find_interruptions([customer, agent(0.05)], activity, CONFIG, TURNS) == []
    (event,) = find_interruptions([customer, agent(0.9)], activity, CONFIG, TURNS)
    assert (event.by, event.text) == ("agent", "可以")


def test_customer_interruptions_are_reported_too() -> None:
    utterances = [
        utt("agent", 0.0, 5.0, "您的订单已经发货了预计明天送到"),
        utt("customer", 4.0, 7.0, "不对不对我要退货"),
    ]
    activity = va("agent", (0.0, 5.0)) + va("customer", (4.0, 7.0))
    (event,) = find_interruptions(utterances, activity, CONFIG, TURNS)
    assert event.by == "customer" and event.overlap_s == pytest.approx(1.0)


# ---- rings, answer delay, hang-up, nuisance -------------------------------------------------


@pytest.mark.parametrize(
    ("ring_seconds", "rings"), [(0.0, 0), (0.8, 1), (4.9, 1), (5.0, 2), (6.6, 2), (22.2, 5)]
)
def test_rings_from_the_pbx_ring_time(ring_seconds: float, rings: int) -> None:
    assert rings_from_metadata(ring_seconds, RING) == rings


def _bursts(count: int, channel: str = "customer") -> list[AudioEvent]:
    return [AudioEvent("ring", k * 5.0, k * 5.0 + 1.0, channel, "450 Hz") for k in range(count)]


def test_rings_and_answer_delay_from_the_ringback_heard() -> None:
    utterances = [utt("agent", 12.5, 15.0, "您好请问有什么可以帮您")]
    assert answer_timing(_bursts(3), utterances, None, RING) == (3, "audio", 11.0, 1.5, "audio")
    # the PBX's ring time wins for the count; the connection still comes from the audio
    assert answer_timing(_bursts(3), utterances, 11.5, RING) == (3, "metadata", 11.0, 1.5, "audio")


def test_no_ringing_means_connection_at_the_start() -> None:
    utterances = [utt("agent", 0.8, 3.0, "您好请问有什么可以帮您")]
    assert answer_timing([], utterances, None, RING) == (0, "audio", 0.0, 0.8, "recording-start")


def test_a_ring_tone_that_never_stops() -> None:
    events = _bursts(8)  # rings until the recording ends, nobody answers
    assert answer_timing(events, [], None, RING) == (8, "audio", 36.0, None, "audio")


def test_a_tone_heard_later_in_the_call_is_not_ringback() -> None:
    events = [AudioEvent("ring", 30.0, 31.0, "customer", "450 Hz")]
    utterances = [utt("agent", 0.5, 3.0, "您好")]
    assert answer_timing(events, utterances, None, RING)[:2] == (0, "audio")


def test_hangup_from_metadata_or_from_who_spoke_last() -> None:
    closing = [utt("agent", 50.0, 53.0, "感谢您的来电，再见")]
    assert hangup("customer", closing, 54.0, CONFIG) == ("customer", "metadata")
    assert hangup(None, closing, 54.0, CONFIG) == ("agent", "audio")  # line closed 1 s after goodbye
    assert hangup(None, closing, 58.0, CONFIG) == ("customer", "audio")  # waited 5 s
    assert hangup(None, [*closing, utt("customer", 53.5, 54.0, "再见")], 55.0, CONFIG) == (
        "customer",
        "audio",
    )
    assert hangup(None, [], 10.0, CONFIG) == (None, None)


def test_nuisance_over_max() -> None:
    assert nuisance_over_max("F", 601.0, CONFIG) is True
    assert nuisance_over_max("F", 600.0, CONFIG) is False
    assert nuisance_over_max("E", 900.0, CONFIG) is False
    assert nuisance_over_max(None, 900.0, CONFIG) is None


# ---- acoustic events ------------------------------------------------------------


def _tone_bursts(
    seconds: float,
    rate: int = 16000,
    count: int = 4,
    hz: tuple[float, ...] = (450.0,),
    on: float = 1.0,
    off: float = 4.0,
) -> np.ndarray:
    rng = np.random.default_rng(1)
    signal = rng.normal(0, 0.001, int(seconds * rate)).astype(np.float32)
    t = np.arange(int(on * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t) for f in hz) / len(hz) * 0.2
    for k in range(count):
        lo = int(k * (on + off) * rate)
        signal[lo : lo + len(tone)] += tone.astype(np.float32)
    return signal


def _audio(track: np.ndarray) -> CallAudio:
    return CallAudio("c", 16000, {"mono": track}, "mono", "file", 16000, 1, "WAV", len(track) / 16000)


def test_ringback_bursts_are_found_with_the_countrys_cadence() -> None:
    events = detect_audio_events(_audio(_tone_bursts(20.0)), AcousticConfig())
    rings = [e for e in events if e.kind == "ring"]
    assert len(rings) == 4
    assert [round(e.start) for e in rings] == [0, 5, 10, 15] and all(
        0.9 <= e.end - e.start <= 1.2 for e in rings
    )
    # North America: 440+480 Hz, 2 s on / 4 s off — not a China ringback, found with its own config
    us = _tone_bursts(20.0, count=3, hz=(440.0, 480.0), on=2.0, off=4.0)
    us_config = AcousticConfig(ring=RingConfig(frequencies_hz=(440.0, 480.0), on_s=2.0, off_s=4.0))
    assert len([e for e in detect_audio_events(_audio(us), us_config) if e.kind == "ring"]) == 3


def test_music_is_found_and_silence_is_not() -> None:
    rate = 16000
    t = np.arange(12 * rate) / rate
    notes = np.repeat([262.0, 330.0, 392.0, 523.0], 3 * rate)[: len(t)]
    music = (0.1 * np.sin(2 * np.pi * notes * t)).astype(np.float32)
    quiet = np.random.default_rng(0).normal(0, 0.001, 8 * rate).astype(np.float32)
    events = detect_audio_events(_audio(np.concatenate([quiet, music, quiet])), AcousticConfig())
    (found,) = [e for e in events if e.kind == "music"]
    assert found.start == pytest.approx(8.0, abs=1.1) and found.end == pytest.approx(20.0, abs=1.1)


def test_a_second_either_silero_pass_calls_speech_is_not_music(monkeypatch: pytest.MonkeyPatch) -> None:
    # Silero over the whole call learns a long stretch of music as background and then scores the
    # voice after it as nothing (a slow agent's 70 s after a 65 s hold, tuning batch 4); restarted
    # every 10 s it hears that voice. Sound either pass calls speech is not music.
    from pipeline.metrics import acoustic

    rate, frame_s = 16000, acoustic.HOP / 16000
    t = np.arange(40 * rate) / rate
    notes = np.repeat([262.0, 330.0, 392.0, 523.0], 3 * rate)
    quiet = np.random.default_rng(0).normal(0, 0.001, 8 * rate).astype(np.float32)
    tonal = np.concatenate(
        [quiet, (0.1 * np.sin(2 * np.pi * np.resize(notes, len(t)) * t)).astype(np.float32)]
    )
    frames = int(48 / frame_s) + 1
    restarted_voice = np.zeros(frames, dtype=np.float32)
    restarted_voice[int(38 / frame_s) :] = 0.9  # the last 10 s: the voice after the music

    def scores(signal: np.ndarray, window_s: float | None = None) -> np.ndarray:
        return restarted_voice.copy() if window_s else np.zeros(frames, dtype=np.float32)

    monkeypatch.setattr(acoustic, "speech_probabilities", scores)
    config = AcousticConfig()
    features = acoustic.frame_features(tonal, rate, config)
    (music,) = acoustic.music_stretches(tonal, features, rate, config, "agent")
    assert music.start == pytest.approx(8.0, abs=1.1) and music.end == pytest.approx(38.0, abs=1.1)
    whole_only = AcousticConfig(music_speech_window_s=0)
    (music,) = acoustic.music_stretches(tonal, features, rate, whole_only, "agent")
    assert music.end == pytest.approx(48.0, abs=1.1)  # the whole-call pass alone took the voice for music


def test_compute_metrics_talk_and_silence_shares() -> None:
    utterances = [utt("agent", 1.0, 5.0, "您好请问有什么可以帮您"), utt("customer", 6.0, 9.0, "我想查订单")]
    activity = va("agent", (1.0, 5.0)) + va("customer", (4.5, 9.0))
    meta = CallMeta("c", hangup_by="customer")
    m = compute_metrics(utterances, activity, [], meta, 10.0, Settings(), default_phrases())
    assert (m.agent_talk_s, m.customer_talk_s, m.overlap_s) == (4.0, 4.5, 0.5)
    assert m.silence_ratio == pytest.approx(0.2) and m.longest_silence_s == pytest.approx(1.0)
    assert (m.rings, m.answer_delay_s, m.hangup_by, m.hangup_source) == (0, 1.0, "customer", "metadata")


def test_backchannel_words_then_taking_the_floor_is_an_interruption() -> None:
    assert _interruptions((2.0, 3.5), "对对，是的") == []  # stops within 2 s: acknowledgement
    (event,) = _interruptions((2.0, 6.0), "对对对对对对对对")  # goes on over the customer
    assert event.by == "agent"


def test_overlap_lasts_to_the_end_of_the_interrupted_turn() -> None:
    # the customer's channel is blanked 4.0-4.5 while the agent is loud (cross-talk rule): still talking
    utterances = [
        utt("customer", 0.0, 6.0, "我想问一下我的订单为什么还没有发货呢"),
        utt("agent", 3.8, 7.0, "您先听我说这个不对"),
    ]
    activity = va("customer", (0.0, 4.0), (4.5, 6.0)) + va("agent", (3.8, 7.0))
    (event,) = find_interruptions(utterances, activity, CONFIG, TURNS)
    assert (event.start, event.end) == (3.8, 6.0)
