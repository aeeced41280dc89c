"""End to end over one batch of real speech: no planted personal number comes out of any output.

The call is built from real recorded sentences (../shared/audio/magicdata_cs): the agent reads
back a customer's QQ mail address, 幺零九零二七九零九幺 at QQ 点 com, and the phone system put
the caller's mobile number in the file name. Real ASR, real diarization, the real CLI.
"""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
import soundfile as sf
import soxr
from callsim import CallScript, load_clip, write_call
from conftest import MAGICDATA
from test_privacy_audio import off_tone_energy

from pipeline.cli import main as callqa
from pipeline.config import Settings
from pipeline.privacy import redactor_for
from pipeline.reports.audio_mask import load_masked_spans
from pipeline.store import Store

pytestmark = pytest.mark.e2e

SPOKEN_NUMBER = "1090279091"  # said in general_400017.flac
CALLER = "13912345678"  # in the file name
NAME = f"1001_20261120-091502_{CALLER}"
SEVEN_DIGITS = re.compile(r"\d{7,}")


@dataclass(frozen=True)
class Batch:
    root: Path
    recording: Path
    db: Path
    reports: Path
    out: str  # everything the commands printed


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
    db, reports = root / "qa.duckdb", root / "reports"
    cwd = Path.cwd()
    os.chdir(root)  # the batch summary goes to ./reports
    try:
        printed = StringIO()
        with redirect_stdout(printed), redirect_stderr(printed):
            assert callqa(["run", str(root / "calls"), "--db", str(db)]) == 0
            assert callqa(["report", "--month", "2026-11", "--db", str(db)]) == 0
    finally:
        os.chdir(cwd)
    return Batch(root, recording, db, reports, printed.getvalue())


def _spans(batch: Batch) -> tuple[tuple[float, float], ...]:
    settings = Settings(db=batch.db)
    with Store.from_settings(settings, read_only=True) as store:
        (call_id,) = [r["call_id"] for r in store.query("SELECT call_id FROM recordings")]
        return load_masked_spans(store, [call_id], redactor_for(settings.privacy, "report")).get(call_id, ())


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
