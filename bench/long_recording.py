"""Peak memory and time of a three-hour recording (the catalogue's "3-hour recording" entry).

    .venv/bin/python bench/long_recording.py [--hours 3] [--out bench/results] [--skip-spine]
        [--only spine] [--tag b] [--before bench/results/long-recording-2026-11-29-before.json] [--mono]

Writes a stereo 8 kHz PCM recording of that length (tools/make_catalogue.py: a real two-party
conversation every ten minutes, line noise in between — a line left open; `--mono` mixes it down
to one channel, which goes through the mono diarization), then runs each mode in its own process,
so that the peak resident memory (ru_maxrss) is that mode's own:

* intake: what the nightly batch makes of the recording's header with the default settings
  (`intake.max_duration_s` = 4 h): accepted, or skipped with the reason;
* decode-whole: the earlier decoder (whole file read as float32, then resampled);
* decode: the streaming decoder in pipeline/ingest.py (block by block into the 16 kHz tracks);
* spine: what process_recording does once the limit is raised — decode, diarization, speech
  recognition per turn, audio events, metrics, scorecard, database write — with the peak after
  each stage (the stages window by window: memory is the tracks plus a few windows; whisper runs
  on the turns' samples after a stereo call's tracks are released).

`--before` adds the spine of an earlier run (its JSON) to the report, stage by stage. Results go to
bench/results/long-recording-<date><tag>.{json,md} (`--only` keeps the other modes of that day's
untagged file). Peaks are in MiB (2²⁰ bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def peak_mb() -> float:
    """Peak resident memory in MiB (ru_maxrss is in KiB on Linux). The JSON keys say `_mb` for
    the earlier files' sake; the reports say MiB, and give the whole spine in GB (10⁹ bytes) too."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mix_down(stereo: Path, mono: Path) -> None:
    """The stereo recording as one channel (the two parties' mean), block by block, with its
    sidecar saying mono; the stereo file is removed."""
    import soundfile as sf

    from pipeline.ingest import sidecar_path

    with (
        sf.SoundFile(str(stereo)) as source,
        sf.SoundFile(str(mono), "w", samplerate=source.samplerate, channels=1, subtype="PCM_16") as out,
    ):
        for block in source.blocks(blocksize=600 * source.samplerate, dtype="float32"):
            out.write(block.mean(axis=1))
    fields = json.loads(sidecar_path(stereo).read_text(encoding="utf-8")) | {"channels": "mono"}
    sidecar_path(mono).write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")
    stereo.unlink()
    sidecar_path(stereo).unlink()


def run_mode(mode: str, path: Path, db: Path) -> dict:
    """Inside the child process."""
    import logging

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    from pipeline.config import Settings

    settings = Settings(db=db)
    baseline = peak_mb()
    started = time.perf_counter()
    result: dict = {"mode": mode, "baseline_mb": round(baseline)}
    if mode == "intake":
        from pipeline.ingest import check_duration, probe
        from pipeline.problems import RecordingError

        try:  # the default limit
            check_duration(path, probe(path, settings.intake), settings.intake)
            result |= {"status": "accepted", "problem": None, "message": "在时长上限之内，照常分析"}
        except RecordingError as exc:
            result |= {"status": exc.status, "problem": exc.problem, "message": str(exc)}
    elif mode == "decode-whole":
        import numpy as np
        import soundfile as sf
        import soxr

        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        tracks = [
            soxr.resample(np.ascontiguousarray(samples[:, ch]), rate, 16000, quality="HQ")
            for ch in range(samples.shape[1])
        ]
        result["duration_s"] = len(tracks[0]) / 16000
    elif mode == "decode":
        from pipeline.ingest import decode, read_meta

        audio = decode(path, read_meta(path, settings.input), settings.input, settings.intake)
        result["duration_s"] = audio.duration_s
    else:
        result |= _spine(path, settings)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["peak_mb"] = round(peak_mb())
    return result


def _spine(path: Path, settings) -> dict:
    """process_recording's stages one by one, with the peak memory after each."""
    from pipeline.ingest import decode, fingerprint, read_meta
    from pipeline.process import analyse_call
    from pipeline.store import Store

    stages: dict[str, dict] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = {"seconds": round(now - clock, 1), "peak_mb": round(peak_mb())}
        clock = now

    recording = fingerprint(path)
    meta = read_meta(path, settings.input)
    stage("fingerprint")
    audio = decode(path, meta, settings.input, settings.intake)
    stage("decode")
    analysis = analyse_call(path, audio, meta, settings, on_stage=stage)
    transcript = analysis.transcript
    with Store(settings.db) as store:
        store.save_call(
            recording,
            meta,
            audio,
            transcript,
            0.0,
            events=analysis.events,
            metrics=analysis.metrics,
            score=analysis.score,
            scorecard=analysis.scorecard,
        )
    stage("store")
    return {
        "duration_s": audio.duration_s,
        "utterances": len(transcript.utterances),
        "characters": sum(len(u.text) for u in transcript.utterances),
        "stages": stages,
    }


