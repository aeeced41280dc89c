"""The same recording reads the same, whatever the process decoded before it.

Whisper's temperature fallback samples from CTranslate2's random stream, which lives in the model's
worker thread and is seeded once: with the fallback on, a drawn-out track (real speech at 0.4 of its
speed, the case that makes whisper fall back) decoded, then another track, then the first again, read
two different ways in one process. An appeal re-analysed a week later must read as the night did.
"""

from __future__ import annotations

import sys

from conftest import ROOT

from pipeline.asr import load_recognizer, transcribe_turns
from pipeline.config import AsrConfig

sys.path.insert(0, str(ROOT / "bench"))
import asr_guards


def test_a_drawn_out_track_decoded_again_in_the_same_process_reads_the_same() -> None:
    lines = (asr_guards.CORPUS / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = sorted((name, text) for name, _, text in (line.split("\t") for line in lines))
    first, second = asr_guards.tracks(rows[::8][:10], 0.4)  # two tracks of five sentences
    recognizer = load_recognizer(AsrConfig())

    def read(track: asr_guards.Track) -> list[str]:
        return [u.text for u in transcribe_turns(track.signal, 16000, track.turns, recognizer)]

    before = read(first)
    assert any(before), "the track was heard at all"
    read(second)
    assert read(first) == before
