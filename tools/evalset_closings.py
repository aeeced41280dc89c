"""Closings in agents' own words for the tuning set (`make_evalset.py --closing-variants`).

The handbook's closing is three sentences (请问还有其他问题需要咨询吗 / 感谢您的来电，祝您生活愉快 /
请您稍后对本次服务进行评价). Agents say the same things in their own words, in other orders, one
sentence or two, with the customer answering in between; some leave a part out. Each call draws
its closing here from its own random stream, and the truth records the intended verdict of
CLOSE-ASK, CLOSE-THANK and CLOSE-SURVEY (pass = the agent did it, in whatever words).

This phrase bank is written for the tuning set only; the held-out set has its own, written
independently (tools/make_testset.py), and the two must not be merged.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

# Asking whether anything else is needed, in agents' words (CLOSE-ASK passes).
ASKS_OTHER_WORDS = [
    "还有别的需要我帮您处理的吗？",
    "您看还有其他业务要办理吗？",
    "除了这个，您还有什么想咨询的吗？",
    "另外还有什么问题我可以帮您解答的吗？",
    "那您这边还有没有其他需要帮忙的？",
    "请问您还需要办理别的业务吗？",
    "好的，那还有其他我可以帮到您的地方吗？",
    "您还有别的问题要问吗？",
    "还有什么需要了解的吗？",
    "其他方面还有什么需要我为您服务的吗？",
]
ASK_AFTER_ANSWER = ["好的，已经帮您登记好了，", "这个我已经给您备注了，", "那就按刚才说的办，"]
# Said where the ask would be, but not asking (CLOSE-ASK fails): a statement, another question.
NOT_ASKS = [
    "如果还有问题，欢迎您随时来电。",
    "您的联系电话是预留的这个号码吗？",
    "这个单子我已经给您提交了。",
    "还有一点要提醒您，保修卡请您保存好。",
    "这样安排您看可以吗？",
]
# Thanks and a wish, in either order (CLOSE-THANK passes).
THANKS_AND_WISH = [
    "谢谢您打来电话，祝您周末愉快，再见。",
    "感谢您致电星河电器，祝您一切顺利！",
    "非常感谢您的来电，祝您身体健康。",
    "多谢您的来电，祝您生活开心，再见。",
    "祝您生活愉快，感谢您的来电，再见！",
    "谢谢您的耐心，祝您工作顺利，再见。",
    "感谢您的支持，祝您心情愉快。",
    "那就不打扰您了，谢谢来电，祝您新年快乐！",
]
THANKS_ONLY = ["感谢您的来电，再见。", "好的，谢谢您，再见。", "谢谢您的来电。"]
WISH_ONLY = ["祝您生活愉快，再见！", "那祝您周末愉快。", "那就先这样，祝您一切顺利。"]
# Inviting the rating (CLOSE-SURVEY passes).
SURVEYS = [
    "稍后会有一条短信，麻烦您给我的服务打个分。",
    "挂机后请您对我的服务做个评价，谢谢。",
    "请您稍后为本次服务打分，谢谢！",
    "通话结束后会有满意度调查，希望您抽空参与一下。",
    "麻烦您挂机以后给我一个评价，谢谢您。",
    "稍后系统会请您评价，请您按键给我打分。",
]
FOLLOW_UPS = [
    ("哦对了，发票什么时候能开出来？", "发票会在订单完成以后发到您的邮箱。"),
    ("对了，上门要收费吗？", "保修期内上门是免费的，您放心。"),
]
CUSTOMER_OK = ["好的。", "嗯，好的。", "行。"]
CUSTOMER_NOTED = "好的，我知道了。"

CLOSING_RULES = ("CLOSE-ASK", "CLOSE-THANK", "CLOSE-SURVEY")


def plan_closing(rng: random.Random) -> dict[str, Any]:
    """What the agent does at the end of one call (JSON-ready; stored in the truth's plan)."""
    asked = rng.random() < 0.65
    plan: dict[str, Any] = {"ask": "pass" if asked else "fail"}
    if asked:
        plan["ask_text"] = rng.choice(ASKS_OTHER_WORDS)
        plan["ask_after_answer"] = rng.choice(ASK_AFTER_ANSWER) if rng.random() < 0.3 else None
        plan["follow_up"] = list(rng.choice(FOLLOW_UPS)) if rng.random() < 0.25 else None
    else:
        plan["ask_text"] = rng.choice(NOT_ASKS) if rng.random() < 0.6 else None
    kind = rng.choices(["both", "thanks_only", "wish_only", "none"], weights=[55, 20, 10, 15])[0]
    plan["thank"] = kind
    plan["thank_text"] = {
        "both": lambda: rng.choice(THANKS_AND_WISH),
        "thanks_only": lambda: rng.choice(THANKS_ONLY),
        "wish_only": lambda: rng.choice(WISH_ONLY),
        "none": lambda: None,
    }[kind]()
    plan["survey_text"] = rng.choice(SURVEYS) if rng.random() < 0.5 else None
    plan["survey_first"] = rng.random() < 0.5
    plan["one_turn"] = rng.random() < 0.4  # rating and thanks in one breath
    plan["agent_bye"] = rng.random() < 0.5
    return plan


def closing_verdicts(plan: dict[str, Any]) -> dict[str, str]:
    """The intended verdict per closing rule: what a QA supervisor would record for this plan."""
    return {
        "CLOSE-ASK": plan["ask"],
        "CLOSE-THANK": "pass" if plan["thank"] == "both" else "fail",
        "CLOSE-SURVEY": "pass" if plan["survey_text"] else "fail",
    }


def play_closing(
    script: Any,
    plan: dict[str, Any],
    agent: Callable[[str], Any],
    customer: Callable[[str], Any],
    reply: Any,
    bye: Any | None,
) -> None:
    """Lay the closing on the call's timeline. `reply` (没有了) and `bye` are the customer's clips the
    main generator drew; `customer` speaks any other customer line."""
    if plan["ask"] == "pass":
        script.say("agent", agent((plan["ask_after_answer"] or "") + plan["ask_text"]), gap=0.6)
        if plan["follow_up"]:
            question, answer = plan["follow_up"]
            script.say("customer", customer(question), gap=0.6)
            script.say("agent", agent(answer), gap=0.6)
        script.say("customer", reply, gap=0.6)
    elif plan["ask_text"]:
        script.say("agent", agent(plan["ask_text"]), gap=0.6)
        script.say("customer", customer(CUSTOMER_NOTED), gap=0.6)
    parts = [t for t in (plan["thank_text"], plan["survey_text"]) if t]
    if plan["survey_first"]:
        parts.reverse()
    if plan["one_turn"] and len(parts) == 2:
        parts = ["".join(parts)]
    for k, text in enumerate(parts):
        if k:
            script.say("customer", customer(CUSTOMER_OK[k % len(CUSTOMER_OK)]), gap=0.5)
        script.say("agent", agent(text), gap=0.6)
    if bye is not None:
        script.say("customer", bye, gap=0.5)
        if plan["agent_bye"]:
            script.say("agent", agent("再见。"), gap=0.4)
