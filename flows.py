"""Prefect flows: the nightly QA batch and the monthly report. The only module that knows Prefect exists.

    python flows.py [--dask-address tcp://HOST:8786]
                                      run the nightly flow once over recordings_sample/ (no server needed);
                                      exit status 1 when any recording failed. Recordings are analysed
                                      on a local Dask cluster sized to this machine, or on the existing
                                      cluster at batch.dask_address / --dask-address
    python flows.py monthly [YYYY-MM] run the monthly report once (default: the previous month)
    python flows.py serve             serve both as deployments: nightly 02:00 daily, monthly report
                                      06:00 on the 1st of each month (input.timezone, Asia/Shanghai)

Every task calls a plain function from `pipeline`; `callqa run DIR` does the same without Prefect.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

# The flow runs offline: no telemetry, no analytics, no update checks.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
# The temporary server's first start migrates its database: ~26 s measured on a fresh 2-core machine,
# longer while other work keeps the cores busy; Prefect's default limit is 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import Flow, flow, get_run_logger, serve, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.schedules import Cron
from prefect.states import Failed
from prefect.utilities.annotations import quote
from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

from pipeline.batch import BatchSummary, batch_lock, describe, dispatch, plan_batch
from pipeline.cluster import local_cluster, worker_settings
from pipeline.config import Settings, config_line, load_settings
from pipeline.permissions import restrict_process
from pipeline.privacy import install_log_redaction, redactor_for
from pipeline.process import Analysed, Job, Outcome, analyse_recording, prepare_recording, store_analysis
from pipeline.progress import BatchProgress, ProgressLines
from pipeline.reports.batch import write_batch_summary
from pipeline.reports.build import MonthData, WrittenReport, audit_report, load_month, write_month
from pipeline.reports.monthly import Month
from pipeline.reports.policy import load_policy

if TYPE_CHECKING:
    import distributed

# prefect-dask announces the cluster it creates and a dashboard link (in English; the local cluster
# has no dashboard): not the batch's news. Its warnings still show.
logging.getLogger("prefect.task_runner.dask").setLevel(logging.WARNING)

NIGHTLY_CRON = "0 2 * * *"  # the batch runs while the night shift (0:00-8:00) is still on the phones
DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "recordings_sample"
# The monthly review meeting is held before the 5th: the report for the month just ended is ready on
# the morning of the 1st, after that night's batch.
MONTHLY_CRON = "0 6 1 * *"


class RetryableError(Exception):
    """A recording failed for a reason a retry can remove (database busy, I/O error): Prefect retries
    the task. A corrupt file never raises: it is recorded as failed and the batch goes on."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


@task(name="prepare-recording", cache_policy=NONE)
def prepare_recording_task(
    path: Path, settings: Settings, recheck: bool, batch_started: float
) -> Outcome | Job:
    # In the flow's process, which alone writes the database. Every failure is recorded and returned;
    # only a retryable one (database busy) is raised here, for Prefect's retries.
    prepared = prepare_recording(path, settings, recheck, batch_started)
    if isinstance(prepared, Outcome) and prepared.retryable:
        raise RetryableError(prepared)
    return prepared


@task(name="analyse-recording", cache_policy=NONE)
def analyse_recording_task(job: Job, settings: Settings) -> Analysed:
    # On a Dask worker: reads the recording by its path, never the database; never raises for a bad
    # file. A worker that dies is Dask's to retry (on another worker), not Prefect's.
    return analyse_recording(job, settings)


@task(name="store-recording", cache_policy=NONE)
def store_analysis_task(job: Job, analysed: Analysed, settings: Settings) -> Outcome:
    outcome = store_analysis(job, analysed, settings)  # one transaction; idempotent, so a retry is safe
    if outcome.retryable:
        raise RetryableError(outcome)
    return outcome


def task_run_name(path: Path, settings: Settings, step: str = "process") -> str:
    """A recording's task name: it shows in the Prefect UI and its database, so no caller's number."""
    return f"{step} {redactor_for(settings.privacy, 'logs').name(path.name)}"


def nightly_task_runner(settings: Settings) -> DaskTaskRunner:
    """The existing cluster at `batch.dask_address`, else a local one sized to this machine (closed by
    the task runner when the flow ends)."""
    if settings.batch.dask_address:
        return DaskTaskRunner(address=settings.batch.dask_address)
    return DaskTaskRunner(cluster_class=_local_cluster, cluster_kwargs={"settings": settings})


