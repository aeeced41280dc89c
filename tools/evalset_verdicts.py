"""The tuning set's intended verdict of every handbook rule, read off its ground truth.

`make_evalset.py` lays each call on a timeline (rings, the agent's first word, holds asked or
not, check-ins, thanks, interruptions, who hangs up), so the truth says what a QA supervisor
would decide for every rule the scorecard checks, not only the closing rules the
`--closing-variants` set plants. With these labels the tuning set measures false deductions of
every rule (POLITE-YOU over real 您, HOLD-THANK over real thanks, …), and thresholds are tuned
there rather than on the held-out set.

A rule whose true measure sits near its limit (a 3.5 s pause against 3 s, a rate of 101/min) is
left out, as in tools/make_testset.py: neither verdict would be a fair test of the pipeline.

    python tools/evalset_verdicts.py /work/eval_data2     # relabel an existing set in place
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callsim import longest_gap, true_rate

# Holds shorter than this are pauses, not holds (the scorecard's hold minimum is 10 s).
MIN_HOLD_S = 10.0
# 你 that is not the polite 您: the handbook's POLITE-YOU fails on it (你好 counts, as in the
# held-out generator's planted violation).
PLAIN_YOU = re.compile("你")


def derive_verdicts(truth: dict) -> dict[str, str]:
    """RULE-ID → pass|fail for one call of the tuning set (its closing verdicts are kept)."""
    out = dict(truth.get("verdicts", {}))
    agent = [t for t in truth["turns"] if t["speaker"] == "agent"]
    out["ANSWER-RINGS"] = "fail" if truth["rings"] > 3 else "pass"
    delay = min(t["start"] for t in agent) - truth["answered_at"]
    if delay >= 4.0:
        out["OPEN-IMMEDIATE"] = "fail"
    elif delay <= 2.2:
        out["OPEN-IMMEDIATE"] = "pass"
    opening = truth.get("plan", {}).get("opening")
    if opening is not None:  # an opening in agents' own words carries its intended verdict
        out["OPEN-GREETING"] = opening["verdict"]
    else:
        out["OPEN-GREETING"] = "pass" if "您好" in agent[0]["text"] or "你好" in agent[0]["text"] else "fail"
    out["POLITE-YOU"] = "fail" if any(PLAIN_YOU.search(t["text"]) for t in agent) else "pass"
    out["FORBIDDEN"] = "pass"  # the tuning set plants none
    interrupted = any(o["by"] == "agent" and o["kind"] == "interruption" for o in truth["overlaps"])
    out["NO-INTERRUPT"] = "fail" if interrupted else "pass"
    rate = true_rate(truth)
    if rate is not None and not (96 <= rate <= 104 or 192 <= rate <= 208):
        out["RATE"] = "pass" if 100 < rate < 200 else "fail"
    out["HANGUP-LAST"] = "fail" if truth["hangup_by"] == "agent" else "pass"
    holds = [h for h in truth["holds"] if h["end"] - h["start"] >= MIN_HOLD_S]
    if holds:
        out["HOLD-ASK"] = "pass" if all(h["asked"] for h in holds) else "fail"
        out["HOLD-THANK"] = "pass" if all(h["thanked"] for h in holds) else "fail"
        # Every ask the generator lays before a hold announces a lookup (查询/核实/查一下/看一下), and so
        # do the agents' own unasked lead-ins (我看一下, 这个我查查: --hold-variants); the handbook limits a
        # lookup to 60 s (a 2 s margin, as in tools/make_testset.py).
        too_long = any(
            h["end"] - h["start"] > 120 or (_lookup(truth, h) and h["end"] - h["start"] > 62) for h in holds
        )
        out["HOLD-MAX"] = "fail" if too_long else "pass"
        gap = max(_longest_silence(truth, h) for h in holds)
        if gap >= 17:
            out["HOLD-CHECKIN"] = "fail"
        elif gap <= 14:
            out["HOLD-CHECKIN"] = "pass"
    return dict(sorted(out.items()))


# Words of a look-up announced before a hold (the handbook's 60 s limit is for looking something up).
LOOKUP_WORDS = ("查", "看一下", "看看", "找找", "核实", "调取")


def _lookup(truth: dict, hold: dict) -> bool:
    """The hold is a look-up: asked (every ask the generator lays announces one), or the agent's last
    words before it announce one without asking (我看一下)."""
    if hold["asked"]:
        return True
    before = [t for t in truth["turns"] if t["speaker"] == "agent" and t["end"] <= hold["start"] + 0.5]
    return bool(before) and any(word in before[-1]["text"] for word in LOOKUP_WORDS)


def _longest_silence(truth: dict, hold: dict) -> float:
    """The longest stretch of a hold without the agent's check-in voice."""
    inside = sorted(
        (t["start"], t["end"])
        for t in truth["turns"]
        if t["kind"] == "checkin" and hold["start"] <= t["start"] < hold["end"]
    )
    return longest_gap(hold["start"], hold["end"], inside)


def relabel(folder: Path) -> int:
    """Write derived verdicts into every NAME.truth.json of a generated set; returns the count."""
    count = 0
    for path in sorted(folder.glob("*.truth.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))
        truth["verdicts"] = derive_verdicts(truth)
        path.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        count += 1
    return count


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"{arg}: {relabel(Path(arg))} calls relabelled")
