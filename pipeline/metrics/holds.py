"""Holds (HOLD-ASK, HOLD-CHECKIN, HOLD-MAX, HOLD-THANK) and unannounced dead air.

A hold is a stretch of at least `hold_min_s` (10 s) in which the agent does not address the
customer, whether the line carries silence or music. Where it ends is decided by what happens
after the agent speaks, not by the words alone: agents on long holds say 不好意思让您久等了，
我还在为您查询 and go back to searching.

1. Agent turns are the agent's utterances, joined when less than `hold_reply_window_s` apart, or
   less than `checkin_quiet_s` apart with no customer speech and no hold music between them: one
   sentence said with pauses (不好意思，…系统有点慢，…请您再等一下) is one contact, not a return
   followed by a new hold; music in between means the agent went away again.
2. After each turn the agent is away until the next one (after the last turn, to the end of the
   recording: a hold that ends the call). Away time starts where the agent's voice in the turn
   ends (voice activity, not counting what hold music covers; the utterance's end when none is
   known; then on through a short stretch of the agent's voice right after it that the
   recogniser wrote nothing for, a 好的), once the customer has finished replying — customer
   speech (recognised or voiced) that begins within `hold_reply_window_s` of the agent's last
   words, or of the end of such a reply, pushes the start back (so 好的 after 请您稍等 is not part
   of the hold, and a customer who talks at length is being listened to, not kept waiting).
3. A contact — an agent turn no longer than `checkin_max_s` (12 s) after at least
   `checkin_quiet_s` (4 s) of away time, or 3 s of it over hold music — is a check-in, part of
   the hold around it, when the waiting goes on after it:
   - the customer does not take the floor: their speech from the start of the turn to the next
     away time, outside the agent's words, is at most `checkin_reply_max_s` (2 s: 好的, 嗯,
     行我再等等 are back-channels, not a resumed conversation) — unless the turn, outside its
     questions and apart from any thanks for the waiting, says as written that the work goes on or
     asks to wait more (我还在帮您查, 您再等我一下), or the customer's own words agree to wait on
     (`phrases.customer_waits`: 你慢慢查, 我不着急): then the customer answered a check-in (没事没事，
     你慢慢查，我不着急的), at any length, and only what follows decides;
   - when the agent speaks again soon after (the customer asked 还要多久啊 and the agent
     answered), the waiting went on if the customer said no more than that (or answered a
     check-in's words) and the agent's next turn is itself a check-in by these tests;
   - the agent then stays away at least `checkin_away_s` (8 s), or at least 4 s when the turn
     says a check-in phrase (scorecard `phrases.hold_checkin`: 还在为您查询, 请您再稍等 …, or asks
     again to wait in any words of `phrases.hold_ask`: 请您先别挂机), hold
     music covers at least `music_share` of that away time (a check-in over music), or the
     agent's next turn is a check-in again;
   - after the last turn, where the silence runs to the end of the recording, it lasts at least
     `hold_min_s` and the turn is not a goodbye (`phrases.goodbye`): else the call ended.
   Otherwise the conversation has resumed — the agent carried on with the answer, or the
   customer replied — and the turn is the agent's return, whatever words it contains.
4. Away times joined through check-ins are a hold if they span at least `hold_min_s`. Silence
   after the agent's goodbye is the end of the call, not a hold.

For each hold: asked (a `phrases.hold_ask` phrase — 请您稍等 … — in the agent's words ending within
`hold_ask_window_s` before the agent stopped talking: a customer's reply does not count), check-ins
and the longest stretch without the agent's voice,
thanked (a `phrases.hold_thanks` phrase — 让您久等了 … — in the agent's words starting within
`hold_thank_window_s` after its real end, the return), music (music events cover at least
`music_share` of it), lookup (the agent's words before it, asked or not, mention
`phrases.hold_lookup`: 查询/核实/我看一下 …, the handbook's 60 s limit applies), ends_call.
Phrases are the scorecard's, matched by pipeline.rules.matching.

Dead air: both parties silent for at least `dead_air_min_s` after the call is connected, not
covered by music and not inside a hold the agent announced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.config import MetricsConfig
from pipeline.metrics.intervals import Span, gaps, intersect, total, union
from pipeline.records import AudioEvent, Hold, SpeechTurn, Stretch, Utterance
from pipeline.rules.matching import ServicePhrases, best_match


@dataclass(frozen=True)
class _Turn:
    start: float
    end: float
    text: str
    spoken: tuple[Span, ...]  # the agent's utterances in it


@dataclass(frozen=True)
class _Call:
    """What the hold decisions look at, gathered once."""

    turns: list[_Turn]
    away: list[Span]  # after each turn, until the next (or the end of the recording)
    customer: list[Span]
    music: list[Span]
    customer_said: list[tuple[float, float, str]]  # the customer's recognised utterances


def find_holds(
    utterances: Sequence[Utterance],
    voice_activity: Sequence[SpeechTurn],
    events: Sequence[AudioEvent],
    duration_s: float,
    config: MetricsConfig,
    phrases: ServicePhrases,
) -> list[Hold]:
    # The customer's speech: what was recognised, and what was voiced (a short 好的 the recogniser dropped).
    customer = union(
        [(u.start, u.end) for u in utterances if u.speaker == "customer"]
        + [(v.start, v.end) for v in voice_activity if v.speaker == "customer"]
    )
    music = union((e.start, e.end) for e in events if e.kind == "music")
    turns = _agent_turns(utterances, customer, music, config)
    if not turns:
        return []
    agent_voice = [(v.start, v.end) for v in voice_activity if v.speaker == "agent"]
    away: list[Span] = []
    spoke: list[float] = []  # where the agent stopped talking, before any reply of the customer's
    for i, turn in enumerate(turns):
        until = turns[i + 1].start if i + 1 < len(turns) else duration_s
        spoke.append(_voiced_end(turn, agent_voice, music, until))
        away.append((_after_reply(spoke[-1], until, customer, config.hold_reply_window_s), until))
    said = sorted((u.start, u.end, u.text) for u in utterances if u.speaker == "customer")
    call = _Call(turns, away, customer, music, said)

    holds: list[Hold] = []
    i = 0
    while i < len(turns):
        start, end = away[i]
        checkins: list[_Turn] = []
        j = i
        linked = False  # turn j was a check-in through the exchange that followed it (step 3)
        while (
            j + 1 < len(turns)
            and (linked or _quiet(away[j], music, config))
            and _is_checkin(j + 1, call, config, phrases)
        ):
            j += 1
            checkins.append(turns[j])
            end = away[j][1]
            linked = not _quiet(away[j], music, config)
        goodbye_last = j + 1 == len(turns) and phrases.find(turns[j].text, phrases.goodbye) is not None
        if end - start >= config.hold_min_s and not goodbye_last:
            after = turns[j + 1] if j + 1 < len(turns) else None
            holds.append(
                _describe(
                    start, spoke[i], end, after, checkins, utterances, call, duration_s, config, phrases
                )
            )
        i = j + 1
    return holds


# How many check-ins in a row may each be followed by a short exchange (还要多久啊 — 马上就好).
MAX_LINKED_CHECKINS = 8


def _is_checkin(k: int, call: _Call, config: MetricsConfig, phrases: ServicePhrases, linked: int = 0) -> bool:
    """Turn k is a word to the waiting customer after which the waiting goes on (step 3)."""
    turn, (away_start, away_end) = call.turns[k], call.away[k]
    if turn.end - turn.start > config.checkin_max_s:
        return False  # the agent carries on: the answer, not a word in passing
    customer_speech = total(intersect(call.customer, gaps(turn.spoken, turn.start, away_start)))
    if customer_speech > config.checkin_reply_max_s and not (
        _says_waiting_goes_on(turn.text, phrases) or _customer_waits(call, turn.start, away_start, phrases)
    ):
        # the customer took the floor: the conversation has resumed. Not after a check-in's words:
        # 没事没事，你慢慢查，我不着急的 answers 我还在帮您查, and what follows (the agent away
        # again, or checking in again) decides whether the waiting went on (a tuning hold of 150 s
        # was cut at every such answer, and the pieces charged HOLD-ASK)
        return False
    away_s = away_end - away_start
    if not _quiet((away_start, away_end), call.music, config):
        # The agent spoke again soon after. If the customer only put in a word (还要多久啊, 好的)
        # and the agent's answer is itself a check-in (抱歉，还需要一点时间，请您先别挂机, and away
        # again), the waiting went on through the exchange; otherwise the conversation resumed.
        return _next_is_checkin(k, call, config, phrases, linked)
    if k + 1 == len(call.turns):
        # silence until the recording ends: more waiting only if it is a hold in its own right and
        # the agent did not say goodbye, else the call ended (the customer hung up after
        # 请问还有其他问题吗). Only here does a goodbye count: where the agent speaks again, the
        # call went on (您还在线吗 written 您还在见吗 had ended a 150 s hold at its fourth check-in)
        return away_s >= config.hold_min_s and phrases.find(turn.text, phrases.goodbye) is None
    if away_s >= config.checkin_away_s:
        return True
    music = total(intersect(call.music, [(away_start, away_end)]))
    if music >= config.music_share * away_s or _says_checkin(turn.text, phrases):
        return True
    # 4-8 s of dead air with no check-in words heard (请您先别挂机 written 请您先点挂机): more
    # waiting if the agent's next turn is a check-in again
    return _next_is_checkin(k, call, config, phrases, linked)


def _says_checkin(text: str, phrases: ServicePhrases) -> bool:
    """The words of a check-in: the work goes on (还在为您查询), or the customer is asked again to wait
    — in any words the scorecard takes as an ask (抱歉，还需要一点时间，请您先别挂机: asking to wait
    in the middle of a hold is a check-in, not a return)."""
    return (
        phrases.find(text, phrases.hold_checkin) is not None
        or phrases.find(text, phrases.hold_ask) is not None
    )


# A clause ends at punctuation or after 吗; one that asks the customer something (您还在线吗？) says
# nothing about the work going on, whatever words it holds.
_CLAUSE = re.compile(r"[^，,。.？?！!；;吗]+(?:[？?]|吗)?")


def _says_waiting_goes_on(text: str, phrases: ServicePhrases) -> bool:
    """Check-in words said exactly as written, outside a question and apart from any thanks for the
    waiting: the work goes on (我还在帮您查) or the customer is asked to wait more. A return thanks
    too (感谢您的耐心等待，积分可以…), so 耐心 or 久等 alone do not tell a check-in; a return may
    open with 您还在线吗; and where a customer's long answer is let pass, a homophone or a near sound
    is not enough (申请您在手机上 is no 请您再)."""
    for clause in _CLAUSE.findall(text):
        if clause.rstrip().endswith(("吗", "？", "?")):
            continue
        for piece in phrases.outside(clause, phrases.hold_thanks):
            for patterns in (phrases.hold_checkin, phrases.hold_ask):
                found = best_match(piece, patterns, phrases.costs)
                if found is not None and found[1].cost == 0:
                    return True
    return False


def _customer_waits(call: _Call, start: float, end: float, phrases: ServicePhrases) -> bool:
    """The customer, speaking between `start` and `end`, agrees to wait on (`phrases.customer_waits`:
    你慢慢查，我不着急): however long they talk, they have not taken the call back."""
    said = "，".join(text for a, b, text in call.customer_said if a < end and b > start)
    return bool(said) and phrases.find(said, phrases.customer_waits) is not None


def _next_is_checkin(
    k: int, call: _Call, config: MetricsConfig, phrases: ServicePhrases, linked: int
) -> bool:
    """The waiting goes on after turn k because the agent's next turn, with the customer saying no
    more than a word in between, is itself a check-in."""
    if k + 1 == len(call.turns) or linked >= MAX_LINKED_CHECKINS:
        return False
    between = total(
        intersect(call.customer, gaps(call.turns[k].spoken, call.turns[k].start, call.turns[k + 1].start))
    )
    answered = (
        between <= config.checkin_reply_max_s
        or _says_waiting_goes_on(call.turns[k].text, phrases)
        or _customer_waits(call, call.turns[k].start, call.turns[k + 1].start, phrases)
    )
    return answered and _is_checkin(k + 1, call, config, phrases, linked + 1)


# Hold music between two of the agent's sentences this far apart means the agent went away again in
# between, even if under `checkin_quiet_s` (two check-ins 3.9 s apart over music were one 22 s
# "turn", too long for a check-in, and cut a 90 s hold in two). Shorter gaps stay pauses: the music
# detector's stretches run on under a check-in, and whisper loses words in its middle (正在为您核实，
# 马上就好 heard as 再为您 … 商就好, 2.9 s apart, is one check-in).
MUSIC_QUIET_MIN_S = 3.0


def _quiet(span: Span, music: Sequence[Span], config: MetricsConfig) -> bool:
    """The agent was away for `span`: at least `checkin_quiet_s`, or hold music played over most of it."""
    length = span[1] - span[0]
    if length >= config.checkin_quiet_s:
        return True
    return length >= MUSIC_QUIET_MIN_S and total(intersect(music, [span])) >= config.music_share * length


def _agent_turns(
    utterances: Sequence[Utterance], customer: Sequence[Span], music: Sequence[Span], config: MetricsConfig
) -> list[_Turn]:
    """Step 1: utterances less than `hold_reply_window_s` apart, or less than `checkin_quiet_s`
    apart without the customer speaking or hold music playing in between, are one turn."""
    turns: list[_Turn] = []
    for u in sorted((u for u in utterances if u.speaker == "agent"), key=lambda u: u.start):
        gap = u.start - turns[-1].end if turns else None
        between = (turns[-1].end, u.start) if turns else (0.0, 0.0)
        if gap is not None and (
            gap < config.hold_reply_window_s
            or (not _quiet(between, music, config) and not intersect(customer, [between]))
        ):
            last = turns[-1]
            turns[-1] = _Turn(
                last.start, max(last.end, u.end), last.text + u.text, (*last.spoken, (u.start, u.end))
            )
        else:
            turns.append(_Turn(u.start, u.end, u.text, ((u.start, u.end),)))
    return turns


# A stretch of the agent's voice that whisper wrote nothing for, this short and starting this soon
# after the turn's last words, is still the agent speaking (a short 好的 before going away).
DROPPED_WORDS_MAX_S = 1.5
DROPPED_WORDS_GAP_S = 1.0


def _voiced_end(turn: _Turn, agent_voice: Sequence[Span], music: Sequence[Span], until: float) -> float:
    """Where the agent's voice in the turn ends: a recognised utterance can run on into the hold
    music that follows it (这个嘛 stretched over the music's first second). The turn's end when
    no voice outside music is known. Then on through short voiced stretches after it, before the
    agent's next turn (`until`), that the recogniser dropped, as the customer's voiced speech
    counts (a tuning hold started at the agent's last sentence, 0.9 s before a 好的 whisper wrote
    nothing for: 1.6 s early)."""
    inside = [
        (max(a, turn.start), min(b, turn.end)) for a, b in agent_voice if b > turn.start and a < turn.end
    ]
    voiced = [part for a, b in inside for part in gaps(music, a, b)]
    end = max((b for _, b in voiced), default=turn.end)
    after = sorted(part for a, b in agent_voice if turn.end <= a and b <= until for part in gaps(music, a, b))
    for start, stop in after:
        if start > end + DROPPED_WORDS_GAP_S or stop - start > DROPPED_WORDS_MAX_S:
            break
        end = max(end, stop)
    return end


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
    agent_stopped: float,
    end: float,
    after: _Turn | None,
    checkins: Sequence[_Turn],
    utterances: Sequence[Utterance],
    call: _Call,
    duration_s: float,
    config: MetricsConfig,
    phrases: ServicePhrases,
) -> Hold:
    # the ask is what the agent said before going away, counted back from where the agent stopped
    # talking (never after the hold's start: the customer's reply only pushes that later), so a
    # customer who answers 请您稍等 at length does not push the ask out of the window
    ask_text = " ".join(
        u.text
        for u in utterances
        if u.speaker == "agent" and agent_stopped - config.hold_ask_window_s <= u.end <= start + 0.5
    )
    asked = phrases.find(ask_text, phrases.hold_ask) is not None
    # a look-up is a look-up whether or not the agent asked first (我看一下 and away: the handbook's
    # 60 s still applies, and HOLD-ASK charges the missing ask separately)
    lookup = phrases.find(ask_text, phrases.hold_lookup) is not None
    thank_text = (
        " ".join(
            u.text
            for u in utterances
            if u.speaker == "agent" and end - 0.5 <= u.start <= end + config.hold_thank_window_s
        )
        if after is not None
        else ""
    )
    thanked = phrases.find(thank_text, phrases.hold_thanks) is not None
    contacts = [start, *(t for c in checkins for t in (c.start, c.end)), end]
    longest_quiet = max(contacts[k + 1] - contacts[k] for k in range(0, len(contacts), 2))
    music = total(intersect(call.music, [(start, end)]))
    return Hold(
        start=round(start, 3),
        end=round(end, 3),
        asked=asked,
        ask_text=ask_text or None,
        checkins=len(checkins),
        checkin_times=tuple(round(c.start, 3) for c in checkins),
        max_checkin_gap_s=round(longest_quiet, 3),
        thanked=thanked,
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
