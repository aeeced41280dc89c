"""`callqa show` for a call without results says why: never seen, or seen and skipped (still being
written) or failed, with the batch's reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.cli import main


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
