"""Each rule type on hand-built transcripts: pass, fail, the edge of its window, ASR-garbled variants."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_rules_helpers import META, card, hold, interruption, metrics, only, score, utt

from pipeline.errors import CallQAError
from pipeline.records import CallMeta, Utterance, UtteranceRate

GREETING = """
- id: OPEN-GREETING
  title: 标准开场白
  category: 开场
  type: required_phrase
  window: {first_turns: 2}
  groups:
    问候: [您好]
    询问需求: [请问有什么可以帮到您, 请问有什么可以帮您]
  deduction: 5
"""


# ---- required_phrase -----------------------------------------------------------------------------


def test_required_phrase_passes_with_the_quote_and_time_as_evidence() -> None:
    result = score(card(GREETING), [utt("agent", 7.0, 11.0, "您好，星河电器，请问有什么可以帮到您？")])
    f = only(result, "OPEN-GREETING")
    assert f.passed and f.deduction == 0 and not f.needs_review
    assert "【您好】" in f.evidence and "【请问有什么可以帮到您】" in f.evidence
    assert f.start == pytest.approx(7.0) and 10.0 < f.end <= 11.0 and f.speaker == "agent"
    assert result.score == 100


@pytest.mark.parametrize(
    "heard",
    [
        "您好，请问有什么可以帮到你？",  # 您 → 你 (near pinyin)
        "您好，清问有什么可以帮到您。",  # 请 → 清 (homophone)
        "您好，请问有什么可以帮您的？",  # a word left out
        "您好請問有什麼可以幫到您",  # traditional characters, no punctuation
        "您好，請問有甚麼可以幫到您？",  # traditional, a variant character
    ],
)
def test_required_phrase_survives_asr_errors(heard: str) -> None:
    f = only(score(card(GREETING), [utt("agent", 0.0, 4.0, heard)]), "OPEN-GREETING")
    assert f.passed, (heard, f.evidence)


def test_required_phrase_missing_fails_with_what_was_missing() -> None:
    result = score(card(GREETING), [utt("agent", 25.8, 27.8, "喂，说吧，什么事？")])
    f = only(result, "OPEN-GREETING")
    assert not f.passed and f.deduction == 5 and not f.needs_review and f.confidence == 1.0
    assert "问候" in f.evidence and "询问需求" in f.evidence
    assert (f.start, f.end) == (25.8, 27.8)
    assert result.score == 95


def test_required_phrase_outside_its_window_does_not_count() -> None:
    turns = [
        utt("agent", 0, 2, "喂？"),
        utt("customer", 2.5, 3, "你好"),
        utt("agent", 3.5, 5, "喂，哪位？"),
        utt("customer", 5.5, 6, "我想问一下"),
        utt("agent", 6.5, 9, "您好，请问有什么可以帮您？"),  # third agent turn: too late
    ]
    assert not only(score(card(GREETING), turns), "OPEN-GREETING").passed
    assert only(score(card(GREETING), turns[2:]), "OPEN-GREETING").passed


def test_consecutive_utterances_of_one_party_are_one_turn() -> None:
    # ASR cut the opening in three at pauses: still the agent's first turn
    turns = [
        utt("agent", 0, 1, "您好，"),
        utt("agent", 1.5, 2.5, "星河电器。"),
        utt("agent", 3, 5, "请问有什么可以帮您？"),
    ]
    assert only(score(card(GREETING), turns), "OPEN-GREETING").passed


def test_seconds_window_edges() -> None:
    rule = """
    - id: X-EARLY
      title: 早说
      category: 开场
      type: required_phrase
      window: {first_s: 10}
      patterns: [欢迎致电]
      deduction: 1
    """
    sc = card(rule, matching="time_slack_s: 0.5")
    m = metrics(answered_at=6.0)  # the window is 6.0–16.0 s, ±0.5 s slack
    assert only(score(sc, [utt("agent", 16.4, 18, "欢迎致电")], m), "X-EARLY").passed
    assert not only(score(sc, [utt("agent", 16.6, 18, "欢迎致电")], m), "X-EARLY").passed
    assert not only(score(sc, [utt("agent", 5.4, 6, "欢迎致电")], m), "X-EARLY").passed


def test_last_turns_window() -> None:
    rule = """
    - id: CLOSE-ASK
      title: 询问是否还有其他问题
      category: 结束
      type: required_phrase
      window: {last_turns: 2}
      patterns: [请问还有其他问题需要咨询吗]
      deduction: 3
    """
    turns = [
        utt("agent", 0, 3, "请问还有其他问题需要资讯吗？"),  # ASR: 咨询 → 资讯
        utt("customer", 4, 5, "没有了。"),
        utt("agent", 6, 8, "感谢您的来电。"),
    ]
    assert only(score(card(rule), turns), "CLOSE-ASK").passed
    later = [*turns, utt("customer", 9, 10, "好"), utt("agent", 11, 12, "再见")]
    assert not only(score(card(rule), later), "CLOSE-ASK").passed


def test_a_near_miss_goes_to_review_instead_of_deducting() -> None:
    rule = """
    - id: CLOSE-SURVEY
      title: 邀请评价
      category: 结束
      type: required_phrase
      patterns: [请您稍后对本次服务进行评价]
      deduction: 3
    """
    # 稍→收 (near pinyin 0.5) + 务→物 (homophone 0.25) + 评→个 (1): 1.75, just over the budget of 1.5
    f = only(score(card(rule), [utt("agent", 0, 4, "请您收后对本次服物进行个价")]), "CLOSE-SURVEY")
    assert not f.passed and f.needs_review and f.deduction == 0 and f.confidence < 0.7
    assert "最接近的是" in f.evidence and "确认后扣 3 分" in f.evidence
    f = only(score(card(rule), [utt("agent", 0, 4, "好的再见")]), "CLOSE-SURVEY")
    assert not f.passed and not f.needs_review and f.deduction == 3


def test_an_almost_match_the_recogniser_was_unsure_of_goes_to_review() -> None:
    # 请问有了什么可以帮帮您 is two edits from 请问有什么可以帮您 (budget 1): heard sure, the phrase was
    # not said; with a character the recogniser was unsure of, it may have been said and misheard
    heard = "您好，这里是星河电器，请问有了什么可以帮帮您？"
    sure = only(score(card(GREETING), [utt("agent", 7, 11, heard)]), "OPEN-GREETING")
    assert not sure.passed and not sure.needs_review and sure.deduction == 5
    unsure = only(score(card(GREETING), [utt("agent", 7, 11, heard, low="了")]), "OPEN-GREETING")
    assert not unsure.passed and unsure.needs_review and unsure.deduction == 0
    assert "最接近的是" in unsure.evidence and "确认后扣 5 分" in unsure.evidence


def test_a_stretch_that_sounds_like_the_phrase_goes_to_review_even_heard_sure() -> None:
    rule = """
    - id: ASK-TO-WAIT
      title: 请客户稍等
      category: 服务过程
      type: required_phrase
      patterns: [请您稍等]
      deduction: 5
    """
    # whisper, sure of itself, wrote 请您收到 (shou dao) for 请您稍等 (shao deng) on three tuning
    # calls: every syllable begins as the phrase's does, half of them are the same characters
    alike = only(score(card(rule), [utt("agent", 0, 3, "请您收到，我帮您查一下")]), "ASK-TO-WAIT")
    assert not alike.passed and alike.needs_review and alike.deduction == 0
    assert "最接近的是" in alike.evidence and "【请您收到】" in alike.evidence
    # the same two characters before other sounds (看看 kan kan): not the phrase, deducted
    other = only(score(card(rule), [utt("agent", 0, 3, "请您看看，我帮您查一下")]), "ASK-TO-WAIT")
    assert not other.passed and not other.needs_review and other.deduction == 5


def test_a_loose_almost_match_proves_nothing_however_unsure() -> None:
    rule = """
    - id: CLOSE-THANK
      title: 结束语
      category: 结束
      type: required_phrase
      patterns: [再见]
      deduction: 3
    """
    # 在建: two homophones of 再见 (similarity 0.75) — 在家: 家 only near in sound (0.625)
    close = only(score(card(rule), [utt("agent", 0, 2, "好的在建", low="在建")]), "CLOSE-THANK")
    assert close.needs_review and close.deduction == 0
    loose = only(score(card(rule), [utt("agent", 0, 2, "好的在家", low="在家")]), "CLOSE-THANK")
    assert not loose.passed and not loose.needs_review and loose.deduction == 3


def test_required_phrase_applies_only_when_its_condition_holds() -> None:
    rule = """
    - id: ESCALATE-TIME
      title: 承诺回复时限
      category: 服务过程
      type: required_phrase
      applies_if: {said: {patterns: [核实, 反馈]}}
      patterns: ['re:[零一二三四五六七八九]+个?小时内']
      deduction: 5
    """
    sc = card(rule)
    solved = only(score(sc, [utt("agent", 0, 3, "已经帮您改好了")]), "ESCALATE-TIME")
    assert solved.passed and solved.evidence.startswith("不适用")
    pending = only(score(sc, [utt("agent", 0, 3, "我帮您核实一下再联系您")]), "ESCALATE-TIME")
    assert not pending.passed and "核实" in pending.evidence
    for promise in ("我核实确认后4小时内回复您", "我核实确认后四小时内回复您", "核实后二十四小时内回复"):
        assert only(score(sc, [utt("agent", 0, 3, promise)]), "ESCALATE-TIME").passed, promise


def test_no_utterance_in_the_window_is_a_review_item() -> None:
    f = only(score(card(GREETING), [utt("customer", 0, 2, "喂？")]), "OPEN-GREETING")
    assert not f.passed and f.needs_review and f.deduction == 0


# ---- forbidden_phrase ----------------------------------------------------------------------------

FORBIDDEN = """
- id: FORBIDDEN
  title: 服务禁语
  category: 服务禁语
  type: forbidden_phrase
  per_occurrence: true
  deduction: 5
  max_deduction: 12
  phrases:
    - name: 不知道
      patterns: [不知道]
      exceptions: [知不知道, 不知道您]
      replacement: 对不起，这个问题我帮您核实一下。
    - name: 这不归我管
      patterns: [这不归我管, 不归我管]
      replacement: 我帮您转给负责的部门。
