"""Scores in DuckDB: history per scorecard hash, re-scoring without ASR, export, show, calibrate."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from test_rules_samples import TRUTHS, truth_call

from pipeline.cli import main
from pipeline.errors import CallQAError
from pipeline.records import CallAudio, CallMeta, Recording, RoleAssignment, SpeechTurn, Transcript
from pipeline.rules import DEFAULT_SCORECARD, load_scorecard, parse_scorecard, score_call
from pipeline.rules.calibrate import compare, read_labels
from pipeline.rules.rescore import rescore
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHECK_EXPORT = ROOT.parent / "shared" / "tools" / "check_export.py"
TZ = ZoneInfo("Asia/Shanghai")


def _store_sample_calls(db: Path, with_metrics: bool = True) -> list[str]:
    """The five sample calls' ground-truth transcripts and metrics, stored as the spine would."""
    ids = []
    with Store(db) as store:
        for n, path in enumerate(TRUTHS):
            utterances, metrics, meta, truth = truth_call(path)
            meta = CallMeta(
                call_id=meta.call_id,
                agent_id=meta.agent_id or path.name[:4],
                started_at=datetime(2026, 11, 20 + n // 3, 9, n, tzinfo=TZ),
                hangup_by=meta.hangup_by,
                source=meta.source,
            )
            audio = CallAudio(
                meta.call_id,
                16000,
                {"mono": np.zeros(1)},
                "mono",
                "file",
                8000,
                1,
                "WAV/PCM_16",
                truth["duration_s"],
            )
            transcript = Transcript(
                tuple(utterances),
                tuple(SpeechTurn(u.speaker, u.start, u.end) for u in utterances),
                "test",
                "truth",
                RoleAssignment({}, "test", 1.0),
            )
            recording = Recording(Path(f"/calls/{path.name}.wav"), f"{n:064d}", 1000)
            store.save_call(
                recording, meta, audio, transcript, 1.0, metrics=metrics if with_metrics else None
            )
            ids.append(meta.call_id)
    return ids


def _tuned() -> str:
    """The default scorecard after a supervisor's morning change: CLOSE-SURVEY no longer deducts."""
    text = DEFAULT_SCORECARD.read_text(encoding="utf-8")
    start = text.index("  - id: CLOSE-SURVEY")
    end = text.index("  - id: HANGUP-LAST")
    return text[:start] + text[start:end].replace("deduction: 3", "deduction: 0") + text[end:]


def test_save_score_keeps_history_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    (call_id, *_) = _store_sample_calls(db)
    default = load_scorecard(DEFAULT_SCORECARD)
    tuned = parse_scorecard(_tuned(), tmp_path / "tuned.yaml")
    with Store(db) as store:
        first = score_call(
            store.load_utterances(call_id), store.load_metrics(call_id), store.load_meta(call_id), default
        )
        assert store.save_score(call_id, first, default)
        assert store.current_score(call_id) == first  # every finding round-trips exactly
        assert not store.save_score(call_id, first, default)  # nothing changed: no new history row
        second = score_call(
            store.load_utterances(call_id), store.load_metrics(call_id), store.load_meta(call_id), tuned
        )
        assert store.save_score(call_id, second, tuned)
        assert store.current_score(call_id) == second
        history = store.score_history(call_id)
        assert [h["scorecard_hash"] for h in history] == [tuned.hash, default.hash]
        assert [h["is_current"] for h in history] == [True, False]
        assert store.scorecard_content(default.hash) == default.content
        counts = store.db.execute("SELECT count(*) FROM findings WHERE call_id = ?", [call_id]).fetchone()[0]
        assert counts == len(first.findings) + len(second.findings)
        with pytest.raises(ValueError, match="another scorecard"):
            store.save_score(call_id, first, tuned)


def test_rescore_from_stored_utterances_and_metrics(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    ids = _store_sample_calls(db)
    default = load_scorecard(DEFAULT_SCORECARD)
    with Store(db) as store:
        first = rescore(store, [default])
        assert sorted(r.call_id for r in first) == sorted(ids) and all(
            r.stored and r.before is None for r in first
        )
        current = {cid: store.current_score(cid) for cid in ids}
        again = rescore(store, [default])
        assert not any(r.stored for r in again)  # idempotent: same findings, nothing written
        assert {cid: store.current_score(cid) for cid in ids} == current
        assert store.db.execute("SELECT count(*) FROM scores").fetchone()[0] == len(ids)
        # the same result as scoring the records directly (no ASR, nothing lost in the store)
        utterances, metrics, meta, _ = truth_call(TRUTHS[2])
        assert current[meta.call_id].findings == score_call(utterances, metrics, meta, default).findings
        recent = rescore(
            store, [parse_scorecard(_tuned(), "tuned.yaml")], since=datetime(2026, 11, 21).date()
        )
        assert [r.call_id for r in recent] == ids[3:]
        assert all(r.after >= r.before for r in recent)


def test_cli_rescore_show_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "qa.duckdb"
    ids = _store_sample_calls(db)
    assert main(["rescore", "--db", str(db), "--scorecard", str(DEFAULT_SCORECARD)]) == 0
    out = capsys.readouterr().out
    assert "HX20261120-0003  未评分 → 57" in out
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(_tuned(), encoding="utf-8")
    assert main(["rescore", "--db", str(db), "--scorecard", str(tuned), "--since", "2026-11-20"]) == 0
    assert "HX20261120-0003  57 → 60" in capsys.readouterr().out

    assert main(["show", "HX20261120-0003", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    transcript_at = shown.index("积分的事情我不知道")
    sheet_at = shown.index("质检：60 分")
    assert transcript_at < sheet_at  # the findings are listed under the transcript
    assert re.search(r"✗ FORBIDDEN 服务禁语 −5 00:4\d\.\d  积分的事情我【不知道】", shown)
    assert "建议说法：对不起，这个问题我帮您核实一下" in shown
    assert "历史评分：" in shown and "57 分" in shown

    out_file = tmp_path / "calls.jsonl"
    assert main(["export", "--db", str(db), "--out", str(out_file)]) == 0
    calls = {c["call_id"]: c for c in map(json.loads, out_file.read_text(encoding="utf-8").splitlines())}
    assert set(calls) == set(ids)
    call = calls["HX20261120-0003"]
    assert call["score"] == 60 and call["fatal"] is False and len(call["scorecard"]["hash"]) == 64
    forbidden = [f for f in call["findings"] if f["rule_id"] == "FORBIDDEN"]
    assert len(forbidden) == 2 and all(not f["passed"] and f["deduction"] == 5 for f in forbidden)
    keys = {
        "rule_id",
        "passed",
        "deduction",
        "start",
        "end",
        "speaker",
        "evidence",
        "confidence",
        "needs_review",
    }
    assert all(keys <= set(f) for c in calls.values() for f in c["findings"])
    checked = subprocess.run(
        [sys.executable, str(CHECK_EXPORT), str(out_file), "--stage", "scorecard"],
        capture_output=True,
        text=True,
    )
    # the metrics stage (the lead's) fills "metrics"; every other scorecard-stage problem must be absent
    problems = [p for p in checked.stdout.splitlines()[:-1] if " metrics" not in p]
    assert problems == [], checked.stdout


def test_unscored_calls_show_and_export_as_unscored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "qa.duckdb"
    _store_sample_calls(db, with_metrics=False)
    assert main(["show", "HX20261120-0001", "--db", str(db)]) == 0
    assert "尚未评分" in capsys.readouterr().out
    with Store(db) as store:
        (result, *_) = rescore(store, [load_scorecard(DEFAULT_SCORECARD)])
        rate = next(f for f in store.current_findings(result.call_id) if f.rule_id == "RATE")
        assert rate.passed and rate.needs_review  # no metrics yet: reviewed, never a silent pass


LABELS = """call_id,rule_id,passed,score
HX20261120-0001,OPEN-GREETING,true,100
HX20261120-0002,OPEN-GREETING,false,
HX20261120-0003,OPEN-GREETING,false,
HX20261120-0001,CLOSE-ASK,1,
HX20261120-0003,CLOSE-ASK,0,
HX20261120-0003,FORBIDDEN-不知道,不通过,60
HX20261120-0001,FORBIDDEN,通过,
HX20261121-0005,ONE-QUESTION,true,
HX20261121-0005,NO-SUCH-RULE,true,
NOT-STORED,CLOSE-ASK,true,
"""


def test_calibrate_against_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "qa.duckdb"
    _store_sample_calls(db)
    main(["rescore", "--db", str(db)])
    capsys.readouterr()
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS, encoding="utf-8")
    with Store(db, read_only=True) as store:
        result = compare(read_labels(labels), {cid: store.current_score(cid) for cid in store.call_ids()})
    greeting = result.rules["OPEN-GREETING"]
    # people say 1003's greeting failed; the pipeline passed it: one miss
    assert (greeting.tp, greeting.fp, greeting.fn, greeting.tn) == (1, 0, 1, 1)
    assert greeting.precision == 1.0 and greeting.recall == 0.5
    assert greeting.kappa == pytest.approx(0.4)  # po 2/3, pe 4/9 → (2/3 − 4/9) / (5/9)
    assert result.rules["FORBIDDEN"].tp == 1 and result.rules["FORBIDDEN"].tn == 1
    one_question = result.rules["ONE-QUESTION"]
    assert one_question.fp == 1 and one_question.kappa == 0.0
    assert [(d.call_id, d.rule_id) for d in result.disagreements] == [
        ("HX20261120-0003", "OPEN-GREETING"),
        ("HX20261121-0005", "ONE-QUESTION"),
    ]
    assert result.unscored_calls == ["NOT-STORED"] and result.unknown_rules == [
        ("HX20261121-0005", "NO-SUCH-RULE")
    ]
    assert sorted(result.scores) == [("HX20261120-0001", 100.0, 100.0), ("HX20261120-0003", 60.0, 57.0)]

    assert main(["calibrate", str(labels), "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "OPEN-GREETING" in printed and "0.40" in printed and "50%" in printed
    assert "HX20261121-0005  ONE-QUESTION  人工：合格  系统：不合格" in printed
    assert "平均相差 1.5 分" in printed and "NOT-STORED" in printed and "NO-SUCH-RULE" in printed
    # a candidate scorecard is judged in memory, without storing anything
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(_tuned(), encoding="utf-8")
    assert main(["calibrate", str(labels), "--db", str(db), "--scorecard", str(tuned)]) == 0
    assert "平均相差 0.0 分" in capsys.readouterr().out  # the tuned card agrees with the people on 1003


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("call,rule,passed\nA,B,true\n", "缺少列 call_id, rule_id"),
        ("call_id,rule_id,passed\nA,OPEN-GREETING,maybe\n", "第 2 行：字段 passed"),
        ("call_id,rule_id,passed,score\nA,RATE,1,ninety\n", "第 2 行：字段 score 不是数字"),
        ("call_id,rule_id,passed,score\nA,RATE,1,90\nA,CLOSE-ASK,1,80\n", "第 3 行：通话 A 的 score 80"),
        ("call_id,rule_id,passed\n", "没有人工质检结果"),
    ],
)
def test_bad_labels_are_refused(content: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CallQAError) as caught:
        read_labels(path)
    assert str(path) in str(caught.value) and words in str(caught.value)
