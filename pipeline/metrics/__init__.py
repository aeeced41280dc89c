"""Call metrics: every timing fact the handbook checks, as pure functions over stored records.

    events  = detect_audio_events(audio, settings.acoustic)      # while the audio is at hand
    metrics = compute_metrics(utterances, voice_activity, events, meta, duration_s, settings, card.phrases)

`phrases` is the call's scorecard's service-phrase vocabulary (rules/default.yaml, `phrases:`),
matched by pipeline.rules.matching, the one phrase matcher; the metrics stage gets it as data and
never imports the scoring engine.

The definitions, thresholds and worked examples are in docs/metrics.md; each module's docstring
states its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.config import Settings
from pipeline.metrics.acoustic import detect_audio_events
from pipeline.metrics.holds import find_dead_air, find_holds
from pipeline.metrics.interruptions import find_interruptions
from pipeline.metrics.intervals import gaps, intersect, total, union
from pipeline.metrics.rate import party_rate, share_outside, utterance_rates
from pipeline.metrics.timing import answer_timing, hangup, nuisance_over_max
from pipeline.records import AudioEvent, CallMeta, CallMetrics, SpeechTurn, Utterance
from pipeline.rules.matching import ServicePhrases

__all__ = ["compute_metrics", "detect_audio_events"]


def compute_metrics(
    utterances: Sequence[Utterance],
    voice_activity: Sequence[SpeechTurn],
    events: Sequence[AudioEvent],
    meta: CallMeta,
    duration_s: float,
    settings: Settings,
    phrases: ServicePhrases,
) -> CallMetrics:
    config = settings.metrics
    utterances = sorted(utterances, key=lambda u: (u.start, u.end))
    agent_rate, agent_speaking_s = party_rate("agent", utterances, voice_activity, config)
    customer_rate, _ = party_rate("customer", utterances, voice_activity, config)
    rates = utterance_rates(utterances, voice_activity, config)
    rings, rings_source, connected_at, delay, delay_source = answer_timing(
        events, utterances, meta.ring_seconds, settings.acoustic.ring, voice_activity, config.first_word_min_s
    )
    holds = find_holds(utterances, voice_activity, events, duration_s, config, phrases)
    last_speech_end = max((u.end for u in utterances), default=connected_at)
    dead_air = find_dead_air(voice_activity, events, holds, connected_at, last_speech_end, config)

    agent = union((v.start, v.end) for v in voice_activity if v.speaker == "agent")
    customer = union((v.start, v.end) for v in voice_activity if v.speaker == "customer")
    connected_s = max(duration_s - connected_at, 1e-9)
    silences = gaps(agent + customer, connected_at, duration_s)
    hangup_by, hangup_source = hangup(meta.hangup_by, utterances, duration_s, config)
    return CallMetrics(
        duration_s=round(duration_s, 3),
        agent_chars_per_min=agent_rate,
        customer_chars_per_min=customer_rate,
        agent_speaking_s=agent_speaking_s,
        agent_rate_outside_share=share_outside(rates, "agent", config),
        utterance_rates=tuple(rates),
        interruptions=tuple(find_interruptions(utterances, voice_activity, config, settings.turns)),
        holds=tuple(holds),
        dead_air=tuple(dead_air),
        rings=rings,
        rings_source=rings_source,
        answered_at=round(connected_at, 3),
        answer_delay_s=delay,
        answer_delay_source=delay_source,
        agent_talk_s=round(total(agent), 3),
        customer_talk_s=round(total(customer), 3),
        overlap_s=round(total(intersect(agent, customer)), 3),
        silence_ratio=round(total(silences) / connected_s, 3),
        longest_silence_s=round(max((b - a for a, b in silences), default=0.0), 3),
        hangup_by=hangup_by,
        hangup_source=hangup_source,
        call_type=meta.call_type,
        nuisance_over_max=nuisance_over_max(meta.call_type, duration_s, config),
    )
