"""End to end over one batch of real speech: no planted personal number comes out of any output.

The call is built from real recorded sentences (../shared/audio/magicdata_cs): the agent reads
back a customer's QQ mail address, 幺零九零二七九零九幺 at QQ 点 com, and the phone system put
the caller's mobile number in the file name. A second file, also named after its caller, is not
audio and fails. Real ASR, real diarization, the real CLI: run, report, export, show, failures,
audit, purge; and the log records with their tracebacks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import openpyxl
import pytest
import soundfile as sf
import soxr
from callsim import CallScript, load_clip, write_call
from conftest import CHECK_EXPORT, MAGICDATA
from test_privacy_audio import off_tone_energy

from pipeline.cli import main as callqa
from pipeline.config import Settings
from pipeline.reports.audio_mask import load_masked_spans
from pipeline.reports.privacy import report_privacy
from pipeline.reports.transcripts import read_transcripts
from pipeline.store import Store

pytestmark = pytest.mark.e2e

SPOKEN_NUMBER = "1090279091"  # said in general_400017.flac
CALLER = "13912345678"  # in the file name
NAME = f"1001_20261120-091502_{CALLER}"
BROKEN_CALLER = "13812345678"
BROKEN = f"1002_20261120-101500_{BROKEN_CALLER}.wav"
PLANTED = (SPOKEN_NUMBER, "幺零九零二七九零九幺", CALLER, BROKEN_CALLER, "12345678")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def leaks(text: str) -> list[str]:
    """The planted numbers (or any mobile number) in `text`."""
    return [p for p in PLANTED if p in text] + MOBILE.findall(text)


@dataclass(frozen=True)
class Batch:
    root: Path
    recording: Path
    db: Path
    reports: Path
    out: str  # everything the commands printed
    logs: str  # every log record, formatted with its traceback
    export: Path


def _build_call(folder: Path, texts: dict[str, str]) -> Path:
    script = CallScript(call_id=NAME, seed=3)
    script.ring(1)
    script.say(
        "agent", load_clip(MAGICDATA / "education_100041.flac", texts["education_100041.flac"]), gap=0.5
    )
    script.say(
        "customer", load_clip(MAGICDATA / "general_400040.flac", texts["general_400040.flac"], warp=0.78)
    )
    script.say("agent", load_clip(MAGICDATA / "general_400017.flac", texts["general_400017.flac"]))
    script.say(
        "customer", load_clip(MAGICDATA / "general_400047.flac", texts["general_400047.flac"], warp=0.78)
    )
    samples, rate, truth = script.render(stereo=True)
    path = write_call(folder, f"{NAME}.wav", samples, rate, truth, sidecar=None)
    finished = time.time() - 3600
    os.utime(path, (finished, finished))
    return path


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, magicdata_texts: dict[str, str]) -> Batch:
    root = tmp_path_factory.mktemp("privacy-batch")
    recording = _build_call(root / "calls", magicdata_texts)
    broken = root / "calls" / BROKEN
    broken.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    os.utime(broken, (time.time() - 3600, time.time() - 3600))
    db, reports, export = root / "qa.duckdb", root / "reports", root / "export.jsonl"
    cwd = Path.cwd()
    os.chdir(root)  # the batch summary goes to ./reports
    printed, logged = StringIO(), StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        with redirect_stdout(printed), redirect_stderr(printed):
            assert callqa(["run", str(root / "calls"), "--db", str(db)]) == 1  # the broken file failed
            assert callqa(["report", "--month", "2026-11", "--db", str(db)]) == 0
            assert callqa(["export", "--db", str(db), "--out", str(export)]) == 0
            assert callqa(["failures", "--all", "--db", str(db)]) == 0
            # callqa prints the id masked; the operator can type it back as printed
            assert (
                callqa(["show", f"1001_20261120-091502_{CALLER[:3]}****{CALLER[-4:]}", "--db", str(db)]) == 0
            )
            assert callqa(["show", NAME, "--db", str(db)]) == 0
            assert callqa(["audit", "--db", str(db)]) == 0
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(level)
        os.chdir(cwd)
    return Batch(root, recording, db, reports, printed.getvalue(), logged.getvalue(), export)


def _spans(batch: Batch) -> tuple[tuple[float, float], ...]:
    settings = Settings(db=batch.db)
    with Store.from_settings(settings, read_only=True) as store:
        (call_id,) = [r["call_id"] for r in store.query("SELECT call_id FROM calls")]
        with report_privacy(settings.privacy):
            transcripts, changed = read_transcripts(store, [call_id])
        spans = load_masked_spans(store, transcripts).get(call_id, ())
        assert changed  # the number was redacted; the report's way, from the texts it has, agrees
        assert load_masked_spans(store, transcripts, changed).get(call_id, ()) == spans
        return spans


def test_the_review_mp3_covers_the_spoken_number(batch: Batch) -> None:
    spans = _spans(batch)
    assert spans, "the spoken mail address was not masked in the transcript"
    (mp3,) = (batch.reports / "2026-11" / "calls" / "audio").glob("*.mp3")
    played, rate = sf.read(str(mp3), dtype="float32")
    original, source_rate = sf.read(str(batch.recording), dtype="float32", always_2d=True)
    original = soxr.resample(original.mean(axis=1), source_rate, rate)
    truth = json.loads(batch.recording.with_suffix(".truth.json").read_text(encoding="utf-8"))
    said = next(t for t in truth["turns"] if "幺零九零" in t["text"])
    for start, end in spans:
        # the cover lies on the agent's read-back, and leaves none of the speech under it
        assert said["start"] - 0.5 <= start and end <= said["end"] + 0.5
        inner = (start + 0.05, end - 0.05)
        assert off_tone_energy(played, rate, *inner) < 0.02 * off_tone_energy(original, rate, *inner)
    # the ten digits and 'at QQ 点 com' take a few seconds; all of it lies under the cover
    assert sum(end - start for start, end in spans) > 2.0
    # outside the cover the speech is still there
    outside = (said["start"] - 3.0, said["start"] - 1.0)
    assert off_tone_energy(played, rate, *outside) > 0.2 * off_tone_energy(original, rate, *outside)


def test_heard_again_the_review_mp3_has_no_number(batch: Batch) -> None:
    """The bar of issue 13: the transcript of the review MP3 has no 7-digit run."""
    from pipeline.ingest import decode, read_meta
    from pipeline.process import transcribe_call

    (mp3,) = (batch.reports / "2026-11" / "calls" / "audio").glob("*.mp3")
    settings = Settings()
    audio = decode(mp3, read_meta(mp3, settings.input), settings.input)
    heard = "".join(u.text for u in transcribe_call(audio, settings).utterances)
    assert heard, "nothing recognised in the review MP3"
    digits = re.sub(r"[^0-9零一二三四五六七八九幺]", "", heard)
    assert not re.search(r"[0-9零一二三四五六七八九幺]{7,}", heard), (heard, digits)
    assert "0279" not in digits


def test_no_output_names_the_callers_or_the_spoken_number(batch: Batch) -> None:
    assert "139****5678" in batch.out and "通话 1001_20261120-091502_139****5678" in batch.out  # show ran
    assert "138****5678" in batch.out  # the failed file is listed, masked
    assert leaks(batch.out) == [], batch.out
    assert leaks(batch.logs) == [], batch.logs
    written = [p for p in batch.reports.rglob("*") if p.is_file()]
    assert {p.suffix for p in written} >= {".html", ".csv", ".md", ".mp3"}
    for path in written:
        assert leaks(str(path.relative_to(batch.root))) == [], path
        if path.suffix in (".html", ".csv", ".md"):
            assert leaks(path.read_text(encoding="utf-8")) == [], path
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path, read_only=True)
            cells = " ".join(
                str(v) for sheet in book for row in sheet.iter_rows(values_only=True) for v in row
            )
            assert leaks(cells) == [], path
    # owner-only: pages, review MP3s, tables, summaries and their folders, the database, the export
    for path in [*batch.reports.rglob("*"), batch.reports, batch.db, batch.export]:
        assert path.stat().st_mode & 0o077 == 0, path
    (page,) = (batch.reports / "2026-11" / "calls").glob("*.html")
    assert page.name.startswith("1001_20261120-091502_139____5678-")
    summary = next((batch.reports / "batches").glob("*.md")).read_text(encoding="utf-8")
    assert "| 1001_20261120-091502_139****5678.wav | 1001_20261120-091502_139****5678 | 完成 |" in summary


def test_the_export_keeps_its_contract_without_the_callers_number(batch: Batch) -> None:
    text = batch.export.read_text(encoding="utf-8")
    assert leaks(text) == []
    records = [json.loads(line) for line in text.splitlines()]
    assert sorted(r["call_id"] for r in records) == [
        "1001_20261120-091502_139****5678",
        "1002_20261120-101500_138****5678",
    ]
    check = subprocess.run(
        [sys.executable, str(CHECK_EXPORT), str(batch.export)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout


def test_a_purged_recording_is_remembered_without_the_callers_number(batch: Batch) -> None:
    printed = StringIO()
    with redirect_stdout(printed), redirect_stderr(printed):
        assert callqa(["purge", "--before", "2026-12", "--force", "--db", str(batch.db)]) == 0
    assert leaks(printed.getvalue()) == []
    with Store.from_settings(Settings(db=batch.db), read_only=True) as store:
        rows = store.query("SELECT path, call_id FROM purged_recordings")
    assert rows and all(leaks(f"{r['path']} {r['call_id']}") == [] for r in rows)
