"""The evaluation's accuracy scores on hand-built truths and pipeline outputs."""

from __future__ import annotations

from pipeline.eval_scores import (
    TranscriptTally,
    VerdictTally,
    echo_chars,
    role_frames,
    verdict_outcomes,
)
from pipeline.records import CharTiming, Finding, Utterance


def _truth(channels: str = "stereo-agent-left") -> dict:
    # agent voiced 0-2 s, customer voiced 3-5 s, both 6-7 s (an overlap: not scored for roles)
    return {
        "channels": channels,
        "duration_s": 8.0,
        "turns": [
            {"speaker": "agent", "start": 0.0, "end": 2.0, "text": "您好请讲", "voiced": [[0.0, 2.0]]},
            {"speaker": "customer", "start": 3.0, "end": 5.0, "text": "我要退款", "voiced": [[3.0, 5.0]]},
            {"speaker": "agent", "start": 6.0, "end": 7.0, "text": "嗯", "voiced": [[6.0, 7.0]]},
            {"speaker": "customer", "start": 6.0, "end": 7.0, "text": "对", "voiced": [[6.0, 7.0]]},
        ],
    }


def _finding(rule: str, passed: bool, review: bool = False) -> Finding:
    return Finding(rule_id=rule, passed=passed, deduction=0.0 if passed else 3.0, needs_review=review)


def test_role_frames_counts_single_party_frames_only() -> None:
    perfect = [Utterance("agent", 0.0, 2.0, "您好请讲"), Utterance("customer", 3.0, 5.0, "我要退款")]
    assert role_frames(perfect, _truth()) == (40, 40)


def test_role_frames_wrong_missing_and_doubly_labelled_frames_are_errors() -> None:
    utterances = [
        Utterance("customer", 0.0, 1.0, "您好"),  # 10 frames of the agent given to the customer
        Utterance("agent", 1.0, 2.0, "请讲"),
        Utterance("customer", 3.0, 5.0, "我要退款"),
        Utterance("agent", 4.0, 5.0, "退款"),  # echo: both roles over 10 customer frames
    ]  # nothing is missing here; 20 of 40 frames wrong
    assert role_frames(utterances, _truth()) == (20, 40)
    assert role_frames([Utterance("agent", 0.0, 2.0, "您好请讲")], _truth()) == (20, 40)


def test_echo_chars_counts_agent_characters_inside_customer_only_speech() -> None:
    timed = tuple(CharTiming(c, 3.2 + 0.4 * i, 3.5 + 0.4 * i, 0.9) for i, c in enumerate("我要退款"))
    utterances = [
        Utterance("agent", 0.0, 2.0, "您好请讲"),  # untimed: spread evenly over 0-2 s, not echo
        Utterance("agent", 3.2, 4.9, "我要退款", chars=timed),
    ]
    assert echo_chars(utterances, _truth()) == (4, 8)
    # the agent's own words next to its turn are not echo
    assert echo_chars([Utterance("agent", 0.0, 2.1, "您好请讲")], _truth()) == (0, 4)


def test_verdict_outcomes_distinguish_deduction_review_and_pass() -> None:
    findings = [
        _finding("OPEN-GREETING", False),
        _finding("CLOSE-ASK", False, review=True),
        _finding("FORBIDDEN-不知道", False),
        _finding("POLITE-YOU", True),
    ]
    truth = {
        "OPEN-GREETING": "fail",
        "CLOSE-ASK": "fail",
        "FORBIDDEN": "pass",
        "POLITE-YOU": "pass",
        "RATE": "fail",
    }
    assert verdict_outcomes(truth, findings) == {
        "OPEN-GREETING": ("fail", "fail"),
        "CLOSE-ASK": ("fail", "review"),
        "FORBIDDEN": ("pass", "fail"),
        "POLITE-YOU": ("pass", "pass"),
        "RATE": ("fail", "pass"),
    }
    # the call's roles wait for a person: nothing deducts yet, every failing finding is a review
    assert verdict_outcomes(truth, findings, roles_wait=True) == {
        "OPEN-GREETING": ("fail", "review"),
        "CLOSE-ASK": ("fail", "review"),
        "FORBIDDEN": ("pass", "review"),
        "POLITE-YOU": ("pass", "pass"),
        "RATE": ("fail", "pass"),
    }


def test_verdict_tally_precision_recall_and_wrong_deduction_share() -> None:
    tally = VerdictTally()
    # call 1: CLOSE-ASK failed and deducted (tp); HOLD-ASK deducted though it passed (fp, wrong deduction)
    tally.add(
        "C1",
        {"CLOSE-ASK": "fail", "HOLD-ASK": "pass"},
        [_finding("CLOSE-ASK", False), _finding("HOLD-ASK", False)],
    )
    # call 2: CLOSE-ASK failed but only went to review (fn + review); HOLD-ASK right (tn)
    tally.add("C2", {"CLOSE-ASK": "fail", "HOLD-ASK": "pass"}, [_finding("CLOSE-ASK", False, review=True)])
    # call 3: CLOSE-ASK passed, a review flag only (tn, not a wrong deduction); RATE unlabelled is ignored
    tally.add(
        "C3", {"CLOSE-ASK": "pass"}, [_finding("CLOSE-ASK", False, review=True), _finding("RATE", False)]
    )
    s = tally.summary()
    close = s["rules"]["CLOSE-ASK"]
    assert (close["tp"], close["fp"], close["fn"], close["tn"], close["review"]) == (1, 0, 1, 1, 2)
    assert close["precision"] == 1.0 and close["recall"] == 0.5 and close["f1"] == 0.667
    hold = s["rules"]["HOLD-ASK"]
    assert (hold["tp"], hold["fp"], hold["fn"], hold["tn"]) == (0, 1, 0, 1)
    assert hold["precision"] == 0.0 and hold["recall"] is None and hold["f1"] == 0.0
    assert "RATE" not in s["rules"]
    assert s["wrong_deduction_call_share"] == 0.333
    assert s["reviews"] == 2
    assert "C1 HOLD-ASK deducted, truth pass" in tally.problems


def test_transcript_tally_separates_layouts_and_counts_echo_in_stereo_only() -> None:
    tally = TranscriptTally()
    echo = [Utterance("agent", 0.0, 2.0, "您好请讲"), Utterance("agent", 3.0, 5.0, "我要退款")]
    tally.add(echo, _truth(), agent_cer=0.5)
    tally.add(echo, _truth("mono"), agent_cer=0.1)
    s = tally.summary()
    assert s["role_accuracy"] == {"stereo": 0.5, "mono": 0.5}
    assert s["agent_cer_mean"] == 0.3
    assert s["echo_char_share_stereo"] == 0.5
