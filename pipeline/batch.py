"""A folder of recordings as a batch: one writer, crash bookkeeping, order, and where the analysis runs.

`run_batch` holds the batch lock (one writer per database), counts crashes left by an earlier batch
(a file the batch died on is retried last, and held back after `batch.max_crashes`), then processes
every file: one after the other in this process, or — with `workers` > 1 or a Dask scheduler's
address — analysed on Dask workers while this process stays the only one that writes the database
(`dispatch`). The Prefect flow in flows.py drives `dispatch` with its own tasks; docs/operations.md
explains the behaviour.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Settings
from pipeline.errors import CallQAError
from pipeline.ingest import discover, fingerprint
from pipeline.problems import RecordingError
from pipeline.process import (
    Analysed,
    Job,
    Outcome,
    analyse_recording,
    prepare_recording,
    process_recording,
    store_analysis,
)
from pipeline.roster import load_roster
from pipeline.store import Store, StoreBusyError

if TYPE_CHECKING:
    import distributed

log = logging.getLogger("callqa")

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
    workers: int = 1,
    dask_address: str | None = None,
    on_plan: Callable[[list[Path]], None] | None = None,
) -> BatchSummary:
    """Every recording in `directory`: one after the other in this process (`workers` 1, the
    recogniser then uses all cores), or analysed on a Dask cluster — a local one analysing `workers`
    recordings at once (0 = sized to this machine), or the scheduler at `dask_address` (default
    `batch.dask_address`). `on_plan` gets the files in the order they will be processed (for the
    progress figures), `on_outcome` each recording's outcome as it is stored."""
    summary = BatchSummary()
    address = dask_address or settings.batch.dask_address
    with batch_lock(settings.db):
        plan = plan_batch(directory, settings, recheck)
        if on_plan:
            on_plan(plan.paths)
        report = _reporter(summary, len(plan.paths), on_outcome)
        if address is None and workers == 1:
            for path in plan.paths:
                report(plan.held.get(path) or process_recording(path, settings, recheck, plan.started))
            return summary
        from pipeline.cluster import dask_client, worker_settings

        with dask_client(settings, workers, address) as client:
            remote = worker_settings(settings, client)
            dispatch(
                client,
                plan,
                lambda path: prepare_recording(path, settings, recheck, plan.started),
                lambda job: client.submit(analyse_recording, job, remote, key=job_key(job), pure=False),
                lambda job, future: future.result(),
                lambda job, analysed: store_analysis(job, analysed, settings),
                report,
            )
    return summary


def _reporter(
    summary: BatchSummary, total: int, on_outcome: Callable[[int, int, Outcome], None] | None
) -> Callable[[Outcome], None]:
    def report(outcome: Outcome) -> None:
        summary.outcomes.append(outcome)
        if on_outcome:
            on_outcome(len(summary.outcomes), total, outcome)

    return report


def dispatch(
    client: distributed.Client,
    plan: BatchPlan,
    prepare: Callable[[Path], Outcome | Job],
    submit: Callable[[Job], distributed.Future],
    collect: Callable[[Job, distributed.Future], Analysed],
    store: Callable[[Job, Analysed], Outcome],
    report: Callable[[Outcome], None],
) -> None:
    """The plan's files through Dask: this process prepares each (database checks), workers analyse
    them, and this process stores each answer as it arrives — the only writer, one transaction per
    recording. One file per worker thread is in flight (`in_flight`): a file is marked as being worked
    on only when it is submitted, so a batch that dies leaves few crash marks, and memory stays bounded.

    A worker that dies takes its task with it: Dask runs the task again on another worker, up to
    `distributed.scheduler.allowed-failures` times; a recording that killed more workers than that
    is recorded as failed (`crashed`) and the batch goes on."""
    from distributed import as_completed

    pending = as_completed(loop=client.loop)
    window = in_flight(client)
    jobs: dict[str, Job] = {}
    paths = iter(plan.paths)

    def feed() -> None:
        while pending.count() < window:
            path = next(paths, None)
            if path is None:
                return
            prepared = plan.held.get(path) or prepare(path)
            if isinstance(prepared, Outcome):
                report(prepared)
                continue
            future = submit(prepared)
            jobs[future.key] = prepared
            pending.add(future)

    feed()
    for future in pending:
        job = jobs.pop(future.key)
        report(store(job, answer_of(job, future, collect)))
        feed()


def answer_of(
    job: Job, future: distributed.Future, collect: Callable[[Job, distributed.Future], Analysed]
) -> Analysed:
    """The worker's answer, or the reason there is none: the recording killed its workers, or the
    cluster failed it in another way."""
    from distributed.scheduler import KilledWorker

    try:
        return collect(job, future)
    except KilledWorker:
        reason = (
            f"{job.path}：分析这个录音时工作进程多次崩溃（进程被终止、内存不足或解码崩溃），"
            "已换到其他工作进程重试仍失败；请检查这个文件，确认无误后运行 callqa run 目录 --recheck 重试"
        )
        return Analysed(None, None, 0.0, "failed", reason, "crashed")
    except Exception as exc:  # the cluster lost the task (scheduler gone, cancelled): the batch goes on
        log.error("分析 %s 的 Dask 任务失败：%r", job.path, exc)
        reason = f"{job.path}：分布式集群没有返回分析结果（{type(exc).__name__}: {exc}），下次批处理会重试"
        return Analysed(None, None, 0.0, "failed", reason, "internal")


def job_key(job: Job) -> str:
    """A readable, unique Dask key: the dashboard and the scheduler's logs name the file."""
    return f"analyse-{job.path.name}-{job.recording.sha256[:12]}-{time.monotonic_ns()}"


def in_flight(client: distributed.Client) -> int:
    """Files submitted at once: one per worker thread. Dask hands a new task to the least busy
    worker, so each worker holds only what it is analysing, and a worker that dies takes only that
    with it (Dask counts a worker's death against every task it holds, queued ones too)."""
    return max(1, sum(client.nthreads().values()))


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
