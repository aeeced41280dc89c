"""The whole default scorecard on the sample calls' ground truth (recordings_sample/*.truth.json).

Utterances come from the truth turns; CallMetrics from the truth facts (rings, answer delay = first
agent word − answered_at, holds with asked/check-ins/thanked, overlaps of kind interruption,
hang-up from the sidecar, speaking rate over the truth's voiced stretches). Each rule the QA
supervisor judged must get the same verdict, except where noted in DIFFERENCES.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.records import CallMeta, CallMetrics, Finding, Hold, Interruption, Utterance
from pipeline.rules import load_scorecard, score_call
from pipeline.rules.handbook import export_rule_id
from pipeline.text import spoken_chars

SAMPLES = Path(__file__).resolve().parent.parent / "recordings_sample"
DEFAULT = Path(__file__).resolve().parent.parent / "rules" / "default.yaml"
TRUTHS = sorted(SAMPLES.glob("*.truth.json"))
PAUSE_COUNTED_S = 0.3  # the metrics stage's pause_excluded_s: shorter pauses count as speaking


def truth_call(path: Path) -> tuple[list[Utterance], CallMetrics, CallMeta, dict]:
    truth = json.loads(path.read_text(encoding="utf-8"))
    sidecar_path = path.with_name(path.name.replace(".truth.json", ".json"))
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8")) if sidecar_path.exists() else {}
    turns = truth["turns"]
    utterances = [Utterance(t["speaker"], t["start"], t["end"], t["text"], confidence=1.0) for t in turns]
    agent = [t for t in turns if t["speaker"] == "agent"]
    customer = [t for t in turns if t["speaker"] == "customer"]

    def speaking_s(party: list[dict]) -> float:
        spans = sorted((a, b) for t in party for a, b in t["voiced"])
        merged: list[list[float]] = []
        for a, b in spans:
            if merged and a - merged[-1][1] <= PAUSE_COUNTED_S:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return sum(b - a for a, b in merged)

    agent_s = speaking_s(agent)
    agent_chars = sum(spoken_chars(t["text"]) for t in agent)

    def said_during(speaker: str, start: float, end: float) -> str:
        return "".join(
            t["text"] for t in turns if t["speaker"] == speaker and t["start"] < end and t["end"] > start
        )

    interruptions = tuple(
        Interruption(
            o["start"],
            o["end"],
            o["by"],
            said_during(o["by"], o["start"], o["end"]),
            said_during("customer" if o["by"] == "agent" else "agent", o["start"], o["end"]),
            round(o["end"] - o["start"], 3),
        )
        for o in truth["overlaps"]
        if o["kind"] == "interruption"
    )
    holds = []
    for h in truth["holds"]:
        checkins = [t for t in agent if t.get("kind") == "checkin" and h["start"] <= t["start"] <= h["end"]]
        marks = [h["start"], *[x for t in checkins for x in (t["start"], t["end"])], h["end"]]
        gaps = [marks[i + 1] - marks[i] for i in range(0, len(marks), 2)]
        holds.append(
            Hold(
                h["start"],
                h["end"],
                h["asked"],
                None,
                h["checkins"],
                tuple(h["checkin_times"]),
                round(max(gaps), 3) if checkins else None,
                h["thanked"],
                None,
                h["music"],
            )
        )
    answered = truth["answered_at"]
    metrics = CallMetrics(
        duration_s=truth["duration_s"],
        agent_chars_per_min=round(agent_chars / agent_s * 60, 1) if agent_s else None,
        customer_chars_per_min=None,
        agent_speaking_s=agent_s,
        agent_rate_outside_share=None,
        utterance_rates=(),
        interruptions=interruptions,
        holds=tuple(holds),
        dead_air=(),
        rings=truth["rings"],
        rings_source="metadata" if sidecar.get("ring_seconds") is not None else "audio",
        answered_at=answered,
        answer_delay_s=round(agent[0]["start"] - answered, 3),
        answer_delay_source="audio",
        agent_talk_s=sum(t["end"] - t["start"] for t in agent),
        customer_talk_s=sum(t["end"] - t["start"] for t in customer),
        overlap_s=sum(o["end"] - o["start"] for o in truth["overlaps"]),
        silence_ratio=0.0,
        longest_silence_s=0.0,
        hangup_by=sidecar.get("hangup_by"),
        hangup_source="metadata" if sidecar.get("hangup_by") else None,
        call_type=sidecar.get("call_type"),
        nuisance_over_max=None,
    )
    meta = CallMeta(
        call_id=truth["call_id"],
        agent_id=sidecar.get("agent_id"),
        hangup_by=sidecar.get("hangup_by"),
        call_type=sidecar.get("call_type"),
        source="sidecar" if sidecar else "filename",
    )
    return utterances, metrics, meta, truth


# Where the engine's verdict legitimately differs from the supervisor's sheet (explained, not bent):
# RATE — the truth records RATE passed for every call, with the note for 1002 that "the rate rule's
# verdict is left to the metric". Over the truth's own voiced stretches (pauses up to 0.3 s counted,
# as the metrics stage does) the TTS agent speaks 198.6–204 chars/min in the polite calls and about 274 in
# 1002. The handbook limit is 200: 1002 fails outright; 1001/1003/1004 are within the scorecard's
# metric_margin (5 %) of the limit, so the engine does not deduct but sends them to review.
RATE_BORDERLINE = {"HX20261120-0001", "HX20261120-0003", "1004_20261121-110045"}
RATE_FAST = {"HX20261120-0002"}


@pytest.fixture(scope="module")
def card():
    return load_scorecard(DEFAULT)


def _verdict(findings: list[Finding]) -> bool:
    return all(f.passed for f in findings)


@pytest.mark.parametrize("path", TRUTHS, ids=lambda p: p.name.split(".")[0])
def test_default_scorecard_matches_the_supervisors_sheet(path: Path, card) -> None:
    utterances, metrics, meta, truth = truth_call(path)
    score = score_call(utterances, metrics, meta, card)
    by_rule: dict[str, list[Finding]] = {}
    for f in score.findings:
        by_rule.setdefault(export_rule_id(f.rule_id), []).append(f)
    checked = 0
    for expected in truth["expected_findings"]:
        rule_id = expected["rule_id"]
        if rule_id is None:
            continue
        findings = by_rule[rule_id]
        if rule_id == "RATE" and meta.call_id in RATE_BORDERLINE:
            (rate,) = findings
            assert not rate.passed and rate.needs_review and rate.deduction == 0, rate
            continue
        if rule_id == "RATE" and meta.call_id in RATE_FAST:
            (rate,) = findings
            assert not rate.passed and not rate.needs_review and rate.deduction > 0, rate
            shown = float(re.search(r"语速 ([0-9.]+)字/分钟", rate.evidence or "").group(1))
            assert 260 < shown < 290, rate  # the evidence quotes the measured rate
            continue
        assert _verdict(findings) == expected["passed"], (rule_id, expected, findings)
        checked += 1
    assert checked >= 15


def test_every_rule_has_exactly_one_finding_unless_it_counts_occurrences(card) -> None:
    ids = [r.id for r in card.rules]
    for path in TRUTHS:
        score = score_call(*truth_call(path)[:3], card)
        per_rule = [f.rule_id for f in score.findings]
        assert sorted(set(per_rule)) == sorted(ids)
        for rule in card.rules:
            if not rule.per_occurrence:
                assert per_rule.count(rule.id) == 1, rule.id


def test_sample_specifics(card) -> None:
    calls = {truth_call(p)[2].call_id: truth_call(p) for p in TRUTHS}
    scores = {cid: score_call(*c[:3], card) for cid, c in calls.items()}

    forbidden = [f for f in scores["HX20261120-0003"].findings if f.rule_id == "FORBIDDEN" and not f.passed]
    assert [f.evidence.split("【")[1].split("】")[0] for f in forbidden] == ["不知道", "这不归我管"]
    assert all(f.replacement and f.deduction == 5 for f in forbidden)
    assert forbidden[0].start is not None and 41.98 <= forbidden[0].start < forbidden[0].end <= 49.93

    # 1004 has no sidecar: who hung up is unknown, which is a review item, never a silent pass
    (hangup,) = [f for f in scores["1004_20261121-110045"].findings if f.rule_id == "HANGUP-LAST"]
    assert hangup.passed and hangup.needs_review and hangup.evidence.startswith("无法判断")

    # 1005: the abusive customer's words (破服务, 骗子) are not the agent's: no fatal finding
    assert not scores["HX20261121-0005"].fatal
    # 1003 reads out the member-centre hotline: a service number is not customer data
    (leak,) = [f for f in scores["HX20261120-0003"].findings if f.rule_id == "FATAL-DATA-LEAK"]
    assert leak.passed

    for score in scores.values():
        deducted = sum(f.deduction for f in score.findings)
        assert score.score == max(0.0, 100 - deducted)
    assert scores["HX20261120-0001"].score == 100
    assert scores["HX20261120-0001"].score > scores["HX20261121-0005"].score > scores["HX20261120-0002"].score
