"""RATE: characters per minute of a party's own voiced time.

chars          spoken characters of the party's utterances: Chinese characters, letters and digits,
               each counted once (numbers are read digit by digit in service calls); punctuation
               and spaces never count. A recogniser loop (pipeline/asr/guards.find_loops: 问问问…
               hundreds of times over a one-second click) counts its repeated unit once: the
               repeats are whisper's, not the speaker's.
speaking time  the party's voiced stretches inside its utterances (each widened by `voicing_pad_s`,
               0 by default, for a voice detector that trims soft onsets), where pauses up to
               `pause_excluded_s` (0.3 s) count as speaking and longer pauses do not. A voiced
               stretch is what a stopwatch counts: a run of sound without a 0.1 s break that the
               voice detector confirms anywhere, drawn-out vowels included (see
               pipeline/diarize/timeline.confirmed_islands and docs/metrics.md).
rate           chars / speaking time × 60.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.asr.guards import find_loops
from pipeline.config import MetricsConfig
from pipeline.metrics.intervals import Span, intersect, total, union
from pipeline.records import SpeechTurn, Utterance, UtteranceRate


def speaking_spans(
    speaker: str, utterances: Sequence[Utterance], activity: Sequence[SpeechTurn], config: MetricsConfig
) -> list[Span]:
    pad = config.voicing_pad_s
    voiced = union(
        ((v.start - pad, v.end + pad) for v in activity if v.speaker == speaker), config.pause_excluded_s
    )
    said = [(u.start - pad, u.end + pad) for u in utterances if u.speaker == speaker]
    return intersect(voiced, said)


def said_chars(utterance: Utterance) -> int:
    """The utterance's spoken characters, a recogniser loop's repeats left out (its unit once)."""
    repeated = sum((loop.repeats - 1) * len(loop.unit) for loop in find_loops(utterance.text))
    return max(0, len(utterance.chars) - repeated)


def chars_per_min(chars: int, speaking_s: float) -> float | None:
    return round(chars / speaking_s * 60, 1) if speaking_s > 0 and chars > 0 else None


def party_rate(
    speaker: str, utterances: Sequence[Utterance], activity: Sequence[SpeechTurn], config: MetricsConfig
) -> tuple[float | None, float]:
    """(chars per minute or None, speaking seconds) for one party over the whole call."""
    spans = speaking_spans(speaker, utterances, activity, config)
    speaking_s = total(spans)
    chars = sum(said_chars(u) for u in utterances if u.speaker == speaker)
    return (chars_per_min(chars, speaking_s) if speaking_s >= 1.0 else None), round(speaking_s, 3)


def utterance_rates(
    utterances: Sequence[Utterance], activity: Sequence[SpeechTurn], config: MetricsConfig
) -> list[UtteranceRate]:
    """Per-utterance rates, for utterances long enough to judge."""
    rates = []
    spans_by_speaker = {
        s: speaking_spans(s, utterances, activity, config) for s in {u.speaker for u in utterances}
    }
    for index, u in enumerate(utterances):
        speaking_s = total(intersect(spans_by_speaker[u.speaker], [(u.start, u.end)]))
        chars = said_chars(u)
        if speaking_s >= config.rate_min_utterance_s and chars >= config.rate_min_utterance_chars:
            rate = chars_per_min(chars, speaking_s)
            if rate is not None:
                rates.append(UtteranceRate(index, u.speaker, chars, round(speaking_s, 3), rate))
    return rates


def share_outside(rates: Sequence[UtteranceRate], speaker: str, config: MetricsConfig) -> float | None:
    """Share of the party's judged speaking time spoken slower or faster than the handbook's range."""
    judged = [r for r in rates if r.speaker == speaker]
    time = sum(r.speaking_s for r in judged)
    if time <= 0:
        return None
    outside = sum(
        r.speaking_s
        for r in judged
        if r.chars_per_min < config.rate_slow_below or r.chars_per_min > config.rate_fast_above
    )
    return round(outside / time, 3)
