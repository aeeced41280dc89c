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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import jiwer
from pyannote.core import Annotation, Segment
from pyannote.metrics.identification import IdentificationErrorRate

from pipeline.config import MetricsConfig, RingConfig, Settings
from pipeline.metrics.intervals import total, union
from pipeline.records import ROLES, CallMetrics, Hold, Utterance
from pipeline.text import normalize, spoken_chars


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


# ---- metrics against ground truth (callqa eval) -------------------------------------------------

RATE_TOLERANCE = 0.05
BOUNDARY_TOLERANCE_S = 1.0
EVENT_TOLERANCE_S = 1.0
DELAY_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class TruthFacts:
    """What the metrics should find in a call, derived from its ground truth with the same
    definitions the metrics use (docs/metrics.md)."""

    stereo: bool
    agent_chars_per_min: float | None
    agent_chars: int
    agent_speaking_s: float
    interruptions: tuple[tuple[str, float], ...]  # (by, start)
    holds: tuple[dict, ...]  # only those of at least the hold threshold
    rings: int
    answer_delay_s: float | None
    hangup_by: str | None


def truth_facts(truth: dict, sidecar: dict | None, config: MetricsConfig, ring: RingConfig) -> TruthFacts:
    agent_turns = [t for t in truth["turns"] if t["speaker"] == "agent"]
    chars = sum(spoken_chars(t["text"]) for t in agent_turns)
    speaking = total(
        union([tuple(v) for t in agent_turns for v in t.get("voiced", [])], config.pause_excluded_s)
    )
    rate = round(chars / speaking * 60, 1) if speaking > 0 else None
    rings = int(truth.get("rings", 0))
    connected = (rings - 1) * (ring.on_s + ring.off_s) + ring.on_s if rings else 0.0
    first_agent = min((t["start"] for t in agent_turns), default=None)
    return TruthFacts(
        stereo=truth["channels"] != "mono",
        agent_chars_per_min=rate,
        agent_chars=chars,
        agent_speaking_s=round(speaking, 3),
        interruptions=tuple(
            (o["by"], o["start"]) for o in truth.get("overlaps", []) if o["kind"] == "interruption"
        ),
        holds=tuple(h for h in truth.get("holds", []) if h["end"] - h["start"] >= config.hold_min_s),
        rings=rings,
        answer_delay_s=round(first_agent - connected, 3) if first_agent is not None else None,
        hangup_by=truth.get("hangup_by") or (sidecar or {}).get("hangup_by"),
    )


