"""Scores of one processed call against its ground truth, beyond the metric errors of evaluate.py.

* role accuracy: over 0.1 s frames in which exactly one party is truly voiced, the share whose
  pipeline utterances carry that party's role and no other;
* echo characters (stereo): agent-transcript characters timed inside customer-only true speech,
  i.e. the customer's words heard in the agent's channel;
* rule verdicts: the scorecard's findings against the truth's `verdicts` {RULE-ID: pass|fail}.
  Positive class = the rule failed. A failing finding that `needs_review` deducts nothing and
  counts as "not failed" (tallied apart as a review); a deducting finding on a rule the truth
  says passed is a wrong deduction. In a call whose roles wait for a person (`callqa roles`)
  nothing deducts yet: its failing findings count as reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.records import Finding, Utterance
from pipeline.text import spoken_chars

FRAME_S = 0.1
AGENT_MARGIN_S = 0.2  # customer-only speech keeps this clear of the agent's true turns


def _voiced(truth: dict, role: str) -> list[tuple[float, float]]:
    spans = []
    for turn in truth["turns"]:
        if turn["speaker"] == role:
            spans += [(a, b) for a, b in turn.get("voiced") or [(turn["start"], turn["end"])]]
    return sorted(spans)


def _covers(spans: Sequence[tuple[float, float]], t: float) -> bool:
    return any(a <= t < b for a, b in spans)


def role_frames(utterances: Sequence[Utterance], truth: dict, frame_s: float = FRAME_S) -> tuple[int, int]:
    """(frames labelled right, frames of single-party true speech)."""
    truly = {role: _voiced(truth, role) for role in ("agent", "customer")}
    heard = [(u.start, u.end, u.speaker) for u in utterances]
    right = counted = 0
    for k in range(int(truth["duration_s"] / frame_s) + 1):
        t = (k + 0.5) * frame_s
        speaking = [role for role, spans in truly.items() if _covers(spans, t)]
        if len(speaking) != 1:
            continue  # silence, or both talking (back-channels, interruptions): no single right answer
        counted += 1
        roles = {speaker for a, b, speaker in heard if a <= t < b}
        right += roles == {speaking[0]}
    return right, counted


def echo_chars(utterances: Sequence[Utterance], truth: dict) -> tuple[int, int]:
    """(agent characters inside customer-only true speech, all agent characters)."""
    customer = _voiced(truth, "customer")
    agent_turns = [
        (t["start"] - AGENT_MARGIN_S, t["end"] + AGENT_MARGIN_S)
        for t in truth["turns"]
        if t["speaker"] == "agent"
    ]
    echo = heard = 0
    for u in utterances:
        if u.speaker != "agent":
            continue
        for middle, count in _char_times(u):
            heard += count
            if _covers(customer, middle) and not _covers(agent_turns, middle):
                echo += count
    return echo, heard


def _char_times(u: Utterance) -> Iterable[tuple[float, int]]:
    """(time, spoken characters) per timed character; evenly spread when there are no timings."""
    if u.chars:
        for c in u.chars:
            count = spoken_chars(c.char)
            if count:
                yield (c.start + c.end) / 2, count
        return
    total = spoken_chars(u.text)
    for i in range(total):
        yield u.start + (u.end - u.start) * (i + 0.5) / total, 1


def _of_rule(finding: Finding, rule: str) -> bool:
    # per-occurrence rules may report as RULE-<name> (FORBIDDEN-喂喂)
    return finding.rule_id == rule or finding.rule_id.startswith(rule + "-")


def verdict_outcomes(
    truth_verdicts: dict[str, str], findings: Sequence[Finding], roles_wait: bool = False
) -> dict[str, tuple[str, str]]:
    """{rule: (truth, pipeline)} for every labelled rule; pipeline is "fail" (deducted),
    "review" (failing findings all sent to review, or the call's roles wait for a person) or "pass"."""
    out = {}
    for rule, truth in truth_verdicts.items():
        failing = [f for f in findings if _of_rule(f, rule) and not f.passed]
        if not roles_wait and any(not f.needs_review for f in failing):
            said = "fail"
        elif failing:
            said = "review"
        else:
            said = "pass"
        out[rule] = (truth, said)
    return out


@dataclass
class VerdictTally:
    """Per-rule confusion counts of 'the rule failed' over calls, and calls with a wrong deduction."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: int = 0
    calls_wrongly_deducted: int = 0
    problems: list[str] = field(default_factory=list)

    def add(
        self,
        call_id: str,
        truth_verdicts: dict[str, str],
        findings: Sequence[Finding],
        roles_wait: bool = False,
    ) -> None:
        self.calls += 1
        wrong = False
        for rule, (truth, said) in verdict_outcomes(truth_verdicts, findings, roles_wait).items():
            c = self.counts.setdefault(rule, {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "review": 0})
            failed = truth == "fail"
            c["review"] += said == "review"
            if said == "fail":
                c["tp" if failed else "fp"] += 1
            else:
                c["fn" if failed else "tn"] += 1
            if said == "fail" and not failed:
                wrong = True
                self.problems.append(f"{call_id} {rule} deducted, truth pass")
            elif failed and said != "fail":
                self.problems.append(
                    f"{call_id} {rule} {'review' if said == 'review' else 'missed'}, truth fail"
                )
        self.calls_wrongly_deducted += wrong

    def summary(self) -> dict:
        rules = {}
        for rule, c in sorted(self.counts.items()):
            precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
            recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
            if precision is not None and recall is not None and precision + recall:
                f1: float | None = 2 * precision * recall / (precision + recall)
            elif c["tp"] + c["fp"] + c["fn"] == 0:
                f1 = None  # nothing failed and nothing was deducted: no F1 to speak of
            else:
                f1 = 0.0
            rules[rule] = {
                **c,
                "precision": _round(precision),
                "recall": _round(recall),
                "f1": _round(f1),
            }
        return {
            "rules": rules,
            "calls": self.calls,
            "wrong_deduction_call_share": round(self.calls_wrongly_deducted / self.calls, 3)
            if self.calls
            else None,
            "reviews": sum(c["review"] for c in self.counts.values()),
        }


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclass
class TranscriptTally:
    """Role frames by layout, agent CER per call, echo characters over stereo calls."""

    frames: dict[str, list[int]] = field(default_factory=lambda: {"stereo": [0, 0], "mono": [0, 0]})
    agent_cer: list[float] = field(default_factory=list)
    echo: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, utterances: Sequence[Utterance], truth: dict, agent_cer: float | None) -> None:
        layout = "mono" if truth["channels"] == "mono" else "stereo"
        right, counted = role_frames(utterances, truth)
        self.frames[layout][0] += right
        self.frames[layout][1] += counted
        if agent_cer is not None:
            self.agent_cer.append(agent_cer)
        if layout == "stereo":
            echo, heard = echo_chars(utterances, truth)
            self.echo[0] += echo
            self.echo[1] += heard

    def summary(self) -> dict:
        return {
            "role_accuracy": {
                layout: round(right / counted, 3) if counted else None
                for layout, (right, counted) in self.frames.items()
            },
            "agent_cer_mean": round(sum(self.agent_cer) / len(self.agent_cer), 3) if self.agent_cer else None,
            "echo_char_share_stereo": round(self.echo[0] / self.echo[1], 4) if self.echo[1] else None,
        }