"""


def test_forbidden_phrase_each_occurrence_with_replacement() -> None:
    result = score(
        card(FORBIDDEN), [utt("agent", 40, 48, "积分的事情我不知道，这不归我管，您去问一下会员中心吧。")]
    )
    hits = [f for f in result.findings if f.rule_id == "FORBIDDEN"]
    assert [(f.passed, f.deduction) for f in hits] == [(False, 5), (False, 5)]
    assert "【不知道】" in hits[0].evidence and "【这不归我管】" in hits[1].evidence
    assert hits[0].replacement.startswith("对不起") and hits[1].replacement.startswith("我帮您转")
    assert 40 < hits[0].start < hits[0].end <= hits[1].start < hits[1].end <= 48
    assert result.score == 90


def test_forbidden_phrase_guards_against_false_hits() -> None:
    clean = [
        utt("agent", 0, 3, "您知不知道您的订单号？"),
        utt("agent", 4, 8, "不知道您是否方便现在核对一下？"),
        utt("customer", 9, 11, "我不知道，这不归我管"),  # the customer's words are not the agent's
    ]
    result = score(card(FORBIDDEN), clean)
    (f,) = [f for f in result.findings if f.rule_id == "FORBIDDEN"]
    assert f.passed and result.score == 100


def test_forbidden_phrase_deductions_are_capped() -> None:
    said = [utt("agent", i * 5, i * 5 + 3, "这个我不知道。") for i in range(4)]
    hits = [f for f in score(card(FORBIDDEN), said).findings if f.rule_id == "FORBIDDEN"]
    assert [f.deduction for f in hits] == [5, 5, 2, 0]  # cap 12
    assert "上限" in hits[3].evidence


def test_a_forbidden_word_the_recogniser_was_unsure_of_goes_to_review() -> None:
    f = only(score(card(FORBIDDEN), [utt("agent", 0, 3, "这个我不知道", low="不知道")]), "FORBIDDEN")
    assert not f.passed and f.needs_review and f.deduction == 0
    assert f.confidence is not None and f.confidence < 0.7 and "识别把握" in f.evidence


def test_fuzzy_forbidden_phrase_says_how_close_it_was() -> None:
    f = only(score(card(FORBIDDEN), [utt("agent", 0, 3, "这个不知到")]), "FORBIDDEN")  # 道 → 到 (homophone)
    assert not f.passed and f.confidence == pytest.approx(1 - 0.25 / 3, abs=0.01)
    assert "近似匹配" in f.evidence


POLITE = """
- id: POLITE-YOU
  title: 多用您，不用你
  category: 服务过程
  type: forbidden_phrase
  patterns: [你]
  exceptions: [迷你{extra}]
  replacement: 您
  deduction: 3
