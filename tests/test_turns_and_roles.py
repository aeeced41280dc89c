"""Turn building and role assignment on hand-built timelines and utterances."""

from __future__ import annotations

import numpy as np

from pipeline.config import TurnConfig
from pipeline.diarize.roles import ROLE_REVIEW_BELOW, assign_roles, check_stereo_roles, merged_voices_check
from pipeline.diarize.timeline import build_turns, clean_segments, extend_onsets, mask_to_segments
from pipeline.records import SpeechTurn, Utterance

CUES = TurnConfig().agent_cues


def test_mask_to_segments_and_cleaning() -> None:
    mask = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    segments = [(round(a, 3), round(b, 3)) for a, b in mask_to_segments(mask, 0.1)]
    assert segments == [(0.1, 0.3), (0.4, 0.7), (1.1, 1.2)]
    # a 0.1 s gap is closed, the lone 0.1 s blip is dropped
    cleaned = clean_segments(mask_to_segments(mask, 0.1), fill_gap_s=0.15, min_duration_s=0.15)
    assert [(round(a, 2), round(b, 2)) for a, b in cleaned] == [(0.1, 0.7)]


def _frames(*runs: tuple[int, int], total: int = 100) -> np.ndarray:
    mask = np.zeros(total, dtype=bool)
    for start, end in runs:
        mask[start:end] = True
    return mask


def test_a_late_voice_start_moves_back_to_where_the_sound_starts() -> None:
    # loud from frame 40 (a 2-frame dip bridged), the voice confirmed only from 55
    loud = _frames((40, 47), (49, 70))
    voice = _frames((55, 70))
    extended = extend_onsets(loud, voice, max_frames=20, bridge_frames=3)
    assert mask_to_segments(extended, 1.0) == [(40.0, 70.0)]
    # …but never further back than max_frames
    assert mask_to_segments(extend_onsets(loud, voice, max_frames=10, bridge_frames=3), 1.0) == [(45.0, 70.0)]


def test_over_steady_sound_the_voice_keeps_its_own_start() -> None:
    # hold music: loud for twice max_frames before the voice, so loudness shows no onset
    loud = _frames((10, 70))
    voice = _frames((55, 70))
    assert mask_to_segments(extend_onsets(loud, voice, max_frames=20), 1.0) == [(55.0, 70.0)]
    # at the very start of the recording the sound's start is the recording's start
    assert mask_to_segments(extend_onsets(_frames((0, 30)), _frames((12, 30)), max_frames=20), 1.0) == [
        (0.0, 30.0)
    ]


def test_turns_merge_short_pauses_but_not_across_the_other_party() -> None:
    activity = [
        SpeechTurn("agent", 0.0, 2.0),
        SpeechTurn("agent", 2.5, 4.0),  # 0.5 s pause: same turn
        SpeechTurn("agent", 6.0, 7.0),  # 2 s pause: new turn
        SpeechTurn("customer", 7.2, 7.5),  # customer speaks in the agent's next short pause
        SpeechTurn("agent", 7.4, 9.0),
    ]
    turns = build_turns(activity, turn_gap_s=0.8)
    agent = [(t.start, t.end) for t in turns if t.speaker == "agent"]
    assert agent == [(0.0, 4.0), (6.0, 7.0), (7.4, 9.0)]
    assert [(t.start, t.end) for t in turns if t.speaker == "customer"] == [(7.2, 7.5)]


def test_overlapping_turns_of_both_parties_survive() -> None:
    activity = [SpeechTurn("customer", 0.0, 5.0), SpeechTurn("agent", 4.0, 6.0)]
    turns = build_turns(activity, turn_gap_s=0.8)
    assert len(turns) == 2 and turns[0].end > turns[1].start


def _u(speaker: str, start: float, text: str) -> Utterance:
    return Utterance(speaker=speaker, start=start, end=start + 2, text=text)


