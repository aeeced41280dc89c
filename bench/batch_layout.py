"""The batch's speed by worker layout: sequential (today) against local Dask clusters.

    .venv/bin/python bench/batch_layout.py [--files DIR] [--layouts seq,2x1,1x2] [--out bench/results]

Each layout runs `pipeline.batch.run_batch` over the same recordings into a fresh database, wall time
from the batch's start to its last stored recording (cluster start and model loading included, as a
night pays them). `seq` = one process, whisper on every core; `PxT` = a local cluster of P worker
processes with T threads each. Results go to bench/results/batch-layout-<date>[-TAG].{json,md}; the
best layout is the default of pipeline/cluster.py (THREADS_PER_WORKER).

For sizing (docs/operations.md): each cluster layout also reports its workers' peak memory (the
largest resident set of a worker process) and the CPU seconds per recording of the batch's own
process — the single writer, with the local scheduler beside it — which bound how many workers one
writer can feed.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIO = (".wav", ".flac", ".mp3")


def run_layout(layout: str, folder: Path, scratch: Path) -> dict:
    import pipeline.batch
    from pipeline.batch import run_batch
    from pipeline.config import Settings

    writer = WriterClock()
    for step in ("prepare_recording", "store_analysis"):  # the writer's own work, timed where it runs
        setattr(pipeline.batch, step, writer.timed(getattr(pipeline.batch, step)))

    settings = Settings(db=scratch / f"{layout}.duckdb", reports_dir=scratch / "reports")
    settings = settings.model_copy(update={"intake": settings.intake.model_copy(update={"settle_s": 0.0})})
    started = time.perf_counter()
    if layout == "seq":
        summary = run_batch(folder, settings)
    else:
        import dask
        from distributed import Client, LocalCluster

        from pipeline.cluster import local_cluster_options, scheduler_config

        processes, threads = (int(n) for n in layout.split("x"))
        options = {**local_cluster_options(settings), "n_workers": processes, "threads_per_worker": threads}
        options["env"] = {key: str(threads) for key in options["env"]}  # type: ignore[union-attr]
        cpu_before = _cpu_s()
        with (
            dask.config.set(scheduler_config(settings)),
            LocalCluster(**options) as cluster,
            Client(cluster) as client,
        ):
            summary = run_batch(folder, settings, dask_address=cluster.scheduler_address)
            worker_peaks = client.run(_peak_rss_mb)
        process_cpu = _cpu_s() - cpu_before
    wall = time.perf_counter() - started
    audio = sum(o.duration_s or 0.0 for o in summary.outcomes)
    row: dict = {
        "layout": layout,
        "recordings": len(summary.outcomes),
        "ok": summary.count("ok"),
        "audio_s": round(audio, 1),
        "wall_s": round(wall, 1),
        "x_realtime": round(audio / wall, 2),
    }
    if layout != "seq":
        recordings = max(1, len(summary.outcomes))
        row["worker_peak_rss_mb"] = round(max(worker_peaks.values()), 1)
        row["writer_cpu_s_per_recording"] = round(writer.cpu_s / recordings, 3)
        row["writer_wall_s_per_recording"] = round(writer.wall_s / recordings, 3)
        row["process_cpu_s_per_recording"] = round(process_cpu / recordings, 2)
    for step in ("prepare_recording", "store_analysis"):
        setattr(pipeline.batch, step, getattr(pipeline.batch, step).__wrapped__)
    return row


class WriterClock:
    """CPU and wall seconds spent in the writer's steps (checks before sending, storing the answer),
    in the thread that runs them: the process's total also holds the local scheduler and nannies."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def timed(self, step: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(step)
        def run(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                self.cpu_s += time.thread_time() - cpu
                self.wall_s += time.perf_counter() - wall

        return run


def _peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=ROOT / "recordings_sample")
    parser.add_argument("--layouts", default="seq,2x1,1x2")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag", default="", help="suffix of the result files (busy, sizing …)")
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.WARNING)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        folder = scratch / "calls"
        folder.mkdir()
        for path in args.files.iterdir():
            if path.suffix.lower() in (*AUDIO, ".json"):
                shutil.copy2(path, folder / path.name)
        for layout in args.layouts.split(","):
            rows.append(run_layout(layout, folder, scratch))
            print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["layout"] == "seq"), rows[0])
    for row in rows:
        row["speedup_vs_seq"] = round(base["wall_s"] / row["wall_s"], 2)
    stamp = datetime.now()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"batch-layout-{stamp:%Y-%m-%d}" + (f"-{args.tag}" if args.tag else "")
    load = os.getloadavg()
    (args.out / f"{name}.json").write_text(
        json.dumps(
            {"cpus": os.cpu_count(), "loadavg": load, "files": str(args.files), "rows": rows}, indent=2
        ),
        encoding="utf-8",
    )
    lines = [
        f"# Batch by worker layout {stamp:%Y-%m-%d %H:%M} ({os.cpu_count()} CPUs, load {load[0]:.1f} at the end)",
        "",
        f"Recordings: {args.files.name}. Wall time includes cluster start and model loading.",
        "",
        "| layout | recordings | ok | audio (s) | wall (s) | × real time | speed-up vs seq "
        "| worker peak RSS (MB) | writer CPU s / rec. | writer wall s / rec. | batch process CPU s / rec. |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['layout']} | {r['recordings']} | {r['ok']} | {r['audio_s']} | {r['wall_s']} | "
        f"{r['x_realtime']} | {r['speedup_vs_seq']} | {r.get('worker_peak_rss_mb', '')} "
        f"| {r.get('writer_cpu_s_per_recording', '')} | {r.get('writer_wall_s_per_recording', '')} "
        f"| {r.get('process_cpu_s_per_recording', '')} |"
        for r in rows
    ]
    lines += [
        "",
        "Writer: `prepare_recording` + `store_analysis` in the batch's process (its thread's CPU time); "
        "batch process: all of that process, with the local scheduler and the workers' nannies.",
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