@dataclass
class MetricsEvaluation:
    calls: int = 0
    # per layout, per call: the rate's relative error, and measured ÷ true agent speaking time and
    # characters (which side of the rate is off)
    rate_parts_by_layout: dict[str, list[tuple[float, float, float]]] = field(
        default_factory=lambda: {"stereo": [], "mono": []}
    )
    interruption_counts: dict[str, list[int]] = field(
        default_factory=lambda: {"stereo": [0, 0, 0], "mono": [0, 0, 0]}
    )
    # per layout: holds true, found, matched, with both ends right, with flags right, with music
    # right (the totals are their sums); and how many matched holds got each part wrong
    hold_by_layout: dict[str, Counter[str]] = field(
        default_factory=lambda: {"stereo": Counter(), "mono": Counter()}
    )
    hold_wrong: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("start", "end", "asked_missed", "asked_extra", "checkins", "thanked_missed", "thanked_extra"), 0
        )
    )
    # each boundary more than the tolerance off, unnamed: (start|end, found − true in s, music|quiet, layout)
    hold_boundary_misses: list[tuple[str, float, str, str]] = field(default_factory=list)
    rings_exact: int = 0
    delay_errors: list[float] = field(default_factory=list)
    hangup_right: int = 0
    hangup_known: int = 0
    problems: list[str] = field(default_factory=list)

    def _rate_parts(self, layout: str) -> dict | None:
        """How a layout's rates miss (totals only): calls over and under the ±5 % band, the median
        signed error, and the median measured ÷ true agent speaking time and characters."""
        parts = self.rate_parts_by_layout[layout]
        if not parts:
            return None
        errors = [e for e, _, _ in parts]
        return {
            "too_high": sum(e > RATE_TOLERANCE for e in errors),
            "too_low": sum(e < -RATE_TOLERANCE for e in errors),
            "median_error": round(median(errors), 4),
            "speaking_time_ratio": round(median(t for _, t, _ in parts), 3),
            "chars_ratio": round(median(c for _, _, c in parts), 3),
            # the calls outside the band, unnamed and sorted: (error, time ratio, chars ratio)
            "outside": sorted(
                (round(e, 3), round(t, 3), round(c, 3)) for e, t, c in parts if abs(e) > RATE_TOLERANCE
            ),
        }

    def add(self, call_id: str, truth: TruthFacts, m: CallMetrics) -> None:
        self.calls += 1
        if truth.agent_chars_per_min and m.agent_chars_per_min:
            error = (m.agent_chars_per_min - truth.agent_chars_per_min) / truth.agent_chars_per_min
            # a true rate exists only with true speaking time and characters, so the ratios do too
            self.rate_parts_by_layout["stereo" if truth.stereo else "mono"].append(
                (
                    error,
                    m.agent_speaking_s / truth.agent_speaking_s,
                    m.agent_chars_per_min * m.agent_speaking_s / 60 / truth.agent_chars,
                )
            )
            if abs(error) > RATE_TOLERANCE:
                self.problems.append(f"{call_id} RATE {m.agent_chars_per_min} vs {truth.agent_chars_per_min}")
        counts = self.interruption_counts["stereo" if truth.stereo else "mono"]
        found = [(i.by, i.start) for i in m.interruptions]
        unmatched = list(truth.interruptions)
        for by, start in found:
            match = next(
                (t for t in unmatched if t[0] == by and abs(t[1] - start) <= EVENT_TOLERANCE_S), None
            )
            if match:
                unmatched.remove(match)
                counts[0] += 1
            else:
                counts[1] += 1
                self.problems.append(f"{call_id} NO-INTERRUPT false {by} at {start:.1f}")
        counts[2] += len(unmatched)
        self.problems += [f"{call_id} NO-INTERRUPT missed {by} at {start:.1f}" for by, start in unmatched]
        self._holds(call_id, truth.holds, m.holds, "stereo" if truth.stereo else "mono")
        if m.rings == truth.rings:
            self.rings_exact += 1
        else:
            self.problems.append(f"{call_id} RINGS {m.rings} ({m.rings_source}) vs {truth.rings}")
        if truth.answer_delay_s is not None and m.answer_delay_s is not None:
            self.delay_errors.append(m.answer_delay_s - truth.answer_delay_s)
            if abs(m.answer_delay_s - truth.answer_delay_s) > DELAY_TOLERANCE_S:
                self.problems.append(f"{call_id} ANSWER-DELAY {m.answer_delay_s} vs {truth.answer_delay_s}")
        if truth.hangup_by:
            self.hangup_known += 1
            self.hangup_right += m.hangup_by == truth.hangup_by
            if m.hangup_by != truth.hangup_by:
                self.problems.append(
                    f"{call_id} HANGUP {m.hangup_by} ({m.hangup_source}) vs {truth.hangup_by}"
                )

    def _holds(self, call_id: str, truth_holds: Sequence[dict], found: Sequence[Hold], layout: str) -> None:
        per_layout = self.hold_by_layout[layout]
        per_layout["true"] += len(truth_holds)
        per_layout["found"] += len(found)
        for t in truth_holds:
            best = max(found, key=lambda h: min(h.end, t["end"]) - max(h.start, t["start"]), default=None)
            if best is None or min(best.end, t["end"]) - max(best.start, t["start"]) <= 0:
                self.problems.append(f"{call_id} HOLD missed {t['start']:.1f}-{t['end']:.1f}")
                continue
            errors = {"start": best.start - t["start"], "end": best.end - t["end"]}
            off = {part: abs(error) > BOUNDARY_TOLERANCE_S for part, error in errors.items()}
            boundaries = not (off["start"] or off["end"])
            flags = (best.asked, best.checkins, best.thanked) == (t["asked"], t["checkins"], t["thanked"])
            per_layout["matched"] += 1
            per_layout["boundaries"] += boundaries
            per_layout["flags"] += flags
            per_layout["music"] += best.music == t["music"]
            wrong = {
                **off,
                "asked_missed": t["asked"] and not best.asked,
                "asked_extra": best.asked and not t["asked"],
                "checkins": best.checkins != t["checkins"],
                "thanked_missed": t["thanked"] and not best.thanked,
                "thanked_extra": best.thanked and not t["thanked"],
            }
            for part, is_wrong in wrong.items():
                self.hold_wrong[part] += is_wrong
            self.hold_boundary_misses += [
                (part, round(error, 1), "music" if t["music"] else "quiet", layout)
                for part, error in errors.items()
                if off[part]
            ]
            if not (boundaries and flags):
                self.problems.append(
                    f"{call_id} HOLD {best.start:.1f}-{best.end:.1f} asked={best.asked} checkins={best.checkins} "
                    f"thanked={best.thanked} vs {t['start']:.1f}-{t['end']:.1f} asked={t['asked']} "
                    f"checkins={t['checkins']} thanked={t['thanked']}"
                )
        extra = len(found) - sum(
            1 for h in found if any(min(h.end, t["end"]) - max(h.start, t["start"]) > 0 for t in truth_holds)
        )
        if extra > 0:
            self.problems.append(f"{call_id} HOLD {extra} found where the truth has none")

    def summary(self) -> dict:
        def f1(counts: list[int]) -> dict:
            tp, fp, fn = counts
            precision = tp / (tp + fp) if tp + fp else 1.0
            recall = tp / (tp + fn) if tp + fn else 1.0
            f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            return {
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": round(precision, 3),
                "recall": round(recall, 3),
                "f1": round(f, 3),
            }

        errors_by_layout = {
            layout: [e for e, _, _ in parts] for layout, parts in self.rate_parts_by_layout.items()
        }
        rate_errors = [e for errors in errors_by_layout.values() for e in errors]
        within = sum(abs(e) <= RATE_TOLERANCE for e in rate_errors)
        by_layout = {
            layout: round(sum(abs(e) <= RATE_TOLERANCE for e in errors) / len(errors), 3) if errors else None
            for layout, errors in errors_by_layout.items()
        }
        delays_ok = sum(abs(e) <= DELAY_TOLERANCE_S for e in self.delay_errors)
        holds: Counter[str] = sum(self.hold_by_layout.values(), Counter())
        matched = holds["matched"] or 1
        return {
            "calls": self.calls,
            "rate_within_5pct": round(within / len(rate_errors), 3) if rate_errors else None,
            "rate_median_abs_error": round(median(abs(e) for e in rate_errors), 4) if rate_errors else None,
            "rate_within_5pct_by_layout": by_layout,
            "rate_by_layout": {layout: self._rate_parts(layout) for layout in self.rate_parts_by_layout},
            "interruptions_stereo": f1(self.interruption_counts["stereo"]),
            "interruptions_mono": f1(self.interruption_counts["mono"]),
            "holds": {
                "true": holds["true"],
                "found": holds["found"],
                "matched": holds["matched"],
                "boundaries_within_1s": round(holds["boundaries"] / matched, 3),
                "flags_right": round(holds["flags"] / matched, 3),
                "music_right": round(holds["music"] / matched, 3),
                # which part of a matched hold was wrong, counted over all sets' holds (totals only)
                "wrong": dict(self.hold_wrong),
                "boundary_misses": sorted(self.hold_boundary_misses),
                "by_layout": {
                    layout: {
                        "true": c["true"],
                        "found": c["found"],
                        "matched": c["matched"],
                        "boundaries_within_1s": round(c["boundaries"] / c["matched"], 3)
                        if c["matched"]
                        else None,
                        "flags_right": round(c["flags"] / c["matched"], 3) if c["matched"] else None,
                    }
                    for layout, c in self.hold_by_layout.items()
                },
            },
            "rings_exact": round(self.rings_exact / self.calls, 3) if self.calls else None,
            "answer_delay_within_0_5s": round(delays_ok / len(self.delay_errors), 3)
            if self.delay_errors
            else None,
            "hangup_right": round(self.hangup_right / self.hangup_known, 3) if self.hangup_known else None,
        }