"""


def test_polite_you_once_per_call_with_the_count() -> None:
    said = [utt("agent", 40, 43, "你先别说了，你把订单号报给我。"), utt("agent", 51, 54, "您好，请稍等。")]
    f = only(score(card(POLITE.format(extra="")), said), "POLITE-YOU")
    assert not f.passed and f.deduction == 3 and "共 2 处" in f.evidence and f.replacement == "您"


def test_polite_you_ignores_quoted_product_names_and_listed_words() -> None:
    said = [utt("agent", 0, 4, "您可以选“你好生活”套餐，或者《你的专属》迷你版。")]
    assert only(score(card(POLITE.format(extra="")), said), "POLITE-YOU").passed
    plural = [utt("agent", 0, 4, "你们可以合资一下。")]
    assert not only(score(card(POLITE.format(extra="")), plural), "POLITE-YOU").passed
    assert only(score(card(POLITE.format(extra=", 你们")), plural), "POLITE-YOU").passed


def test_a_recognised_you_goes_to_review_when_the_recogniser_confuses_it() -> None:
    """`recognised_needs_review`: whisper writes 你 for 您 (10 of 30 sure 你 in the real clips were 您),
    so a 你 read by the recogniser, however sure, waits for a person; a typed transcript deducts."""
    confused = POLITE.format(extra="") + "  recognised_needs_review: true\n"
    heard = only(score(card(confused), [utt("agent", 40, 43, "你把订单号报给我。")]), "POLITE-YOU")
    assert not heard.passed and heard.needs_review and heard.deduction == 0
    assert "识别模型常把“您”认成“你”" in heard.evidence and heard.confidence == 1.0
    typed = Utterance("agent", 40, 43, "你把订单号报给我。")  # no character timings: typed, not recognised
    f = only(score(card(confused), [typed]), "POLITE-YOU")
    assert not f.passed and not f.needs_review and f.deduction == 3
    plain = only(
        score(card(POLITE.format(extra="")), [utt("agent", 40, 43, "你把订单号报给我。")]), "POLITE-YOU"
    )
    assert not plain.needs_review and plain.deduction == 3


def test_fatal_finding_scores_zero_and_fails_the_call() -> None:
    rules = (
        FORBIDDEN
        + """
- id: FATAL-ABUSE
  title: 辱骂客户
  category: 一票否决
  type: forbidden_phrase
  fatal: true
  deduction: 100
  patterns: [神经病]
