"""Throughput and peak memory of the spine, next to plain faster-whisper on the same files.

    .venv/bin/python bench/throughput.py [--files DIR] [--out bench/results]

Each mode runs in its own process (so peak RSS is that mode's own), over the same recordings:

* pipeline: decode → diarize (stereo rule or mono pyannote) → whisper per turn → roles →
  audio events (rings, hold music) → metrics → scorecard, exactly what the nightly batch does
  for one recording, minus the database write;
* whisper: plain faster-whisper with the same bundled model and decoding options (int8, beam 5,
  VAD with 500 ms silences, word timestamps, language zh) on the down-mixed recording;
* whisper-full: the same without VAD, decoding every second of the recording, as whisper runs when
  nobody configures it (issue 12 states its throughput bar against this: "it transcribes only speech
  turns, while plain whisper decodes every second"). The report gives the ratio to both.

`--batch-sizes 0,4` runs the pipeline once per `asr.batch_size` (0: windows decoded one after
another; N: N windows per whisper call), each as its own mode ("pipeline-b4"), in the same run.

Audio seconds per wall second exclude model loading, which is reported separately. Both modes run
in one invocation, one after the other, and the report gives their ratio (pipeline ÷ whisper, in ×
real time; ≥ 1.0 = the pipeline is at least as fast as plain whisper), overall and per file. On a
machine that others share the wall clock says as much about them as about us: each mode's CPU
seconds (user + system, the process and its children) are reported too, with their ratio (whisper's
CPU seconds ÷ the pipeline's, ≥ 1.0 = the pipeline spends no more). Results go to
bench/results/throughput-<date>[-tag].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its children so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_mode(mode: str, files: list[str]) -> dict:
    """Runs inside the child process."""
    import logging

    import numpy as np

    from pipeline.config import Settings
    from pipeline.ingest import decode, read_meta

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    settings = Settings()
    if mode.startswith("pipeline-b"):  # the pipeline with asr.batch_size = N
        asr = settings.asr.model_copy(update={"batch_size": int(mode.removeprefix("pipeline-b"))})
        settings = settings.model_copy(update={"asr": asr})
    started = time.perf_counter()
    if mode.startswith("pipeline"):
        from pipeline.asr import load_recognizer
        from pipeline.diarize.mono import _pipeline
        from pipeline.process import analyse_call

        load_recognizer(settings.asr)
        _pipeline(settings.mono)
    else:
        import ctranslate2
        from faster_whisper import WhisperModel

        from pipeline.asr.model import bundled_model_dir

        model = WhisperModel(
            str(bundled_model_dir()), device="cpu", compute_type="int8", local_files_only=True
        )
    load_s = time.perf_counter() - started

    rows = []
    for name in files:
        path = Path(name)
        meta = read_meta(path, settings.input)
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        audio = decode(path, meta, settings.input)
        if mode.startswith("pipeline"):
            result = analyse_call(path, audio, meta, settings)
            words = sum(len(u.text) for u in result.transcript.utterances)
        else:
            mono = np.mean(np.stack(list(audio.tracks.values())), axis=0).astype(np.float32)
            ctranslate2.set_random_seed(0)
            vad = mode == "whisper"
            segments, _ = model.transcribe(
                mono,
                language="zh",
                beam_size=5,
                temperature=0.0,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=vad,
                vad_parameters={"min_silence_duration_ms": 500} if vad else None,
            )
            words = sum(len(s.text) for s in segments)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        rows.append(
            {
                "file": path.name,
                "audio_s": round(audio.duration_s, 2),
                "wall_s": round(elapsed, 2),
                "x_realtime": round(audio.duration_s / elapsed, 2),
                "cpu_s": round(cpu, 2),
                "layout": audio.layout,
                "chars": words,
            }
        )
    total_audio = sum(r["audio_s"] for r in rows)
    total_wall = sum(r["wall_s"] for r in rows)
    total_cpu = sum(r["cpu_s"] for r in rows)
    return {
        "mode": mode,
        "load_s": round(load_s, 2),
        "audio_s": round(total_audio, 1),
        "wall_s": round(total_wall, 1),
        "x_realtime": round(total_audio / total_wall, 2),
        "cpu_s": round(total_cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "files": rows,
    }


# Plain faster-whisper, with VAD (the pipeline's own decoding options) and without (every second).
PLAIN_MODES = ("whisper", "whisper-full")


def ratio(pipeline: dict, whisper: dict) -> float:
    """Pipeline speed over plain whisper's on the same audio (× real time ÷ × real time)."""
    return round(pipeline["x_realtime"] / whisper["x_realtime"], 2) if whisper["x_realtime"] else 0.0


