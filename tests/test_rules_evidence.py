"""Weak recogniser evidence goes to review, never to money: the same transcript deducts when the
recogniser was sure of it and becomes a review item (deduction 0) when it looped or was unsure."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT
from fixtures.reports.monthdata import build as build_month
from test_rules_helpers import card, hold, metrics, only, score, utt

from pipeline.cli import main as callqa
from pipeline.records import Utterance
from pipeline.rules.evidence import unreliable
from pipeline.rules.schema import Matching
from pipeline.rules.scorecard import load_scorecard
from pipeline.rules.transcript import Line
from pipeline.store import Store

DEFAULT = load_scorecard(ROOT / "rules" / "default.yaml")

CLOSE_ASK = """
- id: CLOSE-ASK
  title: 询问是否还有其他问题
  category: 结束
  type: required_phrase
  speaker: agent
  window: {last_turns: 2}
  patterns: [请问还有其他需要帮助的吗, 请问还有什么可以帮您]
  deduction: 3
"""

FORBIDDEN = """
- id: FORBIDDEN
  title: 服务禁语
  category: 服务禁语
  type: forbidden_phrase
  speaker: agent
  patterns: [你自己看着办]
  replacement: 您可以参考以下办法
  deduction: 5
"""


def _closing(text: str, **evidence: object) -> list[Utterance]:
    """A call whose agent's last turn is `text`, with the given recogniser evidence on it."""
    return [
        utt("agent", 0.0, 4.0, "您好，请问有什么可以帮您？"),
        utt("customer", 4.5, 8.0, "我想查一下积分。"),
        utt("agent", 8.5, 12.0, "好的，您的积分是三百分。"),
        utt("customer", 12.5, 13.5, "好的。"),
        replace(utt("agent", 14.0, 20.0, text), **evidence),
    ]


WEAK = {
    "loop": {"looping": True},
    "word probability": {"confidence": 0.2},
    "log-probability": {"avg_logprob": -1.4},
    "compression": {"compression_ratio": 3.1},
    "speech without text": {"unheard_s": 3.5},  # 3.5 of the closing's 6 s: whisper dropped its end
}
STRONG = {
    "confidence": 0.9,
    "avg_logprob": -0.3,
    "no_speech_prob": 0.05,
    "compression_ratio": 1.3,
    "looping": False,
}


@pytest.mark.parametrize("weak", list(WEAK.values()), ids=list(WEAK))
def test_an_absence_over_weak_text_is_a_review_item(weak: dict) -> None:
    closing = "请您稍后对等从不仅仅仅仅仅仅仅仅"  # what whisper made of the pilot's drawn-out closing
    sure = score(card(CLOSE_ASK), _closing(closing, **STRONG))
    f = only(sure, "CLOSE-ASK")
    assert not f.passed and not f.needs_review and f.deduction == 3 and sure.score == 97

    unsure = score(card(CLOSE_ASK), _closing(closing, **{**STRONG, **weak}))
    f = only(unsure, "CLOSE-ASK")
    assert not f.passed and f.needs_review and f.deduction == 0 and unsure.score == 100
    assert "转写不可靠" in f.evidence and "00:14.0" in f.evidence and "确认后扣 3 分" in f.evidence


def test_speech_without_text_weakens_an_absence_not_a_hit() -> None:
    short_gap = _closing("好的，那就这样。", **{**STRONG, "unheard_s": 1.5})  # pauses between words
    assert not only(score(card(CLOSE_ASK), short_gap), "CLOSE-ASK").needs_review
    dropped = _closing("这个你自己看着办吧", **{**STRONG, "unheard_s": 4.0})
    result = score(card(CLOSE_ASK + FORBIDDEN), dropped)
    assert only(result, "CLOSE-ASK").needs_review and "4.0 秒语音" in only(result, "CLOSE-ASK").evidence
    forbidden = only(result, "FORBIDDEN")  # what was heard was heard: it deducts
    assert not forbidden.needs_review and forbidden.deduction == 5


def test_weak_text_outside_the_rules_window_changes_nothing() -> None:
    call = _closing("好的，那就这样。", **STRONG)
    call[0] = replace(call[0], looping=True, confidence=0.1)  # the opening, not the closing window
    f = only(score(card(CLOSE_ASK), call), "CLOSE-ASK")
    assert not f.passed and not f.needs_review and f.deduction == 3


def test_the_pilot_closings_with_the_default_scorecard() -> None:
    """Both pilot failures (a loop for the survey, garbled words for the ask) in the last turns."""
    call = _closing("请问还有请还是需要帮助的忙", confidence=0.31, avg_logprob=-1.2)
    call.append(replace(utt("agent", 21.0, 27.0, "请您稍后对等从不仅仅仅仅仅仅仅仅"), looping=True))
    result = score(DEFAULT, call)
    for rule_id in ("CLOSE-THANK", "CLOSE-SURVEY"):
        f = only(result, rule_id)
        assert not f.passed and f.needs_review and f.deduction == 0, (rule_id, f.evidence)
    # the garbled ask still says what an ask says (请问 + 还有 + 需要): recognised by meaning
    ask = only(result, "CLOSE-ASK")
    assert ask.passed and "按意思" in (ask.evidence or "")
    # the same words heard with confidence deduct
    sure = [replace(u, confidence=0.9, avg_logprob=-0.2, looping=False) for u in call]
    for rule_id in ("CLOSE-THANK", "CLOSE-SURVEY"):
        f = only(score(DEFAULT, sure), rule_id)
        assert not f.passed and not f.needs_review and f.deduction == 3, (rule_id, f.evidence)


