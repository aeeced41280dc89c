"""Holds and dead air (docs/metrics.md, "Holds") on hand-built timelines.

Where a hold ends is decided by what follows an agent's words, not by the words: the tests put the
same words in different surroundings and expect different holds.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from pipeline.config import MetricsConfig, Settings
from pipeline.metrics import compute_metrics
from pipeline.metrics.holds import find_dead_air, find_holds
from pipeline.records import AudioEvent, CallMeta, CharTiming, Finding, Hold, SpeechTurn, Utterance
from pipeline.rules import DEFAULT_SCORECARD, load_scorecard, score_call

CONFIG = MetricsConfig()
CARD = load_scorecard(DEFAULT_SCORECARD)
PHRASES = CARD.phrases
ASK = "我帮您查询一下，请您稍等可以吗？"
APOLOGY = "不好意思让您久等了，我还在为您查询"  # an apologetic check-in that carries return words


def utt(speaker: str, start: float, end: float, text: str) -> Utterance:
    """An utterance whose spoken characters are spread evenly over its time."""
    spoken = [c for c in text if c.isalnum()]
    step = (end - start) / max(len(spoken), 1)
    chars = tuple(CharTiming(c, start + i * step, start + (i + 1) * step, 0.9) for i, c in enumerate(spoken))
    return Utterance(speaker, start, end, text, chars, 0.9)


def holds(
    utterances: list[Utterance], duration_s: float, events: list[AudioEvent] | None = None
) -> list[Hold]:
    return find_holds(utterances, [], events or [], duration_s, CONFIG, PHRASES)


def verdicts(utterances: list[Utterance], duration_s: float) -> dict[str, bool]:
    """The default scorecard's hold rules on the call, through the metrics stage."""
    activity = [SpeechTurn(u.speaker, u.start, u.end) for u in utterances]
    metrics = compute_metrics(utterances, activity, [], CallMeta("c"), duration_s, Settings(), PHRASES)
    score = score_call(utterances, metrics, CallMeta("c"), CARD)
    return {f.rule_id: f.passed for f in score.findings if f.rule_id.startswith("HOLD-")}


# ---- the 122 s hold with two apologetic check-ins -----------------------------------------------


def _long_hold() -> list[Utterance]:
    return [
        utt("agent", 10.0, 14.0, ASK),
        utt("customer", 14.5, 15.0, "好的"),
        utt("agent", 25.0, 29.0, APOLOGY),  # 10 s after the hold began
        utt("customer", 29.3, 29.8, "嗯好"),  # a back-channel, not a resumed conversation
        utt("agent", 40.0, 44.0, "感谢您的耐心，我还在帮您核实"),
        utt("agent", 137.0, 142.0, "让您久等了，查到了，您的订单明天发货"),
        utt("customer", 142.5, 143.5, "好的谢谢"),
        utt("agent", 144.0, 146.0, "请问还有其他问题吗"),
    ]


def test_apologetic_checkins_do_not_split_a_long_hold() -> None:
    (hold,) = holds(_long_hold(), 150.0)
    assert (hold.start, hold.end) == (15.0, 137.0) and hold.duration == pytest.approx(122.0)
    assert hold.asked and hold.lookup and hold.thanked and not hold.ends_call
    assert hold.checkins == 2 and hold.checkin_times == (25.0, 40.0)
    assert hold.max_checkin_gap_s == pytest.approx(93.0)  # 44.0 to 137.0
    assert hold.thank_text is not None and "查到了" in hold.thank_text  # the real return, not a check-in


def test_the_long_hold_is_asked_once_and_too_long() -> None:
    assert verdicts(_long_hold(), 150.0) == {
        "HOLD-ASK": True,  # asked before the hold; the check-ins start no new hold to ask for
        "HOLD-CHECKIN": False,  # 93 s without a word to the customer
        "HOLD-MAX": False,  # 122 s, over the limit (a look-up: 60 s)
        "HOLD-THANK": True,
    }


# ---- the same words, different surroundings -----------------------------------------------------


