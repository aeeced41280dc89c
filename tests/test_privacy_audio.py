"""The review MP3 next to a call page does not play what the page masks (pipeline/reports/audio_mask.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.privacy import redact_utterances
from pipeline.reports.audio_mask import MARGIN_S, TONE_HZ, SpokenLine, cover, masked_spans, spans_tag


def _timed(text: str, start: float, step: float = 0.2) -> tuple[tuple[str, float, float], ...]:
    """Spoken characters of `text` (punctuation and spaces have no time), one every `step` s."""
    spoken = [c for c in text if c.isalnum()]
    return tuple(
        (c, round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i, c in enumerate(spoken)
    )


def test_the_masked_characters_of_a_mobile_number_are_covered_and_nothing_else() -> None:
    text = "我的手机号是13812345678，对"
    line = SpokenLine("customer", 10.0, 15.0, text, _timed(text, 10.0))
    (shown,) = redact_utterances([("customer", text)])
    assert shown == "我的手机号是138****5678，对"
    # the 7th-10th spoken characters (1234) at 10.0 + 0.2 * k
    assert masked_spans([line], [shown]) == ((10.0 + 0.2 * 9 - MARGIN_S, 10.0 + 0.2 * 13 + MARGIN_S),)


def test_an_utterance_that_changed_but_has_no_timings_is_covered_whole() -> None:
    lines = [
        SpokenLine("agent", 1.0, 2.5, "您好", _timed("您好", 1.0)),
        SpokenLine("customer", 3.0, 7.5, "身份证110105199003071234"),
    ]
    shown = redact_utterances([(line.speaker, line.text) for line in lines])
    assert shown[0] == "您好" and shown[1] != lines[1].text
    assert masked_spans(lines, shown) == ((3.0, 7.5),)


def test_timings_that_do_not_spell_the_text_cover_the_utterance_whole() -> None:
    text = "手机13812345678"
    line = SpokenLine("customer", 4.0, 9.0, text, _timed("手机1381234567", 4.0))  # one digit short
    assert masked_spans([line], redact_utterances([("customer", text)])) == ((4.0, 9.0),)


def test_an_unchanged_call_has_nothing_to_cover() -> None:
    lines = [SpokenLine("agent", 0.0, 2.0, "一共三百元", _timed("一共三百元", 0.0))]
    assert masked_spans(lines, [line.text for line in lines]) == ()
    assert spans_tag(()) == ""


def test_the_cover_replaces_the_span_with_the_tone_only() -> None:
    rate = 16_000
    rng = np.random.default_rng(1)
    speech = (0.3 * rng.standard_normal(rate * 3)).astype(np.float32)
    covered = cover(speech, rate, [(1.0, 2.0)])
    inside = covered[rate + 200 : 2 * rate - 200]
    spectrum = np.abs(np.fft.rfft(inside)) ** 2
    freqs = np.fft.rfftfreq(len(inside), 1 / rate)
    off_tone = spectrum[np.abs(freqs - TONE_HZ) > 50].sum() / spectrum.sum()
    assert off_tone < 1e-3
    assert np.array_equal(covered[: rate - 1], speech[: rate - 1]) and np.array_equal(
        covered[2 * rate + 1 :], speech[2 * rate + 1 :]
    )
    assert spans_tag([(1.0, 2.0)]) != spans_tag([(1.0, 2.5)])


def off_tone_energy(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    """Mean energy per sample of `samples` in [start, end] outside the tone's band (±150 Hz)."""
    piece = samples[round(start * rate) : round(end * rate)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(piece)) ** 2
    freqs = np.fft.rfftfreq(len(piece), 1 / rate)
    return float(spectrum[np.abs(freqs - TONE_HZ) > 150].sum() / len(piece) ** 2)


@pytest.mark.parametrize("level", [0.1, 0.3])
def test_off_tone_energy_tells_speech_from_the_tone(level: float) -> None:
    rate = 16_000
    rng = np.random.default_rng(2)
    noise = (level * rng.standard_normal(rate)).astype(np.float32)
    assert off_tone_energy(cover(noise, rate, [(0.0, 1.0)]), rate, 0.1, 0.9) < 1e-3 * off_tone_energy(
        noise, rate, 0.1, 0.9
    )
