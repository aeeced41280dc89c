"""One recording through the spine, and a folder of them as a batch.

    ingest → diarize → transcribe each party's turns → roles → audio events + metrics → scorecard → store

`transcribe_call` is the pure part (records in, records out). `process_recording` adds what a
nightly batch needs: skip what is done, re-process what changed or failed, refuse a call_id that
another file already owns, record every failure with a readable reason and a problem code, never
stop the batch. `run_batch` adds the batch lock (one writer) and the crash bookkeeping (a file the
batch died on is retried last, and held back after `batch.max_crashes`). The Prefect flow in
flows.py and `callqa run` both call these functions; docs/operations.md explains the behaviour.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from threadpoolctl import threadpool_limits

from pipeline.asr import load_recognizer, transcribe_parties
from pipeline.asr.packing import Samples, TurnSamples
from pipeline.config import Settings
from pipeline.diarize import diarize
from pipeline.diarize.echo import cancel_echo
from pipeline.diarize.mono_roles import mono_roles
from pipeline.diarize.roles import ROLE_REVIEW_BELOW, check_stereo_roles
from pipeline.errors import CallQAError
from pipeline.ingest import check_duration, decode, fingerprint, probe, read_meta, sidecar_path
from pipeline.metrics import compute_metrics, detect_audio_events
from pipeline.metrics.acoustic import music_heard_without_echo
from pipeline.privacy import redactor_for
from pipeline.problems import RETRYABLE, RecordingError
from pipeline.records import (
    ROLES,
    AudioEvent,
    CallAudio,
    CallMeta,
    CallMetrics,
    CallScore,
    Recording,
    SpeechTurn,
    Transcript,
    Utterance,
)
from pipeline.roster import check_agent, load_roster
from pipeline.rules import Scorecard, score_call, scorecard_for
from pipeline.rules.rescore import scorecards_from
from pipeline.rules.scorecard import card_for_call
from pipeline.store import Store, StoreBusyError

log = logging.getLogger("callqa")

# glibc's mallopt(M_MMAP_THRESHOLD): blocks over 4 MiB get their own mapping, returned when freed.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 4 << 20


def _return_freed_buffers() -> None:
    """By default glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB),
    after which the analysis's window buffers come from the heap and what they leave there stays
    with the process: 117 MiB of the 3-hour recording's peak (bench/results/long-recording-2026-11-29.md).
    A fixed threshold hands every large buffer back as soon as it is freed. Other C libraries: as is."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _cancels_echo(audio: CallAudio, settings: Settings) -> bool:
    """Whether this call's channels get the other party's echo removed (stereo, `stereo.echo_cancel`)."""
    return audio.layout != "mono" and settings.stereo.echo_cancel


def remove_echo(audio: CallAudio, settings: Settings, in_place: bool = False) -> CallAudio:
    """A stereo call's channels each without the other party's echo (the call as it is when mono or
    when `stereo.echo_cancel` is off). `in_place` writes them over the call's own tracks."""
    if not _cancels_echo(audio, settings):
        return audio
    cleaned, _ = cancel_echo(
        audio, settings.stereo.echo_max_delay_s, settings.stereo.echo_min_erle_db, in_place=in_place
    )
    return cleaned


def audio_events(audio: CallAudio, settings: Settings) -> tuple[list[AudioEvent], CallAudio]:
    """Ringback and hold music, and the call with its echo removed (written over its own tracks).

    Both are found on the channels as recorded (cancelling would put a faint inverted copy of the
    customer channel's ringback into the silent agent channel); in a stereo call music is then
    kept only where the echo-free channel still sounds (`music_heard_without_echo`: the other
    party's voice leaking into a quiet channel looks like music)."""
    events = detect_audio_events(audio, settings.acoustic)
    if not _cancels_echo(audio, settings):
        return events, audio
    audio = remove_echo(audio, settings, in_place=True)
    return music_heard_without_echo(events, audio, settings.acoustic), audio


