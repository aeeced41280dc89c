"""One recording through the spine, and a folder of them as a batch.

    ingest → diarize → transcribe each party's turns → roles → audio events + metrics → scorecard → store

`transcribe_call` is the pure part (records in, records out). `process_recording` adds what a
nightly batch needs: skip what is done, re-process what changed or failed, refuse a call_id that
another file already owns, record every failure with a readable reason, never stop the batch.
The Prefect flow in flows.py and `callqa run` both call these functions.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.asr import load_recognizer, transcribe_turns
from pipeline.config import Settings
from pipeline.diarize import diarize
from pipeline.diarize.roles import assign_roles, check_stereo_roles
from pipeline.errors import CallQAError
from pipeline.ingest import decode, discover, fingerprint, read_meta
from pipeline.metrics import compute_metrics, detect_audio_events
from pipeline.records import ROLES, CallAudio, CallMetrics, SpeechTurn, Transcript, Utterance
from pipeline.rules import Scorecard, score_call, scorecard_for
from pipeline.rules.rescore import scorecards_from
from pipeline.store import Store

log = logging.getLogger("callqa")


def transcribe_call(audio: CallAudio, settings: Settings) -> Transcript:
    """Who spoke when, what they said, and which of them is the agent."""
    diarization = diarize(audio, settings)
    recognizer = load_recognizer(settings.asr)
    cues, first_turns = settings.turns.agent_cues, settings.turns.role_cue_turns
    warnings: list[str] = []
    utterances: list[Utterance] = []
    if diarization.roles_known:
        for role in ROLES:
            own_turns = [t for t in diarization.turns if t.speaker == role]
            utterances += transcribe_turns(audio.tracks[role], audio.sample_rate, own_turns, recognizer)
        roles, warning = check_stereo_roles(utterances, audio.layout, audio.layout_source, cues, first_turns)
        if warning:
            warnings.append(warning)
        voice_activity = list(diarization.voice_activity)
    else:
        for label in sorted({t.speaker for t in diarization.turns}):
            own_turns = [t for t in diarization.turns if t.speaker == label]
            utterances += transcribe_turns(audio.tracks["mono"], audio.sample_rate, own_turns, recognizer)
        roles = assign_roles(utterances, cues, first_turns)
        if roles.source == "first-speaker":
            warnings.append("没有听到客服用语：按先开口的一方为客服，请人工确认")
        utterances = [replace(u, speaker=roles.mapping.get(u.speaker, "customer")) for u in utterances]
        voice_activity = [
            SpeechTurn(roles.mapping.get(v.speaker, "customer"), v.start, v.end)
            for v in diarization.voice_activity
        ]
    utterances = [replace(u, role_source=roles.source, role_confidence=roles.confidence) for u in utterances]
    utterances.sort(key=lambda u: (u.start, u.end))
    return Transcript(
        utterances=tuple(utterances),
        voice_activity=tuple(sorted(voice_activity, key=lambda v: (v.start, v.speaker))),
        diarization_method=diarization.method,
        asr_model=recognizer.name,
        roles=roles,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class Outcome:
    """What happened to one file in a batch."""

    path: Path
    call_id: str
    status: str  # ok | failed | skipped | unchanged
    message: str = ""
    elapsed_s: float = 0.0
    duration_s: float | None = None
    utterances: int = 0


def process_recording(path: Path, settings: Settings) -> Outcome:
    """Process one file into the store unless it is already done. Never raises for a bad file."""
    started = time.monotonic()
    call_id = path.stem
    try:
        recording = fingerprint(path)
    except CallQAError as exc:
        return _record_failure(path, "", 0, call_id, "failed", str(exc), started, settings)
    try:
        meta = read_meta(path, settings.input)
        call_id = meta.call_id
        with Store(settings.db, timezone=settings.input.timezone) as store:
            previous = store.recording_at(path)
            if previous and previous.sha256 == recording.sha256 and previous.status in ("ok", "skipped"):
                return Outcome(path, previous.call_id, "unchanged", "已处理过")
            twin = store.ok_recording_with_sha(recording.sha256)
            if twin and twin.path != str(path):
                if Path(twin.path).exists():
                    raise _SkippedError(f"与 {twin.path}（通话 {twin.call_id}）是同一段录音，不重复分析")
                store.move_recording(twin.path, path)
                return Outcome(path, twin.call_id, "unchanged", f"录音已从 {twin.path} 移到这里")
            owner = store.call_path(meta.call_id)
            if owner and owner != str(path) and Path(owner).exists():
                raise CallQAError(f"通话编号 call_id {meta.call_id} 已被 {owner} 使用，请修正随录音信息")
        audio = decode(path, meta, settings.input)
        transcript = transcribe_call(audio, settings)
        events = detect_audio_events(audio, settings.acoustic)
        metrics = compute_metrics(
            transcript.utterances, transcript.voice_activity, events, meta, audio.duration_s, settings
        )
        scorecard = scorecard_for(meta, scorecards(settings))
        score = score_call(transcript.utterances, metrics, meta, scorecard)
        elapsed = time.monotonic() - started
        with Store(settings.db, timezone=settings.input.timezone) as store:
            store.save_call(
                recording,
                meta,
                audio,
                transcript,
                elapsed,
                events=events,
                metrics=metrics,
                score=score,
                scorecard=scorecard,
            )
        message = "; ".join(audio.warnings + transcript.warnings)
        return Outcome(
            path, meta.call_id, "ok", message, elapsed, audio.duration_s, len(transcript.utterances)
        )
    except _SkippedError as exc:
        return _record_failure(
            path, recording.sha256, recording.size_bytes, call_id, "skipped", str(exc), started, settings
        )
    except CallQAError as exc:
        return _record_failure(
            path, recording.sha256, recording.size_bytes, call_id, "failed", str(exc), started, settings
        )
    except Exception as exc:  # a bug or a resource problem must not stop the batch either
        log.error("unexpected error on %s:\n%s", path, traceback.format_exc())
        reason = f"内部错误（{type(exc).__name__}: {exc}），详见运行日志"
        return _record_failure(
            path, recording.sha256, recording.size_bytes, call_id, "failed", reason, started, settings
        )


class _SkippedError(Exception):
    """Not an error: the file is deliberately not analysed (e.g. a duplicate)."""


def _record_failure(
    path: Path,
    sha256: str,
    size: int,
    call_id: str,
    status: str,
    reason: str,
    started: float,
    settings: Settings,
) -> Outcome:
    elapsed = time.monotonic() - started
    try:
        with Store(settings.db, timezone=settings.input.timezone) as store:
            store.save_failure(path, sha256, size, call_id, status, reason, elapsed)
    except CallQAError as exc:  # the store itself is unusable: say so, but still report the file
        reason = f"{reason}（且无法写入数据库：{exc}）"
    return Outcome(path, call_id, status, reason, elapsed)


@dataclass
class BatchSummary:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def line(self) -> str:
        return (
            f"{len(self.outcomes)} recordings: {self.count('ok')} processed, {self.count('unchanged')} "
            f"already done, {self.count('skipped')} skipped, {self.failed} failed"
        )


def run_batch(
    directory: Path, settings: Settings, on_outcome: Callable[[int, int, Outcome], None] | None = None
) -> BatchSummary:
    """Every recording in `directory`, one after the other (the recogniser uses all cores)."""
    paths = discover(directory, settings.input)
    summary = BatchSummary()
    for index, path in enumerate(paths, 1):
        outcome = process_recording(path, settings)
        summary.outcomes.append(outcome)
        if on_outcome:
            on_outcome(index, len(paths), outcome)
    return summary


def describe(index: int, total: int, outcome: Outcome) -> str:
    """One progress line per recording, as the batch log and the CLI print it."""
    head = f"[{index}/{total}] {outcome.path.name} ({outcome.call_id}): {outcome.status}"
    if outcome.status == "ok":
        head += f", {outcome.duration_s:.0f} s audio, {outcome.utterances} utterances in {outcome.elapsed_s:.1f} s"
    if outcome.message:
        head += f" — {outcome.message}"
    return head


def recompute_metrics(store: Store, call_id: str, settings: Settings) -> CallMetrics | None:
    """Metrics again from what is stored (utterances, voice activity, audio events), no audio needed:
    after a supervisor changes a metric setting. Returns None for an unknown call."""
    meta = store.load_meta(call_id)
    call = store.call(call_id)
    if meta is None or call is None:
        return None
    metrics = compute_metrics(
        store.load_utterances(call_id),
        store.load_voice_activity(call_id),
        store.load_audio_events(call_id),
        meta,
        call["duration_s"],
        settings,
    )
    store.save_metrics(call_id, metrics)
    return metrics


def scorecards(settings: Settings) -> list[Scorecard]:
    """The scorecards in force, read afresh for every recording so that a supervisor's edit applies
    to the rest of the batch (a broken edit stops each recording with the file, rule and field named)."""
    return scorecards_from(None, settings.scorecards)