def _contact_then(after: list[Utterance]) -> list[Utterance]:
    return [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 20.0, 24.0, APOLOGY + "，您的订单在仓库"),
        *after,
        utt("customer", 45.5, 46.0, "好"),
        utt("agent", 46.5, 49.0, "请问还有其他问题吗"),
    ]


@pytest.mark.parametrize(
    ("case", "after", "end", "checkins"),
    [
        # waiting goes on (a back-channel from the customer, the agent away 16 s): a check-in
        (
            "waiting",
            [utt("customer", 24.4, 25.0, "好的"), utt("agent", 41.0, 45.0, "查到了，明天发货")],
            41.0,
            1,
        ),
        # the customer answers the check-in's words at length and the agent stays away 9 s: the
        # waiting went on (after 我还在为您查询 what follows decides, not how long the customer spoke)
        (
            "customer replies",
            [
                utt("customer", 24.4, 28.0, "那能不能帮我改到后天再送过来"),
                utt("agent", 37.0, 45.0, "可以的，已经帮您改好了"),
            ],
            37.0,
            1,
        ),
        # the agent carries on with the answer: resumed at 20.0
        ("agent carries on", [utt("agent", 25.0, 45.0, "明天上午从仓库发出，后天就能送到您家里")], 20.0, 0),
    ],
)
def test_what_follows_decides_whether_the_agent_returned(
    case: str, after: list[Utterance], end: float, checkins: int
) -> None:
    (hold,) = holds(_contact_then(after), 50.0)
    assert (hold.start, hold.end, hold.checkins) == (5.0, end, checkins), case


def test_a_return_that_carries_the_answer_without_thanks() -> None:
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 30.0, 35.0, "查到了，您的订单明天发货"),
        utt("customer", 35.5, 36.0, "好"),
        utt("agent", 36.5, 39.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 45.0)
    assert (hold.start, hold.end) == (5.0, 30.0) and hold.asked and not hold.thanked
    assert verdicts(utterances, 45.0)["HOLD-THANK"] is False


def test_a_checkin_spoken_over_music_keeps_the_hold_when_the_music_goes_on() -> None:
    # a garbled word over the music, the agent away only 6 s after it: too short on its own, but
    # the hold music playing again says the customer is still waiting
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 20.0, 22.0, "嗯那个您"),
        utt("agent", 28.0, 32.0, "让您久等了，您的订单明天发货"),
        utt("customer", 32.5, 33.0, "好"),
        utt("agent", 33.5, 36.0, "请问还有其他问题吗"),
    ]
    music = [AudioEvent("music", 5.5, 19.5, "agent"), AudioEvent("music", 22.5, 27.5, "agent")]
    (hold,) = holds(utterances, 40.0, music)
    assert (hold.start, hold.end, hold.checkins, hold.music) == (5.0, 28.0, 1, True) and hold.thanked
    (silent,) = holds(utterances, 40.0, music[:1])  # no music after it: the agent came back at 20.0
    assert (silent.start, silent.end, silent.checkins) == (5.0, 20.0, 0)


def test_a_checkin_cut_into_pieces_by_pauses_is_one_contact() -> None:
    # the recogniser cut 不好意思，系统有点慢，请您再等一下 into pieces 2.3 s apart; the waiting goes on
    # after it, so the hold does not end at its first piece and start again after its last
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 20.0, 20.5, "不好意思"),
        utt("agent", 22.8, 25.0, "系统有点慢"),
        utt("agent", 26.0, 28.0, "请您再等一下"),
        utt("agent", 45.0, 49.0, "让您久等了，您的订单明天发货"),
        utt("customer", 49.5, 50.0, "好"),
        utt("agent", 50.5, 52.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 53.0)
    assert (hold.start, hold.end, hold.checkins) == (5.0, 45.0, 1) and hold.thanked
    # the same pause with the customer asking in it (more than a word in passing), answered with
    # 系统有点慢，请您再等一下 and 17 s away: the waiting went on, through two contacts
    replied = [*utterances[:3], utt("customer", 20.6, 22.7, "那我的订单到底什么时候到"), *utterances[3:]]
    (hold,) = holds(replied, 53.0)
    assert (hold.start, hold.end, hold.checkins) == (5.0, 45.0, 2)