def transcribe_call(
    audio: CallAudio, settings: Settings, reuse_tracks: bool = False, echo_removed: bool = False
) -> Transcript:
    """Who spoke when, what they said, and which of them is the agent.

    `reuse_tracks`: the echo-free channels are written over the audio's own tracks instead of
    copies, and the tracks are let go (`audio.tracks` emptied) once whisper has the turns' samples
    (the caller needs the channels no more: a long recording is held once, and not at all while
    whisper runs). `echo_removed`: the caller has already removed the echo (`remove_echo`)."""
    given = audio.tracks
    if not echo_removed:
        # each channel without the other party's echo, for voice activity and for whisper alike
        audio = remove_echo(audio, settings, in_place=reuse_tracks)
    diarization = diarize(audio, settings)
    cues, first_turns = settings.turns.agent_cues, settings.turns.role_cue_turns
    warnings: list[str] = []
    utterances: list[Utterance] = []
    if diarization.roles_known:
        parts: list[tuple[Samples, list[SpeechTurn]]] = []
        for role in ROLES:
            turns = [t for t in diarization.turns if t.speaker == role]
            parts.append((TurnSamples(audio.tracks[role], audio.sample_rate, turns), turns))
            if reuse_tracks:  # this channel goes before the next one's turns are copied
                given.pop(role, None)
                audio.tracks.pop(role, None)
        recognizer = load_recognizer(settings.asr)  # after the tracks are gone: the model needs 0.2 GB
        utterances += transcribe_parties(parts, audio.sample_rate, recognizer)
        roles, warning = check_stereo_roles(utterances, audio.layout, audio.layout_source, cues, first_turns)
        if warning:
            warnings.append(warning)
        voice_activity = list(diarization.voice_activity)
    else:
        # Whisper and the sentence check read only the turns' samples (an utterance spans its turn),
        # so a long recording's track can go before the model is loaded, as a stereo call's do.
        track: Samples = audio.tracks["mono"]
        if reuse_tracks:
            track = TurnSamples(track, audio.sample_rate, diarization.turns)
            given.pop("mono", None)
            audio.tracks.pop("mono", None)
        recognizer = load_recognizer(settings.asr)
        labels = sorted({t.speaker for t in diarization.turns})
        parts = [(track, [t for t in diarization.turns if t.speaker == label]) for label in labels]
        utterances += transcribe_parties(parts, audio.sample_rate, recognizer)
        utterances, voice_activity, roles, notes = mono_roles(
            utterances, diarization.voice_activity, track, audio.sample_rate, settings
        )
        warnings += notes
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
class CallAnalysis:
    """Everything the nightly batch works out for one decoded call, before it is stored."""

    transcript: Transcript
    events: list[AudioEvent]
    metrics: CallMetrics
    scorecard: Scorecard
    score: CallScore


def analyse_call(
    path: Path,
    audio: CallAudio,
    meta: CallMeta,
    settings: Settings,
    on_stage: Callable[[str], None] | None = None,
) -> CallAnalysis:
    """Audio events → transcript → metrics → scorecard, the pure part of processing a recording.

    Uses up `audio`: its tracks are echo-cancelled in place once the rings (found on the channels as
    recorded) are known, so that a long recording's samples are held once, and the tracks are
    released (emptied) before whisper runs, which needs only the turns.
    `on_stage` hears the name of each stage as it ends (bench/long_recording.py times them)."""
    # numpy's BLAS on one thread, as in a Dask worker (its nanny sets one): on two threads its dot
    # products sum in another order, the echo estimate moved in the last bits and a voice boundary
    # with it, and a recording stored other evidence under `callqa run` than on the cluster
    # (tests/test_dask_faults.py). Its work here is small pieces; one thread costs nothing measurable.
    with threadpool_limits(limits=1, user_api="blas"):
        done = on_stage or (lambda _stage: None)
        _return_freed_buffers()
        events, audio = audio_events(audio, settings)
        done("audio events")
        transcript = transcribe_call(audio, settings, reuse_tracks=True, echo_removed=True)
        done("diarize+recognise")
        if not transcript.utterances:
            raise RecordingError(
                f"{path}：录音中没有检测到说话声（{audio.duration_s:.0f} 秒），可能只有忙音、等待音乐或噪声，不质检",
                "no_speech",
                "skipped",
            )
        scorecard = scorecard_for(meta, scorecards(settings))
        metrics = compute_metrics(
            transcript.utterances,
            transcript.voice_activity,
            events,
            meta,
            audio.duration_s,
            settings,
            scorecard.phrases,
        )
        # scored with the layout as analysed (and stored), as `callqa rescore` will score it
        score = score_call(transcript.utterances, metrics, replace(meta, channels=audio.layout), scorecard)
        done("metrics+score")
        return CallAnalysis(transcript, events, metrics, scorecard, score)


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
    problem: str | None = None  # pipeline.problems code for failed and skipped files
    retryable: bool = False  # a retry in a few seconds can pass (database busy, I/O error)
    score: float | None = None  # the call's score, for processed calls
    review_findings: int = 0  # findings waiting for a person (deduct nothing until confirmed)
    roles_doubtful: bool = False  # who is the agent waits for a person (`callqa roles`): not ranked yet


