"""One clock: the centre's (`[input] timezone`), not the server's, in the batch summary, `failures`
and `audit`. A zone with a half-hour offset cannot be matched by a server in UTC or in China."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.cli import main as callqa

CENTRE = ZoneInfo("Asia/Kolkata")  # UTC+05:30


def _near_now(stamp: str, fmt: str) -> bool:
    seen = datetime.strptime(stamp, fmt).replace(tzinfo=CENTRE)
    return abs(datetime.now(CENTRE) - seen) < timedelta(minutes=3)


def test_summary_failures_and_audit_read_in_the_centres_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "callqa.toml").write_text('[input]\ntimezone = "Asia/Kolkata"\n', encoding="utf-8")
    folder = tmp_path / "calls"
    folder.mkdir()
    broken = folder / "1009_20261120-150000.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00")  # a header cut short
    os.utime(broken, (time.time() - 3600, time.time() - 3600))
    db = str(tmp_path / "qa.duckdb")

    assert callqa(["run", str(folder), "--db", db]) == 1
    summary = next((tmp_path / "reports" / "batches").glob("*.md"))
    assert _near_now(summary.stem, "%Y-%m-%d_%H%M%S"), summary.name
    heading = re.search(
        r"汇总 (\d{4}-\d\d-\d\d \d\d:\d\d)（Asia/Kolkata 时间）", summary.read_text(encoding="utf-8")
    )
    assert heading and _near_now(heading.group(1), "%Y-%m-%d %H:%M")

    capsys.readouterr()
    assert callqa(["failures", "--db", db]) == 0
    attempt = re.search(r"第 1 次，(\d{4}-\d\d-\d\d \d\d:\d\d)", capsys.readouterr().out)
    assert attempt and _near_now(attempt.group(1), "%Y-%m-%d %H:%M")

    assert callqa(["export", "--db", db, "--out", str(tmp_path / "x.jsonl")]) == 0
    capsys.readouterr()
    assert callqa(["audit", "--db", db]) == 0
    logged = re.search(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+导出", capsys.readouterr().out, re.M)
    assert logged and _near_now(logged.group(1), "%Y-%m-%d %H:%M:%S")
