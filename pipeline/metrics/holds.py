"""Holds (HOLD-ASK, HOLD-CHECKIN, HOLD-MAX, HOLD-THANK) and unannounced dead air.

A hold is a stretch of at least `hold_min_s` (10 s) in which the agent does not address the
customer, whether the line carries silence or music:

1. Agent segments are the agent's utterances, joined when less than `hold_reply_window_s` apart.
2. Between two agent segments (or after the last one, a hold that ends the call) the agent is
   away; the away time starts once the customer has finished replying — customer utterances
   that begin within `hold_reply_window_s` of the agent's last words, or of the end of such a
   reply, push the start back (so 好的 after 请您稍等 is not part of the hold, and a customer
   who talks at length is being listened to, not kept waiting).
3. An agent segment no longer than `checkin_max_s` (12 s), with at least `checkin_quiet_s` (4 s)
   of away time before it, is a check-in — part of the hold around it — when the agent then
   stays away at least `checkin_away_s` (8 s), or stays away 4 s and the segment says a
   check-in phrase (还在为您查询, 请您再稍等, 马上就好 …); words of return (让您久等了,
   感谢您的耐心等待 …) make it the agent's return, which ends the hold.
4. Away times joined through check-ins form a hold if they span at least `hold_min_s`. Silence
   after the agent's goodbye (再见, 感谢您的来电 …) is the end of the call, not a hold.

For each hold: asked (an ask phrase — 请您稍等, 我帮您查询一下 … — in the agent's words ending
within `hold_ask_window_s` before it), check-ins and the longest stretch without the agent's
voice, thanked (a thank phrase — 让您久等了, 感谢您的耐心等待 … — within `hold_thank_window_s`
after it), music (music events cover at least `music_share` of it), lookup (the ask mentions
查询/核实/确认: the handbook's 60 s limit applies), ends_call.

Dead air: both parties silent for at least `dead_air_min_s` after the call is connected, not
covered by music and not inside a hold the agent announced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.config import MetricsConfig
from pipeline.metrics.intervals import Span, gaps, intersect, total, union
from pipeline.metrics.phrases import find_phrase
from pipeline.records import AudioEvent, Hold, SpeechTurn, Stretch, Utterance


@dataclass(frozen=True)
class _Segment:
    start: float
    end: float
    text: str


def find_holds(
    utterances: Sequence[Utterance], events: Sequence[AudioEvent], duration_s: float, config: MetricsConfig
) -> list[Hold]:
    agent = _agent_segments(utterances, config.hold_reply_window_s)
    if not agent:
        return []
    customer = sorted((u.start, u.end) for u in utterances if u.speaker == "customer")
    # Away time after each agent segment (the last one's runs to the end of the recording).
    away: list[Span] = []
    for i, segment in enumerate(agent):
        until = agent[i + 1].start if i + 1 < len(agent) else duration_s
        start = _after_reply(segment.end, until, customer, config.hold_reply_window_s)
        away.append((start, until))

    holds: list[Hold] = []
    i = 0
    while i < len(agent):
        start, end = away[i]
        checkins: list[_Segment] = []
        j = i
        # Join through check-ins: a short agent segment between two quiet stretches.
        while (
            j + 1 < len(agent)
            and away[j][1] - away[j][0] >= config.checkin_quiet_s
            and _is_checkin(agent[j + 1], away[j + 1][1] - away[j + 1][0], config)
        ):
            checkins.append(agent[j + 1])
            j += 1
            end = away[j][1]
        closing_last = j + 1 == len(agent) and find_phrase(
            agent[j].text, config.closing_phrases, config.phrase_max_errors_per_4_chars
        )
        if end - start >= config.hold_min_s and not closing_last:
            holds.append(
                _describe(
                    start,
                    end,
                    agent[i],
                    agent[j + 1] if j + 1 < len(agent) else None,
                    checkins,
                    utterances,
                    events,
                    duration_s,
                    config,
                )
            )
        i = j + 1
    return holds


def _is_checkin(segment: _Segment, away_after_s: float, config: MetricsConfig) -> bool:
    """A short word to the waiting customer, after which the agent goes away again."""
    if segment.end - segment.start > config.checkin_max_s or away_after_s < config.checkin_quiet_s:
        return False
    if find_phrase(segment.text, config.hold_return_phrases, 0):
        return False  # 让您久等了 …: the agent is back
    return away_after_s >= config.checkin_away_s or bool(
        find_phrase(segment.text, config.checkin_phrases, config.phrase_max_errors_per_4_chars)
    )


def _agent_segments(utterances: Sequence[Utterance], join_s: float) -> list[_Segment]:
    segments: list[_Segment] = []
    for u in sorted((u for u in utterances if u.speaker == "agent"), key=lambda u: u.start):
        if segments and u.start - segments[-1].end < join_s:
            last = segments[-1]
            segments[-1] = _Segment(last.start, max(last.end, u.end), last.text + u.text)
        else:
            segments.append(_Segment(u.start, u.end, u.text))
    return segments


def _after_reply(start: float, until: float, customer: Sequence[Span], window_s: float) -> float:
    """Push the start of away time past the customer's reply to the agent."""
    for a, b in customer:
        if a >= until:
            break
        if b > start and a <= start + window_s:
            start = max(start, min(b, until))
    return start


