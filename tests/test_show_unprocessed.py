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
