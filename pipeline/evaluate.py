"""Compare the pipeline's transcript of a call with the call's ground truth (NAME.truth.json).

Ground truth lists turns ({speaker, start, end, text}) with exact times. Measured here:

* role error: the share of true speech time attributed to the wrong role or to nobody
  (pyannote.metrics' identification error rate: labels must match, no re-mapping), and the
  share attributed to the wrong role only (confusion);
* boundaries: start/end error of each true turn against the utterance of the same role that
  overlaps it most;
* character error rate per role and overall, on normalised text (jiwer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import jiwer
from pyannote.core import Annotation, Segment
from pyannote.metrics.identification import IdentificationErrorRate

from pipeline.records import ROLES, Utterance
from pipeline.text import normalize


@dataclass(frozen=True)
class TranscriptScore:
    role_error: float  # missed + wrong-role + false-alarm time over true speech time
    role_confusion: float  # wrong-role time over true speech time
    matched_turns: int
    true_turns: int
    median_start_error_s: float | None
    median_end_error_s: float | None
    cer: float
    cer_by_role: dict[str, float]


def load_truth(audio_path: Path) -> dict:
    return json.loads(audio_path.with_name(f"{audio_path.stem}.truth.json").read_text(encoding="utf-8"))


def score_transcript(utterances: Sequence[Utterance], truth: dict, collar: float = 0.25) -> TranscriptScore:
    reference, hypothesis = Annotation(), Annotation()
    for turn in truth["turns"]:
        reference[Segment(turn["start"], turn["end"])] = turn["speaker"]
    for u in utterances:
        hypothesis[Segment(u.start, u.end)] = u.speaker
    metric = IdentificationErrorRate(collar=collar)
    details = metric(reference, hypothesis, detailed=True)
    total = details["total"] or 1.0

    start_errors, end_errors = [], []
    for turn in truth["turns"]:
        if turn.get("kind") == "backchannel":
            continue  # a 嗯 inside the other party's turn is not a turn boundary to measure
        same_role = [u for u in utterances if u.speaker == turn["speaker"]]
        best = max(same_role, key=lambda u: _overlap(u, turn), default=None)
        if best is not None and _overlap(best, turn) > 0:
            start_errors.append(abs(best.start - turn["start"]))
            end_errors.append(abs(best.end - turn["end"]))

    cer_by_role = {}
    for role in ROLES:
        truth_text = normalize("".join(t["text"] for t in truth["turns"] if t["speaker"] == role))
        heard = normalize(
            "".join(u.text for u in sorted(utterances, key=lambda u: u.start) if u.speaker == role)
        )
        if truth_text:
            cer_by_role[role] = character_error_rate(truth_text, heard)
    all_truth = normalize("".join(t["text"] for t in sorted(truth["turns"], key=lambda t: t["start"])))
    all_heard = normalize("".join(u.text for u in sorted(utterances, key=lambda u: u.start)))
    return TranscriptScore(
        role_error=details["identification error rate"],
        role_confusion=details["confusion"] / total,
        matched_turns=len(start_errors),
        true_turns=sum(1 for t in truth["turns"] if t.get("kind") != "backchannel"),
        median_start_error_s=median(start_errors) if start_errors else None,
        median_end_error_s=median(end_errors) if end_errors else None,
        cer=character_error_rate(all_truth, all_heard),
        cer_by_role=cer_by_role,
    )


def _overlap(utterance: Utterance, turn: dict) -> float:
    return min(utterance.end, turn["end"]) - max(utterance.start, turn["start"])


def character_error_rate(reference: str, hypothesis: str) -> float:
    """CER on already normalised strings; an empty hypothesis for a non-empty reference is 100 %."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return float(jiwer.cer(reference, hypothesis)) if hypothesis else 1.0