def test_a_return_answered_at_length_then_quiet_ends_the_hold() -> None:
    # the agent comes back with the answer (its words say nothing of more waiting: 您还在线吗 asks,
    # 让您久等了 thanks), the customer talks at length, the agent is quiet 9 s: the hold ended at 20.0
    for came_back in (
        "让您久等了，您的订单在仓库，明天发货",
        "您好，您还在线吗？查到了，您的订单明天发货",
        "您好您还在线吗查到了您的订单明天发货",  # no punctuation: the question ends at 吗
    ):
        utterances = [
            utt("agent", 0.0, 4.0, ASK),
            utt("customer", 4.5, 5.0, "好的"),
            utt("agent", 20.0, 24.0, came_back),
            utt("customer", 24.4, 28.0, "那能不能帮我改到后天再送过来"),
            utt("agent", 37.0, 45.0, "可以的，已经帮您改好了"),
            utt("customer", 45.5, 46.0, "好"),
            utt("agent", 46.5, 49.0, "请问还有其他问题吗"),
        ]
        (hold,) = holds(utterances, 50.0)
        assert (hold.start, hold.end, hold.checkins) == (5.0, 20.0, 0), came_back


def test_a_customer_asking_how_long_during_a_hold_does_not_end_it() -> None:
    # 还要多久啊 after a check-in, the agent answers with another check-in and goes away again:
    # the waiting went on through the exchange (a tuning hold of 91 s had ended at the question)
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 18.0, 24.0, "让您久等了，还在查询中"),
        utt("customer", 24.5, 26.0, "还要多久啊"),
        utt("agent", 29.0, 35.0, "抱歉，还需要一点时间，请您先别挂机"),
        utt("agent", 50.0, 55.0, "让您久等了，查到了，您的订单明天发货"),
        utt("customer", 55.5, 56.0, "好"),
        utt("agent", 56.5, 58.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 60.0)
    assert (hold.start, hold.end, hold.checkins) == (5.0, 50.0, 2) and hold.thanked
    # the same question answered with the answer itself, and the customer replying: the agent
    # came back at 18.0
    answered = [
        *utterances[:4],
        utt("agent", 29.0, 36.0, "马上就好，您的订单明天下午发货"),
        utt("customer", 36.5, 39.0, "好的明白了谢谢你啊"),
        utt("agent", 39.5, 41.0, "请问还有其他问题吗"),
    ]
    assert [(h.start, h.end) for h in holds(answered, 45.0)] == [(5.0, 18.0)]


def test_two_checkins_close_together_over_music_are_two_contacts() -> None:
    # check-ins 3.4 s apart with the hold music back in between: joined they were one 21 s "turn",
    # too long for a check-in, and the hold ended at the first of them
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 30.0, 39.0, "不好意思，系统有点慢，请您再等一下"),
        utt("agent", 42.4, 51.0, "不好意思，系统有点慢，请您再等一下"),
        utt("agent", 70.0, 74.0, "让您久等了，您的订单明天发货"),
        utt("customer", 74.5, 75.0, "好"),
        utt("agent", 75.5, 78.0, "请问还有其他问题吗"),
    ]
    music = [AudioEvent("music", 5.5, 29.8, "agent"), AudioEvent("music", 39.2, 42.2, "agent")]
    music.append(AudioEvent("music", 51.2, 69.8, "agent"))
    (hold,) = holds(utterances, 80.0, music)
    assert (hold.start, hold.end, hold.checkins) == (5.0, 70.0, 2) and hold.thanked
    # the same 3.4 s without music is a pause inside one long turn: the agent came back at 30.0
    first = holds(utterances, 80.0, [music[0]])[0]
    assert (first.start, first.end) == (5.0, 30.0)