def test_the_thresholds_are_scorecard_data() -> None:
    call = _closing("好的，那就这样。", **{**STRONG, "confidence": 0.3, "avg_logprob": -1.2})
    assert only(score(card(CLOSE_ASK), call), "CLOSE-ASK").needs_review
    lenient = card(CLOSE_ASK, matching="asr_min_word_probability: 0.2\nasr_min_avg_logprob: -1.5\n")
    f = only(score(lenient, call), "CLOSE-ASK")
    assert not f.needs_review and f.deduction == 3
    silent = _closing("好的，那就这样。", **{**STRONG, "no_speech_prob": 0.9})  # not looked at by default
    assert not only(score(card(CLOSE_ASK), silent), "CLOSE-ASK").needs_review
    strict = card(CLOSE_ASK, matching="asr_max_no_speech_prob: 0.6\n")
    assert "无语音概率 0.90 高于 0.6" in only(score(strict, silent), "CLOSE-ASK").evidence
    looping = _closing("好的，那就这样。", **{**STRONG, "looping": True})
    assert only(score(card(CLOSE_ASK), looping), "CLOSE-ASK").needs_review
    f = only(score(card(CLOSE_ASK, matching="asr_review_loops: false\n"), looping), "CLOSE-ASK")
    assert not f.needs_review and f.deduction == 3


def test_a_forbidden_phrase_read_from_a_loop_is_a_review_item() -> None:
    said = "这个你自己看着办吧"
    sure = only(score(card(FORBIDDEN), _closing(said, **STRONG)), "FORBIDDEN")
    assert not sure.passed and not sure.needs_review and sure.deduction == 5
    weak = only(score(card(FORBIDDEN), _closing(said, **{**STRONG, "avg_logprob": -1.6})), "FORBIDDEN")
    assert not weak.passed and weak.needs_review and weak.deduction == 0


def test_a_forbidden_phrase_heard_clearly_once_still_deducts() -> None:
    call = _closing("这个你自己看着办吧", **{**STRONG, "looping": True})
    call.insert(3, utt("agent", 9.0, 11.0, "你自己看着办。"))
    f = only(score(card(FORBIDDEN), sorted(call, key=lambda u: u.start)), "FORBIDDEN")
    assert not f.needs_review and f.deduction == 5 and f.start is not None and f.start < 12


HOLD_ASK = """
- id: HOLD-ASK
  title: 等待前说明原因并征得同意
  category: 服务过程
  type: hold
  check: asked
  speaker: agent
  min_hold_s: 10
  window: {before_hold_s: 20}
  patterns: [请您稍等, 稍等一下]
  deduction: 5
"""


def test_a_missing_hold_ask_over_weak_text_is_a_review_item() -> None:
    def call(**evidence: object) -> list[Utterance]:
        return [
            utt("agent", 2.0, 6.0, "您好，请问有什么可以帮您？"),
            replace(utt("agent", 30.0, 34.0, "我帮您查一下从不仅仅仅仅仅仅"), **evidence),
            utt("agent", 60.0, 63.0, "让您久等了。"),
        ]

    m = metrics(holds=(hold(35.0, 59.0, asked=False),))
    f = only(score(card(HOLD_ASK), call(**STRONG), m), "HOLD-ASK")
    assert not f.passed and not f.needs_review and f.deduction == 5
    f = only(score(card(HOLD_ASK), call(**{**STRONG, "looping": True}), m), "HOLD-ASK")
    assert not f.passed and f.needs_review and f.deduction == 0


def test_typed_and_older_transcripts_carry_no_evidence_against_them() -> None:
    """A hand-typed line (no character timings, confidence 0) and a stored row without whisper's
    figures are judged as before."""
    matching = Matching()
    typed = Utterance("agent", 0.0, 2.0, "好的，那就这样。")
    assert unreliable(Line(0, typed), matching) is None
    older = utt("agent", 0.0, 2.0, "好的，那就这样。")
    assert older.avg_logprob is None and unreliable(Line(0, older), matching) is None
    garbled = replace(older, confidence=0.2)
    assert "识别把握 0.20" in (unreliable(Line(0, garbled), matching) or "")


# ---- where people see it: `callqa show` and the call page ----------------------------------------


def test_show_and_the_call_page_print_the_recogniser_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "qa.duckdb"
    built = build_month(db, tmp_path)
    call_id = built.calls["A02"][0]
    with Store(db) as store:
        first = store.utterances(call_id)[0]
        store.db.execute(
            "INSERT INTO utterance_evidence VALUES (?, ?, -1.31, 0.05, 2.7, true, 0.3, "
            "(SELECT started_at FROM calls WHERE call_id = ?))",
            [call_id, first["idx"], call_id],
        )
    assert callqa(["show", call_id, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    weak = next(line for line in shown.splitlines() if first["text"] in line)
    assert "转写不可靠" in weak and "疑似识别循环" in weak and "平均对数概率 -1.31 低于 -1" in weak
    assert sum("转写不可靠" in line for line in shown.splitlines()) == 1
    monkeypatch.chdir(tmp_path)
    assert callqa(["report", "--month", "2026-11", "--db", str(db), "--no-audio"]) == 0
    page = (tmp_path / "reports" / "2026-11" / "calls" / f"{call_id}.html").read_text(encoding="utf-8")
    assert len(re.findall(r'class="line [^"]*\bweak"', page)) == 1
    assert "⚠ " in page and "疑似识别循环" in page and "压缩比 2.70 高于 2.4" in page
