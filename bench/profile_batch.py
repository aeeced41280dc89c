"""Where a batch's time goes: cProfile over one sequential batch (pyinstrument is not installed).

    .venv/bin/python bench/profile_batch.py [--files DIR] [--out bench/results]

Models are loaded before profiling starts (a night pays that once per worker). The batch runs
`pipeline.batch.run_batch` into a fresh database; the report lists the stages' cumulative seconds and
the functions with the most time of their own, in bench/results/profile-<date>.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The stages of one recording, as named in the profile (function name, file suffix).
STAGES = [
    ("fingerprint", "pipeline/ingest.py"),
    ("decode", "pipeline/ingest.py"),
    ("cancel_echo", "pipeline/diarize/echo.py"),
    ("diarize", "pipeline/diarize/__init__.py"),
    ("speech_probabilities", "pipeline/diarize/vad.py"),
    ("transcribe_turns", "pipeline/asr/transcribe.py"),
    ("words", "pipeline/asr/transcribe.py"),
    ("_redo_skipped_turns", "pipeline/asr/transcribe.py"),
    ("_redo_looping_turns", "pipeline/asr/transcribe.py"),
    ("detect_audio_events", "pipeline/metrics/acoustic.py"),
    ("compute_metrics", "pipeline/metrics/__init__.py"),
    ("scorecards", "pipeline/process.py"),
    ("score_call", "pipeline/rules/engine.py"),
    ("save_call", "pipeline/store/writer.py"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=ROOT / "recordings_sample")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag", default="", help="added to the result's file name (e.g. after)")
    args = parser.parse_args()
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)

    from pipeline.asr import load_recognizer
    from pipeline.batch import run_batch
    from pipeline.config import Settings
    from pipeline.diarize.mono import _pipeline

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        folder = scratch / "calls"
        folder.mkdir()
        for path in args.files.iterdir():
            if path.suffix.lower() in (".wav", ".flac", ".mp3", ".json"):
                shutil.copy2(path, folder / path.name)
        settings = Settings(db=scratch / "qa.duckdb", reports_dir=scratch / "reports")
        settings = settings.model_copy(
            update={"intake": settings.intake.model_copy(update={"settle_s": 0.0})}
        )
        load_recognizer(settings.asr)
        _pipeline(settings.mono)
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        summary = run_batch(folder, settings)
        profile.disable()
        wall = time.perf_counter() - started
    audio = sum(o.duration_s or 0.0 for o in summary.outcomes)
    stats = pstats.Stats(profile)
    rows = []
    for (file, _, name), (calls, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for stage, suffix in STAGES:
            if name == stage and file.endswith(suffix):
                rows.append((stage, calls, cumulative))
    rows.sort(key=lambda r: [s for s, _ in STAGES].index(r[0]))
    own = io.StringIO()
    pstats.Stats(profile, stream=own).sort_stats("tottime").print_stats(20)
    stamp = datetime.now()
    lines = [
        f"# Profile of one batch {stamp:%Y-%m-%d %H:%M}{' (' + args.tag + ')' if args.tag else ''}",
        "",
        f"{len(summary.outcomes)} recordings from {args.files.name}, {audio:.1f} s of audio, "
        f"{wall:.1f} s wall under cProfile ({audio / wall:.2f}× real time; the profiler slows Python code).",
        "",
        "| stage | calls | cumulative (s) | share of wall |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s} | {c} | {t:.1f} | {t / wall:.0%} |" for s, c, t in rows]
    lines += ["", "Most time of their own:", "", "```", *own.getvalue().strip().splitlines()[-26:], "```"]
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"profile-{stamp:%Y-%m-%d}{'-' + args.tag if args.tag else ''}.md"
    (args.out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:30]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
