"""The batch on a real Dask cluster survives dying workers: a worker killed in the middle of a recording
makes Dask run it again on another worker, and the recording is stored exactly once, with the same rows
a sequential run stores; a recording on which two workers died is recorded as failed, with the reason,
the batch goes on, and later batches hold it back until it changes or --recheck. Real worker processes, real speech recognition, real SIGKILL."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import soundfile as sf
from conftest import MAGICDATA
from make_catalogue import short_call

from pipeline.batch import plan_batch, run_batch
from pipeline.cluster import scheduler_config
from pipeline.config import Settings
from pipeline.store import CALL_TABLES, Store

# whisper on one thread in both runs: the same arithmetic, so the same words
ONE_THREAD = {"cpu_threads": 1}


def _calls(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    paths = {}
    # batch order is by name: "twice" starts at once, "once" only when another recording is done, so
    # that each is caught alone on its worker
    for i, name in enumerate(("twice", "calm", "once")):
        samples, rate, _ = short_call(MAGICDATA, seed=30 + i).render(stereo=True, out_rate=8000)
        path = folder / f"200{i}_20261123-09{i:02d}00.wav"
        sf.write(path, samples, rate, subtype="PCM_16")
        old = time.time() - 3600
        os.utime(path, (old, old))
        paths[name] = path
    return paths


def _settings(tmp_path: Path, name: str) -> Settings:
    settings = Settings(db=tmp_path / f"{name}.duckdb", reports_dir=tmp_path / "reports")
    return settings.model_copy(update={"asr": settings.asr.model_copy(update=ONE_THREAD)})


def _rows(db: Path, since: datetime) -> dict[str, list[tuple]]:
    """Every stored row of every call table and of the recordings' bookkeeping, without the times
    the rows were written (stamps after `since`) and the seconds the work took."""

    def kept(row: tuple) -> tuple:
        return tuple(v for v in row if not (isinstance(v, datetime) and v.astimezone(UTC) >= since))

    with Store(db, read_only=True) as store:
        rows = {
            t: sorted((kept(r) for r in store.db.execute(f"SELECT * FROM {t}").fetchall()), key=repr)
            for t in CALL_TABLES
        }
        rows["recordings"] = sorted(
            store.db.execute(
                "SELECT path, sha256, status, call_id, attempts, problem FROM recordings"
            ).fetchall()
        )
    return rows


class Killer(threading.Thread):
    """Kills the worker process running a recording, after it has worked on it for a moment, as
    many times as asked per file name."""

    def __init__(self, address: str, kills: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.address, self.wanted, self.done = address, kills, dict.fromkeys(kills, 0)
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        from distributed import Client

        seen: dict[tuple[str, str], float] = {}  # (worker, task) → when first seen running there
        with Client(self.address) as client:
            while not self.stop.is_set():
                try:
                    self.look(client, seen)
                except Exception as exc:  # a worker that just died cannot answer: look again
                    self.errors.append(repr(exc))
                time.sleep(0.05)

    def look(self, client: object, seen: dict[tuple[str, str], float]) -> None:
        for worker, keys in client.processing().items():  # type: ignore[attr-defined]
            if len(keys) != 1:  # a worker holding two tasks would take both down
                continue
            key = str(keys[0])
            name = next((n for n in self.wanted if n in key), None)
            if name is None or self.done[name] >= self.wanted[name]:
                continue
            first = seen.setdefault((worker, key), time.monotonic())
            if time.monotonic() - first < 1.5:  # mid-task: decoding or recognising
                continue
            pid = client.run(os.getpid, workers=[worker])[worker]  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
            self.done[name] += 1


@pytest.mark.e2e
def test_killed_workers_retry_elsewhere_and_each_recording_is_stored_once(tmp_path: Path) -> None:
    from distributed import LocalCluster

    paths = _calls(tmp_path / "calls")
    started = datetime.now(UTC)
    sequential = _settings(tmp_path, "sequential")
    baseline = run_batch(tmp_path / "calls", sequential)
    assert sorted(o.status for o in baseline.outcomes) == ["ok"] * 3

    distributed_settings = _settings(tmp_path, "dask")
    import dask

    with (
        dask.config.set(scheduler_config(distributed_settings)),  # 2 dead workers and a recording is given up
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1") as cluster,
    ):
        killer = Killer(cluster.scheduler_address, {paths["once"].name: 1, paths["twice"].name: 2})
        killer.start()
        try:
            summary = run_batch(
                tmp_path / "calls", distributed_settings, dask_address=cluster.scheduler_address
            )
        finally:
            killer.stop.set()
            killer.join(timeout=30)
    assert killer.done == {paths["once"].name: 1, paths["twice"].name: 2}, killer.errors

    outcomes = {o.path: o for o in summary.outcomes}
    assert len(summary.outcomes) == 3 and len(outcomes) == 3  # each recording answered once
    assert outcomes[paths["once"]].status == outcomes[paths["calm"]].status == "ok"
    crashed = outcomes[paths["twice"]]
    assert (crashed.status, crashed.problem) == ("failed", "crashed")
    assert "工作进程多次崩溃" in crashed.message and "--recheck" in crashed.message

    # the recordings that were stored hold exactly the rows of the sequential run, once each
    stored, expected = _rows(distributed_settings.db, started), _rows(sequential.db, started)
    twice_call = paths["twice"].stem
    for table in CALL_TABLES:
        assert stored[table] == [r for r in expected[table] if twice_call not in r], table
    assert [r for r in stored["recordings"] if r[0] != str(paths["twice"])] == [
        r for r in expected["recordings"] if r[0] != str(paths["twice"])
    ]
    with Store(distributed_settings.db, read_only=True) as store:
        failed = store.recording_at(paths["twice"])
        assert (failed.status, failed.problem) == ("failed", "crashed")
        held = store.interrupted()  # held back like a file that killed the batch itself
    assert [(r["path"], r["pid"], r["crashes"]) for r in held] == [(str(paths["twice"]), 0, 2)]
    later = plan_batch(tmp_path / "calls", distributed_settings)
    assert later.held[paths["twice"]].problem == "crashed" and set(later.held) == {paths["twice"]}