@dataclass(frozen=True)
class Job:
    """A recording the writer cleared for analysis: all a worker needs, and nothing of the database."""

    path: Path
    recording: Recording
    meta: CallMeta
    prepare_s: float  # the writer's seconds on it so far (fingerprint, checks)


@dataclass(frozen=True)
class Analysed:
    """A worker's answer for one job: the analysis, or why there is none (status, reason, problem).

    `audio` is the decoded call without its samples: the writer stores its layout and format, and
    the samples never travel back."""

    analysis: CallAnalysis | None
    audio: CallAudio | None
    seconds: float
    status: str = "ok"
    reason: str = ""
    problem: str = ""


def process_recording(
    path: Path, settings: Settings, recheck: bool = False, batch_started: float | None = None
) -> Outcome:
    """Process one file into the store unless it is already done. Never raises for a bad file.

    Done: processed (same content), or skipped for a reason that stays true for the same content
    (a duplicate, too short, silent …) — `recheck` looks at skipped ones again, e.g. after a limit
    was raised. Failed files are always tried again. `batch_started` (time.time() when the batch
    began): a file modified within `intake.settle_s` before that, or since, is still being written.

    The outcome's message goes to logs, the CLI and the batch summary: it is redacted here, once
    (the database keeps the full reason). A Dask batch runs the same three steps, the middle one
    on a worker: `prepare_recording` → `analyse_recording` → `store_analysis`."""
    prepared = prepare_recording(path, settings, recheck, batch_started)
    if isinstance(prepared, Outcome):
        return prepared
    return store_analysis(prepared, analyse_recording(prepared, settings), settings)


def prepare_recording(
    path: Path, settings: Settings, recheck: bool = False, batch_started: float | None = None
) -> Outcome | Job:
    """The writer's checks before analysis: the Outcome when the file needs none (done, skipped,
    failed), else the Job for a worker, with the file marked as being worked on."""
    prepared = _prepare(path, settings, recheck, batch_started)
    return _redacted(prepared, settings) if isinstance(prepared, Outcome) else prepared


def analyse_recording(job: Job, settings: Settings) -> Analysed:
    """Decode the file and analyse it: the part a Dask worker runs. Reads only the file (by its path,
    which the worker must see) and the scorecards; never the database. Never raises for a bad file."""
    started = time.monotonic()
    try:
        audio = decode(job.path, job.meta, settings.input, settings.intake)
        analysis = analyse_call(job.path, audio, job.meta, settings)
        return Analysed(analysis, replace(audio, tracks={}), time.monotonic() - started)
    except Exception as exc:  # every failure becomes the file's reason, in the writer
        status, reason, problem = _failure_of(exc, job.path, job.recording.size_bytes)
        return Analysed(None, None, time.monotonic() - started, status, reason, problem)


