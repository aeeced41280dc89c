"""Readers while the batch writes, with real processes: `callqa show`, `export`, `failures`, `audit`
and `report` keep working (and see whole calls only) while another process writes the store the way
the nightly batch does — a short write transaction per recording, the database closed in between."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT
from fixtures.reports.monthdata import build as build_month

from pipeline.store import Store

ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
UTTERANCES = 60

# The batch's pattern: "recognise" (no database), then one short transaction. A call is rewritten
# now and then (a changed file), which deletes and re-inserts all its rows.
WRITER = f"""
import sys, time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo
from storecalls import save_call
from pipeline.store import Store
db, stop = Path(sys.argv[1]), Path(sys.argv[2])
lines = [("agent" if i % 2 == 0 else "customer", i * 2.0, i * 2.0 + 1.5, f"第{{i}}句话，我的电话是幺三八一二三四五六七八")
         for i in range({UTTERANCES})]
written, slowest = 0, 0.0
while not stop.exists():
    time.sleep(0.2)  # speech recognition of the next recording
    started = time.monotonic()
    with Store(db, lock_wait_s=120) as store:
        save_call(store, f"W{{written % 25:03d}}", lines, datetime(2026, 11, 5, 9, tzinfo=ZoneInfo("Asia/Shanghai")),
                  agent_id="A01")
    slowest = max(slowest, time.monotonic() - started)
    written += 1
print(written, round(slowest, 2), flush=True)
"""


def _callqa(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
    )


def test_readers_keep_working_while_the_batch_writes(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    build_month(db, tmp_path)  # a month of scored calls, for the report
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(stop)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    reads = 0
    try:
        deadline = time.monotonic() + 20
        while not _has_call(db, "W001") and time.monotonic() < deadline:
            time.sleep(0.2)
        for round_ in range(3):
            out = tmp_path / f"export{round_}.jsonl"
            exported = _callqa("export", "--db", str(db), "--out", str(out), cwd=tmp_path)
            assert exported.returncode == 0, exported.stderr
            records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
            written = [r for r in records if r["call_id"].startswith("W")]
            assert written and all(len(r["utterances"]) == UTTERANCES for r in written)  # whole calls only
            assert all("幺三八一二三四五六七八" not in u["text"] for r in written for u in r["utterances"])

            shown = _callqa("show", "W000", "--db", str(db), cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            assert shown.stdout.count("第") == UTTERANCES and "138****5678" in shown.stdout

            for command in (("failures", "--all"), ("audit",)):
                listed = _callqa(*command, "--db", str(db), cwd=tmp_path)
                assert listed.returncode == 0, listed.stderr
            reads += 4
        report = _callqa("report", "--month", "2026-11", "--db", str(db), "--no-audio", cwd=tmp_path)
        assert report.returncode == 0, report.stderr
        assert (tmp_path / "reports" / "2026-11" / "ranking.html").is_file()
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=300)
    assert writer.returncode == 0
    written, slowest = out.split()
    assert int(written) >= 5  # the writer kept writing all along, never refused …
    assert float(slowest) < 30  # … and never waited long for a reader
    with Store(db, read_only=True) as store:
        counts = store.query(
            "SELECT call_id, count(*) AS n FROM utterances WHERE call_id LIKE 'W%' GROUP BY call_id"
        )
        audit = [r["action"] for r in store.audit_rows()]
    assert all(row["n"] == UTTERANCES for row in counts)  # rewrites never duplicated a row
    assert audit.count("export") == 3 and audit.count("show") == 3 and audit.count("report") == 1
    assert reads == 12


def _has_call(db: Path, call_id: str) -> bool:
    try:
        with Store(db, read_only=True, lock_wait_s=5) as store:
            return store.call(call_id) is not None
    except Exception:
        return False
