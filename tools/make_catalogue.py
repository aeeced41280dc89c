"""The catalogue of broken and awkward recordings: one folder a nightly batch must survive.

    python tools/make_catalogue.py OUT_DIR [--long] [--magicdata DIR]

Writes OUT_DIR/recordings/ (the files), OUT_DIR/agents.csv (a roster without agent 9999),
OUT_DIR/callqa.toml (that roster, the folder's database) and OUT_DIR/catalogue.json (every file with
what the batch must make of it). The good calls are built from real speech
(../shared/audio/magicdata_cs, read in place) with tools/callsim.py: a short two-party call, rendered
in each format a phone system produces. `--long` adds a five-hour recording, over the default limit (the
tests do not; bench/long_recording.py writes a three-hour one with the same function).

Every entry's expected outcome is in CATALOGUE below; tests/test_catalogue.py runs the batch over
the folder and checks each one, and docs/operations.md explains them for supervisors.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callsim import CallScript, load_clip

ROOT = Path(__file__).resolve().parent.parent
MAGICDATA = ROOT.parent / "shared" / "audio" / "magicdata_cs"
AGENT_CLIPS = ("general_400005.flac", "insurance_000013.flac")
CUSTOMER_CLIP = "general_400008.flac"
GOOD_CALL_ID = "HX-CAT-0001"
START = "2026-11-20T08:00:00+08:00"


@dataclass(frozen=True)
class Entry:
    name: str
    what: str  # the catalogue's line, in the words
    status: str  # ok | failed | skipped
    problem: str | None = None  # pipeline.problems code
    says: str = ""  # a phrase the reason (or, for ok, a warning) must contain


CATALOGUE: tuple[Entry, ...] = (
    Entry("1001_20261120-080000.wav", "good stereo call, 8 kHz PCM, sidecar", "ok"),
    Entry("1002_20261120-081000.wav", "44.1 kHz stereo", "ok"),
    Entry("1003_20261120-082000.flac", "48 kHz stereo FLAC", "ok"),
    Entry("1004_20261120-083000.wav", "8 kHz 8-bit μ-law, mono", "ok"),
    Entry("1005_20261120-084000.wav", "clipped, very loud call", "ok", says="削波"),
    Entry("1006_20261120-085000.wav", "stereo with one dead channel", "ok", says="右声道全程无声"),
    Entry("1007_20261120-090000.wav", "a 0.5 s recording", "skipped", "too_short", "只有 0.5 秒"),
    Entry("1008_20261120-091000.wav", "a fully silent call", "skipped", "silent", "全程无声"),
    Entry("1009_20261120-092000.wav", "WAV cut short: the header promises more", "ok", says="文件被截断"),
    Entry("1010_20261120-093000.wav", "sidecar call_id of another call", "failed", "call_id_taken", "已被"),
    Entry("1011_20261120-094000.wav", "malformed sidecar JSON", "failed", "sidecar", "不是有效的 JSON"),
    Entry(
        "1012_20261120-095000.wav",
        "sidecar with wrong types",
        "failed",
        "sidecar",
        "字段 ring_seconds 应为数字",
    ),
    Entry(
        "9999_20261120-100000.wav", "an agent not in the roster", "failed", "unknown_agent", "不在客服名单"
    ),
    Entry("empty.wav", "zero-byte file", "failed", "empty", "0 字节"),
    Entry("truncated_header.wav", "truncated WAV header", "failed", "truncated", "WAV 文件头不完整"),
    Entry("random_bytes.wav", "random bytes named .wav", "failed", "not_audio", "不是可以识别的音频文件"),
    Entry("notes.wav", "a text file named .wav", "failed", "not_audio", "文本文件"),
    Entry("g729.wav", "unsupported codec (G.729 in WAV)", "failed", "unsupported", "G.729"),
    Entry("voicemail.amr", "unsupported format (AMR)", "failed", "unsupported", "AMR"),
    Entry("copy_of_1001.wav", "the same audio under a second name", "skipped", "duplicate", "同一段录音"),
    Entry("being_written.wav", "a file still being written", "skipped", "writing", "仍在录音或写入"),
    Entry("gone.wav", "an unreadable file (a link to a file that is gone)", "failed", "unreadable", "不存在"),
)
LONG = Entry("1013_20261120-103000.wav", "a 5-hour recording", "skipped", "too_long", "超过上限 4 小时 0 分")
ROSTER = {f"{1000 + i}": f"客服{i:02d}" for i in range(1, 14)}  # 1001-1013, not 9999


def texts(magicdata: Path) -> dict[str, str]:
    with (magicdata / "transcripts.tsv").open(encoding="utf-8") as handle:
        return {row["file"]: row["transcript"] for row in csv.DictReader(handle, delimiter="\t")}


def short_call(magicdata: Path, seed: int) -> CallScript:
    """Agent greeting, customer question, agent answer: about 15 s of real speech."""
    said = texts(magicdata)
    script = CallScript(call_id="catalogue", seed=seed)
    script.ring(1)
    script.say("agent", load_clip(magicdata / AGENT_CLIPS[0], said[AGENT_CLIPS[0]]), gap=0.4)
    script.say("customer", load_clip(magicdata / CUSTOMER_CLIP, said[CUSTOMER_CLIP], warp=0.78))
    script.say("agent", load_clip(magicdata / AGENT_CLIPS[1], said[AGENT_CLIPS[1]]))
    return script


def _sidecar(folder: Path, audio: str, **fields: object) -> None:
    (folder / audio).with_suffix(".json").write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")


def _wav_with_codec(path: Path, tag: int, rate: int = 8000, seconds: float = 5.0) -> None:
    """A well-formed WAV header with a codec libsndfile does not decode, and payload bytes."""
    fmt = struct.pack("<HHIIHHH", tag, 1, rate, 1000, 10, 0, 0)
    data = bytes(np.random.default_rng(1).integers(0, 256, int(1000 * seconds), dtype=np.uint8))
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def build(out: Path, magicdata: Path = MAGICDATA, long: bool = False) -> list[Entry]:
    folder = out / "recordings"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    script = short_call(magicdata, seed=11)
    stereo, rate, _ = script.render(stereo=True, out_rate=8000)
    names = {e.name[:4]: e.name for e in CATALOGUE}

    good = folder / names["1001"]
    sf.write(good, stereo, rate, subtype="PCM_16")
    _sidecar(
        folder,
        good.name,
        call_id=GOOD_CALL_ID,
        agent_id="1001",
        started_at=START,
        channels="stereo-agent-left",
    )

    wide, wide_rate, _ = script.render(stereo=True, out_rate=44100, telephone=False)
    sf.write(folder / names["1002"], wide, wide_rate, subtype="PCM_16")
    wide, wide_rate, _ = script.render(stereo=True, out_rate=48000, telephone=False)
    sf.write(folder / names["1003"], wide, wide_rate, subtype="PCM_16", format="FLAC")
    mono, _, _ = script.render(stereo=False, out_rate=8000)
    sf.write(folder / names["1004"], mono, 8000, subtype="ULAW")
    loud = np.clip(stereo * 12.0, -1.0, 1.0)  # 21.6 dB too loud: the peaks sit on full scale
    sf.write(folder / names["1005"], loud, rate, subtype="PCM_16")
    dead = np.stack([mono[:, 0], np.zeros(len(mono), np.float32)], axis=1)  # PBX mixed both into the left
    sf.write(folder / names["1006"], dead, rate, subtype="PCM_16")
    sf.write(folder / names["1007"], stereo[: rate // 2], rate, subtype="PCM_16")
    sf.write(folder / names["1008"], np.zeros((30 * rate, 2), np.float32), rate, subtype="PCM_16")

    cut = folder / names["1009"]  # the data ends early: the header still promises the whole call
    sf.write(cut, stereo, rate, subtype="PCM_16")
    raw = cut.read_bytes()
    cut.write_bytes(raw[: 44 + (len(raw) - 44) * 2 // 3 // 4 * 4])

    other, _, _ = short_call(magicdata, seed=12).render(stereo=True, out_rate=8000)  # different content
    for key, sidecar in (
        ("1010", {"call_id": GOOD_CALL_ID, "agent_id": "1010"}),
        ("1011", None),
        ("1012", {"agent_id": "1012", "ring_seconds": "three", "started_at": "yesterday"}),
        ("9999", None),
    ):
        sf.write(folder / names[key], other * (1.0 - int(key) * 1e-5), rate, subtype="PCM_16")
        if sidecar is not None:
            _sidecar(folder, names[key], **sidecar)
    (folder / names["1011"]).with_suffix(".json").write_text(
        '{"call_id": "HX-CAT-0011", "agent_id": 1011,', "utf-8"
    )

    (folder / "empty.wav").write_bytes(b"")
    (folder / "truncated_header.wav").write_bytes(good.read_bytes()[:30])
    (folder / "random_bytes.wav").write_bytes(np.random.default_rng(2).bytes(20_000))
    (folder / "notes.wav").write_text("客户回访记录\n2026-11-20 回访三次，均无人接听。\n", encoding="utf-8")
    _wav_with_codec(folder / "g729.wav", 0x0133)
    (folder / "voicemail.amr").write_bytes(b"#!AMR\n" + np.random.default_rng(3).bytes(3000))
    shutil.copyfile(good, folder / "copy_of_1001.wav")
    (folder / "gone.wav").symlink_to(folder / "moved_away.wav")
    (folder / "readme.txt").write_text("not a recording: ignored\n", encoding="utf-8")
    entries = list(CATALOGUE)

    if long:
        write_long_recording(folder / LONG.name, magicdata, hours=5.0)
        entries.append(LONG)

    # Everything was written an hour ago, except the file the phone system is still writing.
    an_hour_ago = time.time() - 3600
    for path in folder.iterdir():
        if not path.is_symlink():
            os.utime(path, (an_hour_ago, an_hour_ago))
    sf.write(folder / "being_written.wav", stereo[:rate], rate, subtype="PCM_16")  # 1 s so far

    with (out / "agents.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["agent_id", "agent_name"])
        writer.writerows(ROSTER.items())
    (out / "callqa.toml").write_text(
        f'db = "{out / "qa.duckdb"}"\nreports_dir = "{out / "reports"}"\n\n[agents]\nroster = "{out / "agents.csv"}"\n',
        encoding="utf-8",
    )
    (out / "catalogue.json").write_text(
        json.dumps([e.__dict__ for e in entries], ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return entries


def write_long_recording(path: Path, magicdata: Path, hours: float = 3.0) -> None:
    """A long (by default three-hour) stereo 8 kHz recording written block by block: the short call again and again
    (a conversation every ten minutes), line noise in between — a line left open."""
    stereo, rate, _ = short_call(magicdata, seed=13).render(stereo=True, out_rate=8000)
    total = int(hours * 3600 * rate)
    period = 600 * rate
    rng = np.random.default_rng(4)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        for start in range(0, total, period):
            block = rng.normal(0, 10 ** (-62 / 20), (min(period, total - start), 2)).astype(np.float32)
            block[: min(len(stereo), len(block))] += stereo[: len(block)]
            out.write(block)
    _sidecar(path.parent, path.name, agent_id="1013", started_at=START, channels="stereo-agent-left")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--long", action="store_true", help="also write the 5-hour recording (about 580 MB)")
    parser.add_argument("--magicdata", type=Path, default=MAGICDATA)
    args = parser.parse_args()
    entries = build(args.out, args.magicdata, args.long)
    for e in entries:
        print(f"{e.name:32} {e.status:8} {e.problem or '':14} {e.what}")
    print(
        f"catalogue: {len(entries)} files in {args.out / 'recordings'}; run: callqa --config {args.out / 'callqa.toml'} run {args.out / 'recordings'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