"""
    )
    result = score(card(rules), [utt("agent", 0, 3, "你神经病吧")])
    assert result.fatal and result.score == 0
    f = only(result, "FATAL-ABUSE")
    assert f.fatal and not f.passed and not f.needs_review
    unsure = score(card(rules), [utt("agent", 0, 3, "你神经病吧", low="神经病")])
    assert not unsure.fatal and unsure.score == 100 and only(unsure, "FATAL-ABUSE").needs_review


def test_always_review_never_deducts_on_its_own() -> None:
    rule = """
    - id: FATAL-DATA-LEAK
      title: 泄露客户信息
      category: 一票否决
      type: forbidden_phrase
      fatal: true
      always_review: true
      deduction: 100
      patterns: ['re:一[三四五六七八九][零一二三四五六七八九]{9}']
    """
    result = score(card(rule), [utt("agent", 0, 5, "您的手机号是13812345678对吗")])
    f = only(result, "FATAL-DATA-LEAK")
    assert not f.passed and f.needs_review and f.confidence == 1.0 and not result.fatal
    hotline = score(card(rule), [utt("agent", 0, 5, "会员中心电话四零零八八八六六六六")])
    assert only(hotline, "FATAL-DATA-LEAK").passed


# ---- sequence ------------------------------------------------------------------------------------

ASK_NAME = """
- id: ASK-NAME
  title: 询问并使用客户姓氏
  category: 开场
  type: sequence
  steps:
    - name: 询问贵姓
      patterns: [请问您贵姓, 请问怎么称呼]
    - name: 以姓氏称呼
      patterns: ['re:(?<![好位个的是这那您你我])[\u4e00-\u9fff](先生|女士|小姐)']
  deduction: 3
"""


def test_sequence_steps_in_order() -> None:
    sc = card(ASK_NAME)
    good = [
        utt("agent", 30, 32, "好的，请问您贵姓？"),
        utt("customer", 33, 34, "我姓王。"),
        utt("agent", 35, 40, "王先生您好。"),
    ]
    f = only(score(sc, good), "ASK-NAME")
    assert f.passed and "【王先生】" in f.evidence and f.start < f.end
    never_used = [*good[:2], utt("agent", 35, 40, "好的，您好。")]
    f = only(score(sc, never_used), "ASK-NAME")
    assert not f.passed and "以姓氏称呼" in f.evidence and "已做到：询问贵姓" in f.evidence
    backwards = [utt("agent", 1, 3, "王先生您好"), utt("agent", 30, 32, "请问您贵姓？")]
    assert not only(score(sc, backwards), "ASK-NAME").passed
    polite_but_no_name = [utt("agent", 30, 32, "请问您贵姓？"), utt("agent", 35, 40, "您好先生，这位女士")]
    assert not only(score(sc, polite_but_no_name), "ASK-NAME").passed


SILENT = """
- id: SILENT-CALL
  title: 无声电话规范处理
  category: 服务过程
  type: sequence
  applies_if: {customer_chars_max: 2}
  steps:
    - name: 问候
      patterns: [请问有什么可以帮助您]
    - name: 提示听不到
      patterns: [听不到您讲话]
      min_gap_s: 5
    - name: 礼貌结束
      patterns: [请您稍后再拨]
      min_gap_s: 5
  deduction: 3
"""


def test_silent_call_waits_between_steps() -> None:
    sc = card(SILENT, matching="time_slack_s: 0.5")
    steps = [
        utt("agent", 0, 3, "您好，请问有什么可以帮助您？"),
        utt("agent", 8.2, 10, "您好，听不到您讲话。"),
        utt("agent", 15.5, 19, "对不起，听不到您讲话，请您稍后再拨，再见。"),
    ]
    assert only(score(sc, steps), "SILENT-CALL").passed
    hurried = [steps[0], utt("agent", 4, 6, "您好，听不到您讲话。"), steps[2]]  # waited 1 s, not 5
    f = only(score(sc, hurried), "SILENT-CALL")
    assert not f.passed and "提示听不到" in f.evidence
    talking = [*steps, utt("customer", 20, 22, "喂，能听到吗")]
    assert only(score(sc, talking), "SILENT-CALL").evidence.startswith("不适用")


# ---- metric --------------------------------------------------------------------------------------

RATE = """
- id: RATE
  title: 语速适中
  category: 服务过程
  type: metric
  metric: agent_chars_per_min
  min: 100
  max: 200
  deduction: 3
