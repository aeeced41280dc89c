"""Scorecards as data: the default one covers the handbook; a broken one is refused, naming file, rule and field."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from test_rules_helpers import card

from pipeline.errors import CallQAError
from pipeline.records import CallMeta
from pipeline.rules import DEFAULT_SCORECARD, load_scorecard, load_scorecards, parse_scorecard, scorecard_for
from pipeline.rules.handbook import HANDBOOK_RULES
from pipeline.rules.schema import ScorecardSpec

ROOT = Path(__file__).resolve().parent.parent
HANDBOOK = ROOT.parent / "shared" / "standards" / "service-standards.md"


def test_the_default_scorecard_has_every_handbook_rule_in_its_category() -> None:
    sc = load_scorecard(DEFAULT_SCORECARD)
    ids = [r.id for r in sc.rules]
    assert sorted(ids) == sorted(HANDBOOK_RULES)
    # every id of the handbook's tables (`| ID |`) and sections, spelled the same
    text = HANDBOOK.read_text(encoding="utf-8")
    in_handbook = set(re.findall(r"^\| ([A-Z][A-Z-]+) \|", text, re.MULTILINE))
    in_handbook |= set(re.findall(r"id (FORBIDDEN|FATAL-[A-Z]+)", text)) | {"FATAL-DATA-LEAK"}
    assert len(in_handbook) == 25 and set(ids) == in_handbook
    for rule in sc.rules:
        assert rule.category == HANDBOOK_RULES[rule.id].category, rule.id
        assert re.search(r"[\u4e00-\u9fff]", rule.title), rule.id  # Chinese titles
        assert rule.fatal == (rule.category == "一票否决")


def test_every_forbidden_phrase_of_the_handbook_is_listed_with_a_replacement() -> None:
    sc = load_scorecard(DEFAULT_SCORECARD)
    (forbidden,) = [r for r in sc.rules if r.id == "FORBIDDEN"]
    listed = {e.name for e in forbidden.entries()}
    handbook_phrases = [
        "喂喂", "说话啊", "你到底问什么", "再讲一遍我没听清", "大声点", "不知道", "我是新来的", "我不清楚",
        "我管不了", "说普通话好吗", "我听不懂", "讲国语好吗", "放尊重点", "你听不明白呀", "您听明白了吗",
        "我不是跟你说过了吗", "您记得住吗", "你能快点吗", "你会用电脑吗", "你会下单吗", "我不能告诉您",
        "成吗行吗", "公司规定没办法", "这不是我的工作", "这不归我管",
    ]  # fmt: skip
    assert listed == set(handbook_phrases)
    assert all(e.replacement for e in forbidden.entries())
    assert forbidden.per_occurrence and forbidden.max_deduction


def test_the_hash_is_the_content_hash() -> None:
    sc = load_scorecard(DEFAULT_SCORECARD)
    assert sc.hash == hashlib.sha256(DEFAULT_SCORECARD.read_bytes()).hexdigest()
    assert sc.name == "默认质检评分表" and sc.content == DEFAULT_SCORECARD.read_text(encoding="utf-8")
    edited = sc.content.replace("deduction: 3\n", "deduction: 4\n", 1)
    assert parse_scorecard(edited).hash != sc.hash


def test_json_schema_for_editors() -> None:
    schema = ScorecardSpec.model_json_schema()
    assert "rules" in schema["properties"] and "RequiredPhrase" in schema["$defs"]


GOOD_RULE = """
  - id: CLOSE-ASK
    title: 询问是否还有其他问题
    category: 结束
    type: required_phrase
    window: {last_turns: 3}
    patterns: [请问还有其他问题需要咨询吗]
    deduction: 3
"""


def _refusal(rules: str, tmp_path: Path, head: str = "kind: scorecard\nname: 坏评分表\n") -> str:
    path = tmp_path / "line.yaml"
    path.write_text(head + "rules:\n" + rules, encoding="utf-8")
    with pytest.raises(CallQAError) as caught:
        load_scorecard(path)
    message = str(caught.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (("type: required_phrase", "type: required_phrases"), "type", "未知的规则类型 'required_phrases'"),
        (("patterns: [请问还有其他问题需要咨询吗]", "patterns: ['re:请问(还有']"), "patterns[0]", "无法编译"),
        (("patterns: [请问还有其他问题需要咨询吗]", "patterns: ['re:.*']"), "patterns[0]", "空字符串"),
        (("    deduction: 3\n", ""), "deduction", "缺少必填字段"),
        (("    title: 询问是否还有其他问题\n", ""), "title", "缺少必填字段"),
        (("last_turns: 3", "last_turns: 0"), "window.last_turns", "必须 ≥ 1"),
        (("last_turns: 3", "last_turns: 3, first_s: 10"), "window", "只能设一种窗口"),
        (("last_turns: 3", "before_hold_s: 10"), "（整条规则）", "只能用于 type: hold"),
        (("window: {last_turns: 3}", "windw: {last_turns: 3}"), "windw", "未知字段"),
        (("category: 结束", "category: 收尾"), "category", "不允许"),
        (("deduction: 3", "deduction: -3"), "deduction", "≥ 0"),
        (("deduction: 3", "deduction: 三分"), "deduction", "类型不对"),
        (("patterns: [请问还有其他问题需要咨询吗]", "patterns: []"), "patterns", "不能为空"),
        (("patterns: [请问还有其他问题需要咨询吗]", "patterns: ['？！']"), "patterns[0]", "空的"),
    ],
)
def test_a_broken_rule_is_refused_naming_file_rule_and_field(
    change: tuple[str, str], field: str, words: str, tmp_path: Path
) -> None:
    old, new = change
    assert old in GOOD_RULE
    message = _refusal(GOOD_RULE.replace(old, new), tmp_path)
    assert f"规则 CLOSE-ASK：字段 {field}：" in message, message
    assert words in message, message


def test_rule_level_refusals(tmp_path: Path) -> None:
    twice = _refusal(GOOD_RULE + GOOD_RULE, tmp_path)
    assert "规则 CLOSE-ASK：字段 id：规则编号重复" in twice
    wrong_type = GOOD_RULE.replace("type: required_phrase", "type: forbidden_phrase").replace(
        "window: {last_turns: 3}", "replacement: 无"
    )
    assert "手册规则 CLOSE-ASK 的类型是 required_phrase" in _refusal(wrong_type, tmp_path)
    no_id = GOOD_RULE.replace("id: CLOSE-ASK", "id: close ask")
    assert "规则 close ask：字段 id：" in _refusal(no_id, tmp_path)
    metric = """
  - id: RATE
    title: 语速
    category: 服务过程
    type: metric
    metric: agent_chars_per_minute
    max: 200
    deduction: 3