def test_agent_is_the_speaker_with_service_phrases_even_when_the_customer_speaks_first() -> None:
    utterances = [
        _u("SPEAKER_00", 0.0, "喂，你好，我想问一下退货。"),
        _u("SPEAKER_01", 3.0, "您好，星河电器客户服务中心，工号一零零四为您服务，请问有什么可以帮到您？"),
        _u("SPEAKER_00", 8.0, "我的订单退不了。"),
    ]
    roles = assign_roles(utterances, CUES, 4)
    assert roles.mapping == {"SPEAKER_00": "customer", "SPEAKER_01": "agent"}
    assert roles.source == "text-cues" and 0.5 < roles.confidence <= 1.0


def test_service_phrases_count_when_whisper_wrote_them_in_homophones() -> None:
    # 上午好，星河电器客服，工号三二七 heard as below (tuning batch 5): 克服 is 客服, 功耗 is 工号 by
    # sound. Matched as written, the customer's 转接其他客服 outweighed the opening: roles swapped.
    utterances = [
        _u("SPEAKER_00", 27.4, "笑我好，心何变其克服，功耗散气，"),
        _u("SPEAKER_00", 35.7, "请问你要办理什么业务。"),
        _u("SPEAKER_01", 40.2, "出国的项目的话，咱们这边是考试。"),
        _u("SPEAKER_01", 70.0, "我这里查不到苏州出发的线路的具体信息，要不我给您转接其他客服，"),
    ]
    roles = assign_roles(utterances, CUES, 4)
    assert roles.mapping == {"SPEAKER_00": "agent", "SPEAKER_01": "customer"} and roles.source == "text-cues"
    # a near sound is not enough: 刻苦 (ke ku) is not 客服
    assert (
        assign_roles([_u("A", 0.0, "嗯。"), _u("B", 2.0, "我学习很刻苦。")], CUES, 4).source
        == "first-speaker"
    )


def test_without_cues_the_first_speaker_is_the_agent_with_low_confidence() -> None:
    roles = assign_roles([_u("B", 0.0, "嗯。"), _u("A", 3.0, "对。")], CUES, 4)
    assert roles.mapping == {"B": "agent", "A": "customer"}
    assert roles.source == "first-speaker" and roles.confidence == 0.5


def test_a_customer_who_hardly_speaks_means_the_voices_may_be_merged() -> None:
    # mono clustering put both voices into SPEAKER_00: the customer keeps two 0.5 s scraps of 40 s
    merged = [
        Utterance(
            "SPEAKER_00", 0.0, 20.0, "您好，星河电器客户服务中心，请问有什么可以帮到您？我的订单退不了。"
        ),
        Utterance("SPEAKER_01", 20.5, 21.0, "您，"),
        Utterance("SPEAKER_00", 21.5, 41.5, "我帮您查询一下。好的谢谢。"),
        Utterance("SPEAKER_01", 42.0, 42.5, "再见"),
    ]
    roles = assign_roles(merged, CUES, 4)
    assert roles.confidence == 1.0
    checked, warning = merged_voices_check(roles, merged)
    assert checked.confidence < ROLE_REVIEW_BELOW and checked.mapping == roles.mapping
    assert warning is not None and "2%" in warning and "当成了一个人" in warning
    # a customer with a real share of the conversation, or a call too short to tell: unchanged
    talking = [*merged[:1], Utterance("SPEAKER_01", 20.5, 30.0, "我上个月买的空调坏了"), *merged[2:]]
    assert merged_voices_check(roles, talking) == (roles, None)
    assert merged_voices_check(roles, [merged[0], merged[1]]) == (roles, None)


def test_stereo_layout_is_questioned_when_the_customer_channel_sounds_like_the_agent() -> None:
    swapped = [
        _u("customer", 0.0, "您好，客户服务中心，工号一二三为您服务，请问有什么可以帮到您？"),
        _u("agent", 4.0, "我想查一下订单。"),
    ]
    roles, warning = check_stereo_roles(swapped, "stereo-agent-left", "config", CUES, 4)
    assert warning and "请检查声道设置" in warning and roles.confidence == 0.5
    proper = [
        _u("agent", 0.0, "您好，客户服务中心，请问有什么可以帮到您？"),
        _u("customer", 4.0, "我想查一下订单。"),
    ]
    roles, warning = check_stereo_roles(proper, "stereo-agent-left", "sidecar", CUES, 4)
    assert (
        warning is None and roles.confidence == 1.0 and roles.source == "channel:stereo-agent-left(sidecar)"
    )
