"""The batch's speed by worker layout: sequential (today) against local Dask clusters.

    .venv/bin/python bench/batch_layout.py [--files DIR] [--layouts seq,2x1,1x2] [--out bench/results]

Each layout runs `pipeline.batch.run_batch` over the same recordings into a fresh database, wall time
from the batch's start to its last stored recording (cluster start and model loading included, as a
night pays them). `seq` = one process, whisper on every core; `PxT` = a local cluster of P worker
processes with T threads each. Results go to bench/results/batch-layout-<date>.{json,md}; the best
layout is the default of pipeline/cluster.py (THREADS_PER_WORKER).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIO = (".wav", ".flac", ".mp3")


def run_layout(layout: str, folder: Path, scratch: Path) -> dict:
    from pipeline.batch import run_batch
    from pipeline.config import Settings

    settings = Settings(db=scratch / f"{layout}.duckdb", reports_dir=scratch / "reports")
    settings = settings.model_copy(update={"intake": settings.intake.model_copy(update={"settle_s": 0.0})})
    started = time.perf_counter()
    if layout == "seq":
        summary = run_batch(folder, settings)
    else:
        import dask
        from distributed import LocalCluster

        from pipeline.cluster import local_cluster_options, scheduler_config

        processes, threads = (int(n) for n in layout.split("x"))
        options = {**local_cluster_options(settings), "n_workers": processes, "threads_per_worker": threads}
        options["env"] = {key: str(threads) for key in options["env"]}  # type: ignore[union-attr]
        with dask.config.set(scheduler_config(settings)), LocalCluster(**options) as cluster:
            summary = run_batch(folder, settings, dask_address=cluster.scheduler_address)
    wall = time.perf_counter() - started
    audio = sum(o.duration_s or 0.0 for o in summary.outcomes)
    return {
        "layout": layout,
        "recordings": len(summary.outcomes),
        "ok": summary.count("ok"),
        "audio_s": round(audio, 1),
        "wall_s": round(wall, 1),
        "x_realtime": round(audio / wall, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=ROOT / "recordings_sample")
    parser.add_argument("--layouts", default="seq,2x1,1x2")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
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
    name = f"batch-layout-{stamp:%Y-%m-%d}"
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
        "| layout | recordings | ok | audio (s) | wall (s) | × real time | speed-up vs seq |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['layout']} | {r['recordings']} | {r['ok']} | {r['audio_s']} | {r['wall_s']} | "
        f"{r['x_realtime']} | {r['speedup_vs_seq']} |"
        for r in rows
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