def _spine_table(spine: dict, before: dict | None) -> list[str]:
    """The spine stage by stage (peak so far), beside an earlier run's where given."""
    if before is None:
        lines = [
            "",
            "Spine, stage by stage (peak so far):",
            "",
            "| stage | time | peak memory |",
            "|---|---|---|",
        ]
        for name, s in spine["stages"].items():
            lines.append(f"| {name} | {s['seconds']} s | {s['peak_mb']:,} MiB |")
    else:
        lines = [
            "",
            "Spine, stage by stage (peak so far; stages in this run's order), before → after:",
            "",
            "| stage | time before | time after | peak before | peak after |",
            "|---|---|---|---|---|",
        ]
        for name, s in spine["stages"].items():
            b = before["stages"].get(name, {})
            lines.append(
                f"| {name} | {b.get('seconds', '-')} s | {s['seconds']} s | "
                f"{b.get('peak_mb', 0):,} MiB | {s['peak_mb']:,} MiB |"
            )
        lines.append(
            f"| whole spine | {before['seconds']} s | {spine['seconds']} s | "
            f"{before['peak_mb']:,} MiB | {spine['peak_mb']:,} MiB |"
        )
    gigabytes = spine["peak_mb"] * 2**20 / 1e9
    lines += [
        "",
        f"Whole spine: {spine['peak_mb']:,} MiB = {gigabytes:.2f} GB (10⁹ bytes).",
        "",
        f"{spine['utterances']} utterances, {spine['characters']} characters recognised.",
    ]
    if before is not None:
        lines[-1] += f" Before: {before['utterances']} utterances, {before['characters']} characters."
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--skip-spine", action="store_true", help="decoding only (minutes instead of an hour)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["intake", "decode-whole", "decode", "spine"],
        help="run these modes and keep today's results of the others",
    )
    parser.add_argument("--before", type=Path, help="an earlier run's JSON: its spine goes beside this one")
    parser.add_argument(
        "--tag", default="", help="appended to the results' name (a second run the same day: b)"
    )
    parser.add_argument("--mono", action="store_true", help="the recording mixed down to one channel")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, file, db = args.child
        print(json.dumps(run_mode(mode, Path(file), Path(db))))
        return 0

    from make_catalogue import MAGICDATA, write_long_recording

    from pipeline.config import IntakeConfig

    work = Path(tempfile.mkdtemp(prefix="callqa-long-"))
    path = work / "1013_20261120-103000.wav"
    started = time.perf_counter()
    write_long_recording(path, MAGICDATA, args.hours)
    if args.mono:
        (work / "mono").mkdir()
        stereo, path = path, work / "mono" / path.name
        mix_down(stereo, path)
    finished = time.time() - 3600  # a finished recording (the batch skips files still being written)
    os.utime(path, (finished, finished))
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    modes = ["intake", "decode-whole", "decode"] + ([] if args.skip_spine else ["spine"])
    today = datetime.now().strftime("%Y-%m-%d")
    earlier: dict[str, dict] = {}
    if args.only:
        modes = args.only
        previous = args.out / f"long-recording-{today}.json"
        if previous.is_file():
            earlier = {r["mode"]: r for r in json.loads(previous.read_text(encoding="utf-8"))["results"]}
    results = []
    for mode in modes:
        db = work / f"{mode}.duckdb"
        env = {**os.environ, "PYANNOTE_METRICS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
        child = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path), str(db)],
            capture_output=True,
            text=True,
            env=env,
        )
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        print(json.dumps(result, ensure_ascii=False), flush=True)
    shutil.rmtree(work)  # the recording, its sidecar, the databases
    order = ["intake", "decode-whole", "decode", "spine"]
    measured = {r["mode"]: r for r in results}
    results = [measured.get(mode) or earlier[mode] for mode in order if mode in measured or mode in earlier]

    args.out.mkdir(parents=True, exist_ok=True)
    layout, channels = ("mono", 1) if args.mono else ("stereo", 2)
    report = {
        "date": today,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "recording": {
            "hours": args.hours,
            "format": f"WAV PCM 16-bit, 8 kHz, {layout}",
            "bytes": int(args.hours * 3600 * 8000 * channels * 2),
        },
        "results": results,
    }
    lines = [
        f"# A {args.hours:g}-hour recording: peak memory and time ({today})",
        "",
        f"{os.cpu_count()} CPU cores; {layout} 8 kHz PCM WAV, {args.hours * 3600 * 8000 * channels * 2 / 1e6:.0f} MB; "
        "each mode in its own process (peak resident memory, ru_maxrss, includes the imported libraries).",
        "",
        "| mode | peak memory | of which before the work | time |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['mode']} | {r['peak_mb']:,} MiB | {r['baseline_mb']:,} MiB | {r['seconds']} s |")
    spine = next((r for r in results if r["mode"] == "spine"), None)
    before = None
    if args.before and args.before.is_file():
        earlier_run = json.loads(args.before.read_text(encoding="utf-8"))
        before = next((r for r in earlier_run["results"] if r["mode"] == "spine"), None)
        report["before"] = {"file": args.before.name, "spine": before}
    if spine:
        lines += _spine_table(spine, before)
    intake = next((r for r in results if r["mode"] == "intake"), None)
    if intake:
        lines += [
            "",
            f"With the default settings (intake.max_duration_s = {IntakeConfig().max_duration_s / 3600:g} h): "
            f"{intake['status']} "
            f"({intake['problem'] or '-'}): {intake['message']}",
        ]
    name = f"long-recording-{today}{args.tag}"
    (args.out / f"{name}.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"results in {args.out}/{name}.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