def store_analysis(job: Job, analysed: Analysed, settings: Settings) -> Outcome:
    """The writer stores a worker's answer: the call in one transaction, or the failure. Idempotent:
    storing the same answer twice leaves the same rows."""
    elapsed = job.prepare_s + analysed.seconds
    path, recording, meta = job.path, job.recording, job.meta
    result, audio = analysed.analysis, analysed.audio
    status, reason, problem = analysed.status, analysed.reason, analysed.problem
    if result is not None and audio is not None:
        try:
            with Store.from_settings(settings) as store:
                store.save_call(
                    recording,
                    meta,
                    audio,
                    result.transcript,
                    elapsed,
                    events=result.events,
                    metrics=result.metrics,
                    score=result.score,
                    scorecard=result.scorecard,
                )
            outcome = Outcome(
                path,
                meta.call_id,
                "ok",
                "; ".join(audio.warnings + result.transcript.warnings),
                elapsed,
                audio.duration_s,
                len(result.transcript.utterances),
                score=result.score.score if result.score else None,
                review_findings=sum(f.needs_review for f in result.score.findings) if result.score else 0,
                roles_doubtful=result.transcript.roles.confidence < ROLE_REVIEW_BELOW,
            )
            return _redacted(outcome, settings)
        except Exception as exc:  # a busy or broken store: the file's reason, never a stop
            status, reason, problem = _failure_of(exc, path, recording.size_bytes)
    outcome = _record_failure(
        path, recording.sha256, recording.size_bytes, meta.call_id, status, reason, elapsed, settings, problem
    )
    if problem == "crashed":
        _hold_back(path, recording.sha256, settings)
    return _redacted(outcome, settings)


def _hold_back(path: Path, sha256: str, settings: Settings) -> None:
    """A recording that killed `batch.max_crashes` workers is held back like one that killed the
    batch that often: later batches skip it until its content changes or `--recheck`."""
    try:
        with Store.from_settings(settings) as store:
            store.begin_processing(path, sha256)
            while store.count_crash(str(path)) < settings.batch.max_crashes:
                pass
    except CallQAError as exc:  # the failure is stored; the next batch merely tries it again
        log.warning("无法把 %s 标记为不再自动重试：%s", path, exc)


def _redacted(outcome: Outcome, settings: Settings) -> Outcome:
    return replace(outcome, message=redactor_for(settings.privacy, "logs").text(outcome.message) or "")


def _failure_of(exc: BaseException, path: Path, size_bytes: int) -> tuple[str, str, str]:
    """(status, reason, problem) for an exception met while processing `path`."""
    if isinstance(exc, RecordingError):
        return exc.status, str(exc), exc.problem
    if isinstance(exc, StoreBusyError):
        return "failed", str(exc), "db_busy"
    if isinstance(exc, CallQAError):  # a broken scorecard, roster or setting: named in the message
        return "failed", str(exc), "input"
    if isinstance(exc, MemoryError):
        log.error("分析 %s 时内存不足：\n%s", path, traceback.format_exc())
        reason = (
            f"{path}：内存不足，无法分析这个录音（{size_bytes / 1e6:.0f} MB）；可调低 intake.max_duration_s"
        )
        return "failed", reason, "internal"
    # a bug or a resource problem must not stop the batch either
    log.error("分析 %s 时出现内部错误：\n%s", path, traceback.format_exc())
    return "failed", f"内部错误（{type(exc).__name__}: {exc}），详见运行日志", "internal"


