"""The tuning set's verdicts read off its ground truth (tools/evalset_verdicts.py)."""

from __future__ import annotations

import json
from pathlib import Path

from evalset_verdicts import derive_verdicts, relabel


def _turn(speaker: str, start: float, end: float, text: str, kind: str = "speech") -> dict:
    return {
        "speaker": speaker,
        "start": start,
        "end": end,
        "text": text,
        "kind": kind,
        "voiced": [[start, end]],
    }


def _truth(**changes: object) -> dict:
    truth = {
        "rings": 2,
        "answered_at": 6.5,
        "turns": [
            _turn(
                "agent", 7.0, 10.0, "您好，星河电器客户服务中心，请问有什么可以帮您？"
            ),  # 22 chars in 3 s: 440/min
            _turn("customer", 10.6, 14.0, "我的空调不制冷了。"),
            _turn("agent", 14.6, 24.6, "好的，您的空调还在保修期内，我们可以为您安排上门。"),
        ],
        "overlaps": [],
        "holds": [],
        "hangup_by": "customer",
        "verdicts": {"CLOSE-ASK": "pass"},
    }
    truth.update(changes)
    return truth


def test_every_rule_is_read_off_the_timeline() -> None:
    v = derive_verdicts(_truth())
    assert v["CLOSE-ASK"] == "pass"  # the closing verdicts the generator planted are kept
    assert v["ANSWER-RINGS"] == "pass" and v["OPEN-IMMEDIATE"] == "pass" and v["OPEN-GREETING"] == "pass"
    assert v["POLITE-YOU"] == "pass" and v["NO-INTERRUPT"] == "pass" and v["HANGUP-LAST"] == "pass"
    assert "HOLD-ASK" not in v  # no hold of 10 s or more: the hold rules are not labelled
    # 42 characters in 13 s of voice: 194/min, within 4 % of the 200 limit, so left out
    assert "RATE" not in v

    late = _truth(rings=5, answered_at=2.0, hangup_by="agent")
    late["overlaps"] = [{"start": 12.0, "end": 13.0, "by": "agent", "kind": "interruption"}]
    late["turns"][2]["text"] = "你先听我说，" + late["turns"][2]["text"]
    v = derive_verdicts(late)
    assert v["ANSWER-RINGS"] == "fail" and v["OPEN-IMMEDIATE"] == "fail"  # 5 s to the first word
    assert v["NO-INTERRUPT"] == "fail" and v["HANGUP-LAST"] == "fail" and v["POLITE-YOU"] == "fail"
    # a customer's back-channel over the agent is not the agent interrupting
    chime = _truth(overlaps=[{"start": 12.0, "end": 12.4, "by": "customer", "kind": "backchannel"}])
    assert derive_verdicts(chime)["NO-INTERRUPT"] == "pass"


def test_an_opening_in_agents_own_words_keeps_its_intended_verdict() -> None:
    import random

    from evalset_openings import GREETED, NOT_GREETED, plan_opening

    # 星河电器，请讲: no greeting, no offer — the plan says fail, whatever the first turn's text
    truth = _truth(plan={"opening": {"lines": ["星河电器客服中心，请讲。"], "verdict": "fail"}})
    assert derive_verdicts(truth)["OPEN-GREETING"] == "fail"
    truth["turns"][0]["text"] = "星河电器客服中心，请讲。"
    assert derive_verdicts(_truth(turns=truth["turns"]))["OPEN-GREETING"] == "fail"  # read off: no 您好
    # the bank's draws: verdict and sentences agree, both kinds come up
    plans = [plan_opening(random.Random(k)) for k in range(40)]
    assert {p["verdict"] for p in plans} == {"pass", "fail"}
    assert all(p["lines"] in (GREETED if p["verdict"] == "pass" else NOT_GREETED) for p in plans)


def test_holds_a_look_up_over_60_s_and_a_silence_over_15_s() -> None:
    hold = {"start": 30.0, "end": 100.0, "asked": True, "thanked": False}
    checkins = [
        _turn("agent", 40.0, 42.0, "还在为您查询。", "checkin"),
        _turn("agent", 55.0, 57.0, "马上就好。", "checkin"),
    ]
    truth = _truth(holds=[hold])
    truth["turns"] += checkins
    v = derive_verdicts(truth)
    assert v["HOLD-ASK"] == "pass" and v["HOLD-THANK"] == "fail"
    assert v["HOLD-MAX"] == "fail"  # asked = a look-up: 70 s is over the 60 s limit
    assert v["HOLD-CHECKIN"] == "fail"  # 57 → 100 s without a word
    unasked = _truth(holds=[{**hold, "asked": False, "end": 68.0}])
    unasked["turns"] += [*checkins, _turn("agent", 66.0, 67.0, "稍等。", "checkin")]
    v = derive_verdicts(unasked)
    assert v["HOLD-ASK"] == "fail" and v["HOLD-MAX"] == "pass"
    assert v["HOLD-CHECKIN"] == "pass"  # the longest stretch without a word: 42 → 55 s
    near = _truth(holds=[{**hold, "end": 72.5}])
    near["turns"] += checkins
    assert "HOLD-CHECKIN" not in derive_verdicts(near)  # 57 → 72.5 s: 15.5 s, too near the 15 s limit
    short = _truth(holds=[{**hold, "end": 38.0}])
    assert "HOLD-THANK" not in derive_verdicts(short)  # 8 s is a pause, not a hold
    # unasked but announced as a look-up (我看一下, --hold-variants): the 60 s limit applies too
    looked = _truth(holds=[{**hold, "asked": False, "end": 96.0}])
    looked["turns"] += [_turn("agent", 28.0, 29.0, "我看一下。")]
    assert derive_verdicts(looked)["HOLD-MAX"] == "fail"  # 66 s
    looked["turns"][-1]["text"] = "好的。"
    assert derive_verdicts(looked)["HOLD-MAX"] == "pass"  # not a look-up: 66 s is under 2 minutes


def test_relabel_rewrites_the_truth_files(tmp_path: Path) -> None:
    (tmp_path / "EV001.truth.json").write_text(json.dumps(_truth(rings=4)), encoding="utf-8")
    assert relabel(tmp_path) == 1
    truth = json.loads((tmp_path / "EV001.truth.json").read_text(encoding="utf-8"))
    assert truth["verdicts"]["ANSWER-RINGS"] == "fail" and truth["verdicts"]["CLOSE-ASK"] == "pass"


def test_a_hold_said_another_way_keeps_its_thanked_truth() -> None:
    # --return-variants moves how a hold goes on and ends, never whether the agent thanked: an
    # unthanked return has no thanks in it, a thanked one always has
    import random

    from evalset_returns import PROMPT_ANSWERS, THANKS_AFTER, THANKS_ALONE, plan_return

    thanks_words = ("久等", "耐心", "等了这么久")
    rng = random.Random(7)
    forms = {True: set(), False: set()}
    for k in range(200):
        thanked = k % 2 == 0
        way = plan_return(rng, thanked, 8)
        forms[thanked].add(way.form)
        said = (way.lead or "") + (way.thanks or "")
        assert any(w in said for w in thanks_words) == (thanked and way.form != "first"), way
        assert len(way.long_replies) == 8
    assert forms == {True: {"first", "after", "alone", "prompt"}, False: {"first", "prompt"}}
    assert not any(w in text for text in PROMPT_ANSWERS for w in thanks_words)
    assert all(any(w in text for w in thanks_words) for text in THANKS_AFTER + THANKS_ALONE)