"""


@pytest.mark.parametrize(
    ("rate", "passed", "review"),
    [
        (150.0, True, False),
        (240.0, False, False),
        (90.0, False, False),
        (204.0, False, True),
        (100.0, True, False),
    ],
)
def test_metric_threshold(rate: float, passed: bool, review: bool) -> None:
    f = only(score(card(RATE), [], metrics(agent_chars_per_min=rate)), "RATE")
    assert (f.passed, f.needs_review) == (passed, review)
    assert f.deduction == (3 if not passed and not review else 0)
    assert f"{rate:.1f}" in f.evidence


def test_a_rate_out_of_range_only_through_unreliable_text_goes_to_review() -> None:
    # the agent's second utterance is whisper writing dots over music (compression ratio 60): its
    # 2 characters in 10 s pull the call's rate to 81; the reliable utterance alone says 150
    clear = utt("agent", 0, 10, "您好这里是星河电器客户服务中心请问有什么可以帮您")
    dots = replace(utt("agent", 20, 30, "……好的"), compression_ratio=60.0)
    rates = (UtteranceRate(0, "agent", 25, 10.0, 150.0), UtteranceRate(1, "agent", 2, 10.0, 12.0))
    m = metrics(agent_chars_per_min=81.0, utterance_rates=rates)
    f = only(score(card(RATE), [clear, dots], m), "RATE")
    assert not f.passed and f.needs_review and f.deduction == 0
    assert "00:20.0 的转写不可靠" in f.evidence and "只看可靠的话语语速 150" in f.evidence
    # slow on the reliable text as well: deducted
    slow = (UtteranceRate(0, "agent", 14, 10.0, 84.0), rates[1])
    f = only(
        score(card(RATE), [clear, dots], metrics(agent_chars_per_min=48.0, utterance_rates=slow)), "RATE"
    )
    assert not f.passed and not f.needs_review and f.deduction == 3
    # the same figures on reliable text: deducted
    f = only(score(card(RATE), [clear, replace(dots, compression_ratio=1.2)], m), "RATE")
    assert not f.passed and not f.needs_review and f.deduction == 3


def test_unknown_metric_is_never_a_silent_pass() -> None:
    f = only(score(card(RATE), [], metrics(agent_chars_per_min=None)), "RATE")
    assert f.passed and f.needs_review and f.evidence.startswith("无法判断")
    f = only(score_no_metrics(card(RATE)), "RATE")
    assert f.needs_review and "通话指标" in f.evidence
    strict = card(RATE.replace("deduction: 3", "deduction: 3\n  when_unknown: fail"))
    f = only(score(strict, [], metrics(agent_chars_per_min=None)), "RATE")
    assert not f.passed and f.deduction == 3


def score_no_metrics(sc):
    from pipeline.rules import score_call

    return score_call([utt("agent", 0, 2, "您好")], None, META, sc)


NO_INTERRUPT = """
- id: NO-INTERRUPT
  title: 不打断客户
  category: 服务过程
  type: metric
  metric: interruptions
  where: {by: agent}
  max: 0
  deduction: 5
"""


def test_interruptions_count_only_the_agents() -> None:
    sc = card(NO_INTERRUPT)
    assert only(
        score(sc, [], metrics(interruptions=(interruption(10, by="customer"),))), "NO-INTERRUPT"
    ).passed
    m = metrics(interruptions=(interruption(40.1), interruption(63.2), interruption(70, by="customer")))
    f = only(score(sc, [], m), "NO-INTERRUPT")
    assert not f.passed and f.deduction == 5 and f.start == 40.1 and f.speaker == "agent"
    assert "打断 2次" in f.evidence and "你先别说了" in f.evidence
    per_each = card(NO_INTERRUPT.replace("deduction: 5", "deduction: 2\n  per_occurrence: true"))
    found = [f for f in score(per_each, [], m).findings if f.rule_id == "NO-INTERRUPT"]
    assert [(f.start, f.deduction) for f in found] == [(40.1, 2), (63.2, 2)]


def test_an_interruption_read_from_weak_text_goes_to_review() -> None:
    """A 嗯 over the customer heard as 人 with probability 0.1 may be a back-channel: a person decides."""
    sc = card(NO_INTERRUPT)
    weak = [
        replace(utt("agent", 40.0, 41.2, "人", low="人"), confidence=0.29),
        utt("customer", 38.0, 44.0, "我们这边的产品可以保七十种重大疾病"),
    ]
    m = metrics(interruptions=(interruption(40.1, text="人"),))
    f = only(score(sc, weak, m), "NO-INTERRUPT")
    assert not f.passed and f.needs_review and f.deduction == 0 and "转写不可靠" in f.evidence
    # the same overlap heard clearly deducts; with one clear and one weak, the clear one is the evidence
    clear = [
        utt("agent", 40.0, 41.2, "你先别说了"),
        *weak[1:],
        replace(utt("agent", 63.0, 64.0, "人", low="人"), confidence=0.29),
    ]
    f = only(score(sc, clear, m), "NO-INTERRUPT")
    assert not f.passed and not f.needs_review and f.deduction == 5
    both = metrics(interruptions=(interruption(40.1), interruption(63.2, text="人")))
    later_clear = [
        replace(utt("agent", 40.0, 41.2, "人", low="人"), confidence=0.29),
        utt("agent", 63.0, 64.0, "你先别说了"),
    ]
    f = only(score(sc, later_clear, both), "NO-INTERRUPT")
    assert f.deduction == 5 and f.start == 63.2 and "打断 2次" in f.evidence


HANGUP = """
- id: HANGUP-LAST
  title: 客户先挂机
  category: 结束
  type: metric
  metric: hangup_by
  not_equals: agent
  excused_if_quiet_before_end_s: 5
  deduction: 5