def _describe(
    start: float,
    end: float,
    before: _Segment,
    after: _Segment | None,
    checkins: Sequence[_Segment],
    utterances: Sequence[Utterance],
    events: Sequence[AudioEvent],
    duration_s: float,
    config: MetricsConfig,
) -> Hold:
    ask_text = " ".join(
        u.text
        for u in utterances
        if u.speaker == "agent" and start - config.hold_ask_window_s <= u.end <= start + 0.5
    )
    asked = find_phrase(ask_text, config.hold_ask_phrases, config.phrase_max_errors_per_4_chars)
    lookup = asked is not None and find_phrase(ask_text, config.hold_lookup_phrases, 0) is not None
    thank_text = (
        " ".join(
            u.text
            for u in utterances
            if u.speaker == "agent" and end - 0.5 <= u.start <= end + config.hold_thank_window_s
        )
        if after is not None
        else ""
    )
    thanked = find_phrase(thank_text, config.hold_thank_phrases, config.phrase_max_errors_per_4_chars)
    contacts = [start, *(t for c in checkins for t in (c.start, c.end)), end]
    longest_quiet = max(contacts[k + 1] - contacts[k] for k in range(0, len(contacts), 2))
    music = total(intersect([(e.start, e.end) for e in events if e.kind == "music"], [(start, end)]))
    return Hold(
        start=round(start, 3),
        end=round(end, 3),
        asked=asked is not None,
        ask_text=ask_text or None,
        checkins=len(checkins),
        checkin_times=tuple(round(c.start, 3) for c in checkins),
        max_checkin_gap_s=round(longest_quiet, 3),
        thanked=thanked is not None,
        thank_text=thank_text or None,
        music=music >= config.music_share * (end - start),
        ends_call=after is None or end >= duration_s - 1e-6,
        lookup=lookup,
    )


def find_dead_air(
    activity: Sequence[SpeechTurn],
    events: Sequence[AudioEvent],
    holds: Sequence[Hold],
    connected_at: float,
    last_speech_end: float,
    config: MetricsConfig,
) -> list[Stretch]:
    """Both parties silent for at least `dead_air_min_s`, no music, not in an announced hold."""
    sound = [(v.start, v.end) for v in activity]
    sound += [(e.start, e.end) for e in events if e.kind == "music"]
    sound += [(h.start, h.end) for h in holds if h.asked]
    quiet = gaps(union(sound), connected_at, last_speech_end)
    return [Stretch(round(a, 3), round(b, 3)) for a, b in quiet if b - a >= config.dead_air_min_s]