def test_a_short_quiet_after_unheard_checkin_words_counts_when_another_checkin_follows() -> None:
    # 请您先别挂机 heard as 请您先点挂机: no check-in words, and only 5 s away after it; but the
    # agent's next turn is a check-in again, so the waiting went on
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 15.0, 21.0, "抱歉，一点时间，请您先点挂机"),
        utt("agent", 26.0, 30.0, "让您久等了，还在查询中"),
        utt("agent", 45.0, 50.0, "让您久等了，查到了，您的订单明天发货"),
        utt("customer", 50.5, 51.0, "好"),
        utt("agent", 51.5, 53.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 55.0)
    assert (hold.start, hold.end, hold.checkins) == (5.0, 45.0, 2)
    # followed by the answer instead, the same words were the agent's return
    answered = [
        *utterances[:3],
        utt("agent", 26.0, 31.0, "您的订单明天发货"),
        utt("customer", 31.5, 35.0, "好的那我明天在家等着"),
        utt("agent", 35.5, 37.0, "请问还有其他问题吗"),
    ]
    assert [(h.start, h.end) for h in holds(answered, 40.0)] == [(5.0, 15.0)]


def test_a_hold_that_ends_the_call_after_an_apologetic_checkin() -> None:
    utterances = [
        utt("agent", 0.0, 3.0, "请您稍等，我帮您查一下"),
        utt("customer", 3.2, 3.6, "好"),
        utt("agent", 20.0, 24.0, APOLOGY),
        utt("customer", 24.5, 25.0, "好的"),
    ]
    (hold,) = holds(utterances, 60.0)
    assert (hold.start, hold.end, hold.checkins) == (3.6, 60.0, 1) and hold.ends_call and not hold.thanked


def test_customer_backchannels_inside_a_checkin_do_not_end_the_hold() -> None:
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 18.0, 20.0, "还在为您查询"),
        utt("customer", 20.2, 20.7, "嗯"),  # between the two halves of the check-in
        utt("agent", 21.5, 23.5, "请您再稍等一下"),
        utt("customer", 23.8, 24.6, "好的好的"),
        utt("agent", 36.0, 39.0, "感谢您的耐心等待，您的订单明天发货"),
        utt("customer", 39.5, 40.0, "好"),
        utt("agent", 40.5, 43.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 45.0)
    assert (hold.start, hold.end, hold.checkins, hold.checkin_times) == (5.0, 36.0, 1, (18.0,))
    assert hold.max_checkin_gap_s == pytest.approx(13.0)  # 5.0 to 18.0; 23.5 to 36.0 is 12.5


def test_a_goodbye_is_never_a_checkin() -> None:
    utterances = [
        utt("agent", 0.0, 3.0, "请您稍等"),
        utt("customer", 3.3, 3.8, "好"),
        utt("agent", 20.0, 24.0, "不好意思系统查不到，稍后给您回电，再见"),
    ]
    (hold,) = holds(utterances, 40.0)
    assert (hold.start, hold.end, hold.ends_call) == (
        3.8,
        20.0,
        False,
    )  # the silence after the goodbye is not a hold


# ---- the definitions' other edges ---------------------------------------------------------------