"""


def test_hangup_last_allows_the_agent_after_five_quiet_seconds() -> None:
    closing = [utt("agent", 60, 63, "感谢您的来电，再见。")]
    sc = card(HANGUP)
    assert only(score(sc, closing, metrics(hangup_by="customer", duration_s=64)), "HANGUP-LAST").passed
    f = only(score(sc, closing, metrics(hangup_by="agent", duration_s=64.5)), "HANGUP-LAST")
    assert not f.passed and f.deduction == 5 and f.start == 63 and f.end == 64.5
    waited = only(score(sc, closing, metrics(hangup_by="agent", duration_s=69)), "HANGUP-LAST")
    assert waited.passed and "手册允许" in waited.evidence
    unknown = only(score(sc, closing, metrics(hangup_by=None, hangup_source=None)), "HANGUP-LAST")
    assert unknown.passed and unknown.needs_review


def test_a_hangup_guessed_from_the_audio_goes_to_review() -> None:
    """`review_if_source: [audio]`: the recording shows who spoke last, not who pressed the button."""
    closing = [utt("agent", 60, 63, "感谢您的来电，再见。")]
    sc = card(HANGUP + "  review_if_source: [audio]\n")
    guessed = only(
        score(sc, closing, metrics(hangup_by="agent", hangup_source="audio", duration_s=64)), "HANGUP-LAST"
    )
    assert not guessed.passed and guessed.needs_review and guessed.deduction == 0
    assert "录音分析推测" in guessed.evidence
    logged = only(
        score(sc, closing, metrics(hangup_by="agent", hangup_source="metadata", duration_s=64)), "HANGUP-LAST"
    )
    assert not logged.passed and not logged.needs_review and logged.deduction == 5
    with pytest.raises(CallQAError, match="不是来源"):
        card(HANGUP + "  review_if_source: [guess]\n")


def test_nuisance_limit_applies_to_nuisance_calls_only() -> None:
    rule = """
    - id: NUISANCE-MAX
      title: 骚扰电话不超过 10 分钟
      category: 服务过程
      type: metric
      metric: duration_s
      max: 600
      applies_if: {call_type: [F]}
      deduction: 3
    """
    sc = card(rule)
    assert only(score(sc, [], metrics(duration_s=900)), "NUISANCE-MAX").evidence.startswith("不适用")
    f = only(score(sc, [], metrics(duration_s=900, call_type="F")), "NUISANCE-MAX")
    assert not f.passed and f.deduction == 3
    meta_f = CallMeta(call_id="T2", call_type="F")
    assert only(score(sc, [], metrics(duration_s=300), meta=meta_f), "NUISANCE-MAX").passed


# ---- hold ----------------------------------------------------------------------------------------

HOLDS = """
- id: HOLD-ASK
  title: 等待前征得同意
  category: 服务过程
  type: hold
  check: asked
  min_hold_s: 10
  window: {before_hold_s: 15}
  patterns: [请您稍等, 请您稍等可以吗]
  deduction: 5
- id: HOLD-CHECKIN
  title: 每 15 秒回应
  category: 服务过程
  type: hold
  check: checkins
  max_gap_s: 15
  deduction: 3
- id: HOLD-MAX
  title: 等待不超过 2 分钟
  category: 服务过程
  type: hold
  check: max_duration
  max_s: 120
  window: {before_hold_s: 15}
  lookup_patterns: [查询, 核实]
  lookup_max_s: 60
  deduction: 3
- id: HOLD-THANK
  title: 等待后致谢
  category: 服务过程
  type: hold
  check: thanked
  min_hold_s: 10
  window: {after_hold_s: 10}
  patterns: [让您久等了, 感谢您的耐心等待]
  deduction: 3
