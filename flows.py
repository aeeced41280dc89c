"""Prefect flows: the nightly QA batch and the monthly report. The only module that knows Prefect exists.

    python flows.py                   run the nightly flow once over recordings_sample/ (no server needed);
                                      exit status 1 when any recording failed
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
from zoneinfo import ZoneInfo

# The flow runs offline: no telemetry, no analytics, no update checks.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
# The temporary server's first start migrates its database: ~26 s measured on a fresh 2-core machine,
# longer while other work keeps the cores busy; Prefect's default limit is 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import flow, get_run_logger, serve, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from prefect.schedules import Cron
from prefect.states import Failed

from pipeline.config import Settings, config_line, load_settings
from pipeline.permissions import restrict_process
from pipeline.privacy import install_log_redaction, redactor_for
from pipeline.process import BatchSummary, Outcome, batch_lock, describe, plan_batch, process_recording
from pipeline.reports.batch import write_batch_summary
from pipeline.reports.build import MonthData, WrittenReport, audit_report, load_month, write_month
from pipeline.reports.monthly import Month
from pipeline.reports.policy import load_policy

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


@task(name="process-recording", cache_policy=NONE)
def process_recording_task(
    path: Path, settings: Settings, recheck: bool = False, batch_started: float | None = None
) -> Outcome:
    # One task per recording (not per utterance). process_recording records every failure itself
    # and never raises; only a retryable one is raised here, for Prefect's retries.
    outcome = process_recording(path, settings, recheck, batch_started)
    if outcome.retryable:
        raise RetryableError(outcome)
    return outcome


def task_run_name(path: Path, settings: Settings) -> str:
    """A recording's task name: it shows in the Prefect UI and its database, so no caller's number."""
    return f"process {redactor_for(settings.privacy, 'logs').name(path.name)}"


@flow(name="nightly-qa", log_prints=False)
def nightly_qa(
    directory: str = str(DEFAULT_DIRECTORY),
    db: str | None = None,
    config: str | None = None,
    recheck: bool = False,
) -> dict:
    """Transcribe and store every new or changed recording in `directory`; write the batch summary.

    Returns the counts (recordings, processed, unchanged, skipped, failed) and the summary file."""
    logger = get_run_logger()
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
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
        process = process_recording_task.with_options(
            retries=settings.batch.retries, retry_delay_seconds=settings.batch.retry_delay_s
        )
        for index, path in enumerate(plan.paths, 1):
            outcome = plan.held.get(path)
            if outcome is None:
                state = process.with_options(task_run_name=task_run_name(path, settings))(
                    path, settings, recheck, plan.started, return_state=True
                )
                outcome = _outcome(path, state)
            summary.outcomes.append(outcome)
            (logger.warning if outcome.status == "failed" else logger.info)(
                describe(index, len(plan.paths), outcome)
            )
    report = write_batch_summary(
        summary,
        folder,
        settings.reports_dir,
        started,
        redactor_for(settings.privacy, "report"),
        config_line(settings),
    )
    logger.info("%s；汇总：%s", summary.line(), report)
    # The summary (already redacted) shows in the Prefect UI beside the run, under a stable key.
    create_markdown_artifact(
        markdown=report.read_text(encoding="utf-8"), key="nightly-qa-summary", description="质检批处理汇总"
    )
    result = {**summary.counts(), "summary_file": str(report)}
    if summary.failed:
        # Not a green run: a supervisor scanning the runs list must see that recordings failed. Every
        # recording is already stored; the result stays readable from the state.
        return Failed(
            message=f"{summary.failed} 个录音失败（{summary.line()}），见汇总 {report}", data=result
        )
    return result


def _outcome(path: Path, state: object) -> Outcome:
    """The task's outcome, also when its last retry still failed (or it failed in an unexpected way)."""
    result = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
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
    timezone = load_settings().input.timezone
    return [
        nightly_qa.to_deployment(
            name="nightly-qa",
            schedule=Cron(NIGHTLY_CRON, timezone=timezone),  # 02:00 at the centre, not 02:00 UTC
            parameters={"directory": str(DEFAULT_DIRECTORY)},
        ),
        monthly_report.to_deployment(name="monthly-report", schedule=Cron(MONTHLY_CRON, timezone=timezone)),
    ]


def run_nightly(**parameters: object) -> dict:
    """Run the nightly flow once and return its counts, also when it ended Failed for failed recordings
    (a crash of the flow itself still raises)."""
    state = nightly_qa(**parameters, return_state=True)
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
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    result = run_nightly()
    print(
        f"nightly-qa：共 {result['recordings']} 个录音，完成 {result['processed']}，已处理过 {result['unchanged']}，"
        f"跳过 {result['skipped']}，失败 {result['failed']}（汇总：{result['summary_file']}）"
    )
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
