"""ANSWER-RINGS, OPEN-IMMEDIATE, HANGUP-LAST and NUISANCE-MAX: when the call starts and ends.

Rings: from the sidecar's `ring_seconds` when present — a ring that has started counts, so
  rings = floor(ring_seconds / (on + off)) + 1 (0 when ring_seconds is 0) — else from the
  ringback bursts heard at the start of the recording: the first burst and each following one
  that keeps the cadence (start-to-start within 1 s of on + off), before the agent's first word.
Connection: the end of the last of those bursts, or the start of the recording when there is
  none. Answer delay: from connection to the agent's first word — the start of the agent's first
  voiced stretch of at least `first_word_min_s` after the connection (the recogniser may miss a
  soft 您好, the voice detector does not), else of the agent's first utterance.
Hang-up: the sidecar's `hangup_by` when present; otherwise from the audio — the agent hung up
  first when the recording ends less than `hangup_wait_s` after the agent's last words and the
  customer did not speak after them; otherwise the customer did.
Nuisance: a call of type F (nuisance) longer than `nuisance_max_s`; unknown without a call type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pipeline.config import MetricsConfig, RingConfig
from pipeline.records import AudioEvent, SpeechTurn, Utterance

CADENCE_TOLERANCE_S = 1.0


def rings_from_metadata(ring_seconds: float, ring: RingConfig) -> int:
    if ring_seconds <= 0:
        return 0
    return math.floor(ring_seconds / (ring.on_s + ring.off_s)) + 1


def leading_ring_bursts(
    events: Sequence[AudioEvent], first_agent_start: float | None, ring: RingConfig
) -> list[AudioEvent]:
    """The ringback bursts before the agent answers, on the channel that carries them."""
    period = ring.on_s + ring.off_s
    best: list[AudioEvent] = []
    for channel in sorted({e.channel for e in events if e.kind == "ring"}):
        bursts = sorted(
            (e for e in events if e.kind == "ring" and e.channel == channel), key=lambda e: e.start
        )
        if first_agent_start is not None:
            bursts = [b for b in bursts if b.start < first_agent_start]
        sequence: list[AudioEvent] = []
        for burst in bursts:
            if not sequence:
                if burst.start > period + CADENCE_TOLERANCE_S:
                    break  # not at the start of the recording: a tone heard later is not ringback
                sequence.append(burst)
            elif abs(burst.start - sequence[-1].start - period) <= CADENCE_TOLERANCE_S:
                sequence.append(burst)
            else:
                break
        if len(sequence) > len(best):
            best = sequence
    return best


def first_agent_start(utterances: Sequence[Utterance]) -> float | None:
    return min((u.start for u in utterances if u.speaker == "agent"), default=None)


def answer_timing(
    events: Sequence[AudioEvent],
    utterances: Sequence[Utterance],
    ring_seconds: float | None,
    ring: RingConfig,
    activity: Sequence[SpeechTurn] = (),
    first_word_min_s: float = 0.2,
) -> tuple[int | None, str | None, float, float | None, str]:
    """(rings, rings source, connected at, answer delay, answer delay source)."""
    agent_start = first_agent_start(utterances)
    bursts = leading_ring_bursts(events, agent_start, ring)
    connected_at = bursts[-1].end if bursts else 0.0
    delay_source = "audio" if bursts else "recording-start"
    voiced = [
        v.start
        for v in activity
        if v.speaker == "agent" and v.start >= connected_at and v.end - v.start >= first_word_min_s
    ]
    first_word = min([*voiced, *([agent_start] if agent_start is not None else [])], default=None)
    delay = round(max(0.0, first_word - connected_at), 3) if first_word is not None else None
    if ring_seconds is not None:
        return rings_from_metadata(ring_seconds, ring), "metadata", connected_at, delay, delay_source
    return len(bursts), "audio", connected_at, delay, delay_source


def hangup(
    meta_hangup_by: str | None, utterances: Sequence[Utterance], duration_s: float, config: MetricsConfig
) -> tuple[str | None, str | None]:
    if meta_hangup_by:
        return meta_hangup_by, "metadata"
    agent_end = max((u.end for u in utterances if u.speaker == "agent"), default=None)
    if agent_end is None:
        return None, None
    customer_after = any(u.speaker == "customer" and u.end > agent_end for u in utterances)
    if not customer_after and duration_s - agent_end < config.hangup_wait_s:
        return "agent", "audio"
    return "customer", "audio"


def nuisance_over_max(call_type: str | None, duration_s: float, config: MetricsConfig) -> bool | None:
    if call_type is None:
        return None
    return call_type == config.nuisance_call_type and duration_s > config.nuisance_max_s
