"""Prefect flows: the nightly QA batch. The only module that knows Prefect exists.

    python flows.py          run the nightly flow once over recordings_sample/ (no server needed)
    python flows.py serve    serve it as a deployment on the night-shift schedule (02:00 daily)

Every task calls a plain function from `pipeline`; `callqa run DIR` does the same without Prefect.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path

# The flow runs offline: no telemetry, no analytics, no update checks.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from pipeline.config import Settings, load_settings
from pipeline.ingest import discover
from pipeline.process import BatchSummary, Outcome, describe, process_recording
from pipeline.reports.batch import write_batch_summary

NIGHTLY_CRON = "0 2 * * *"  # the batch runs while the night shift (0:00-8:00) is still on the phones
DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "recordings_sample"


@task(name="process-recording", cache_policy=NONE)
def process_recording_task(path: Path, settings: Settings) -> Outcome:
    # One task per recording (not per utterance): a failed file is recorded by process_recording
    # itself and never raises, so one bad recording cannot stop the batch.
    return process_recording(path, settings)


@flow(name="nightly-qa", log_prints=False)
def nightly_qa(
    directory: str = str(DEFAULT_DIRECTORY), db: str | None = None, config: str | None = None
) -> dict:
    """Transcribe and store every new or changed recording in `directory`; write the batch summary."""
    logger = get_run_logger()
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    settings = load_settings(Path(config) if config else None, db=db)
    started = datetime.now().astimezone()
    folder = Path(directory)
    paths = discover(folder, settings.input)
    logger.info("%d recordings in %s → %s", len(paths), folder, settings.db)
    summary = BatchSummary()
    for index, path in enumerate(paths, 1):
        outcome = process_recording_task.with_options(task_run_name=f"process {path.name}")(path, settings)
        summary.outcomes.append(outcome)
        (logger.warning if outcome.status == "failed" else logger.info)(describe(index, len(paths), outcome))
    report = write_batch_summary(summary, folder, settings.reports_dir, started)
    logger.info("%s; summary in %s", summary.line(), report)
    return {
        "recordings": len(summary.outcomes),
        "processed": summary.count("ok"),
        "unchanged": summary.count("unchanged"),
        "skipped": summary.count("skipped"),
        "failed": summary.failed,
        "summary_file": str(report),
    }


def main(argv: list[str]) -> int:
    if argv and argv[0] == "serve":
        nightly_qa.serve(
            name="nightly-qa", cron=NIGHTLY_CRON, parameters={"directory": str(DEFAULT_DIRECTORY)}
        )
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    result = nightly_qa()
    print(
        f"nightly-qa: {result['recordings']} recordings, {result['processed']} processed, "
        f"{result['unchanged']} already done, {result['skipped']} skipped, {result['failed']} failed "
        f"(summary: {result['summary_file']})"
    )
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