"""
    message = _refusal(metric, tmp_path)
    assert "规则 RATE：字段 （整条规则）：未知指标 'agent_chars_per_minute'" in message
    assert "agent_chars_per_min" in message  # the names that exist
    assert "min 300 大于 max 200" in _refusal(metric.replace("_minute", "_min") + "    min: 300\n", tmp_path)
    where = metric.replace("agent_chars_per_minute", "rings").replace(
        "max: 200", "max: 3\n    where: {by: agent}"
    )
    assert "where 只能用于列表指标" in _refusal(where, tmp_path)
    hold = """
  - id: HOLD-THANK
    title: 等待后致谢
    category: 服务过程
    type: hold
    check: thanked
    window: {before_hold_s: 10}
    patterns: [让您久等了]
    deduction: 3
"""
    assert "规则 HOLD-THANK" in (m := _refusal(hold, tmp_path)) and "window.after_hold_s" in m
    sequence = """
  - id: SILENT-CALL
    title: 无声电话
    category: 服务过程
    type: sequence
    window: {first_s: 8}
    steps:
      - {name: 问候, patterns: [您好]}
      - {name: 提示, patterns: [听不到您讲话], min_gap_s: 5}
      - {name: 结束, patterns: [请您稍后再拨], min_gap_s: 5}
    deduction: 3
"""
    assert "比窗口 8 秒还长，规则永远无法通过" in _refusal(sequence, tmp_path)
    fatal = GOOD_RULE.replace("category: 结束", "category: 一票否决").replace("CLOSE-ASK", "X-FATAL")
    assert "规则 X-FATAL：字段 （整条规则）：一票否决类规则必须写 fatal: true" in _refusal(fatal, tmp_path)
    forbidden = """
  - id: FORBIDDEN
    title: 服务禁语
    category: 服务禁语
    type: forbidden_phrase
    deduction: 5
    phrases:
      - {name: 不知道, patterns: [不知道]}
"""
    assert "服务禁语要写规范用语 replacement，缺：不知道" in _refusal(forbidden, tmp_path)


def test_file_level_refusals(tmp_path: Path) -> None:
    assert "字段 kind：" in _refusal(GOOD_RULE, tmp_path, head="kind: policy\nname: x\n")
    assert "字段 name：缺少必填字段" in _refusal(GOOD_RULE, tmp_path, head="kind: scorecard\n")
    assert "字段 rules[0].id：缺少必填字段" not in _refusal("  - {}\n", tmp_path)  # rule position named
    assert "规则 第 1 条规则：字段 type：缺少 type" in _refusal("  - {}\n", tmp_path)
    dup = GOOD_RULE.replace("    deduction: 3\n", "    deduction: 3\n    deduction: 5\n")
    message = _refusal(dup, tmp_path)
    assert "重复的键 'deduction'" in message and "第 12 行" in message
    assert "YAML 格式错误" in _refusal("  - id: [unclosed\n", tmp_path)
    bad_matching = "kind: scorecard\nname: x\nmatching: {review_below: 2}\n"
    assert "字段 matching.review_below：" in _refusal(GOOD_RULE, tmp_path, head=bad_matching)
    with pytest.raises(CallQAError, match="不存在"):
        load_scorecard(tmp_path / "missing.yaml")


def test_several_scorecards_per_business_line(tmp_path: Path) -> None:
    rule = GOOD_RULE.replace("  - ", "- ", 1).replace("\n    ", "\n  ")
    default = card(rule, name="默认")
    shop = card(rule, name="网店", extra="applies_to: {agent_ids: ['2001', '2002']}\n")
    (tmp_path / "default.yaml").write_text(default.content, encoding="utf-8")
    (tmp_path / "shop.yaml").write_text(shop.content, encoding="utf-8")
    (tmp_path / "policy.yaml").write_text("kind: policy\nrewards: [100, 50, 30]\n", encoding="utf-8")
    cards = load_scorecards(tmp_path)
    assert {c.name for c in cards} == {"默认", "网店"}
    assert scorecard_for(CallMeta(call_id="a", agent_id="2002"), cards).name == "网店"
    assert scorecard_for(CallMeta(call_id="b", agent_id="1001"), cards).name == "默认"
    assert default.hash != shop.hash
    (tmp_path / "default.yaml").unlink()
    with pytest.raises(CallQAError, match="默认评分表应恰好一份"):
        scorecard_for(CallMeta(call_id="b", agent_id="1001"), load_scorecards(tmp_path))