def test_asked_hold_with_a_checkin_and_thanks() -> None:
    utterances = [
        utt("agent", 10.0, 14.0, ASK),
        utt("customer", 14.5, 15.0, "好的"),  # the reply belongs before the hold
        utt("agent", 27.0, 30.0, "还在为您查询，请您再稍等一下"),
        utt("agent", 44.0, 48.0, "让您久等了，您的订单明天发货"),
        utt("customer", 48.5, 49.0, "好"),
        utt("agent", 49.5, 52.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 60.0)
    assert (hold.start, hold.end, hold.duration) == (15.0, 44.0, 29.0)
    assert hold.asked and hold.lookup and hold.thanked and not hold.music and not hold.ends_call
    assert hold.checkins == 1 and hold.checkin_times == (27.0,)
    assert hold.max_checkin_gap_s == pytest.approx(14.0)  # 30.0 to 44.0


def test_a_short_checkin_wait_counts_when_the_words_say_so() -> None:
    # away only 6 s after the contact: a check-in because it says 马上就好, a return otherwise
    def call(contact: str) -> list[Utterance]:
        return [
            utt("agent", 0.0, 4.0, ASK),
            utt("customer", 4.5, 5.0, "好的"),
            utt("agent", 18.0, 20.0, contact),
            utt("agent", 26.0, 30.0, "您的订单明天发货"),
            utt("customer", 30.5, 31.0, "好"),
        ]

    assert [(h.start, h.end) for h in holds(call("马上就好"), 35.0)] == [(5.0, 26.0)]
    assert [(h.start, h.end) for h in holds(call("查到了，"), 35.0)] == [(5.0, 18.0)]


def test_unasked_hold_is_not_asked() -> None:
    utterances = [
        utt("agent", 0.0, 3.0, "好的，这个问题啊"),
        utt("agent", 20.0, 24.0, "查到了，您的积分已经到账"),
        utt("customer", 24.5, 26.0, "好的谢谢"),
        utt("agent", 26.5, 28.0, "不客气"),
    ]
    (hold,) = holds(utterances, 30.0)
    assert (hold.start, hold.end) == (3.0, 20.0) and not hold.asked and not hold.thanked
    assert hold.max_checkin_gap_s == pytest.approx(17.0)


def test_garbled_ask_and_thanks_are_still_recognised() -> None:
    # 清/请 and 将/让 are homophones or near readings: within the scorecard's matching budget
    utterances = [
        utt("agent", 0.0, 3.0, "我帮您查选一下清您稍等"),
        utt("agent", 20.0, 23.0, "将您久等吗，查到了"),
        utt("customer", 23.5, 24.0, "好"),
        utt("agent", 24.5, 27.0, "您的订单明天到"),
    ]
    (hold,) = holds(utterances, 30.0)
    assert hold.asked and hold.lookup and hold.thanked


def test_a_hold_that_ends_the_call() -> None:
    utterances = [utt("agent", 0.0, 3.0, "请您稍等，我帮您查一下"), utt("customer", 3.2, 3.6, "好")]
    (hold,) = holds(utterances, 40.0)
    assert hold.ends_call and (hold.start, hold.end) == (3.6, 40.0) and not hold.thanked


def test_silence_after_goodbye_and_a_customer_talking_at_length_are_not_holds() -> None:
    utterances = [
        utt("agent", 0.0, 3.0, "请问有什么可以帮您"),
        utt("customer", 3.5, 12.0, "我上周买的电饭煲用了两次就坏了"),
        utt("customer", 13.0, 20.0, "打不开盖子也不能加热"),
        utt("agent", 21.0, 24.0, "感谢您的来电，再见"),
    ]
    assert holds(utterances, 60.0) == []


def test_music_hold_and_dead_air() -> None:
    utterances = [
        utt("agent", 0.0, 3.0, "请您稍等"),
        utt("agent", 30.0, 33.0, "感谢您的耐心等待"),
        utt("customer", 33.5, 35.0, "好的"),
        utt("agent", 35.5, 38.0, "您的订单已经发货了"),
        utt("customer", 38.5, 40.0, "那什么时候到"),
        utt("agent", 47.0, 49.0, "明天下午"),
    ]
    events = [AudioEvent("music", 4.0, 29.0, "agent")]
    (hold,) = holds(utterances, 50.0, events)
    assert hold.music and hold.asked and hold.thanked and (hold.start, hold.end) == (3.0, 30.0)
    activity = [SpeechTurn(u.speaker, u.start, u.end) for u in utterances]
    dead_air = find_dead_air(activity, events, [hold], connected_at=0.0, last_speech_end=49.0, config=CONFIG)
    # 40-47: 7 s in which nobody speaks and nothing was announced; the music hold is not dead air
    assert [(d.start, d.end) for d in dead_air] == [(40.0, 47.0)]


def test_the_metrics_stage_does_not_load_the_scoring_engine() -> None:
    code = "import sys, pipeline.metrics; print('pipeline.rules.engine' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_hold_starts_where_the_voices_stop() -> None:
    # the recogniser dropped the customer's 好的 (voiced 4.3-4.9) and stretched the agent's 请您稍等
    # over the first second of the hold music (voiced to 3.0, music from 3.2)
    utterances = [
        utt("agent", 0.0, 4.2, "请您稍等"),
        utt("agent", 30.0, 33.0, "让您久等了，您的订单明天发货"),
        utt("customer", 33.5, 34.0, "好"),
        utt("agent", 34.5, 37.0, "请问还有其他问题吗"),
    ]
    activity = [
        SpeechTurn("agent", 0.0, 3.0),
        SpeechTurn("agent", 3.1, 4.2),
        SpeechTurn("customer", 4.3, 4.9),
    ]
    music = [AudioEvent("music", 3.2, 29.5, "agent")]
    (hold,) = find_holds(utterances, activity, music, 40.0, CONFIG, PHRASES)
    assert (hold.start, hold.end) == (4.9, 30.0)  # after the voiced reply
    (alone,) = find_holds(utterances, activity[:2], music, 40.0, CONFIG, PHRASES)
    assert (alone.start, alone.end) == (3.2, 30.0)  # the agent's voice, not the utterance, ends at 3.2
    assert holds(utterances, 40.0, music)[0].start == 4.2  # without voice activity: the utterance's end


def test_the_agent_s_short_words_the_recogniser_dropped_still_come_before_the_hold() -> None:
    # the agent answered, then said 好的 (voiced 11.1-11.8) that whisper wrote nothing for, and went
    # away: the hold starts after that 好的, as it would after the customer's dropped reply
    utterances = [
        utt("agent", 2.0, 10.2, "您的空调还在保修期内，我们可以免费为您安排上门维修"),
        utt("agent", 102.0, 106.0, "不好意思让您久等了，这个问题一般是过滤网堵了"),
    ]
    activity = [
        SpeechTurn("agent", 2.0, 10.2),
        SpeechTurn("agent", 11.1, 11.8),
        SpeechTurn("agent", 102.0, 106.0),
    ]
    (hold,) = find_holds(utterances, activity, [], 110.0, CONFIG, PHRASES)
    assert (hold.start, hold.end) == (11.8, 102.0)
    # a longer wordless stretch is not a dropped 好的 (what whisper leaves out is short),
    # and neither is voice that starts only after a pause
    for stretch in (SpeechTurn("agent", 11.1, 14.0), SpeechTurn("agent", 12.0, 12.5)):
        (hold,) = find_holds(utterances, [activity[0], stretch, activity[2]], [], 110.0, CONFIG, PHRASES)
        assert hold.start == 10.2, stretch


def test_a_long_reply_to_the_ask_does_not_push_the_ask_out_of_its_window() -> None:
    # 麻烦您等一下 (ends 4.0), the rest of the agent's turn, then the customer talks for 7 s before
    # the hold: the ask is counted back from where the agent stopped, not from the hold's start
    utterances = [
        utt("agent", 1.0, 4.0, "麻烦您等一下，"),
        utt("agent", 5.0, 9.0, "我去系统里查一查，"),
        utt("customer", 9.5, 16.5, "你去任何一家银行购买理财，首次购买的话它都需要你进行双录。"),
        utt("agent", 80.0, 84.0, "让您久等了，您的订单明天发货"),
    ]
    (hold,) = holds(utterances, 90.0)
    assert hold.start == 16.5 and hold.asked, hold


def test_a_check_in_misheard_as_a_goodbye_does_not_end_the_hold() -> None:
    # 您还在线吗 written 您还在见吗 (在见 sounds like 再见): the agent checks in again after it, so
    # the call went on and the hold with it
    utterances = [
        utt("agent", 0.0, 2.4, "这个我查查。"),
        utt("agent", 15.0, 19.0, "不好意思让您久等了，我还在帮您查。"),
        utt("agent", 30.0, 33.0, "您还在见吗，我这边还在查"),
        utt("agent", 45.0, 48.0, "我还在帮您查，"),
        utt("agent", 60.0, 66.0, "让您久等了，是这样的，发票会发到您的邮箱"),
        utt("customer", 66.5, 67.0, "好的"),
        utt("agent", 67.5, 70.0, "请问还有其他问题吗"),
        utt("customer", 70.5, 71.0, "没有了"),
        utt("agent", 71.5, 74.0, "感谢您的来电，再见"),
    ]
    (hold,) = holds(utterances, 76.0)
    assert (hold.start, hold.end, hold.checkins) == (2.4, 60.0, 3)


def test_an_ask_the_metrics_heard_passes_when_it_sounds_like_the_phrase() -> None:
    # 请您收等 for 请您稍等 (whisper writes one voice's 稍等 so every time): the metrics hear it within
    # their slack and it sounds like the phrase syllable by syllable, so HOLD-ASK passes, less sure
    def hold_ask(ask: str) -> tuple[bool, bool, float | None]:
        utterances = [
            utt("agent", 0.0, 4.0, ask),
            utt("agent", 20.0, 24.0, "让您久等了，您的订单明天发货"),
            utt("customer", 24.5, 25.0, "好"),
        ]
        activity = [SpeechTurn(u.speaker, u.start, u.end) for u in utterances]
        metrics = compute_metrics(utterances, activity, [], CallMeta("c"), 30.0, Settings(), PHRASES)
        assert metrics.holds[0].asked
        (f,) = [
            f
            for f in score_call(utterances, metrics, CallMeta("c"), CARD).findings
            if f.rule_id == "HOLD-ASK"
        ]
        return f.passed, f.needs_review, f.confidence

    passed, review, confidence = hold_ask("好的，请您收等，我帮您查一下")
    assert passed and not review and confidence == 0.75
    # heard with a word too many, it does not sound like the phrase: a person decides
    passed, review, _ = hold_ask("好的，耽误您一点的时间，我帮您查一下")
    assert not passed and review


def test_a_customer_answering_a_checkin_at_length_does_not_end_the_hold() -> None:
    # 没事没事，你慢慢查，我不着急的 (more than the 2 s of a back-channel) after 我还在帮您查, then
    # more waiting and another check-in: one hold (a 150 s tuning hold was cut at every such answer,
    # and its pieces charged HOLD-ASK)
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 18.0, 22.0, "您还在线吗？我这边还在查"),
        utt("customer", 22.5, 27.5, "没事没事，你慢慢查，我不着急的"),
        utt("agent", 29.0, 35.0, "我还在核实，马上就好，您再等我一下"),
        utt("agent", 50.0, 55.0, "让您久等了，查到了，您的订单明天发货"),
        utt("customer", 55.5, 56.0, "好"),
        utt("agent", 56.5, 58.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 60.0)
    assert (hold.start, hold.end, hold.checkins, hold.asked) == (5.0, 50.0, 2, True)
    assert verdicts(utterances, 60.0)["HOLD-ASK"]


