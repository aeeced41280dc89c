"""Generate the held-out test set: 40 labelled calls built differently from the tuning set.

    /tmp/ttsvenv/bin/python tools/make_testset.py --out /work/testset_data --seed 20261128

Nobody tunes on this set (docs/metrics.md, Evaluation). Where tools/make_evalset.py draws each
call as a random walk of moves over one appliance shop's handbook wording, this generator first
decides which handbook rules a call breaks (0-3 planted violations, some calls perfect), then
writes a script that breaks exactly those, in the words real agents use rather than the
handbook's: apologetic check-ins followed by more waiting, returns that carry the answer,
closings in other orders, 还有别的能帮您的吗 … (a bank, a telecom operator and an online shop).
Audio: G.711 A-law or μ-law WAV (really companded), 300-3400 Hz, 8 kHz; stereo calls carry a
line echo in each direction (−15…−35 dB, 2-60 ms, band-limited and smeared); higher- and
lower-pitched text-to-speech voices, real agents' speech (magicdata) in stereo calls, real
customers' voices (magicdata, misc clips); slow agents who drag syllables (about 85-130
chars/min) and fast ones (over 200); check-ins over hold music; phone and ID numbers read digit
by digit with 幺/两.

The truth (NAME.truth.json) is the tuning set's format plus `verdicts` {RULE-ID: "pass"|"fail"}:
the generator's intent for every handbook rule it deliberately exercises; a rule whose true
measure lands too near its limit (rate, check-in gap, answer delay) is left unlabelled.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callsim import CallScript, Clip, load_clip, longest_gap, true_rate, write_call
from make_samples import Speaker, Voice

AUDIO = Path(__file__).resolve().parent.parent.parent / "shared" / "audio"
MAGICDATA = AUDIO / "magicdata_cs"
MISC = AUDIO / "misc"

COMPANIES = ["云帆银行信用卡中心", "云帆通信", "云帆商城"]
GREETINGS_OK = [
    "您好，{c}，很高兴为您服务，请问有什么可以帮您？",
    "您好，这边是{c}，我是八号客服，请问您需要办理什么业务？",
    "您好，我是{c}的客服小林，请问有什么可以帮到您的？",
    "您好，欢迎来电{c}，请问有什么需要？",
]
GREETINGS_BAD = ["{c}，请讲。", "喂，{c}客服。", "这里是{c}，您说。"]
CUSTOMER_OPENERS = [
    "你好，我上个月办的那张信用卡到现在还没收到。",
    "喂，你好，我家的宽带从昨天晚上开始就连不上了。",
    "你好，我上周在你们网上买的电饭煲，物流一直没动。",
    "你好，我想把现在的套餐改成便宜一点的。",
    "你好，我这个月的账单多扣了一笔钱，我想问一下是怎么回事。",
    "我想问一下，我之前申请的退款到哪一步了。",
]
CUSTOMER_NUMBERS = [
    "我的手机号是幺三九，两七六八，零幺四五。",
    "身份证号是三幺零幺零四幺九八七零五二两幺三幺八。",
    "订单号是两零二六幺幺零八三三七五幺。",
    "卡号后四位是幺两零九。",
]
CUSTOMER_LINES = [
    "那大概什么时候能弄好？",
    "那我需要带什么材料过去吗？",
    "你们能不能快一点，我这边挺着急的。",
    "我之前已经打过两次电话了，一直没人给我解决。",
    "这个钱是什么时候扣的，我怎么一点都不知道。",
    "那我在手机上怎么操作，你跟我说一下。",
]
CUSTOMER_OK = ["好的。", "嗯，可以。", "行，那我等一下。", "好，你查吧。", "嗯，好的。"]
CUSTOMER_AFTER = ["哦，这样啊，好的。", "好，我知道了。", "行，那就这样吧。", "嗯，明白了，谢谢。"]
CUSTOMER_NOTHING = ["没有了，谢谢你。", "没了没了。", "没有了，就这个事。"]
CUSTOMER_BYE = ["好，拜拜。", "嗯，再见。"]
AGENT_ANSWERS = [
    "您这张卡已经在上周五寄出了，走的是挂号信，一般三到五个工作日就能送到。",
    "系统显示您所在的小区在做线路检修，预计今天下午六点之前恢复。",
    "您的包裹现在在转运中心，明天会安排派送。",
    "您可以在手机营业厅里选择套餐变更，下个月一号开始生效。",
    "这笔费用是上个月的国际漫游费，一共是三十八块五。",
    "退款会原路退回到您的支付账户，一般一到三个工作日到账。",
    "这个需要带上您的身份证原件，到就近的营业厅办理。",
    "我这边已经帮您登记了，师傅会在明天上午跟您联系。",
    "您现在的积分是两千三百分，可以兑换一个月的视频会员。",
    "这个套餐每个月有三十个G的流量，超出的部分按每个G三块钱收取。",
]
AGENT_NUMBERS = [
    "跟您核对一下，手机号是幺三八，零零幺二，两六六九，没错吧？",
    "您报的身份证号是三幺零幺零四幺九八七零五二两幺三幺八，对吗？",
]
AGENT_BACKCHANNELS = ["嗯。", "对。", "是的。"]
CUSTOMER_BACKCHANNELS = ["嗯。", "对。", "哦。"]
AGENT_CUT_INS = ["您先别急，我跟您说，", "这个情况我知道，", "不是的，您听我说，", "好好好，我明白，"]
HOLD_ASKS = [  # (words, is a lookup: the handbook's 60 s limit)
    ("这个我得帮您调一下记录，您稍等一下好吗？", False),
    ("我帮您查一下物流信息，麻烦您稍等。", True),
    ("需要您稍等片刻，我去跟后台核实一下。", True),
    ("您先别挂，我这边帮您看一下，耽误您一点时间可以吗？", True),
]
HOLD_LEADINS_UNASKED = ["嗯，我看看。", "好，我这边找一下。", "哦，这个啊。"]
CHECKINS = [
    "不好意思让您久等了，我还在为您查询。",
    "感谢您的耐心，我还在帮您核实。",
    "抱歉，系统有点卡，您再稍等一会儿。",
    "您还在吧？我这边马上就好。",
    "还没查完，麻烦您再等我一下。",
]
RETURNS_THANKED = ["不好意思让您等了这么久，查到了，", "感谢您耐心等待，", "久等了，", "抱歉让您等了，"]
RETURNS_UNTHANKED = ["查到了，", "好，这边看到了，", "是这样的，"]
CLOSE_ASKS = [
    "还有别的能帮您的吗？",
    "请问您还有其他需要帮忙的地方吗？",
    "您看还有什么其他问题需要我帮您处理的吗？",
    "请问还有其他可以帮到您的吗？",
]
CLOSE_THANKS = [
    "感谢您的来电，祝您工作顺利，再见。",
    "祝您生活愉快，感谢您的来电，再见。",
    "谢谢您的来电，祝您周末愉快，再见。",
    "那就不打扰您了，感谢您的致电，祝您一切顺利，再见。",
]
CLOSE_BARE = ["好的，那先这样，再见。", "行，那就这样，再见。"]
SURVEYS = [
    "稍后会有一条满意度短信，麻烦您对我的服务做个评价。",
    "挂机后请您对本次服务进行评价，谢谢。",
    "麻烦您稍后给我的服务打个分，谢谢。",
]
POLITE_YOU_LINES = ["你先把银行卡号报给我。", "你那边重启一下路由器试试。", "你在手机上点一下确认就可以了。"]
FORBIDDEN_LINES = [
    "这个我也不清楚，",
    "我不是跟您说过了吗，",
    "这是公司的规定，我也没办法，",
    "这个我真不知道，",
    "您听明白了吗？",
    "这不归我们管，",
]
# Real agents' words that would themselves break a rule: never used for a call meant to pass it.
RISKY = re.compile(r"你|不知道|不清楚|行吗|成吗|没办法|明白了吗|听懂|记得住|不归|管不了|喂喂")
MISC_CUSTOMERS = {  # single-speaker clips with a reference transcript that a caller could say
    "funasr_llamacpp_sample.flac": "我想问我在滨海新区有房",
    "firered_TEST_NET_S00000.flac": "我有的时候说不清楚你们知道吗",
    "wenet_nst_ID001.flac": "作为一个男人最起码的这个担当",
    "wenet_nst_ID002.flac": "但是对他们是很大的刺激的这些事情",
    "cosyvoice_zero_shot_prompt.flac": "希望你以后能够做的比我还好呦。",
    "firered_BAC009S0764W0121.flac": "甚至出现交易几乎停滞的情况",
}
VIOLATIONS = [
    "no_greeting",
    "late_answer",
    "many_rings",
    "no_hold_ask",
    "hold_too_long",
    "no_checkin",
    "no_hold_thanks",
    "forbidden",
    "polite_you",
    "interrupt",
    "too_fast",
    "too_slow",
    "no_close_ask",
    "no_close_thanks",
    "no_survey",
    "agent_hangs_up",
]
HOLD_VIOLATIONS = {"no_hold_ask", "hold_too_long", "no_checkin", "no_hold_thanks"}
RULE_OF = {
    "no_greeting": "OPEN-GREETING",
    "late_answer": "OPEN-IMMEDIATE",
    "many_rings": "ANSWER-RINGS",
    "no_hold_ask": "HOLD-ASK",
    "hold_too_long": "HOLD-MAX",
    "no_checkin": "HOLD-CHECKIN",
    "no_hold_thanks": "HOLD-THANK",
    "forbidden": "FORBIDDEN",
    "polite_you": "POLITE-YOU",
    "interrupt": "NO-INTERRUPT",
    "too_fast": "RATE",
    "too_slow": "RATE",
    "no_close_ask": "CLOSE-ASK",
    "no_close_thanks": "CLOSE-THANK",
    "no_survey": "CLOSE-SURVEY",
    "agent_hangs_up": "HANGUP-LAST",
}


class Material:
    """Text-to-speech with a cache, and the real clips."""

    def __init__(self, rng: random.Random) -> None:
        self.speaker = Speaker()
        self.rng = rng
        self.cache: dict[tuple[str, Voice], Clip] = {}
        with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        self.texts = {row["file"]: row["transcript"] for row in rows}
        self.agent_real = sorted(f for f, t in self.texts.items() if not RISKY.search(t))
        self.customer_real = sorted(self.texts)

    def tts(self, text: str, voice: Voice) -> Clip:
        key = (text, voice)
        if key not in self.cache:
            self.cache[key] = self.speaker.say(text, voice)
        return self.cache[key]

    def real(self, names: list[str], warp: float, max_s: float = 7.0) -> Clip:
        clip = None
        for _ in range(30):
            name = self.rng.choice(names)
            clip = load_clip(MAGICDATA / name, self.texts[name], warp=warp)
            if 1.5 <= clip.duration <= max_s:
                return clip
        assert clip is not None
        return clip

    def misc(self, warp: float) -> Clip:
        name = self.rng.choice(sorted(MISC_CUSTOMERS))
        return load_clip(MISC / name, MISC_CUSTOMERS[name], warp=warp)


def plan_violations(index: int, rng: random.Random) -> list[str]:
    """0 for about one call in five, otherwise 1-3 distinct violations."""
    if index % 5 == 3:
        return []
    count = rng.choice([1, 1, 2, 2, 3])
    chosen: list[str] = []
    while len(chosen) < count:
        v = rng.choice(VIOLATIONS)
        if v in chosen or ({"too_fast", "too_slow"} <= {v, *chosen}):
            continue
        chosen.append(v)
    return chosen


def hold_count(index: int, violations: list[str]) -> int:
    if HOLD_VIOLATIONS & set(violations):
        return 1 if index % 4 else 2
    # about 26 holds over 40 calls in all
    return [0, 1, 0, 1, 1, 0, 0, 1][index % 8]


def build_call(index: int, m: Material, rng: random.Random) -> tuple[CallScript, dict, dict]:
    stereo = index % 4 != 2  # 30 stereo, 10 mono
    violations = plan_violations(index, rng)
    company = COMPANIES[index % 3]
    call_id = f"TS{index:03d}"
    script = CallScript(call_id, seed=1000 + index)

    # voices: pitch and formant variety in both directions, slow / normal / fast agents
    if "too_slow" in violations:
        duration = rng.uniform(3.3, 3.7)
    elif "too_fast" in violations:
        duration = rng.uniform(1.12, 1.3)
    else:
        duration = rng.choice([rng.uniform(2.45, 2.85), rng.uniform(1.85, 2.3), rng.uniform(1.75, 1.85)])
    agent_voice = Voice(
        duration_ratio=round(duration, 2),
        f0_ratio=round(rng.choice([0.82, 0.9, 1.0, 1.12, 1.22]), 2),
        warp=rng.choice([0.9, 1.0, 1.0, 1.08]),
        gain_db=round(rng.uniform(-7, -2), 1),
    )
    customer_voice = Voice(  # in mono the customer must not sound like the agent: lower
        duration_ratio=round(rng.uniform(0.9, 1.4), 2),
        f0_ratio=round(rng.choice([0.8, 0.9, 1.15, 1.25] if stereo else [0.8, 0.9]), 2),
        warp=rng.choice([0.7, 0.75, 1.12] if stereo else [0.7, 0.75]),
        gain_db=round(rng.uniform(-8, -3), 1),
    )
    customer_warp = rng.choice([0.85, 0.9, 1.1, 1.15])
    real_agent = stereo and not ({"too_fast", "too_slow"} & set(violations)) and rng.random() < 0.6

    def agent(text: str) -> Clip:
        return m.tts(text, agent_voice)

    def customer(text: str) -> Clip:
        return m.tts(text, customer_voice)

    def customer_long() -> Clip:
        pick = rng.random()
        if pick < 0.45:
            return m.real(m.customer_real, customer_warp)
        if pick < 0.6:
            return m.misc(customer_warp)
        return customer(rng.choice(CUSTOMER_LINES))

    # answering
    rings = rng.randint(4, 5) if "many_rings" in violations else rng.randint(0, 3)
    pickup = round(rng.uniform(0.2, 0.8), 2)
    script.ring(rings, answer_after_last_s=pickup)
    first_gap = rng.uniform(4.2, 6.0) if "late_answer" in violations else rng.uniform(0.2, 1.3)
    greeting = rng.choice(GREETINGS_BAD if "no_greeting" in violations else GREETINGS_OK)
    script.say("agent", agent(greeting.format(c=company)), gap=first_gap)
    script.say("customer", customer(rng.choice(CUSTOMER_OPENERS)), gap=rng.uniform(0.4, 0.9))
    if rng.random() < 0.5:
        script.backchannel("agent", agent(rng.choice(AGENT_BACKCHANNELS)), at_fraction=0.5)

    # the middle: a plan of steps, holds and violations placed among them
    hold_faults = [v for v in violations if v in HOLD_VIOLATIONS]
    holds = max(hold_count(index, violations), len(hold_faults))
    steps = ["numbers"] + ["answer"] * rng.randint(1, 2) + ["hold"] * holds
    if "interrupt" in violations:
        steps.append("interrupt")
    if rng.random() < 0.3:
        steps.append("customer_cuts_in")
    rng.shuffle(steps)
    pending = {v for v in violations if v in ("forbidden", "polite_you")}
    hold_records: list[dict] = []
    for step in steps:
        if step == "numbers":
            script.say("agent", agent("麻烦您提供一下预留的手机号码。"), gap=rng.uniform(0.4, 0.9))
            script.say("customer", customer(rng.choice(CUSTOMER_NUMBERS)), gap=rng.uniform(0.5, 1.0))
            if rng.random() < 0.5:
                script.say("agent", agent(rng.choice(AGENT_NUMBERS)), gap=rng.uniform(0.4, 0.9))
                script.say("customer", customer("对。"), gap=0.5)
        elif step == "answer":
            script.say("customer", customer_long(), gap=rng.uniform(0.5, 1.0))
            if rng.random() < 0.4:
                script.backchannel("agent", agent(rng.choice(AGENT_BACKCHANNELS)), at_fraction=0.45)
            text = rng.choice(AGENT_ANSWERS)
            if pending:
                fault = pending.pop()
                answer = agent(
                    rng.choice(FORBIDDEN_LINES if fault == "forbidden" else POLITE_YOU_LINES) + text
                )
            elif real_agent and rng.random() < 0.6:
                answer = m.real(m.agent_real, 1.0)
            else:
                answer = agent(text)
            script.say("agent", answer, gap=rng.uniform(0.4, 1.0))
            if rng.random() < 0.4:
                script.backchannel("customer", customer(rng.choice(CUSTOMER_BACKCHANNELS)), at_fraction=0.5)
            script.say("customer", customer(rng.choice(CUSTOMER_AFTER)), gap=rng.uniform(0.5, 1.0))
        elif step == "interrupt":
            script.say("customer", customer(rng.choice(CUSTOMER_LINES[:4])), gap=rng.uniform(0.5, 1.0))
            previous = script.placed[-1].clip.duration
            into = min(rng.uniform(0.8, 1.6), previous - 1.2)
            script.cut_in("agent", agent(rng.choice(AGENT_CUT_INS)), into=round(max(into, 0.6), 2))
            script.say("agent", agent(rng.choice(AGENT_ANSWERS)), gap=0.3)
            script.say("customer", customer(rng.choice(CUSTOMER_AFTER)), gap=rng.uniform(0.5, 1.0))
        elif step == "customer_cuts_in":
            script.say("agent", agent(rng.choice(AGENT_ANSWERS)), gap=rng.uniform(0.4, 0.9))
            previous = script.placed[-1].clip.duration
            into = min(rng.uniform(0.6, 1.2), previous - 1.2)
            if into >= 0.5:
                script.cut_in("customer", customer(rng.choice(CUSTOMER_LINES)), into=round(into, 2))
            script.say("agent", agent("好的，我明白您的意思。"), gap=0.5)
        elif step == "hold":
            fault = hold_faults.pop() if hold_faults else None
            hold_records.append(_hold(script, m, rng, agent, customer, fault, stereo))
    if pending:  # a forbidden word or 你 not yet placed
        fault = pending.pop()
        line = rng.choice(FORBIDDEN_LINES if fault == "forbidden" else POLITE_YOU_LINES)
        script.say("agent", agent(line + rng.choice(AGENT_ANSWERS)), gap=rng.uniform(0.4, 0.9))
        script.say("customer", customer(rng.choice(CUSTOMER_AFTER)), gap=0.6)

    # closing, in one of several orders
    ask = None if "no_close_ask" in violations else rng.choice(CLOSE_ASKS)
    thanks = rng.choice(CLOSE_BARE if "no_close_thanks" in violations else CLOSE_THANKS)
    survey = None if "no_survey" in violations else rng.choice(SURVEYS)
    order = rng.choice(["ask-survey-thanks", "ask-thanks+survey", "survey+ask-thanks", "ask-thanks-survey"])
    agent_turns: list[list[str]] = []
    if order == "survey+ask-thanks" and survey and ask:
        agent_turns = [[f"好的，{survey}{ask}"], [thanks]]
    elif order == "ask-thanks+survey" and survey:
        agent_turns = [[ask] if ask else [], [survey + thanks]]
    elif order == "ask-thanks-survey" and survey:
        agent_turns = [[ask] if ask else [], [thanks.replace("，再见。", "。") + survey + "再见。"]]
    else:
        agent_turns = [[ask] if ask else [], [survey] if survey else [], [thanks]]
    for i, texts in enumerate(t for t in agent_turns if t):
        script.say("agent", agent("".join(texts)), gap=rng.uniform(0.4, 0.9))
        if i == 0 and ask:
            script.say("customer", customer(rng.choice(CUSTOMER_NOTHING)), gap=rng.uniform(0.5, 0.9))
    if "agent_hangs_up" in violations:
        tail, customer_bye = rng.uniform(0.8, 1.8), False
    else:
        customer_bye = rng.random() < 0.6
        if customer_bye:
            script.say("customer", customer(rng.choice(CUSTOMER_BYE)), gap=0.5)
        tail = rng.uniform(1.0, 2.5) if customer_bye else rng.uniform(6.0, 8.0)
    echo = {
        "agent_to_customer_db": round(rng.uniform(-35, -15), 1),
        "agent_to_customer_ms": round(rng.uniform(2, 60), 1),
        "customer_to_agent_db": round(rng.uniform(-35, -15), 1),
        "customer_to_agent_ms": round(rng.uniform(2, 60), 1),
    }
    render = {
        "stereo": stereo,
        "agent_left": stereo and rng.random() < 0.6,
        "noise_db": rng.uniform(-66, -50),
        "tail_s": tail,
        "echo": echo if stereo else None,
    }
    plan = {
        "violations": violations,
        "stereo": stereo,
        "codec": "ALAW" if index % 5 in (0, 1, 3) else "ULAW",
        "agent_voice": [agent_voice.duration_ratio, agent_voice.f0_ratio, agent_voice.warp],
        "customer_voice": [customer_voice.duration_ratio, customer_voice.f0_ratio, customer_voice.warp],
        "real_agent_speech": real_agent,
        "hangup_by": "agent" if "agent_hangs_up" in violations else "customer",
        "echo": echo if stereo else None,
        "holds": hold_records,
        "rings": rings,
        "answer_delay_s": round(pickup + first_gap, 2),
    }
    return script, render, plan


def _hold(
    script: CallScript,
    m: Material,
    rng: random.Random,
    agent: Callable[[str], Clip],
    customer: Callable[[str], Clip],
    fault: str | None,
    stereo: bool,
) -> dict:
    """One hold; `fault` is the one hold rule it breaks (or None)."""
    lookup = False
    if fault == "hold_too_long":
        seconds = rng.choice([rng.uniform(121, 126), rng.uniform(72, 92)])
    elif fault == "no_checkin":
        seconds = rng.uniform(24, 52)
    else:
        seconds = rng.choice([rng.uniform(11, 14), rng.uniform(20, 40), rng.uniform(40, 55)])
    music = rng.random() < 0.5
    if fault == "no_hold_ask":
        script.say("agent", agent(rng.choice(HOLD_LEADINS_UNASKED)), gap=rng.uniform(0.4, 0.9))
    else:
        asks = HOLD_ASKS if fault != "hold_too_long" or seconds > 120 else [a for a in HOLD_ASKS if a[1]]
        words, lookup = rng.choice(asks)
        script.say("agent", agent(words), gap=rng.uniform(0.4, 0.9))
        script.say("customer", customer(rng.choice(CUSTOMER_OK)), gap=rng.uniform(0.4, 0.8))
    if fault == "no_checkin" or seconds <= 14:
        # none, or one early check-in that leaves a long silence after it
        count = 1 if fault == "no_checkin" and seconds > 44 else 0
    else:
        count = max(1, int(seconds // 12))
    checkins = [agent(rng.choice(CHECKINS)) for _ in range(count)]
    script.hold(
        round(seconds, 2),
        music=music,
        asked=fault != "no_hold_ask",
        thanked=fault != "no_hold_thanks",
        checkins=checkins,
    )
    record = script.holds[-1]
    opener = rng.choice(RETURNS_UNTHANKED if fault == "no_hold_thanks" else RETURNS_THANKED)
    script.say("agent", agent(opener + rng.choice(AGENT_ANSWERS)), gap=0.6)
    script.say("customer", customer(rng.choice(CUSTOMER_AFTER)), gap=rng.uniform(0.5, 1.0))
    return {
        "faults": [fault] if fault else [],
        "lookup": lookup,
        "seconds": round(seconds, 1),
        "_truth": record,
    }


def verdicts(script: CallScript, truth: dict, plan: dict) -> dict[str, str]:
    """The intent, per rule; rules whose true measure sits near the limit are left out."""
    v = set(plan["violations"])
    out = {rule: "pass" for rule in RULE_OF.values() if not rule.startswith("HOLD-")}
    for violation in v:
        if not violation.startswith(("no_hold", "hold", "no_checkin")):
            out[RULE_OF[violation]] = "fail"
    # rings and delay: labelled from the numbers laid on the timeline
    out["ANSWER-RINGS"] = "fail" if truth["rings"] > 3 else "pass"
    delay = plan["answer_delay_s"]
    if delay >= 4.0:
        out["OPEN-IMMEDIATE"] = "fail"
    elif delay > 2.2:
        out.pop("OPEN-IMMEDIATE")
    rate = true_rate(truth)
    if rate is None or 96 <= rate <= 104 or 192 <= rate <= 208:
        out.pop("RATE", None)
    else:
        out["RATE"] = "pass" if 100 < rate < 200 else "fail"
    holds = [h for h in truth["holds"] if h["end"] - h["start"] >= 10]
    if holds:
        out["HOLD-ASK"] = "pass" if all(h["asked"] for h in holds) else "fail"
        out["HOLD-THANK"] = "pass" if all(h["thanked"] for h in holds) else "fail"
        lookups = [r["lookup"] for r in plan["holds"]]
        too_long = any(
            (h["end"] - h["start"]) > 120 or (lookup and h["end"] - h["start"] > 62)
            for h, lookup in zip(truth["holds"], lookups, strict=False)
        )
        out["HOLD-MAX"] = "fail" if too_long else "pass"
        gaps = [checkin_gap(script, h) for h in holds]
        if max(gaps) >= 17:
            out["HOLD-CHECKIN"] = "fail"
        elif max(gaps) <= 14:
            out["HOLD-CHECKIN"] = "pass"
    return dict(sorted(out.items()))


def checkin_gap(script: CallScript, hold: dict) -> float:
    """The longest stretch of a hold without the agent's voice."""
    inside = sorted(
        (p.start, p.start + p.clip.duration)
        for p in script.placed
        if p.kind == "checkin" and hold["start"] <= p.start < hold["end"]
    )
    return longest_gap(hold["start"], hold["end"], inside)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("testset_data"))
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--only", type=int, nargs="*", help="build only these call numbers (a check)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    material = Material(rng)
    for index in range(1, args.calls + 1):
        script, render, plan = build_call(index, material, rng)
        if args.only and index not in args.only:
            continue
        samples, rate, truth = script.render(**render)
        truth["hangup_by"] = plan["hangup_by"]
        truth["verdicts"] = verdicts(script, truth, plan)
        truth["true_agent_chars_per_min"] = true_rate(truth)
        for record in plan["holds"]:
            record.pop("_truth")
        truth["plan"] = plan
        sidecar = {
            "call_id": script.call_id,
            "agent_id": f"7{index % 6:03d}",
            "started_at": f"2026-11-{1 + index % 27:02d}T{8 + index % 10:02d}:30:00+08:00",
            "channels": truth["channels"],
        }
        if index % 3 == 0:  # a third of the calls carry the PBX's ring time and hang-up side
            sidecar["ring_seconds"] = round(truth["answered_at"], 2) if plan["rings"] else 0.0
            sidecar["hangup_by"] = plan["hangup_by"]
        path = write_call(
            args.out, f"{script.call_id}.wav", samples, rate, truth, sidecar, subtype=plan["codec"]
        )
        print(
            f"{path}: {truth['duration_s']:.0f} s, {'stereo' if plan['stereo'] else 'mono'} {plan['codec']}, "
            f"rate {truth['true_agent_chars_per_min']}, {len(truth['holds'])} holds "
            f"({sum(h['music'] for h in truth['holds'])} music), violations {plan['violations']}",
            flush=True,
        )
    (args.out / "README.txt").write_text(
        f"Generated by tools/make_testset.py --calls {args.calls} --seed {args.seed}\n"
        "Held-out test set: never tune on it (docs/metrics.md, Evaluation).\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
