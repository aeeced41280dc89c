"""Builders for the scorecard tests: one-rule scorecards, hand-made utterances and metrics.

(Named test_rules_* so it sits with the scorecard tests; it holds no tests itself.)
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace

from pipeline.records import (
    CallMeta,
    CallMetrics,
    CallScore,
    CharTiming,
    Finding,
    Hold,
    Interruption,
    Utterance,
)
from pipeline.rules import Scorecard, parse_scorecard, score_call

META = CallMeta(call_id="T1", agent_id="1001")


def card(rules: str, matching: str = "", name: str = "测试评分表", extra: str = "") -> Scorecard:
    """A scorecard from YAML rule entries (a list, indented or not)."""
    text = f"kind: scorecard\nname: {name}\n{extra}"
    if matching:
        text += "matching:\n" + textwrap.indent(textwrap.dedent(matching).strip("\n"), "  ") + "\n"
    text += "rules:\n" + textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ") + "\n"
    return parse_scorecard(text, "test.yaml")


def utt(speaker: str, start: float, end: float, text: str, low: str = "", p_low: float = 0.1) -> Utterance:
    """An utterance with even per-character timings (as the ASR stage stores them); characters listed
    in `low` get recogniser probability `p_low`, the others 0.95."""
    spoken = [c for c in text if re.match(r"\w", c) and c != "_"]
    step = (end - start) / max(1, len(spoken))
    chars = tuple(
        CharTiming(
            c, round(start + i * step, 3), round(start + (i + 1) * step, 3), p_low if c in low else 0.95
        )
        for i, c in enumerate(spoken)
    )
    return Utterance(speaker, start, end, text, chars, 0.9)


def metrics(**changes: object) -> CallMetrics:
    base = CallMetrics(
        duration_s=120.0,
        agent_chars_per_min=150.0,
        customer_chars_per_min=160.0,
        agent_speaking_s=40.0,
        agent_rate_outside_share=0.0,
        utterance_rates=(),
        interruptions=(),
        holds=(),
        dead_air=(),
        rings=2,
        rings_source="metadata",
        answered_at=6.0,
        answer_delay_s=0.5,
        answer_delay_source="audio",
        agent_talk_s=50.0,
        customer_talk_s=40.0,
        overlap_s=0.0,
        silence_ratio=0.1,
        longest_silence_s=2.0,
        hangup_by="customer",
        hangup_source="metadata",
        call_type=None,
        nuisance_over_max=None,
    )
    return replace(base, **changes)


def hold(start: float, end: float, **changes: object) -> Hold:
    base = Hold(start, end, True, None, 0, (), None, True, None, False)
    return replace(base, **changes)


def interruption(start: float, by: str = "agent", text: str = "你先别说了") -> Interruption:
    return Interruption(start, start + 1.0, by, text, "我想问一下", 1.0)  # type: ignore[arg-type]


def score(
    sc: Scorecard, utterances: list[Utterance], m: CallMetrics | None = None, meta: CallMeta = META
) -> CallScore:
    return score_call(utterances, m if m is not None else metrics(), meta, sc)


def only(result: CallScore, rule_id: str) -> Finding:
    found = [f for f in result.findings if f.rule_id == rule_id]
    assert len(found) == 1, found
    return found[0]
