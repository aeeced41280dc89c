"""Canonical text, pinyin-tolerant matching and the default scorecard's guards against false hits."""

from __future__ import annotations

import pytest
from test_rules_helpers import card, metrics, only, score, utt

from pipeline.records import Utterance
from pipeline.rules import DEFAULT_SCORECARD, load_scorecard
from pipeline.rules.matching import (
    HOMOPHONE,
    NEAR,
    OTHER,
    Costs,
    PatternError,
    canonical,
    compile_pattern,
    relation,
    sounds_alike,
)


@pytest.mark.parametrize(
    ("written", "canonical_text"),
    [
        ("我们会在24小时内与您联系", "我们会在二四小时内与您联系"),
        ("我们会在二十四小时内与您联系", "我们会在二四小时内与您联系"),
        ("價格是三千五百零九", "价格是三五零九"),
        ("一千三百八，不含稅", "一三八零不含税"),
        ("两百块，两个人", "二零零块两个人"),
        ("五零三幺很高兴为您服务", "五零三一很高兴为您服务"),
        ("ＡＰＰ 里面，ｐｌｕｓ会员！", "APP里面PLUS会员"),
        ("万一，千万不要", "万一千万不要"),
    ],
)
def test_canonical_text(written: str, canonical_text: str) -> None:
    assert canonical(written).text == canonical_text


def test_canonical_characters_map_back_to_the_original() -> None:
    norm = canonical("好的，請問您貴姓？")
    start = norm.text.index("请问")
    a, b = norm.raw_span(start, start + 4)
    assert norm.raw[a:b] == "請問您貴"
    number = canonical("在24小时内")
    i = number.text.index("二四")
    assert number.raw[slice(*number.raw_span(i, i + 2))] == "24"


def test_how_characters_sound_alike() -> None:
    assert relation("请", "清") == HOMOPHONE and relation("咨", "资") == HOMOPHONE
    assert relation("您", "你") == NEAR and relation("稍", "收") == NEAR and relation("吗", "卖") == NEAR
    assert relation("册", "查") == OTHER  # pypinyin's rare reading 册 = zha must not make them homophones
    assert relation("您", "好") == OTHER


@pytest.mark.parametrize(
    ("expected", "heard", "alike"),
    [
        ("请您稍等", "请您收到", True),  # 稍 near 收, 等 deng / 到 dao: the same initial
        ("感谢您的来电", "干谢您的来点", True),  # 感/干 homophones, 电/点 the same initial
        ("请您稍等", "请您看看", False),  # kan kan: other consonants
        ("请您稍等", "请问收到", False),  # 您 nin / 问 wen: another consonant
        ("请您稍等", "收到收到", False),  # fewer than half the same
        ("请您稍等", "请您稍等一", False),  # not as many characters
        ("跟您确认一下", "管您去问一下", False),  # three syllables changed: another sentence
        # a long sentence with four syllables misheard, three of them near: still recognisable
        ("请您稍后为本次服务打分", "请你收护为本次服务打增", True),
        ("感谢您的耐心等待", "好的您的耐心等待", False),  # two syllables unlike: another word
    ],
)
def test_sounds_alike_keeps_every_syllable_s_first_consonant(expected: str, heard: str, alike: bool) -> None:
    assert sounds_alike(expected, heard) is alike


def test_budget_grows_with_length() -> None:
    costs = Costs()
    assert [costs.budget(n) for n in (1, 2, 3, 5, 8, 12, 20)] == [0, 0, 0.25, 0.5, 1.0, 1.5, 1.5]
    two = compile_pattern("你们")
    assert two.search(canonical("您们"), costs) == []  # two characters: exact only
    long = compile_pattern("请您稍后对本次服务进行评价")
    assert long.search(canonical("请您稍后对本次服务进行平价"), costs)  # one homophone in 13
    assert not long.search(canonical("请您稍后对本次附近进行个价"), costs)  # 附 homophone + 近 + 个: 2.25


def test_gaps_regexes_and_required_characters() -> None:
    costs = Costs()
    gap = compile_pattern("您咨询的是…问题")
    (m,) = gap.search(canonical("请问您咨询的是空调不制冷并且滴水的问题，对吗？"), costs)
    assert m.cost == 0
    assert not gap.search(canonical("您咨询的是" + "很" * 40 + "问题"), costs)  # gap longer than 30
    regex = compile_pattern("re:[零一二三四五六七八九]+个?小时内")
    assert regex.search(canonical("我核实后4小时内回复您"), costs)
    closing = compile_pattern("请问[还]有什么可以帮您")
    assert not closing.search(
        canonical("您好，请问有什么可以帮您？"), costs
    )  # the opening is not the closing
    assert closing.search(canonical("请问孩有什么可以帮你？"), costs)  # homophone of the bracketed 还 is fine
    for bad, words in (("re:(", "无法编译"), ("re:a*", "空字符串"), ("！？", "空的"), ("请问[还", "不成对")):
        with pytest.raises(PatternError, match=words):
            compile_pattern(bad)


# ---- the default scorecard's guards (the examples) ----------------------------------------


@pytest.fixture(scope="module")
def default():
    return load_scorecard(DEFAULT_SCORECARD)


