"""The Prefect flows as a supervisor runs them: the nightly flow retries a recording only when a retry
can help (the database was busy), never a corrupt file, and says how many succeeded and failed; the
monthly report flow leaves an audit row. Real processes: the flow runs in its own, the database is
held by this one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import soundfile as sf
from conftest import ROOT
from fixtures.reports.monthdata import build as build_month

from pipeline.store import Store

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYANNOTE_METRICS_ENABLED": "0"}
NIGHTLY = """
import json, sys
import flows
from prefect.artifacts import Artifact
state = flows.nightly_qa(directory=sys.argv[1], config=sys.argv[2], return_state=True)
result = state.result(raise_on_failure=False)
artifact = Artifact.get("nightly-qa-summary")
result.update(state=state.type.value, state_message=state.message, artifact=artifact.data if artifact else None)
print(json.dumps(result), flush=True)
"""
MONTHLY = """
import json, sys
import flows
print(json.dumps(flows.monthly_report(month="2026-11", db=sys.argv[1], with_audio=False)), flush=True)
"""


def test_only_what_can_pass_on_a_retry_is_retried(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "a_short.wav", np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32), 8000)
    (folder / "b_corrupt.wav").write_bytes(bytes(range(256)) * 20)
    for path in folder.iterdir():
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    db = tmp_path / "qa.duckdb"
    Store(db).close()
    config = tmp_path / "callqa.toml"
    config.write_text(
        f'db = "{db}"\nreports_dir = "{tmp_path / "reports"}"\n'
        "[batch]\ndb_lock_wait_s = 0.3\nretries = 3\nretry_delay_s = 1\n",
        encoding="utf-8",
    )
    holder = duckdb.connect(str(db))  # the database is busy when the flow starts
    flow = subprocess.Popen(
        [sys.executable, "-c", NIGHTLY, str(folder), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    lines = []
    try:
        for line in flow.stdout:
            lines.append(line)
            if holder is not None and re.search(r"a_short\.wav.*Retry \d+/3", line):
                holder.close()  # busy no longer: the retry passes
                holder = None
    finally:
        if holder is not None:
            holder.close()
        flow.wait(timeout=300)
    log = "".join(lines)
    assert flow.returncode == 0, log[-3000:]
    result = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    assert {k: result[k] for k in ("recordings", "processed", "skipped", "failed")} == {
        "recordings": 2,
        "processed": 0,
        "skipped": 1,
        "failed": 1,
    }
    assert re.search(r"a_short\.wav.*Retry 1/3", log) and not re.search(r"b_corrupt\.wav.*Retry", log)
    with Store(db, read_only=True) as store:
        short, corrupt = (
            store.recording_at(folder / "a_short.wav"),
            store.recording_at(folder / "b_corrupt.wav"),
        )
    assert (short.status, short.problem, short.attempts) == ("skipped", "too_short", 1)
    assert (corrupt.status, corrupt.problem, corrupt.attempts) == ("failed", "not_audio", 1)
    summary = Path(result["summary_file"]).read_text(encoding="utf-8")
    assert "完成 0，已处理过 0，跳过 1，失败 1" in summary and "【不是录音文件】" in summary
    # Not a green run: the flow run ends Failed, and the summary is the run's artifact in the Prefect UI.
    assert result["state"] == "FAILED" and "1 个录音失败" in result["state_message"]
    assert result["artifact"] == summary


def test_the_monthly_report_flow_is_audited(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    build_month(db, tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", MONTHLY, str(db)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    with Store(db, read_only=True) as store:
        (row,) = store.audit_rows()
    assert row["action"] == "report" and row["command"].startswith("prefect flow monthly-report (run ")
    assert row["records"] == result["call_pages"] and row["redacted"] is True
    assert json.loads(row["details"]) == {"month": "2026-11", "agents": result["agents"], "with_audio": False}