def _prepare(path: Path, settings: Settings, recheck: bool, batch_started: float | None) -> Outcome | Job:
    started = time.monotonic()
    call_id = path.stem
    try:
        recording = fingerprint(path, settings.intake.settle_s, since=batch_started)
    except RecordingError as exc:
        return _record_unread(path, exc, started, settings)
    try:
        with Store.from_settings(settings) as store:
            purged = store.purged(recording.sha256)
            if purged is not None:
                return Outcome(
                    path,
                    purged["call_id"],
                    "skipped",
                    f"{path}：这段录音（通话 {purged['call_id']}，{purged['month']}）已按保留期限清除，不再分析",
                    problem="purged",
                )
            previous = store.recording_at(path)
            if previous and previous.sha256 == recording.sha256:
                if previous.status == "ok":
                    return Outcome(path, previous.call_id, "unchanged")  # the status says it: 已处理过
                if previous.status == "skipped" and not recheck:
                    return Outcome(path, previous.call_id, "unchanged", f"以前已跳过：{previous.error}")
            check_duration(path, probe(path, settings.intake), settings.intake)
            meta = read_meta(path, settings.input)
            call_id = meta.call_id
            twin = store.ok_recording_with_sha(recording.sha256)
            if twin and twin.path != str(path):
                if Path(twin.path).exists():
                    raise RecordingError(
                        f"{path}：与 {twin.path}（通话 {twin.call_id}）是同一段录音，不重复分析",
                        "duplicate",
                        "skipped",
                    )
                store.move_recording(twin.path, path)
                return Outcome(path, twin.call_id, "unchanged", f"录音已从 {twin.path} 移到这里")
            owner = store.call_path(meta.call_id)
            if owner and owner != str(path) and Path(owner).exists():
                raise RecordingError(
                    f"{sidecar_path(path)}：通话编号 call_id {meta.call_id} 已被 {owner} 使用，请修正随录音信息",
                    "call_id_taken",
                )
            if settings.agents.roster is not None:
                meta = check_agent(meta, load_roster(settings.agents.roster), path)
            store.begin_processing(path, recording.sha256)
        return Job(path, recording, meta, time.monotonic() - started)
    except Exception as exc:  # recorded with its reason; the batch goes on
        # call_id is read here: the sidecar may have replaced the file-name stem by then.
        status, reason, problem = _failure_of(exc, path, recording.size_bytes)
        return _record_failure(
            path,
            recording.sha256,
            recording.size_bytes,
            call_id,
            status,
            reason,
            time.monotonic() - started,
            settings,
            problem,
        )


def _record_failure(
    path: Path,
    sha256: str,
    size: int,
    call_id: str,
    status: str,
    reason: str,
    elapsed: float,
    settings: Settings,
    problem: str,
) -> Outcome:
    retryable = problem in RETRYABLE
    try:
        with Store.from_settings(settings) as store:
            store.save_failure(path, sha256, size, call_id, status, reason, elapsed, problem)
    except CallQAError as exc:  # the store itself is unusable: say so, but still report the file
        reason = f"{reason}（且无法写入数据库：{exc}）"
        retryable = retryable or isinstance(exc, StoreBusyError)
    return Outcome(path, call_id, status, reason, elapsed, problem=problem, retryable=retryable)


def _record_unread(path: Path, exc: RecordingError, started: float, settings: Settings) -> Outcome:
    """A file that could not be read whole (gone, no permission, still being written). A good
    result from an earlier read of it is kept: the problem may pass, and new content replaces it
    when it is read."""
    try:
        with Store.from_settings(settings) as store:
            previous = store.recording_at(path)
    except CallQAError:
        previous = None
    if previous is not None and previous.status == "ok":
        message = f"{exc}；保留上次的分析结果"
        return Outcome(
            path, previous.call_id, exc.status, message, time.monotonic() - started, problem=exc.problem
        )
    elapsed = time.monotonic() - started
    return _record_failure(path, "", 0, path.stem, exc.status, str(exc), elapsed, settings, exc.problem)


def recompute_metrics(
    store: Store, call_id: str, settings: Settings, cards: list[Scorecard] | None = None
) -> CallMetrics | None:
    """Metrics again from what is stored (utterances, voice activity, audio events), no audio needed:
    after a supervisor changes a metric setting or the scorecard's `phrases`. The phrases are those of
    the call's scorecard among `cards` (default: the scorecards in force). None for an unknown call."""
    meta = store.load_meta(call_id)
    call = store.call(call_id)
    if meta is None or call is None:
        return None
    cards = cards if cards is not None else scorecards(settings)
    card = card_for_call(meta, cards)
    metrics = compute_metrics(
        store.load_utterances(call_id),
        store.load_voice_activity(call_id),
        store.load_audio_events(call_id),
        meta,
        call["duration_s"],
        settings,
        card.phrases,
    )
    store.save_metrics(call_id, metrics)
    return metrics


def scorecards(settings: Settings) -> list[Scorecard]:
    """The scorecards in force, read afresh for every recording so that a supervisor's edit applies
    to the rest of the batch (a broken edit stops each recording with the file, rule and field named)."""
    return scorecards_from(None, settings.scorecards)
