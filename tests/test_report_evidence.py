"""The call page says 客服说：… only before the agent's own words, never before a description.

Findings come from the real default scorecard over hand-built transcripts, so the quote format of
pipeline/rules/transcript.py and the renderer's reading of it cannot drift apart unnoticed."""

from __future__ import annotations

from pathlib import Path

from test_rules_helpers import metrics, score, utt

from pipeline.reports.monthly import FindingRow
from pipeline.reports.render import quoted_speaker
from pipeline.reports.transcripts import TranscriptLine
from pipeline.rules import load_scorecard

ROOT = Path(__file__).resolve().parents[1]


def _rows(utterances: list, **metric_changes: object) -> tuple[dict[str, FindingRow], list[TranscriptLine]]:
    result = score(load_scorecard(ROOT / "rules" / "default.yaml"), utterances, metrics(**metric_changes))
    rows = {
        f.rule_id: FindingRow(
            "c1", "A01", i, f.rule_id, f.title, f.category, f.passed, f.deduction, f.fatal,
            f.start, f.end, f.speaker, f.evidence, f.confidence, f.needs_review, f.replacement,
        )
        for i, f in enumerate(result.findings)
    }  # fmt: skip
    lines = [TranscriptLine(i, u.speaker, u.start, u.end, u.text) for i, u in enumerate(utterances)]
    return rows, lines


CALL = [
    utt("agent", 1.0, 4.0, "喂，说吧，什么事？"),
    utt("customer", 4.5, 8.0, "我的宽带从昨天开始就上不了网了。"),
    utt("agent", 8.5, 12.0, "这个你自己重启一下路由器不就行了，你懂不懂啊。"),
    utt("customer", 12.5, 14.0, "好的，那我试试。"),
    utt("agent", 14.5, 15.5, "嗯，挂了。"),
]


def test_the_agents_words_are_quoted_and_everything_else_is_described() -> None:
    rows, lines = _rows(CALL)
    quotes = {"POLITE-YOU", "FATAL-ABUSE"}  # 你 for 您, and an abusive phrase: the agent's own words
    assert all(not rows[r].passed for r in quotes)
    for f in rows.values():
        if f.evidence:
            assert quoted_speaker(f, lines) == ("agent" if f.rule_id in quotes else None), (
                f.rule_id,
                f.evidence,
            )


def test_a_missing_phrase_is_a_description_not_a_quote() -> None:
    rows, lines = _rows(CALL)
    for rule_id in ("OPEN-GREETING", "CLOSE-THANK"):
        f = rows[rule_id]
        assert not f.passed and f.speaker == "agent" and f.evidence
        assert quoted_speaker(f, lines) is None, f.evidence


def test_rings_and_measurements_are_descriptions() -> None:
    rows, lines = _rows(CALL, rings=5)
    assert not rows["ANSWER-RINGS"].passed
    assert quoted_speaker(rows["ANSWER-RINGS"], lines) is None
    assert all(quoted_speaker(f, lines) is None for f in rows.values() if f.speaker is None)


def test_a_passed_greeting_is_a_quote() -> None:
    good = [utt("agent", 1.0, 4.0, "您好，星河电器，请问有什么可以帮您？"), *CALL[1:]]
    rows, lines = _rows(good)
    assert rows["OPEN-GREETING"].passed
    assert quoted_speaker(rows["OPEN-GREETING"], lines) == "agent"