def _local_cluster(settings: Settings) -> distributed.LocalCluster:
    """The local cluster, its workers pointed at this flow's Prefect API: without it each worker would
    start a temporary Prefect server of its own to report its task runs."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    return local_cluster(settings, env={"PREFECT_API_URL": api_url})


@flow(name="nightly-qa", log_prints=False, task_runner=nightly_task_runner(Settings()))
def nightly_qa(
    directory: str = str(DEFAULT_DIRECTORY),
    db: str | None = None,
    config: str | None = None,
    recheck: bool = False,
) -> dict:
    """Transcribe and store every new or changed recording in `directory`; write the batch summary.

    Each recording is analysed by a task on the flow's Dask cluster; this process checks and stores
    them (the database's only writer). Returns the counts (recordings, processed, unchanged, skipped,
    failed) and the summary file."""
    logger = get_run_logger()
    for chatty in ("faster_whisper", "distributed"):  # per-file VAD lines; the cluster's start and stop
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = load_settings(Path(config) if config else None, db=db)
    install_log_redaction(settings.privacy)
    restrict_process(settings)  # owner-only database, reports and summaries ([privacy] group_readable)
    logger.info("%s", config_line(settings))
    started = datetime.now(ZoneInfo(settings.input.timezone))  # the centre's clock, not the server's
    folder = Path(directory)
    summary = BatchSummary()
    with batch_lock(settings.db):  # a second batch on the same database stops here with the reason
        plan = plan_batch(folder, settings, recheck)
        logger.info("%d 个录音：%s → %s", len(plan.paths), folder, settings.db)
        progress = BatchProgress(plan.paths)
        progress_lines = ProgressLines(logger.info)  # the figures every minute and after the last
        retried = {"retries": settings.batch.retries, "retry_delay_seconds": settings.batch.retry_delay_s}
        prepare, store = (
            prepare_recording_task.with_options(**retried),
            store_analysis_task.with_options(**retried),
        )
        client = flow_run_task_runner().client
        remote = worker_settings(settings, client)
        submitted: dict[str, PrefectDaskFuture] = {}

        def prepare_one(path: Path) -> Outcome | Job:
            state = prepare.with_options(task_run_name=task_run_name(path, settings, "prepare"))(
                path, settings, recheck, plan.started, return_state=True
            )
            return _prepared(path, state)

        def submit(job: Job) -> distributed.Future:
            analyse = analyse_recording_task.with_options(
                task_run_name=task_run_name(job.path, settings, "analyse")
            )
            future = analyse.submit(job, remote)
            submitted[future.wrapped_future.key] = future
            return future.wrapped_future

        def collect(job: Job, future: distributed.Future) -> Analysed:
            return submitted.pop(future.key).result()

        def store_one(job: Job, analysed: Analysed) -> Outcome:
            state = store.with_options(task_run_name=task_run_name(job.path, settings, "store"))(
                job,
                quote(analysed),
                settings,
                return_state=True,  # quoted: Prefect must not walk the call
            )
            return _stored(job.path, state)

        def report(outcome: Outcome) -> None:
            summary.outcomes.append(outcome)
            (logger.warning if outcome.status == "failed" else logger.info)(
                describe(len(summary.outcomes), len(plan.paths), outcome)
            )
            progress_lines.update(progress.add(outcome))

        dispatch(client, plan, prepare_one, submit, collect, store_one, report)
    report_file = write_batch_summary(
        summary,
        folder,
        settings.reports_dir,
        started,
        redactor_for(settings.privacy, "report"),
        config_line(settings),
    )
    logger.info("%s；汇总：%s", summary.line(), report_file)
    # The summary (already redacted) shows in the Prefect UI beside the run, under a stable key.
    create_markdown_artifact(
        markdown=report_file.read_text(encoding="utf-8"),
        key="nightly-qa-summary",
        description="质检批处理汇总",
    )
    result = {**summary.counts(), "summary_file": str(report_file)}
    if summary.failed:
        # Not a green run: a supervisor scanning the runs list must see that recordings failed. Every
        # recording is already stored; the result stays readable from the state.
        return Failed(
            message=f"{summary.failed} 个录音失败（{summary.line()}），见汇总 {report_file}", data=result
        )
    return result


def flow_run_task_runner() -> DaskTaskRunner:
    runner = FlowRunContext.get().task_runner  # type: ignore[union-attr]
    assert isinstance(runner, DaskTaskRunner), runner
    return runner


def _prepared(path: Path, state: object) -> Outcome | Job:
    result = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    return result if isinstance(result, Job) else _outcome(path, result)


def _stored(path: Path, state: object) -> Outcome:
    return _outcome(path, state.result(raise_on_failure=False))  # type: ignore[attr-defined]


def _outcome(path: Path, result: object) -> Outcome:
    """The task's outcome, also when its last retry still failed (or it failed in an unexpected way)."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, RetryableError):
        return result.outcome
    return Outcome(
        path,
        path.stem,
        "failed",
        f"内部错误（{type(result).__name__}: {result}），详见运行日志",
        problem="internal",
    )


