"""Openings in agents' own words for the tuning set (`make_evalset.py --opening-variants`).

The tuning set's agents open with the handbook's sentence (您好，…客户服务中心，请问有什么可以帮到您).
Agents greet and offer help in their own words and orders: a time-of-day greeting, their name or
工号 first, the offer asked another way (您需要什么帮助 / 您要办理什么业务), the greeting and the offer
in two breaths. Some leave a part out: the company name with 请讲, a greeting with no offer, an
offer with no greeting. Each call draws its opening here from its own random stream, and the truth
records the intended verdict of OPEN-GREETING (the handbook: a greeting and an offer of help in the
agent's first turns).

This phrase bank is written for the tuning set only; the held-out set has its own, written
independently (tools/make_testset.py), and the two must not be merged.
"""

from __future__ import annotations

import random

# A greeting and an offer of help, in one breath or two (OPEN-GREETING passes).
GREETED = [
    ["您好，星河电器客服中心，很高兴为您服务，请问您需要什么帮助？"],
    ["您好，欢迎致电星河电器，我是客服小林，请问有什么能帮您的？"],
    ["上午好，星河电器客服，工号三二七，请问您要办理什么业务？"],
    ["您好，这里是星河电器售后服务热线。", "请问有什么可以帮到您？"],
    ["您好，我是星河电器的客服代表，请问您遇到了什么问题？"],
    ["下午好，星河电器客户服务中心，请问您有什么需要？"],
    ["您好，星河电器，工号一零八八为您服务。", "请问您想咨询什么问题？"],
]
# A part left out (OPEN-GREETING fails): no greeting, or no offer of help.
NOT_GREETED = [
    ["星河电器客服中心，请讲。"],
    ["喂，星河电器，您说。"],
    ["您好，星河电器客服中心。"],
    ["星河电器，请问有什么可以帮您？"],
    ["喂，您好。"],
]
# How often an opening leaves a part out.
FAIL_SHARE = 0.35


def plan_opening(rng: random.Random) -> dict:
    """The agent's opening sentences and the intended OPEN-GREETING verdict."""
    failed = rng.random() < FAIL_SHARE
    lines = rng.choice(NOT_GREETED if failed else GREETED)
    return {"lines": list(lines), "verdict": "fail" if failed else "pass"}
