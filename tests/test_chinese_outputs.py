"""One real batch, read as a supervisor reads it: the log lines, what `run`, `show`, `failures` and
`roles` print, the batch summary and every rendered report page carry no English words (only ids,
units and file names; tests/chinese.py says which)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from chinese import english_words, visible_text
from conftest import ROOT
from test_e2e import _aged, _copy_sample

from pipeline.cli import main as callqa
from pipeline.rules import load_scorecard

pytestmark = pytest.mark.e2e

CURT_SAMPLE = "1002_20261120-101233"  # stereo, the agent never says a service phrase: roles to review
MONO_SAMPLE = "1003_20261120-143010"  # mono, μ-law, a forbidden phrase and an unasked hold


def test_a_batch_and_its_pages_speak_chinese(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    folder, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    _copy_sample(CURT_SAMPLE, folder)
    _copy_sample(MONO_SAMPLE, folder)

    broken = folder / "1009_20261120-150000.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00")  # a header cut short
    _aged(broken)

    caplog.set_level(logging.INFO)
    printed: list[str] = []
    assert callqa(["run", str(folder), "--db", str(db)]) == 1  # a failed recording: not a clean run
    printed.append(capsys.readouterr().out)
    for command in (["failures"], ["roles"], ["show", "HX20261120-0003"], ["show", "1009_20261120-150000"]):
        callqa([*command, "--db", str(db)])
        printed.append(capsys.readouterr().out)
    assert callqa(["report", "--month", "2026-11", "--db", str(db), "--no-audio"]) == 0
    printed.append(capsys.readouterr().out)

    # Progress goes to the terminal; warnings and errors of any stage go to the log.
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("callqa", "pipeline")]
    assert "[1/3]" in printed[0] and "共 3 个录音" in printed[0]
    # not a terminal: the progress figures as a line (at the end at least); 72.8 s + 64.1 s planned
    progress = [line for line in printed[0].splitlines() if line.startswith("进度 3/3 个录音（100%）")]
    assert len(progress) == 1, printed[0]
    assert re.fullmatch(
        r"进度 3/3 个录音（100%），已分析音频 0\.04 / 0\.04 小时，速度 [\d.]+ 倍实时，用时 .+", progress[0]
    )
    outputs = {"log": "\n".join(ours), "printed": "\n".join(printed)}
    for summary in (tmp_path / "reports" / "batches").glob("*.md"):
        outputs[summary.name] = summary.read_text(encoding="utf-8")
    pages = sorted((tmp_path / "reports" / "2026-11").rglob("*.html"))
    assert {p.name for p in pages} >= {"ranking.html", "1003.html", "HX20261120-0003.html"}, pages
    for page in pages:
        outputs[str(page.relative_to(tmp_path))] = visible_text(page.read_text(encoding="utf-8"))
    assert "待人工确认角色" in outputs["printed"] and "失败" in outputs["printed"]

    rule_ids = {rule.id for rule in load_scorecard(ROOT / "rules" / "default.yaml").spec.rules}
    english = {
        name: {w: _context(text, w) for w in words}
        for name, text in outputs.items()
        if (words := english_words(text, rule_ids))
    }
    assert english == {}, english


def _context(text: str, word: str) -> str:
    at = re.search(rf"(?<![A-Za-z_]){re.escape(word)}(?![A-Za-z_])", text)
    return text[max(0, at.start() - 30) : at.end() + 30] if at else ""
