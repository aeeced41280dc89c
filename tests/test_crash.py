"""Crashes and reruns with real processes killed by SIGKILL: a write transaction cut in the middle
leaves the store as it was, and a batch killed halfway is finished by the next run without redoing
or duplicating anything (the second test runs real speech recognition: e2e)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import MAGICDATA, ROOT
from make_catalogue import short_call
from storecalls import save_call

from pipeline.batch import run_batch
from pipeline.config import Settings
from pipeline.store import CALL_TABLES, Store

ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "PYANNOTE_METRICS_ENABLED": "0"}

WRITER = """
import sys, time
from pathlib import Path
from storecalls import save_call, transcript
from pipeline.store import Store
db = Path(sys.argv[1])
with Store(db) as store:
    save_call(store, "A", [("agent", 0.5, 2.0, "您好，请问有什么可以帮您？"), ("customer", 2.5, 4.0, "我想查订单")])
    print("saved", flush=True)
    # what save_call does for a new version of the same call, stopped between its DELETE and COMMIT
    with store.transaction() as db:
        store._delete_call_of(db, "/recordings/A.wav", "A")
        db.execute("DELETE FROM recordings WHERE path = '/recordings/A.wav'")
        db.execute("INSERT INTO utterances VALUES ('A', 0, 'agent', 0, 1, '新的一半', 0.9, 'channel', 1.0, NULL)")
        print("inside", flush=True)
        time.sleep(600)
"""


def _counts(store: Store) -> dict[str, int]:
    tables = (*CALL_TABLES, "recordings")
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_a_write_killed_halfway_leaves_the_previous_version(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert writer.stdout.readline().strip() == "saved"
    assert writer.stdout.readline().strip() == "inside"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    with Store(db, read_only=True) as store:  # a reader opens the crashed file (its log replayed)
        assert [u["text"] for u in store.utterances("A")] == ["您好，请问有什么可以帮您？", "我想查订单"]
        assert store.recording_at(Path("/recordings/A.wav")).status == "ok"
        before = _counts(store)
    with Store(db) as store:  # and the next writer goes on from there
        save_call(store, "B", [("agent", 0.5, 2.0, "您好")])
        after = _counts(store)
    assert after["calls"] == before["calls"] + 1 == 2 and after["utterances"] == before["utterances"] + 1


def _folder_of_real_calls(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        samples, rate, _ = short_call(MAGICDATA, seed=20 + i).render(stereo=True, out_rate=8000)
        path = folder / f"100{i}_20261122-08{i:02d}00.wav"
        sf.write(path, samples, rate, subtype="PCM_16")
        old = time.time() - 3600
        os.utime(path, (old, old))
        paths.append(path)
    return paths


@pytest.mark.e2e
def test_a_batch_killed_halfway_is_finished_by_the_next_run(tmp_path: Path) -> None:
    folder, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    paths = _folder_of_real_calls(folder, 3)
    batch = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", str(folder), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    first = batch.stdout.readline()
    assert first.startswith("[1/3]") and "完成" in first, first
    time.sleep(1.0)  # inside the second recording: recognising it, or writing it
    batch.send_signal(signal.SIGKILL)
    batch.wait()

    with Store(db, read_only=True) as store:
        done = {r["file"] for r in store.recordings() if r["status"] == "ok"}
        utterances = {cid: len(store.utterances(cid)) for cid in store.call_ids()}
        interrupted = [row["path"] for row in store.interrupted()]
    assert str(paths[0]) in done and len(done) < 3
    assert all(n > 0 for n in utterances.values()) and len(utterances) == len(done)  # no half-written call
    assert interrupted == [str(paths[len(done)])]  # the file it was working on is marked

    settings = Settings(db=db, reports_dir=tmp_path / "reports")
    second = run_batch(folder, settings)
    status = {o.path: o.status for o in second.outcomes}
    assert all(status[Path(p)] == "unchanged" for p in done)  # finished recordings are not redone
    assert sorted(o.status for o in second.outcomes) == sorted(
        ["unchanged"] * len(done) + ["ok"] * (3 - len(done))
    )
    assert second.outcomes[-1].path == Path(interrupted[0])  # the one the batch died on goes last
    with Store(db, read_only=True) as store:
        assert len(store.call_ids()) == 3 and store.interrupted() == []
        for call_id, n in utterances.items():
            assert len(store.utterances(call_id)) == n  # not redone, not duplicated
        counts = _counts(store)
        assert counts["recordings"] == 3 and counts["calls"] == 3 and counts["scores"] == 3
        crashed = store.recording_at(Path(interrupted[0]))
        assert crashed.status == "ok" and crashed.attempts == 2  # the crash counted as an attempt