"""


def _hold_call(ask: str, thank: str, ask_at: float = 46.5) -> list:
    return [
        utt("agent", ask_at, ask_at + 6.5, ask),
        utt("customer", 53.6, 54.2, "好的。"),
        utt("agent", 79.2, 82.0, thank),
    ]


def test_a_model_hold_passes_every_hold_rule() -> None:
    call = _hold_call("我需要帮您查询一下维修记录，请您稍等可以吗？", "王先生，让您久等了。")
    m = metrics(holds=(hold(54.6, 78.6, checkins=1, checkin_times=(63.4,), max_checkin_gap_s=9.0),))
    result = score(card(HOLDS), call, m)
    assert all(f.passed for f in result.findings), [f.evidence for f in result.findings]
    assert "查询类标准 ≤ 60 秒" in only(result, "HOLD-MAX").evidence


def test_hold_without_asking_checking_in_or_thanks() -> None:
    call = [utt("agent", 2, 9, "您好，请问有什么可以帮到您？"), utt("agent", 42, 50, "积分的事情我不知道。")]
    m = metrics(holds=(hold(16.4, 41.4, asked=False, thanked=False),))
    result = score(card(HOLDS), call, m)
    assert not only(result, "HOLD-ASK").passed
    checkin = only(result, "HOLD-CHECKIN")
    assert not checkin.passed and "最长 25 秒" in checkin.evidence
    assert only(result, "HOLD-MAX").passed
    assert not only(result, "HOLD-THANK").passed
    assert result.score == 100 - 5 - 3 - 3


def test_asking_too_long_before_the_hold_does_not_count() -> None:
    call = _hold_call(
        "请您稍等。", "让您久等了。", ask_at=30.0
    )  # ends 36.5; hold starts 54.6 (> 15 s + slack)
    m = metrics(holds=(hold(54.6, 78.6, asked=False),))
    f = only(score(card(HOLDS), call, m), "HOLD-ASK")
    assert not f.passed and not f.needs_review


def test_asr_garbled_hold_ask_still_counts() -> None:
    call = _hold_call(
        "我帮您查选一下为修记录，请您收等可以吗？", "让您久等了。"
    )  # 稍 → 收 (one pinyin letter)
    m = metrics(holds=(hold(54.6, 78.6),))
    assert only(score(card(HOLDS), call, m), "HOLD-ASK").passed


def test_the_metrics_stage_disagreeing_on_the_ask_sends_it_to_review() -> None:
    call = _hold_call("您先等一下我看看。", "让您久等了。")
    m = metrics(holds=(hold(54.6, 78.6, asked=True, ask_text="您先等一下"),))
    f = only(score(card(HOLDS), call, m), "HOLD-ASK")
    assert not f.passed and f.needs_review and "您先等一下" in f.evidence


def test_a_return_whose_first_words_whisper_lost_goes_to_review() -> None:
    # 感谢您的耐心等待 heard as 您的耐心等待…: whisper drops a turn's first syllable after the
    # silence before it — the thanks may well have been said; a return that begins otherwise
    # (您的订单…) proves it was not
    m = metrics(holds=(hold(54.6, 78.6, thanked=False),))
    clipped = _hold_call("请您稍等。", "您的耐心等待，您购买的型号仓库里还有库存。")
    f = only(score(card(HOLDS), clipped, m), "HOLD-THANK")
    assert not f.passed and f.needs_review and f.deduction == 0 and "【您的耐心等待】" in f.evidence
    # the lost head is at most two characters, the tail kept at least four
    for heard in ("您的订单已经查到了，仓库里还有库存。", "等待，您购买的型号仓库里还有库存。"):
        f = only(score(card(HOLDS), _hold_call("请您稍等。", heard), m), "HOLD-THANK")
        assert not f.passed and not f.needs_review and f.deduction == 3, heard
    # or misheard, unsure: 感谢您的耐心等待 heard as 在新年的耐心等待 with 在 0.3, 新 0.2 (tuning batch 3)
    misheard = _hold_call("请您稍等。", "在新年的耐心等待，您的订单已经发货了。")
    misheard[-1] = utt("agent", 79.2, 82.0, "在新年的耐心等待，您的订单已经发货了。", low="在新", p_low=0.25)
    f = only(score(card(HOLDS), misheard, m), "HOLD-THANK")
    assert not f.passed and f.needs_review and f.deduction == 0, f.evidence
    assert "在新【年的耐心等待】" in f.evidence  # the phrase's tail, after the misheard head
    # heard sure, the eight syllables still sound three-quarters like 感谢您的耐心等待 (five the
    # same, 谢/新 and 您/年 near): nonsense that sounds like the phrase is no proof of its absence
    f = only(
        score(card(HOLDS), _hold_call("请您稍等。", "在新年的耐心等待，您的订单已经发货了。"), m),
        "HOLD-THANK",
    )
    assert not f.passed and f.needs_review and f.deduction == 0, f.evidence
    # a return that only shares the end of the phrase is no thanks, heard sure or not
    f = only(
        score(card(HOLDS), _hold_call("请您稍等。", "好嘞，我看了下等待的订单已经发货了。"), m), "HOLD-THANK"
    )
    assert not f.passed and not f.needs_review and f.deduction == 3, f.evidence
    # inside an utterance (not its start) it is no lost onset
    inside = _hold_call("请您稍等。", "好的，您的耐心等待，您购买的型号仓库里还有库存。")
    f = only(score(card(HOLDS), inside, m), "HOLD-THANK")
    assert not f.passed and not f.needs_review, f.evidence


def test_lookup_holds_have_the_shorter_limit() -> None:
    lookup = _hold_call("我帮您核实一下，请您稍等。", "让您久等了。")
    long_hold = metrics(holds=(hold(54.6, 124.6, checkins=5, max_checkin_gap_s=12),))  # 70 s
    f = only(score(card(HOLDS), lookup, long_hold), "HOLD-MAX")
    assert not f.passed and "查询类上限 60" in f.evidence
    other = _hold_call("我去请示一下主管，请您稍等。", "让您久等了。")
    assert only(score(card(HOLDS), other, long_hold), "HOLD-MAX").passed


def test_no_hold_means_not_applicable_and_no_metrics_means_review() -> None:
    result = score(card(HOLDS), [utt("agent", 0, 2, "您好")], metrics(holds=()))
    assert all(f.passed and f.evidence.startswith("不适用") for f in result.findings)
    result = score_no_metrics(card(HOLDS))
    assert all(f.passed and f.needs_review for f in result.findings)


def test_each_bad_hold_is_counted() -> None:
    m = metrics(holds=(hold(10, 40, checkins=0), hold(60, 90, checkins=0)))
    f = only(score(card(HOLDS), [utt("agent", 0, 2, "请您稍等")], m), "HOLD-CHECKIN")
    assert "共 2 次等待不合规" in f.evidence and f.start == 10


def test_a_mono_hold_whose_silence_is_full_of_the_customer_s_voice_goes_to_review() -> None:
    # a mono call: the agent's check-ins over the hold music taken for the customer's voice
    checkins_as_customer = [
        utt("agent", 0, 3, "请您稍等"),
        *(utt("customer", t, t + 6, "我还在核实，马上就好，您再等我一下") for t in (15.0, 30.0, 45.0)),
        utt("agent", 61, 64, "让您久等了"),
    ]
    m = metrics(holds=(hold(3, 61, checkins=0, max_checkin_gap_s=58.0),))
    mono = replace(META, channels="mono")
    f = only(score(card(HOLDS), checkins_as_customer, m, mono), "HOLD-CHECKIN")
    assert not f.passed and f.needs_review and f.deduction == 0 and "被判为客户" in f.evidence
    # in stereo each party has a channel: the customer's voice is the customer's
    stereo = replace(META, channels="stereo-agent-left")
    f = only(score(card(HOLDS), checkins_as_customer, m, stereo), "HOLD-CHECKIN")
    assert not f.passed and not f.needs_review and f.deduction > 0
    # a customer's own 喂，还在吗 in the silence is short: the finding stands
    asked_once = [
        *checkins_as_customer[:1],
        utt("customer", 30.0, 31.5, "喂，还在吗"),
        checkins_as_customer[-1],
    ]
    f = only(score(card(HOLDS), asked_once, m, mono), "HOLD-CHECKIN")
    assert not f.passed and not f.needs_review


# ---- question_count ------------------------------------------------------------------------------

ONE_QUESTION = """
- id: ONE-QUESTION
  title: 一次只问一个问题
  category: 服务过程
  type: question_count
  max_questions: 1
  question_endings: [吗]
  question_tags: [对吗, 是吗, 可以吗, 对吧]
  question_words: [请问, 什么, 怎么, 哪里, 多少, 是否]
  exceptions: [没什么, 什么的]
  deduction: 2
