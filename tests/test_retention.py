"""Retention and the audit trail: `callqa purge` (refusal inside the 3 years, dry run, what it removes
and keeps, audio, report folders, tombstones) and the audit rows of export, show, report and purge."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from storecalls import TZ, save_call

from pipeline.cli import main as callqa
from pipeline.config import Settings
from pipeline.ingest import fingerprint
from pipeline.process import process_recording
from pipeline.reports.monthly import Month
from pipeline.rules.rescore import rescore, scorecards_from
from pipeline.store import CALL_TABLES, Store

LINES = [
    ("agent", 0.5, 3.0, "您好，客户服务中心，请问有什么可以帮您？"),
    ("customer", 3.2, 6.0, "我想查一下我的订单。"),
    ("agent", 6.2, 9.0, "这个我不知道，您问别人吧。"),
]


def _months_ago(n: int) -> Month:
    now = datetime.now(TZ)
    month = Month(now.year, now.month)
    for _ in range(n):
        month = month.previous()
    return month


@pytest.fixture()
def archive(tmp_path: Path) -> dict:
    """Calls 50 and 40 months old (outside the 3 years), 10 months old and this month; their audio
    and sidecars; report folders and batch summaries of those months; old and new CRM events."""
    db = tmp_path / "qa.duckdb"
    folder = tmp_path / "recordings"
    folder.mkdir()
    ages = {"OLD-50": 50, "OLD-40": 40, "KEEP-10": 10, "KEEP-0": 0}
    with Store(db) as store:
        for call_id, age in ages.items():
            month = _months_ago(age)
            audio = folder / f"{call_id}.wav"
            sf.write(audio, np.random.default_rng(age).normal(0, 0.1, 800).astype(np.float32), 8000)
            audio.with_suffix(".json").write_text(
                json.dumps({"call_id": call_id, "customer_phone": "13812345678"})
            )
            when = datetime(month.year, month.month, 3, 10, 0, tzinfo=TZ)
            save_call(store, call_id, LINES, when, str(audio), sha256=fingerprint(audio).sha256)
            os.utime(audio, (time.time() - 3600, time.time() - 3600))  # written long ago
        rescore(store, scorecards_from(None))  # scores and findings, as the batch leaves them
        old = _months_ago(45)
        store.db.execute(  # a failed file from long ago
            "INSERT INTO recordings (path, sha256, size_bytes, status, error, call_id, attempts, processed_at, problem) "
            "VALUES ('/gone/old.wav', '', 0, 'failed', 'x', 'old', 1, ?, 'empty')",
            [datetime(old.year, old.month, 5, tzinfo=TZ)],
        )
        for event_id, when in (
            ("E-OLD", datetime(old.year, old.month, 5).date()),
            ("E-NEW", datetime.now(TZ).date()),
        ):
            store.db.execute(
                "INSERT INTO agent_events VALUES (?, ?, '1001', 'praise', NULL, NULL, '', 'crm.csv', 2, now())",
                [event_id, when],
            )
    reports = tmp_path / "reports"
    for age in (50, 10):
        (reports / str(_months_ago(age)) / "calls").mkdir(parents=True)
        (reports / str(_months_ago(age)) / "calls" / "x.html").write_text("…", encoding="utf-8")
    (reports / "batches").mkdir()
    for age in (50, 0):
        m = _months_ago(age)
        (reports / "batches" / f"{m}-01_020000.md").write_text("#", encoding="utf-8")
    config = tmp_path / "callqa.toml"
    config.write_text(f'db = "{db}"\nreports_dir = "{reports}"\n', encoding="utf-8")
    return {"db": db, "folder": folder, "reports": reports, "config": str(config)}


def _counts(db: Path) -> dict[str, int]:
    with Store(db, read_only=True) as store:
        tables = (*CALL_TABLES, "recordings", "agent_events", "audit_log", "purged_recordings")
        return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_purge_refuses_to_cut_into_the_retention_period(
    archive: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _counts(archive["db"])
    assert callqa(["--config", archive["config"], "purge", "--before", str(_months_ago(35))]) == 2
    err = capsys.readouterr().err
    assert "保存 36 个月" in err and f"最晚可以 --before {_months_ago(36)}" in err and "--force" in err
    assert _counts(archive["db"]) == before


def test_dry_run_says_what_would_go_and_changes_nothing(
    archive: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _counts(archive["db"])
    cutoff = str(_months_ago(36))
    assert (
        callqa(["--config", archive["config"], "purge", "--before", cutoff, "--dry-run", "--delete-audio"])
        == 0
    )
    out = capsys.readouterr().out
    assert "将删除" in out and "试运行" in out
    assert f"{_months_ago(50)}：1 通通话" in out and f"{_months_ago(40)}：1 通通话" in out
    assert "通话 2 通" in out and "录音文件 2 个" in out and "客户评价事件 1 条" in out
    assert _counts(archive["db"]) == before and (archive["folder"] / "OLD-50.wav").exists()
    assert (archive["reports"] / str(_months_ago(50))).is_dir()


def test_purge_removes_old_calls_everywhere_and_keeps_the_rest(
    archive: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    db, folder, reports = archive["db"], archive["folder"], archive["reports"]
    with Store(db, read_only=True) as store:
        old_findings = store.query(
            "SELECT count(*) AS n FROM findings WHERE call_id IN ('OLD-50', 'OLD-40')"
        )[0]["n"]
    assert old_findings > 0
    before = _counts(db)
    cutoff = str(_months_ago(36))
    assert callqa(["--config", archive["config"], "purge", "--before", cutoff, "--delete-audio"]) == 0
    out = capsys.readouterr().out
    assert "已删除" in out and "通话 2 通" in out and f"质检发现 {old_findings} 条" in out
    after = _counts(db)
    assert after["calls"] == 2 and after["findings"] == before["findings"] - old_findings
    assert after["recordings"] == before["recordings"] - 3  # two calls and the old failed file
    assert after["agent_events"] == 1 and after["purged_recordings"] == 2 and after["audit_log"] == 1
    with Store(db, read_only=True) as store:
        assert store.call_ids() == ["KEEP-0", "KEEP-10"]
        for table in CALL_TABLES:
            left = store.query(f"SELECT count(*) AS n FROM {table} WHERE call_id LIKE 'OLD-%'")[0]["n"]
            assert left == 0, table
        (audit,) = store.audit_rows()
    assert not (folder / "OLD-50.wav").exists() and not (folder / "OLD-40.json").exists()
    assert (folder / "KEEP-10.wav").exists() and (folder / "KEEP-10.json").exists()
    assert not (reports / str(_months_ago(50))).exists() and (reports / str(_months_ago(10))).is_dir()
    assert sorted(p.name[:7] for p in (reports / "batches").glob("*.md")) == [str(_months_ago(0))]
    details = json.loads(audit["details"])
    assert (audit["action"], audit["records"]) == ("purge", 2) and audit["command"].startswith(
        "callqa --config"
    )
    assert details["months"] == {str(_months_ago(50)): 1, str(_months_ago(40)): 1}
    assert details["delete_audio"] is True and details["before"].startswith(cutoff)


def test_purged_audio_is_not_taken_in_again(archive: dict) -> None:
    folder = archive["folder"]
    kept_copy = folder / "OLD-50.wav"
    content = kept_copy.read_bytes()
    assert callqa(["--config", archive["config"], "purge", "--before", str(_months_ago(36))]) == 0
    assert kept_copy.exists()  # without --delete-audio the audio stays where it is …
    rename = folder / "archive_OLD-50.wav"
    rename.write_bytes(content)  # … and even under another name it is not a new call
    os.utime(rename, (time.time() - 3600, time.time() - 3600))
    settings = Settings(db=archive["db"])
    for path in (kept_copy, rename):
        outcome = process_recording(path, settings)
        assert (outcome.status, outcome.problem) == ("skipped", "purged") and "保留期限" in outcome.message
    with Store(archive["db"], read_only=True) as store:
        assert store.recording_at(rename) is None and store.call("OLD-50") is None


def test_force_purges_inside_the_retention_period(archive: dict) -> None:
    assert callqa(["--config", archive["config"], "purge", "--before", str(_months_ago(0)), "--force"]) == 0
    assert _counts(archive["db"])["calls"] == 1  # only this month's call is left


def test_audit_lists_every_extraction(
    archive: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = archive["config"]
    assert callqa(["--config", config, "export", "--out", str(tmp_path / "x.jsonl")]) == 0
    assert callqa(["--config", config, "show", "KEEP-0"]) == 0
    assert callqa(["--config", config, "purge", "--before", str(_months_ago(36))]) == 0
    capsys.readouterr()
    assert callqa(["--config", config, "audit"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in out] == ["导出", "查看通话", "清除"]
    assert "已脱敏" in out[0] and str(tmp_path / "x.jsonl") in out[0] and "KEEP-0" in out[1]
    with Store(archive["db"], read_only=True) as store:
        rows = store.audit_rows()
    assert all(r["os_user"] and r["host"] for r in rows)