@pytest.mark.parametrize(
    "came_back",
    [
        "感谢您的耐心等待，积分可以在会员中心兑换优惠券",  # thanks and the answer: 耐心 is no check-in
        "退货需要在签收后七天内申请，您在手机上就可以操作",  # 申请您在 is no 请您再, said exactly
    ],
)
def test_a_return_answered_at_length_ends_the_hold(came_back: str) -> None:
    # the customer talks at length after the agent's return, then a second, unasked hold: two holds,
    # not one from the first ask to the second return
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 20.0, 30.0, came_back),
        utt("customer", 30.5, 35.0, "我们公司不是私人公司，而是股份制公司"),
        utt("agent", 35.7, 36.7, "这个嘛"),
        utt("agent", 60.0, 66.0, "您好，我这边看到了，您的订单明天发货"),
        utt("customer", 66.5, 67.0, "好"),
    ]
    assert [(h.start, h.end) for h in holds(utterances, 70.0)] == [(5.0, 20.0), (36.7, 60.0)]


def test_a_customer_agreeing_to_wait_at_length_does_not_end_the_hold() -> None:
    # the check-in's words were misheard (还在查 written 还在线吗: a question, no check-in words as
    # written), but the customer's own long answer agrees to wait on (你慢慢查，我不着急的): more
    # waiting, and the agent's next check-in, keep it one hold
    utterances = [
        utt("agent", 0.0, 4.0, ASK),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 18.0, 22.0, "您还在线吗，我这边还在线吗"),
        utt("customer", 22.5, 27.5, "没事没事，你慢慢查，我不着急的"),
        utt("agent", 36.0, 41.0, "我还在核实，马上就好，您再等我一下"),
        utt("agent", 56.0, 61.0, "让您久等了，查到了，您的订单明天发货"),
        utt("customer", 61.5, 62.0, "好"),
        utt("agent", 62.5, 64.0, "请问还有其他问题吗"),
    ]
    (hold,) = holds(utterances, 66.0)
    assert (hold.start, hold.end, hold.checkins) == (5.0, 56.0, 2)
    # the same long answer asking something else instead: the conversation resumed at 18.0
    asked = [*utterances[:3], utt("customer", 22.5, 27.5, "那能不能帮我改到后天再送过来"), *utterances[4:]]
    assert holds(asked, 66.0)[0].end == 18.0