"""


@pytest.mark.parametrize(
    ("said", "questions"),
    [
        ("王先生您好，请问您咨询的是空调不制冷的问题，对吗？", 1),
        ("赵女士，您反映的是洗衣机漏水的问题，对吗？我帮您查询一下，请您稍等可以吗？", 2),
        ("赵女士您反映的是洗衣机漏水的问题对吗我帮您查询一下请您稍等可以吗", 2),  # no punctuation (ASR)
        ("请问您贵姓。您的电话是多少。", 2),  # ASR wrote 。 for ？
        ("您好，请问有什么可以帮到您？", 1),
        ("没什么问题，这些漂流啊什么的都有。", 0),
    ],
)
def test_question_count(said: str, questions: int) -> None:
    f = only(score(card(ONE_QUESTION), [utt("agent", 0, 6, said)]), "ONE-QUESTION")
    assert f.passed == (questions <= 1), f.evidence
    if questions > 1:
        assert f"{questions} 个问题" in f.evidence


def test_questions_separated_by_the_customers_answer_are_separate() -> None:
    call = [
        utt("agent", 0, 2, "请问您贵姓？"),
        utt("customer", 2.5, 3, "姓王"),
        utt("agent", 3.5, 5, "您的电话是多少？"),
    ]
    assert only(score(card(ONE_QUESTION), call), "ONE-QUESTION").passed
    pause = [utt("agent", 0, 2, "请问您贵姓？"), utt("agent", 4, 5, "您的电话是多少？")]  # waited 2 s
    assert only(score(card(ONE_QUESTION), pause), "ONE-QUESTION").passed
    rushed = [utt("agent", 0, 2, "请问您贵姓？"), utt("agent", 2.3, 4, "您的电话是多少？")]
    assert not only(score(card(ONE_QUESTION), rushed), "ONE-QUESTION").passed


# ---- phrase_count --------------------------------------------------------------------------------

BACKCHANNEL = """
- id: BACKCHANNEL
  title: 适当回应，不宜频繁
  category: 服务过程
  type: phrase_count
  patterns: [嗯, 是的, 对, 好的]
  max_per_minute: 6
  min_count: 4
  deduction: 2
"""


def test_backchannels_only_fail_when_too_frequent() -> None:
    sc = card(BACKCHANNEL)
    some = [utt("agent", t, t + 0.3, "嗯。") for t in (5, 15, 25)] + [utt("agent", 40, 42, "好的，请稍等。")]
    assert only(
        score(sc, some, metrics(customer_talk_s=30)), "BACKCHANNEL"
    ).passed  # 好的，请稍等 is no back-channel
    many = [
        utt("agent", t, t + 0.3, w)
        for t, w in ((5, "嗯。"), (8, "对对。"), (11, "是的。"), (14, "嗯嗯"), (17, "好的"))
    ]
    f = only(score(sc, many, metrics(customer_talk_s=30)), "BACKCHANNEL")
    assert not f.passed and f.deduction == 2 and "5 次" in f.evidence
    assert only(score(sc, [], metrics(customer_talk_s=30)), "BACKCHANNEL").passed  # none is fine


# ---- the score -----------------------------------------------------------------------------------


def test_score_never_goes_below_zero() -> None:
    rules = "\n".join(
        f"""
- id: X-RULE-{i}
  title: 规则 {i}
  category: 服务过程
  type: required_phrase
  patterns: [不可能出现的话{i}]
  deduction: 30
"""
        for i in range(5)
    )
    result = score(card(rules), [utt("agent", 0, 2, "您好")])
    assert result.score == 0 and not result.fatal
    assert sum(f.deduction for f in result.findings) == 150
    assert result.scorecard_name == "测试评分表" and len(result.scorecard_hash) == 64
