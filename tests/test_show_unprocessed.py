"""`callqa show` for a call without results says why: never seen, or seen and skipped (still being
written) or failed, with the batch's reason; a time zone that is not a zone never reaches SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
import soundfile as sf

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.errors import CallQAError
from pipeline.store import Store


def test_show_explains_a_file_skipped_as_still_being_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    noise = np.random.default_rng(1).normal(0, 0.05, 8000 * 3).astype(np.float32)
    sf.write(folder / "A01_20261120-101500.wav", noise, 8000)  # written just now: still settling
    db = tmp_path / "qa.duckdb"
    main(["run", str(folder), "--db", str(db)])
    capsys.readouterr()
    assert main(["show", "A01_20261120-101500", "--db", str(db)]) != 0
    error = capsys.readouterr().err
    assert "还没有分析结果" in error and "跳过" in error and "仍在录音或写入" in error

    assert main(["show", "NO-SUCH-CALL", "--db", str(db)]) != 0
    assert "批处理还没有见过这个录音" in capsys.readouterr().err


def test_a_timezone_that_is_not_a_zone_is_refused_before_it_reaches_sql(tmp_path: Path) -> None:
    config = tmp_path / "callqa.toml"
    config.write_text('[input]\ntimezone = "Asia/Shanghai\'; DROP TABLE calls; --"\n', encoding="utf-8")
    with pytest.raises(CallQAError, match="时区"):
        load_settings(config)
    db = tmp_path / "qa.duckdb"
    with pytest.raises(CallQAError, match="时区"):
        Store(db, timezone="UTC'; CREATE TABLE pwned(x INT); --")
    with duckdb.connect(str(db)) as connection:
        assert ("pwned",) not in connection.execute("SHOW TABLES").fetchall()


def test_analyst_views_give_the_current_score_and_findings(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    with Store(db) as store:
        store.db.execute(
            "INSERT INTO calls (call_id, path, sha256, agent_id, started_at, channels, channels_source, "
            "meta_source, duration_s, source_format, source_sample_rate, source_channels, "
            "diarization_method, asr_model, role_source, role_confidence, warnings) VALUES "
            "('C1', '/a.wav', 'x', 'A01', TIMESTAMPTZ '2026-11-20 10:00:00+08', 'mono', 'file', 'none', "
            "60, 'WAV', 8000, 1, 'm', 'w', 'text-cues', 1.0, [])"
        )
        for scored_at, score, current in (
            ("2026-11-21 01:00:00+00", 80.0, False),
            ("2026-11-22 01:00:00+00", 95.0, True),
        ):
            store.db.execute(
                "INSERT INTO scores (call_id, scored_at, scorecard_hash, score, fatal, is_current) VALUES ('C1', ?, 'h', ?, false, ?)",
                [scored_at, score, current],
            )
            store.db.execute(
                "INSERT INTO findings (call_id, scored_at, idx, rule_id, title, category, passed, deduction, "
                "fatal, needs_review, scorecard_hash) VALUES ('C1', ?, 0, 'RATE', '语速', '过程', ?, ?, false, false, 'h')",
                [scored_at, current, 0.0 if current else 5.0],
            )
        (row,) = store.query("SELECT call_id, score, roles_awaiting_review FROM current_scores")
        assert row == {"call_id": "C1", "score": 95.0, "roles_awaiting_review": False}
        (finding,) = store.query("SELECT rule_id, passed, agent_id FROM current_findings")
        assert finding == {"rule_id": "RATE", "passed": True, "agent_id": "A01"}
        comment = store.query("SELECT comment FROM duckdb_views() WHERE view_name = 'current_scores'")
        assert comment and "当前评分" in comment[0]["comment"]


def test_the_batch_summary_reads_in_the_centres_time_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    folder = tmp_path / "calls"
    folder.mkdir()
    config = tmp_path / "callqa.toml"
    config.write_text(
        f'db = "{tmp_path / "qa.duckdb"}"\nreports_dir = "{tmp_path / "reports"}"\n'
        '[input]\ntimezone = "America/Los_Angeles"\n',
        encoding="utf-8",
    )
    main(["--config", str(config), "run", str(folder)])
    capsys.readouterr()
    (summary,) = (tmp_path / "reports" / "batches").glob("*.md")
    centre = datetime.now(ZoneInfo("America/Los_Angeles"))
    heading = summary.read_text(encoding="utf-8").splitlines()[0]
    assert "America/Los_Angeles 时间" in heading and f"{centre:%Y-%m-%d %H}:" in heading
