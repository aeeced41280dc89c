"""The scorecard's phrase vocabulary (`phrases:`): one list serves the rules and the metrics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import MetricsConfig, Settings, load_settings
from pipeline.errors import CallQAError
from pipeline.metrics import compute_metrics
from pipeline.metrics.holds import find_holds
from pipeline.records import CallMeta, CharTiming, SpeechTurn, Utterance
from pipeline.rules import DEFAULT_SCORECARD, Scorecard, load_scorecard, parse_scorecard, score_call

VOCABULARY = """\
phrases:
  hold_ask: [请您稍等]
  hold_checkin: [还在]
  hold_thanks: [{thanks}]
  hold_lookup: [查询]
  goodbye: [再见]
"""
HOLD_THANK = """\
rules:
  - id: HOLD-THANK
    title: 等待后致谢
    category: 服务过程
    type: hold
    check: thanked
    window: {{after_hold_s: 15}}
    patterns: {patterns}
    deduction: 3
"""


def card(
    thanks: str = "让您久等了", patterns: str = "phrases.hold_thanks", vocabulary: bool = True
) -> Scorecard:
    text = "kind: scorecard\nname: 测试\n"
    text += VOCABULARY.format(thanks=thanks) if vocabulary else ""
    return parse_scorecard(text + HOLD_THANK.format(patterns=patterns), "line.yaml")


def utt(speaker: str, start: float, end: float, text: str) -> Utterance:
    step = (end - start) / len(text)
    chars = tuple(CharTiming(c, start + i * step, start + (i + 1) * step, 0.9) for i, c in enumerate(text))
    return Utterance(speaker, start, end, text, chars, 0.9)


CALL = [
    utt("agent", 0.0, 3.0, "请您稍等"),
    utt("customer", 3.5, 4.0, "好的"),
    utt("agent", 30.0, 34.0, "多谢您等我这么久，查到了"),
    utt("customer", 34.5, 35.0, "好"),
    utt("agent", 35.5, 38.0, "还有别的问题吗"),
]


def thanked(scorecard: Scorecard) -> tuple[bool, bool]:
    """(the metrics' hold.thanked, the rule's verdict) for CALL under the scorecard."""
    activity = [SpeechTurn(u.speaker, u.start, u.end) for u in CALL]
    metrics = compute_metrics(CALL, activity, [], CallMeta("c"), 40.0, Settings(), scorecard.phrases)
    (finding,) = score_call(CALL, metrics, CallMeta("c"), scorecard).findings
    (hold,) = metrics.holds
    return hold.thanked, finding.passed


def test_one_edit_to_the_vocabulary_changes_the_metric_and_the_rule_alike() -> None:
    assert thanked(card()) == (False, False)
    assert thanked(card(thanks="多谢您等我")) == (True, True)


def test_a_reference_can_sit_among_other_patterns() -> None:
    (rule,) = card(patterns="[phrases.hold_thanks, 感谢您的耐心]").rules
    assert rule.patterns == ["让您久等了", "感谢您的耐心"]


def test_a_reference_to_a_missing_list_names_the_rule_and_the_field() -> None:
    with pytest.raises(CallQAError) as caught:
        card(patterns="phrases.hold_thank")
    assert "规则 HOLD-THANK：字段 patterns：词表 phrases 里没有 hold_thank（有：hold_ask、" in str(
        caught.value
    )
    with pytest.raises(CallQAError, match=r"引用了 phrases\.hold_thanks，但评分表没有 phrases 词表"):
        card(vocabulary=False)


def test_a_vocabulary_list_is_checked_like_patterns() -> None:
    with pytest.raises(CallQAError, match=r"phrases\.hold_thanks"):
        card(thanks="'re:('")
    bad = "kind: scorecard\nname: x\nphrases:\n  hold_ask: [稍等]\n" + HOLD_THANK.format(patterns="[久等]")
    with pytest.raises(CallQAError, match=r"字段 phrases\.hold_checkin：缺少必填字段"):
        parse_scorecard(bad, "line.yaml")


def test_the_default_scorecards_rules_and_metrics_share_its_lists() -> None:
    default = load_scorecard(DEFAULT_SCORECARD)
    rules = {r.id: r for r in default.rules}
    assert tuple(rules["HOLD-ASK"].patterns) == default.phrases.hold_ask
    assert tuple(rules["HOLD-THANK"].patterns) == default.phrases.hold_thanks
    assert tuple(rules["HOLD-MAX"].lookup_patterns) == default.phrases.hold_lookup
    # a business line's card without the section uses the default's vocabulary for the metrics
    assert card(patterns="[让您久等了]", vocabulary=False).phrases == default.phrases


def test_the_metrics_match_with_the_scorecards_costs() -> None:
    phrases = load_scorecard(DEFAULT_SCORECARD).phrases
    ask = [utt("agent", 0.0, 3.0, "好的请您收等"), utt("agent", 20.0, 22.0, "您的订单明天到")]
    (hold,) = find_holds(ask, [], [], 30.0, MetricsConfig(), phrases)
    assert hold.asked  # 收/稍: one near-sounding character, within metrics_slack
    (strict,) = find_holds(ask, [], [], 30.0, MetricsConfig(), replace(phrases, slack=0.0))
    assert not strict.asked


def test_settings_refuse_the_phrase_keys_that_moved_to_the_scorecard(tmp_path: Path) -> None:
    toml = tmp_path / "callqa.toml"
    toml.write_text('[metrics]\nhold_ask_phrases = ["请您稍等"]\n', encoding="utf-8")
    with pytest.raises(CallQAError, match=r"metrics\.hold_ask_phrases：这些用语已移到评分表"):
        load_settings(toml)


def test_a_lookup_only_the_metrics_heard_sends_a_long_hold_to_review() -> None:
    # 核实 recognised as 合时: within the metrics' slack, not within the rule's budget
    call = [
        utt("agent", 0.0, 4.0, "我需要合时一下，请您稍等"),
        utt("customer", 4.5, 5.0, "好的"),
        utt("agent", 95.0, 99.0, "让您久等了，查到了"),
        utt("customer", 99.5, 100.0, "好"),
        utt("agent", 100.5, 103.0, "请问还有其他问题吗"),
    ]
    default = load_scorecard(DEFAULT_SCORECARD)
    activity = [SpeechTurn(u.speaker, u.start, u.end) for u in call]
    metrics = compute_metrics(call, activity, [], CallMeta("c"), 110.0, Settings(), default.phrases)
    (hold,) = metrics.holds
    assert hold.lookup and hold.duration == 90.0
    (finding,) = [
        f for f in score_call(call, metrics, CallMeta("c"), default).findings if f.rule_id == "HOLD-MAX"
    ]
    assert not finding.passed and finding.needs_review and finding.deduction == 0


def test_rescore_metrics_recomputes_holds_with_the_scorecards_phrases(tmp_path: Path) -> None:
    from test_rules_store import _store_sample_calls

    from pipeline.cli import main
    from pipeline.store import Store

    db = tmp_path / "qa.duckdb"
    _store_sample_calls(db, with_metrics=False)
    text = DEFAULT_SCORECARD.read_text(encoding="utf-8")
    start = text.index("  hold_thanks:")
    end = text.index("  hold_lookup:")
    tuned = tmp_path / "tuned.yaml"  # a scorecard whose only thanks is one nobody says
    tuned.write_text(text[:start] + "  hold_thanks: [多谢您等我]\n" + text[end:], encoding="utf-8")

    def thanked(card: Path) -> tuple[bool, bool]:
        assert main(["rescore", "--db", str(db), "--metrics", "--scorecard", str(card)]) == 0
        with Store(db, read_only=True) as store:
            metrics = store.load_metrics("HX20261120-0001")
            score = store.current_score("HX20261120-0001")
        assert metrics is not None and score is not None
        (hold,) = metrics.holds
        (finding,) = [f for f in score.findings if f.rule_id == "HOLD-THANK"]
        return hold.thanked, finding.passed

    assert thanked(DEFAULT_SCORECARD) == (True, True)  # 王先生，让您久等了 after the hold
    assert thanked(tuned) == (False, False)  # the metric and the rule follow the one list


def test_the_json_schema_for_editors_accepts_a_reference() -> None:
    from pipeline.rules.schema import ScorecardSpec

    defs = ScorecardSpec.model_json_schema()["$defs"]
    kinds = defs["HoldRule"]["properties"]["patterns"]["anyOf"]
    assert {"type": "string", "pattern": r"^phrases\.[a-z_]+$"}.items() <= kinds[1].items()
    assert set(defs["Phrases"]["required"]) == {
        "hold_ask",
        "hold_checkin",
        "hold_thanks",
        "hold_lookup",
        "goodbye",
    }


# Agents thank and ask in their own words; the default vocabulary hears them by meaning (a thanks or
# an apology near the waiting; 请/您 right before 等一下 / 别挂), not as another way of asking again.
THANKS_IN_OWN_WORDS = [
    "辛苦您等这么久了",
    "抱歉耽误您这么长时间",
    "不好意思让您等这么久",
    "耽误您时间了，不好意思",
    "谢谢您一直等着",
    "不好意思，等久了吧",
    "多谢您耐心等我查询",
    "让您等候多时了",
]
NOT_THANKS = [
    "请您稍等，谢谢",
    "不好意思，请您再稍等一下",
    "谢谢您的来电",
    "不好意思您再等一下",
    "我先让您稍等一下",
]
ASKS_IN_OWN_WORDS = [
    "您先别挂机，我查一下",
    "您看能不能等我一分钟",
    "我这边需要查询一下，您先等一会儿好吗",
    "请您不要挂断，我马上帮您查",
    "请您耐心等待",
    "方便等我一下吗",
    "您这边先等一下",
]
NOT_ASKS = ["我看一下", "这个我查查", "感谢您的耐心等待，积分可以兑换优惠券", "您的身份证、银行卡等材料"]
# a look-up by its verb and what is looked up, however whisper wrote 调取
LOOK_UPS = ["请您稍后，我帮您调子取一下订单", "我帮您调整一下定单", "我看一下您的物流信息"]


VOCABULARY_BY_MEANING = (
    [("hold_thanks", text, True) for text in THANKS_IN_OWN_WORDS]
    + [("hold_thanks", text, False) for text in NOT_THANKS]
    + [("hold_ask", text, True) for text in ASKS_IN_OWN_WORDS]
    + [("hold_ask", text, False) for text in NOT_ASKS]
    + [("hold_lookup", text, True) for text in LOOK_UPS]
)


@pytest.mark.parametrize(("vocabulary", "text", "heard"), VOCABULARY_BY_MEANING)
def test_the_default_vocabulary_hears_asks_thanks_and_look_ups_in_agents_own_words(
    vocabulary: str, text: str, heard: bool
) -> None:
    phrases = load_scorecard(DEFAULT_SCORECARD).phrases
    assert (phrases.find(text, getattr(phrases, vocabulary)) is not None) is heard


def test_an_unasked_look_up_still_has_the_look_up_limit() -> None:
    phrases = load_scorecard(DEFAULT_SCORECARD).phrases
    said = [utt("agent", 0.0, 2.0, "嗯，我找找"), utt("agent", 80.0, 83.0, "您的订单明天到")]
    (hold,) = find_holds(said, [], [], 90.0, MetricsConfig(), phrases)
    assert not hold.asked and hold.lookup