def cpu_ratio(pipeline: dict, whisper: dict) -> float:
    """Whisper's CPU seconds over the pipeline's on the same audio (≥ 1.0: the pipeline spends no more)."""
    return round(whisper["cpu_s"] / pipeline["cpu_s"], 2) if pipeline.get("cpu_s") else 0.0


def _bench_files(folder: Path | None, scratch: Path) -> list[str]:
    import csv

    from conftest import MAGICDATA
    from realcalls import build_real_call

    source = folder or ROOT / "recordings_sample"
    files = sorted(str(p) for p in source.iterdir() if p.suffix.lower() in (".wav", ".flac", ".mp3"))
    if folder is None:  # add two calls of real speech (stereo and mono) built from ../shared/audio
        with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
            texts = {row["file"]: row["transcript"] for row in csv.DictReader(handle, delimiter="\t")}
        files += [
            str(build_real_call(scratch, f"real_{kind}", texts, stereo=kind == "stereo"))
            for kind in ("stereo", "mono")
        ]
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--files", type=Path, help="folder of recordings (default: recordings_sample + 2 real calls)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag", default="", help="added to the result's file name (e.g. the file set)")
    parser.add_argument("--batch-sizes", default="", help="asr.batch_size values, one pipeline mode each")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child[0], args.child[1:])))
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        files = _bench_files(args.files, Path(scratch))
        results = []
        sizes = [int(x) for x in args.batch_sizes.split(",") if x]
        modes = [f"pipeline-b{n}" for n in sizes] or ["pipeline"]
        for mode in (*modes, *PLAIN_MODES):
            print(f"bench: {mode} over {len(files)} files …", file=sys.stderr, flush=True)
            child = subprocess.run(
                [sys.executable, __file__, "--child", mode, *files],
                capture_output=True,
                text=True,
                env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"},
                check=False,
            )
            if child.returncode != 0:
                print(child.stderr[-4000:], file=sys.stderr)
                return 1
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))

    stamp = datetime.now().astimezone()
    pipelines = [r for r in results if r["mode"] not in PLAIN_MODES]
    plain_vad, plain_full = (next(r for r in results if r["mode"] == m) for m in PLAIN_MODES)
    report = {
        "when": stamp.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "results": results,
        "ratio_pipeline_over_whisper": ratio(results[0], plain_vad),
        "ratio_pipeline_over_whisper_full": ratio(results[0], plain_full),
        "ratios": {r["mode"]: ratio(r, plain_vad) for r in pipelines},
        "ratios_full": {r["mode"]: ratio(r, plain_full) for r in pipelines},
        "cpu_ratios": {r["mode"]: cpu_ratio(r, plain_vad) for r in pipelines},
        "cpu_ratios_full": {r["mode"]: cpu_ratio(r, plain_full) for r in pipelines},
        "load_average": os.getloadavg(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / f"throughput-{stamp:%Y-%m-%d}{'-' + args.tag if args.tag else ''}"
    base.with_suffix(".json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    lines = [
        f"# Throughput {stamp:%Y-%m-%d %H:%M} ({os.cpu_count()} CPUs, load average at the end "
        + " / ".join(f"{x:.1f}" for x in os.getloadavg())
        + ")",
        "",
        "| mode | audio (s) | wall (s) | × real time | CPU (s) | model load (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['audio_s']} | {r['wall_s']} | {r['x_realtime']} | {r['cpu_s']} | {r['load_s']} | {r['peak_rss_mb']} |"
        for r in results
    ]
    lines += [""]
    for plain, how in ((plain_vad, "with VAD, the pipeline's options"), (plain_full, "every second")):
        lines += [
            f"**{r['mode']} ÷ plain whisper {how} ({plain['mode']}): {ratio(r, plain)}** (same files, "
            f"same model, this run); CPU seconds, whisper's ÷ the pipeline's: {cpu_ratio(r, plain)}"
            for r in pipelines
        ]
    lines += [
        "",
        "Ratios per file: the pipeline's × real time ÷ plain whisper's (with VAD / every second).",
        "",
        "| file | layout | audio (s) | "
        + " | ".join(f"{r['mode']} × RT | CPU (s) | ratio VAD | ratio full" for r in pipelines)
        + " | whisper × RT | whisper-full × RT |",
        "|---|---|---|" + "---|---|---|---|" * len(pipelines) + "---|---|",
    ]
    for i, w_row in enumerate(plain_vad["files"]):
        full_row = plain_full["files"][i]
        cells = " | ".join(
            f"{r['files'][i]['x_realtime']} | {r['files'][i]['cpu_s']} | "
            f"{ratio(r['files'][i], w_row)} | {ratio(r['files'][i], full_row)}"
            for r in pipelines
        )
        lines.append(
            f"| {w_row['file']} | {w_row['layout']} | {w_row['audio_s']} | {cells} | "
            f"{w_row['x_realtime']} | {full_row['x_realtime']} |"
        )
    base.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
