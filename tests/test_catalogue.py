"""The whole catalogue of broken and awkward recordings as one real batch (tools/make_catalogue.py):
each entry ends as the catalogue says, with its reason, every good recording is scored, the exit
status and summary count them, `callqa failures` lists them, and a rerun retries only the failed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from make_catalogue import build

from pipeline.problems import title
from pipeline.store import Store

pytestmark = pytest.mark.e2e
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYANNOTE_METRICS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}


def _callqa(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=config.parent,
        timeout=1800,
    )


def test_the_catalogue_as_one_nightly_batch(tmp_path: Path) -> None:
    entries = build(tmp_path)
    config, folder, db = tmp_path / "callqa.toml", tmp_path / "recordings", tmp_path / "qa.duckdb"
    first = _callqa(config, "run", str(folder))
    assert first.returncode == 1, first.stderr[-3000:]  # some recordings failed
    assert "共 22 个录音：完成 7，已处理过 0，跳过 4，失败 11" in first.stdout, first.stdout

    with Store(db, read_only=True) as store:
        for entry in entries:
            row = store.recording_at(folder / entry.name)
            assert row is not None, entry.name
            assert (row.status, row.problem) == (entry.status, entry.problem), (entry.name, row.error)
            if entry.status == "ok":
                call = store.call(row.call_id)
                assert store.utterances(row.call_id) and store.current_score(row.call_id) is not None
                assert not entry.says or any(entry.says in w for w in call["warnings"]), call["warnings"]
            else:
                assert entry.says in row.error and entry.name.split(".")[0] in row.error, row.error
        assert store.interrupted() == []
    summaries = list((tmp_path / "reports" / "batches").glob("*.md"))
    summary = summaries[0].read_text(encoding="utf-8")
    assert all(f"【{title(e.problem)}】" in summary for e in entries if e.problem)

    listed = _callqa(config, "failures", "--all")
    assert listed.returncode == 0
    assert "失败 11 个录音，跳过 4 个" in listed.stdout
    for entry in entries:
        if entry.status != "ok":
            assert entry.name in listed.stdout, entry.name

    finished = time.time() - 3600  # the phone system has finished writing its file
    os.utime(folder / "being_written.wav", (finished, finished))
    second = _callqa(config, "run", str(folder))
    assert second.returncode == 1
    assert "共 22 个录音：完成 0，已处理过 10，跳过 1，失败 11" in second.stdout, second.stdout
    with Store(db, read_only=True) as store:
        for entry in entries:
            row = store.recording_at(folder / entry.name)
            retried = entry.status == "failed" or entry.name == "being_written.wav"
            assert row.attempts == (2 if retried else 1), entry.name
        written = store.recording_at(folder / "being_written.wav")
        assert (written.status, written.problem) == ("skipped", "too_short")  # picked up once finished
        assert len(store.call_ids()) == 7
