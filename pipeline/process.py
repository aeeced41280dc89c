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

import fcntl
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from pipeline.asr import load_recognizer, transcribe_turns
from pipeline.config import Settings
from pipeline.diarize import diarize
from pipeline.diarize.echo import cancel_echo
from pipeline.diarize.pieces import reassign_sentences
from pipeline.diarize.roles import ROLE_REVIEW_BELOW, assign_roles, check_stereo_roles
from pipeline.errors import CallQAError
from pipeline.ingest import check_duration, decode, discover, fingerprint, probe, read_meta, sidecar_path
from pipeline.metrics import compute_metrics, detect_audio_events
from pipeline.privacy import redactor_for
from pipeline.problems import RETRYABLE, RecordingError
from pipeline.records import (
    ROLES,
    AudioEvent,
    CallAudio,
    CallMeta,
    CallMetrics,
    CallScore,
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


def transcribe_call(audio: CallAudio, settings: Settings) -> Transcript:
    """Who spoke when, what they said, and which of them is the agent."""
    if audio.layout != "mono" and settings.stereo.echo_cancel:
        # each channel without the other party's echo, for voice activity and for whisper alike
        audio, _ = cancel_echo(audio, settings.stereo.echo_max_delay_s, settings.stereo.echo_min_erle_db)
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
        voice_activity = list(diarization.voice_activity)
        if settings.mono.sentence_voices:
            utterances.sort(key=lambda u: (u.start, u.end))
            utterances, voice_activity = reassign_sentences(
                utterances, voice_activity, audio.tracks["mono"], audio.sample_rate, settings.mono
            )
        roles = assign_roles(utterances, cues, first_turns)
        if roles.source == "first-speaker":
            warnings.append("没有听到客服用语：按先开口的一方为客服，请人工确认")
        utterances = [replace(u, speaker=roles.mapping.get(u.speaker, "customer")) for u in utterances]
        voice_activity = [
            SpeechTurn(roles.mapping.get(v.speaker, "customer"), v.start, v.end) for v in voice_activity
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
class CallAnalysis:
    """Everything the nightly batch works out for one decoded call, before it is stored."""

    transcript: Transcript
    events: list[AudioEvent]
    metrics: CallMetrics
    scorecard: Scorecard
    score: CallScore


def analyse_call(path: Path, audio: CallAudio, meta: CallMeta, settings: Settings) -> CallAnalysis:
    """Transcript → audio events → metrics → scorecard, the pure part of processing a recording."""
    transcript = transcribe_call(audio, settings)
    if not transcript.utterances:
        raise RecordingError(
            f"{path}：录音中没有检测到说话声（{audio.duration_s:.0f} 秒），可能只有忙音、等待音乐或噪声，不质检",
            "no_speech",
            "skipped",
        )
    events = detect_audio_events(audio, settings.acoustic)
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
    score = score_call(transcript.utterances, metrics, meta, scorecard)
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


def process_recording(
    path: Path, settings: Settings, recheck: bool = False, batch_started: float | None = None
) -> Outcome:
    """Process one file into the store unless it is already done. Never raises for a bad file.

    Done: processed (same content), or skipped for a reason that stays true for the same content
    (a duplicate, too short, silent …) — `recheck` looks at skipped ones again, e.g. after a limit
    was raised. Failed files are always tried again. `batch_started` (time.time() when the batch
    began): a file modified within `intake.settle_s` before that, or since, is still being written.

    The outcome's message goes to logs, the CLI and the batch summary: it is redacted here, once
    (the database keeps the full reason)."""
    outcome = _process(path, settings, recheck, batch_started)
    return replace(outcome, message=redactor_for(settings.privacy, "logs").text(outcome.message) or "")


def _process(path: Path, settings: Settings, recheck: bool, batch_started: float | None) -> Outcome:
    started = time.monotonic()
    call_id = path.stem
    try:
        recording = fingerprint(path, settings.intake.settle_s, since=batch_started)
    except RecordingError as exc:
        return _record_unread(path, exc, started, settings)

    def failed(status: str, reason: str, problem: str) -> Outcome:
        # call_id is read when called: the sidecar may have replaced the file-name stem by then.
        return _record_failure(
            path, recording.sha256, recording.size_bytes, call_id, status, reason, started, settings, problem
        )

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
        audio = decode(path, meta, settings.input, settings.intake)
        result = analyse_call(path, audio, meta, settings)
        elapsed = time.monotonic() - started
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
        message = "; ".join(audio.warnings + result.transcript.warnings)
        return Outcome(
            path,
            meta.call_id,
            "ok",
            message,
            elapsed,
            audio.duration_s,
            len(result.transcript.utterances),
            score=result.score.score if result.score else None,
            review_findings=sum(f.needs_review for f in result.score.findings) if result.score else 0,
            roles_doubtful=result.transcript.roles.confidence < ROLE_REVIEW_BELOW,
        )
    except RecordingError as exc:
        return failed(exc.status, str(exc), exc.problem)
    except StoreBusyError as exc:
        return failed("failed", str(exc), "db_busy")
    except CallQAError as exc:  # a broken scorecard, roster or setting: named in the message
        return failed("failed", str(exc), "input")
    except MemoryError:
        log.error("分析 %s 时内存不足：\n%s", path, traceback.format_exc())
        reason = f"{path}：内存不足，无法分析这个录音（{recording.size_bytes / 1e6:.0f} MB）；可调低 intake.max_duration_s"
        return failed("failed", reason, "internal")
    except Exception as exc:  # a bug or a resource problem must not stop the batch either
        log.error("分析 %s 时出现内部错误：\n%s", path, traceback.format_exc())
        return failed("failed", f"内部错误（{type(exc).__name__}: {exc}），详见运行日志", "internal")


def _record_failure(
    path: Path,
    sha256: str,
    size: int,
    call_id: str,
    status: str,
    reason: str,
    started: float,
    settings: Settings,
    problem: str,
) -> Outcome:
    elapsed = time.monotonic() - started
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
    return _record_failure(path, "", 0, path.stem, exc.status, str(exc), started, settings, exc.problem)


STATUS_ZH = {"ok": "完成", "unchanged": "已处理过", "skipped": "跳过", "failed": "失败"}


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
            f"共 {len(self.outcomes)} 个录音：完成 {self.count('ok')}，已处理过 {self.count('unchanged')}，"
            f"跳过 {self.count('skipped')}，失败 {self.failed}"
            + (f"；{self.roles_doubtful} 通角色待确认（callqa roles）" if self.roles_doubtful else "")
        )

    @property
    def roles_doubtful(self) -> int:
        return sum(o.roles_doubtful for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        return {
            "recordings": len(self.outcomes),
            "processed": self.count("ok"),
            "unchanged": self.count("unchanged"),
            "skipped": self.count("skipped"),
            "failed": self.failed,
        }


# ---- the batch: one writer at a time, crash bookkeeping, order ---------------------------------


@contextmanager
def batch_lock(db: Path) -> Iterator[None]:
    """One batch per database at a time: a second one (a manual run during the nightly one) stops
    at once with a message instead of doing the same work twice. The lock is the operating
    system's (flock) and goes away with the process, however it ends."""
    lock_path = Path(f"{db}.batch-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "另一个进程"
            raise CallQAError(f"{db}：另一个批处理正在写这个数据库（{holder}），本次不运行") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"进程 {os.getpid()}，开始于 {datetime.now().astimezone():%Y-%m-%d %H:%M:%S}")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


@dataclass
class BatchPlan:
    """The files of one batch in the order they are processed, and those held back."""

    paths: list[Path]
    held: dict[Path, Outcome] = field(default_factory=dict)  # crashed the batch too often: not tried
    started: float = field(default_factory=time.time)  # when the batch began (still-being-written test)


def plan_batch(directory: Path, settings: Settings, recheck: bool = False) -> BatchPlan:
    """Discover the files; count a crash for every file a previous batch started and never finished.

    Call inside `batch_lock`. A file that crashed a batch goes last, so that everything else is done
    if it crashes again; after `batch.max_crashes` it is held back (failed, with the reason) until
    its content changes or `recheck` is given."""
    paths = discover(directory, settings.input, settings.intake)
    if settings.agents.roster is not None:
        load_roster(settings.agents.roster)  # a broken roster stops the batch before it starts
    if not settings.db.exists():
        return BatchPlan(paths)
    crashes: dict[str, tuple[int, str]] = {}
    try:
        crashes = _count_crashes(settings)
    except StoreBusyError as exc:  # the recordings' own writes wait and retry; the marks keep till next time
        log.warning("数据库忙，本次没有统计中断过的录音：%s", exc)
    held: dict[Path, Outcome] = {}
    for path in paths:
        count, sha256 = crashes.get(str(path), (0, ""))
        if count >= settings.batch.max_crashes and not recheck and _same_content(path, sha256):
            held[path] = Outcome(
                path,
                path.stem,
                "failed",
                f"{path}：批处理已在分析这个录音时中断 {count} 次，不再自动重试；请检查这个文件，"
                "确认无误后运行 callqa run 目录 --recheck 重试",
                problem="crashed",
            )
    ordered = sorted(paths, key=lambda p: (str(p) in crashes, str(p)))
    return BatchPlan(ordered, held)


def _same_content(path: Path, sha256: str) -> bool:
    try:
        return fingerprint(path).sha256 == sha256
    except RecordingError:
        return False


def _count_crashes(settings: Settings) -> dict[str, tuple[int, str]]:
    """Files a previous batch started and never finished: one more crash each, recorded as a failure
    (so that `callqa failures` shows it even if this batch dies too). Returns path → (crashes, the
    content's sha256)."""
    crashes: dict[str, tuple[int, str]] = {}
    with Store.from_settings(settings) as store:
        for row in store.interrupted():
            if row["pid"] == 0:  # counted by an earlier batch and held back since
                crashes[row["path"]] = (row["crashes"], row["sha256"])
                continue
            count = store.count_crash(row["path"])
            crashes[row["path"]] = (count, row["sha256"])
            previous = store.recording_at(Path(row["path"]))
            store.save_failure(
                Path(row["path"]),
                row["sha256"],
                previous_size(row["path"]),
                previous.call_id if previous else Path(row["path"]).stem,
                "failed",
                f"批处理在分析这个录音时中断（第 {count} 次；进程被终止、内存不足或解码崩溃，开始于 "
                f"{row['started_at']:%Y-%m-%d %H:%M:%S}）",
                problem="crashed",
                finished=False,
            )
    return crashes


def previous_size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def run_batch(
    directory: Path,
    settings: Settings,
    on_outcome: Callable[[int, int, Outcome], None] | None = None,
    recheck: bool = False,
) -> BatchSummary:
    """Every recording in `directory`, one after the other (the recogniser uses all cores)."""
    summary = BatchSummary()
    with batch_lock(settings.db):
        plan = plan_batch(directory, settings, recheck)
        for index, path in enumerate(plan.paths, 1):
            outcome = plan.held.get(path) or process_recording(path, settings, recheck, plan.started)
            summary.outcomes.append(outcome)
            if on_outcome:
                on_outcome(index, len(plan.paths), outcome)
    return summary


def describe(index: int, total: int, outcome: Outcome) -> str:
    """One progress line per recording, as the batch log and the CLI print it."""
    head = f"[{index}/{total}] {outcome.path.name} ({outcome.call_id}): {STATUS_ZH.get(outcome.status, outcome.status)}"
    if outcome.status == "ok":
        head += (
            f"，录音 {outcome.duration_s:.0f} 秒，{outcome.utterances} 句话，用时 {outcome.elapsed_s:.1f} 秒"
        )
    if outcome.message:
        head += f" — {outcome.message}"
    return head


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