# A night batch still writing the database makes the store wait (batch.db_lock_wait_s); beyond that,
# retry reading for up to 30 minutes.
@task(name="compute-month", cache_policy=NONE, retries=3, retry_delay_seconds=600)
def load_month_task(settings: Settings, month: Month, policy: str | None) -> MonthData:
    return load_month(settings, month, Path(policy) if policy else None)


@task(name="audit-report", cache_policy=NONE, retries=3, retry_delay_seconds=60)
def audit_report_task(settings: Settings, data: MonthData, command: str, with_audio: bool) -> None:
    audit_report(settings, data, command, with_audio)


@task(name="write-month-report", cache_policy=NONE)
def write_month_task(data: MonthData, reports_dir: Path, with_audio: bool) -> WrittenReport:
    return write_month(data, reports_dir, with_audio)


@flow(name="monthly-report", log_prints=False)
def monthly_report(
    month: str | None = None,
    db: str | None = None,
    config: str | None = None,
    policy: str | None = None,
    with_audio: bool = True,
) -> dict:
    """The month's ranking, money table and review pages in reports/YYYY-MM/ (default: last month)."""
    logger = get_run_logger()
    settings = load_settings(Path(config) if config else None, db=db)
    install_log_redaction(settings.privacy)
    restrict_process(settings)
    logger.info("%s", config_line(settings))
    target = (
        Month.parse(month) if month else Month.previous_to(datetime.now(ZoneInfo(settings.input.timezone)))
    )
    load_policy(Path(policy) if policy else None)  # a malformed policy fails now, not after retries
    logger.info("生成 %s 的月度报表，数据来自 %s", target, settings.db)
    data = load_month_task(settings, target, policy)
    command = f"prefect flow monthly-report (run {flow_run.get_name() or flow_run.get_id()}) month={target}"
    audit_report_task(settings, data, command, with_audio)  # before any page is written
    written = write_month_task(data, settings.reports_dir, with_audio)
    logger.info(written.line())
    return {
        "month": str(target),
        "agents": len(data.report.agents),
        "ranked": sum(1 for a in data.report.agents if a.rank is not None),
        "money_total": sum(line.amount for line in data.report.money),
        "ranking_html": str(written.ranking_html),
        "call_pages": written.call_pages,
        "audio_missing": written.audio_missing,
    }


def deployments() -> list:
    """Both schedules, in the centre's time zone: the nightly batch at 02:00, the monthly report at
    06:00 on the 1st."""
    settings = load_settings()
    timezone = settings.input.timezone
    return [
        nightly_flow(settings).to_deployment(
            name="nightly-qa",
            schedule=Cron(NIGHTLY_CRON, timezone=timezone),  # 02:00 at the centre, not 02:00 UTC
            parameters={"directory": str(DEFAULT_DIRECTORY)},
        ),
        monthly_report.to_deployment(name="monthly-report", schedule=Cron(MONTHLY_CRON, timezone=timezone)),
    ]


def nightly_flow(settings: Settings) -> Flow:
    """The nightly flow on the cluster these settings name (batch.dask_address, batch.workers)."""
    return nightly_qa.with_options(task_runner=nightly_task_runner(settings))


def run_nightly(dask_address: str | None = None, **parameters: object) -> dict:
    """Run the nightly flow once and return its counts, also when it ended Failed for failed recordings
    (a crash of the flow itself still raises). `dask_address` overrides batch.dask_address."""
    config = parameters.get("config")
    settings = load_settings(Path(str(config)) if config else None)
    if dask_address:
        settings = settings.model_copy(
            update={"batch": settings.batch.model_copy(update={"dask_address": dask_address})}
        )
    state = nightly_flow(settings)(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


def main(argv: list[str]) -> int:
    if argv and argv[0] == "serve":
        serve(*deployments())
        return 0
    if argv and argv[0] == "monthly" and len(argv) <= 2:
        result = monthly_report(month=argv[1] if len(argv) == 2 else None)
        print(
            f"monthly-report {result['month']}: {result['agents']} agents, {result['ranked']} ranked, "
            f"money {result['money_total']:+d} yuan ({result['ranking_html']})"
        )
        return 0
    address = None
    if len(argv) == 2 and argv[0] == "--dask-address":
        address = argv[1]
    elif argv:
        print(__doc__, file=sys.stderr)
        return 2
    result = run_nightly(address)
    print(
        f"nightly-qa：共 {result['recordings']} 个录音，完成 {result['processed']}，已处理过 {result['unchanged']}，"
        f"跳过 {result['skipped']}，失败 {result['failed']}（汇总：{result['summary_file']}）"
    )
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
