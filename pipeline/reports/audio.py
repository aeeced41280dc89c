"""Recordings for the review pages: a small MP3 next to the page, so it plays offline from a file.

Telephone recordings are converted once to 16 kHz mono MP3 at about 24 kbit/s (about 180 KB a
minute, a quarter of 8 kHz A-law) and named by the recording's sha256, so a re-run of the report
reuses them and a changed recording gets a new file. Spans whose text the page masks are covered
with a tone before encoding (`audio_mask.py`); the file name then also names the covered spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pipeline.reports.audio_mask import Span, cover, spans_tag
from pipeline.reports.files import replacing
from pipeline.reports.privacy import name_for_output

RATE = 16_000
COMPRESSION = 0.9  # libsndfile's MP3 compression level: 0.9 ≈ 24 kbit/s at 16 kHz mono


@dataclass(frozen=True)
class AudioCopy:
    file: str | None  # path relative to the calls/ folder, when the recording could be converted
    problem: str | None  # why not, for the reader of the page


def review_audio(recording: Path, sha256: str, audio_dir: Path, masked: Sequence[Span] = ()) -> AudioCopy:
    """The MP3 for `recording` in `audio_dir` (made if missing), the `masked` spans covered; a
    problem instead of raising."""
    tag = spans_tag(masked)
    target = audio_dir / (f"{sha256}-{tag}.mp3" if tag else f"{sha256}.mp3")
    relative = f"{audio_dir.name}/{target.name}"
    if target.is_file() and target.stat().st_size > 0:
        return AudioCopy(relative, None)
    if not recording.is_file():
        return AudioCopy(None, f"录音文件不在原位置：{name_for_output(recording)}")
    try:
        samples, rate = sf.read(str(recording), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        return AudioCopy(None, f"录音无法解码：{name_for_output(exc)}")
    if samples.shape[0] == 0:
        return AudioCopy(None, "录音中没有音频数据")
    mono = samples.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE, quality="HQ")
    mono = cover(np.clip(mono, -1.0, 1.0).astype(np.float32), RATE, masked)
    audio_dir.mkdir(parents=True, exist_ok=True)
    with (
        replacing(target) as partial,
        sf.SoundFile(
            str(partial),
            "w",
            RATE,
            1,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=COMPRESSION,
            bitrate_mode="CONSTANT",
        ) as handle,
    ):
        handle.write(mono)
    return AudioCopy(relative, None)
