"""The handbook's rule ids (../shared/standards/service-standards.md) and the matcher each one uses.

Grep a rule id: it appears in its scorecard entry (rules/*.yaml) and here, where the rule type names
the matcher `check_<type>` (pipeline/rules/phrase_checks.py for what is said, metric_checks.py for
metrics and holds; engine.py dispatches). A scorecard may add rules of its own
(any other upper-case id); a handbook id must keep the type listed here, so its meaning cannot drift
between business lines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HandbookRule:
    category: str
    type: str
    summary: str


HANDBOOK_RULES: dict[str, HandbookRule] = {
    # 1. answering the call
    "ANSWER-RINGS": HandbookRule("开场", "metric", "铃响三声内接听"),
    "OPEN-IMMEDIATE": HandbookRule("开场", "metric", "接通即开口，不停顿"),
    "OPEN-GREETING": HandbookRule("开场", "required_phrase", "标准开场白：您好 + 请问有什么可以帮到您"),
    "ASK-NAME": HandbookRule("开场", "sequence", "询问客户贵姓并以 X先生/X女士 称呼"),
    # 2. during the call
    "RATE": HandbookRule("服务过程", "metric", "语速每分钟 150 字左右（100–200）"),
    "NO-INTERRUPT": HandbookRule("服务过程", "metric", "严禁打断客户说话"),
    "BACKCHANNEL": HandbookRule("服务过程", "phrase_count", "适当回应（是的、对、好的），不宜频繁"),
    "POLITE-YOU": HandbookRule("服务过程", "forbidden_phrase", "多用您，不用你"),
    "NO-HEDGE": HandbookRule("服务过程", "forbidden_phrase", "不用 一般是 / 应该是 这类不确定的答复"),
    "ONE-QUESTION": HandbookRule("服务过程", "question_count", "一次只问一个问题"),
    "HOLD-ASK": HandbookRule("服务过程", "hold", "让客户等待前讲明原委并征得同意"),
    "HOLD-CHECKIN": HandbookRule("服务过程", "hold", "等待较长时每 15 秒回应一次"),
    "HOLD-MAX": HandbookRule("服务过程", "hold", "在线等待不超过 2 分钟（查询不超过 60 秒）"),
    "HOLD-THANK": HandbookRule("服务过程", "hold", "等待后致谢：让您久等了 / 感谢您的耐心等待"),
    "CONFIRM": HandbookRule("服务过程", "required_phrase", "复述确认客户的问题"),
    "ESCALATE-TIME": HandbookRule("服务过程", "required_phrase", "不能当场解决时承诺回复时限"),
    "SILENT-CALL": HandbookRule("服务过程", "sequence", "无声电话按规范处理"),
    "NUISANCE-MAX": HandbookRule("服务过程", "metric", "骚扰电话通话不超过 10 分钟"),
    # 3. closing the call
    "CLOSE-ASK": HandbookRule("结束", "required_phrase", "询问是否还有其他问题"),
    "CLOSE-THANK": HandbookRule("结束", "required_phrase", "感谢来电并致祝福"),
    "CLOSE-SURVEY": HandbookRule("结束", "required_phrase", "邀请客户评价"),
    "HANGUP-LAST": HandbookRule("结束", "metric", "客户先挂机"),
    # 4. forbidden phrases (FORBIDDEN-<name> for one phrase of the list)
    "FORBIDDEN": HandbookRule("服务禁语", "forbidden_phrase", "服务禁语，每次出现都扣分"),
    # 5. zero tolerance
    "FATAL-ABUSE": HandbookRule("一票否决", "forbidden_phrase", "与客户顶嘴、吵架、辱骂客户"),
    "FATAL-DATA-LEAK": HandbookRule("一票否决", "forbidden_phrase", "泄露客户信息"),
}

FORBIDDEN_PREFIX = "FORBIDDEN-"


def handbook_rule(rule_id: str) -> HandbookRule | None:
    """The handbook entry a rule id stands for (FORBIDDEN-<name> is one phrase of FORBIDDEN)."""
    if rule_id.startswith(FORBIDDEN_PREFIX):
        return HANDBOOK_RULES["FORBIDDEN"]
    return HANDBOOK_RULES.get(rule_id)


def export_rule_id(rule_id: str) -> str:
    """The handbook id a finding counts under in reports and calibration (FORBIDDEN-X → FORBIDDEN)."""
    return "FORBIDDEN" if rule_id.startswith(FORBIDDEN_PREFIX) else rule_id