def _forbidden(result) -> list[str]:
    return [f.evidence for f in result.findings if f.rule_id == "FORBIDDEN" and not f.passed]


@pytest.mark.parametrize(
    "said",
    [
        "您知不知道您的订单号？",
        "不知道您是否方便现在核对一下？",
        "不知道您这边有没有收到短信？",
        "您要是不知道订单号，我帮您查。",
        "请您再讲一遍好吗？",
        "您是在建行吗？还是农行吗？",
        "喂，您好，请问能听到吗？",  # one 喂 is not the forbidden 喂！喂！
        "这款洗衣机是滚筒的，",
    ],
)
def test_no_forbidden_hit_on_polite_speech(said: str, default) -> None:
    result = score(default, [utt("agent", 0, 4, said)])
    assert _forbidden(result) == []
    assert only(result, "FATAL-ABUSE").passed


@pytest.mark.parametrize(
    ("said", "phrase"),
    [
        ("这个我不知道。", "不知道"),
        ("这个我不知到。", "不知到"),  # ASR homophone
        ("喂！喂！说话啊！", "喂！喂"),
        ("这不归我管，你去找别人。", "这不归我管"),
        ("就这样，行吗？", "行吗"),
        ("这是公司的规定，我也没有办法。", "这是公司的规定"),
        ("我们这边还不是特别清楚。", "我们这边还不是特别清楚"),
    ],
)
def test_forbidden_hits(said: str, phrase: str, default) -> None:
    (evidence, *_) = _forbidden(score(default, [utt("agent", 0, 4, said)]))
    assert f"【{phrase}】" in evidence


def test_polite_you_guards(default) -> None:
    product = [utt("agent", 0, 4, "我们的“你好生活”套餐和《你的专属》迷你版都可以选。")]
    assert only(score(default, product), "POLITE-YOU").passed
    plural = [utt("agent", 0, 4, "你们可以合资一下。")]
    assert not only(score(default, plural), "POLITE-YOU").passed
    text = DEFAULT_SCORECARD.read_text(encoding="utf-8").replace("      # - 你们\n", "      - 你们\n")
    from pipeline.rules import parse_scorecard

    allows_plural = parse_scorecard(text, "rules/你们可以.yaml")
    assert only(score(allows_plural, plural), "POLITE-YOU").passed
    assert not only(score(allows_plural, [utt("agent", 0, 4, "你先别说了")]), "POLITE-YOU").passed


def test_polite_you_never_deducts_on_the_recogniser_alone(default) -> None:
    # whisper often writes 您 as 你, even when sure (10 of 30 sure ones on real speech): a person listens
    sure = only(score(default, [utt("agent", 0, 3, "你先别说了")]), "POLITE-YOU")
    assert not sure.passed and sure.needs_review and sure.deduction == 0 and "认成" in sure.evidence
    unsure = only(score(default, [utt("agent", 0, 3, "你是正在为您查询", low="你", p_low=0.6)]), "POLITE-YOU")
    assert not unsure.passed and unsure.needs_review and unsure.deduction == 0
    # a typed transcript (no recogniser timings) is what the agent said: it deducts
    typed = only(score(default, [Utterance("agent", 0, 3, "你先别说了")]), "POLITE-YOU")
    assert not typed.passed and not typed.needs_review and typed.deduction == 3


def test_close_ask_is_not_satisfied_by_the_opening_in_a_short_call(default) -> None:
    call = [
        utt("agent", 0, 3, "您好，请问有什么可以帮您？"),
        utt("customer", 4, 6, "没事了"),
        utt("agent", 7, 8, "好的再见"),
    ]
    assert not only(score(default, call), "CLOSE-ASK").passed
    curt = [utt("agent", 54, 59, "四零零八八八六六六六，还有别的事吗？")]  # 1003: 还有别的事吗 is curt
    assert not only(score(default, curt), "CLOSE-ASK").passed


def test_a_refused_metric_comparison(tmp_path) -> None:
    from pipeline.errors import CallQAError

    with pytest.raises(CallQAError, match="hangup_by 不是数值，不能用 min / max"):
        card(
            """
- id: HANGUP-LAST
  title: 客户先挂机
  category: 结束
  type: metric
  metric: hangup_by
  max: 1
  deduction: 5
"""
        )
    sc = card(
        """
- id: X-NUISANCE
  title: 骚扰电话超时
  category: 服务过程
  type: metric
  metric: nuisance_over_max
  equals: false
  deduction: 3
"""
    )
    assert not only(score(sc, [], metrics(nuisance_over_max=True)), "X-NUISANCE").passed
    assert only(score(sc, [], metrics(nuisance_over_max=False)), "X-NUISANCE").passed


def test_a_character_heard_unsure_may_be_anything_when_asked_to() -> None:
    from pipeline.rules.matching import sounds_alike

    # 医 (yi) is no reading of 您 (nin), but the recogniser gave 请 and 医 0.12 and 0.14
    assert not sounds_alike("请您稍等", "请医生等")
    assert sounds_alike("请您稍等", "请医生等", [True, True, False, False])
    # three unsure syllables are still another sentence
    assert not sounds_alike("让您久等了", "嗯是这样的", [True] * 5)