BARS = {  # the metrics issue's acceptance bars
    "rate_within_5pct": 0.95,
    "interruptions_stereo.f1": 0.95,
    "interruptions_mono.f1": 0.85,
    "holds.boundaries_within_1s": 0.95,
    "holds.flags_right": 0.95,
    "rings_exact": 0.95,
    "answer_delay_within_0_5s": 0.95,
}


def evaluate_folder(directory: Path, settings: Settings) -> tuple[dict, list[str]]:
    """Compare the stored metrics and transcripts of every call in `directory` that has a
    ground-truth file with that truth. The calls must have been processed into settings.db."""
    from pipeline.diarize.roles import ROLE_REVIEW_BELOW
    from pipeline.eval_scores import TranscriptTally, VerdictTally
    from pipeline.ingest import read_meta, sidecar_path
    from pipeline.store import Store

    evaluation = MetricsEvaluation()
    transcripts: list[TranscriptScore] = []
    tally, verdicts = TranscriptTally(), VerdictTally()
    with Store.from_settings(settings, read_only=True) as store:
        # a call whose roles wait for a person moves no money until they decide (callqa roles)
        roles_wait = {row["call_id"] for row in store.role_reviews(ROLE_REVIEW_BELOW)}
        for truth_path in sorted(directory.glob("*.truth.json")):
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            audio_path = directory / truth.get("file", "")
            meta = read_meta(audio_path, settings.input)
            metrics = store.load_metrics(meta.call_id)
            if metrics is None:
                evaluation.problems.append(f"{meta.call_id}: not processed (or failed); run callqa run first")
                continue
            side = sidecar_path(audio_path)
            sidecar = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else None
            evaluation.add(
                meta.call_id, truth_facts(truth, sidecar, settings.metrics, settings.acoustic.ring), metrics
            )
            utterances = store.load_utterances(meta.call_id)
            transcripts.append(score_transcript(utterances, truth))
            tally.add(utterances, truth, transcripts[-1].cer_by_role.get("agent"))
            if "verdicts" in truth:
                scored = store.current_score(meta.call_id)
                verdicts.add(
                    meta.call_id,
                    truth["verdicts"],
                    scored.findings if scored else (),
                    roles_wait=meta.call_id in roles_wait,
                )
    summary = evaluation.summary()
    if transcripts:
        summary["transcripts"] = {
            "cer_mean": round(sum(t.cer for t in transcripts) / len(transcripts), 3),
            "role_confusion_mean": round(sum(t.role_confusion for t in transcripts) / len(transcripts), 3),
            "role_error_mean": round(sum(t.role_error for t in transcripts) / len(transcripts), 3),
            **tally.summary(),
        }
    if verdicts.calls:
        summary["verdicts"] = verdicts.summary()
    return summary, evaluation.problems + verdicts.problems


def bar_results(summary: dict) -> list[tuple[str, float | None, float, bool]]:
    """(metric, value, bar, met) for each acceptance bar."""
    results = []
    for key, bar in BARS.items():
        value: object = summary
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        number = float(value) if isinstance(value, int | float) else None
        results.append((key, number, bar, number is not None and number >= bar))
    return results