def _heard(u: Utterance, probabilities: list[float]) -> Utterance:
    """`u` with its first characters heard at these probabilities (the rest 0.9)."""
    chars = tuple(
        replace(c, probability=p) for c, p in zip(u.chars, probabilities + [0.9] * 40, strict=False)
    )
    return replace(u, chars=chars)


def _finding(rule_id: str, utterances: list[Utterance], duration_s: float) -> Finding:
    activity = [SpeechTurn(u.speaker, u.start, u.end) for u in utterances]
    metrics = compute_metrics(utterances, activity, [], CallMeta("c"), duration_s, Settings(), PHRASES)
    score = score_call(utterances, metrics, CallMeta("c"), CARD)
    return next(f for f in score.findings if f.rule_id == rule_id)


@pytest.mark.parametrize(
    ("rule_id", "said", "unsure", "sure"),
    [
        # 让您久等了 heard as 将您就到了 with 将 0.48, 就 0.22, 到 0.30, 了 0.30 (the sentence 0.76 as
        # a whole): the thanks may have been said and misheard where it would be
        ("HOLD-THANK", "back", [0.48, 0.99, 0.22, 0.30, 0.30], [0.9] * 5),
        # 请您稍等 heard as 请医生等 with 请 0.12, 医 0.14: taken as maybe misheard, it sounds like the ask
        ("HOLD-ASK", "ask", [0.12, 0.14, 0.65, 0.92], [0.9] * 4),
    ],
)
def test_a_phrase_heard_unsure_where_it_would_be_sends_its_absence_to_review(
    rule_id: str, said: str, unsure: list[float], sure: list[float]
) -> None:
    # heard unsure, a person listens; the same text heard sure deducts
    def call(probabilities: list[float], which: str) -> list[Utterance]:
        ask = utt("agent", 0.0, 4.0, "请医生等，我帮您采一下" if rule_id == "HOLD-ASK" else ASK)
        back = utt(
            "agent",
            20.0,
            26.0,
            "将您就到了，这个问题一般是过滤网堵了"
            if rule_id == "HOLD-THANK"
            else "查到了，这个问题一般是过滤网堵了",
        )
        return [
            _heard(ask, probabilities) if which == "ask" else ask,
            utt("customer", 4.5, 5.0, "好的"),
            _heard(back, probabilities) if which == "back" else back,
            utt("customer", 26.5, 27.0, "好的"),
        ]

    weak = _finding(rule_id, call(unsure, said), 30.0)
    assert not weak.passed and weak.needs_review and weak.deduction == 0
    clear = _finding(rule_id, call(sure, said), 30.0)
    assert not clear.passed and not clear.needs_review and clear.deduction > 0
