"""The batch's progress figures (recordings, audio hours, × real time, time left), their bar and log
lines, and a quiet Dask: our Chinese lines only, distributed's warnings still shown."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chinese import english_words
from conftest import ROOT

from pipeline.process import Outcome
from pipeline.progress import (
    BatchProgress,
    ProgressLines,
    ProgressMonitor,
    clock_text,
    figures,
    header_seconds,
    progress_line,
)

SAMPLES = ROOT / "recordings_sample"
STEREO = SAMPLES / "1002_20261120-101233.wav"  # 72.82 s
MONO = SAMPLES / "1003_20261120-143010.wav"  # 64.14 s


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_speed_is_audio_analysed_over_wall_time_and_the_time_left_is_the_rest_at_that_speed() -> None:
    # 4 recordings of 60 s; 2 analysed (120 s of audio) in 15 s: 8× real time, 120 s left → 15 s
    f = figures(total=4, done=2, planned_s=240.0, finished_s=120.0, analysed_s=120.0, elapsed_s=15.0)
    assert (f.done, f.total, f.analysed_s, f.planned_s) == (2, 4, 120.0, 240.0)
    assert f.speed == pytest.approx(8.0)
    assert f.eta_s == pytest.approx(15.0)


def test_recordings_finished_without_analysis_shorten_the_time_left_but_not_the_speed() -> None:
    # one of the two finished was already processed: 60 s analysed in 15 s = 4×; 120 s left → 30 s
    f = figures(total=4, done=2, planned_s=240.0, finished_s=120.0, analysed_s=60.0, elapsed_s=15.0)
    assert f.speed == pytest.approx(4.0) and f.eta_s == pytest.approx(30.0)


def test_no_speed_and_no_time_left_before_the_first_analysis_and_none_left_at_the_end() -> None:
    before = figures(total=3, done=1, planned_s=180.0, finished_s=60.0, analysed_s=0.0, elapsed_s=2.0)
    assert before.speed is None and before.eta_s is None
    after = figures(total=3, done=3, planned_s=180.0, finished_s=180.0, analysed_s=120.0, elapsed_s=20.0)
    assert after.eta_s == 0.0 and after.speed == pytest.approx(6.0)
    empty = figures(total=0, done=0, planned_s=0.0, finished_s=0.0, analysed_s=0.0, elapsed_s=0.5)
    assert empty.eta_s == 0.0 and empty.speed is None


def test_the_batch_counts_audio_from_the_headers_and_the_outcomes(tmp_path: Path) -> None:
    broken = tmp_path / "1009_20261120-150000.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00")  # a header cut short
    assert header_seconds(STEREO) == pytest.approx(72.82, abs=0.01)
    assert header_seconds(broken) == 0.0 and header_seconds(tmp_path / "gone.wav") == 0.0

    clock = FakeClock()
    progress = BatchProgress([STEREO, broken, MONO], clock)
    assert progress.total == 3 and progress.planned_s == pytest.approx(136.96, abs=0.02)
    clock.now += 10.0
    f = progress.add(Outcome(STEREO, "HX1", "ok", elapsed_s=9.0, duration_s=72.82))
    assert f.done == 1 and f.analysed_s == pytest.approx(72.82)
    assert f.speed == pytest.approx(7.282) and f.eta_s == pytest.approx(64.14 / 7.282, rel=1e-3)
    clock.now += 0.1
    f = progress.add(Outcome(broken, "1009", "failed", "文件头不完整", problem="truncated"))
    assert f.done == 2 and f.analysed_s == pytest.approx(72.82)  # a failure analyses nothing
    clock.now += 8.0
    f = progress.add(Outcome(MONO, "1003", "unchanged"))
    assert f.done == 3 and f.eta_s == 0.0 and f.analysed_s == pytest.approx(72.82)


def test_the_progress_line_says_it_in_chinese() -> None:
    f = figures(total=10, done=3, planned_s=2880.0, finished_s=900.0, analysed_s=900.0, elapsed_s=111.0)
    line = progress_line(f)
    assert line == "进度 3/10 个录音（30%），已分析音频 0.25 / 0.80 小时，速度 8.1 倍实时，预计还需 4 分 4 秒"
    assert english_words(line) == set()
    waiting = progress_line(figures(3, 0, 180.0, 0.0, 0.0, 1.0))
    assert "速度待测" in waiting and "剩余时间待估" in waiting and english_words(waiting) == set()
    assert progress_line(figures(2, 2, 120.0, 120.0, 120.0, 3725.0)).endswith("用时 1 小时 2 分")
    assert clock_text(40.4) == "40 秒"


def test_log_lines_come_at_most_once_an_interval_and_after_the_last_recording() -> None:
    clock, emitted = FakeClock(), []
    lines = ProgressLines(emitted.append, interval_s=60.0, clock=clock)
    clock.now += 30.0
    lines.update(figures(4, 1, 240.0, 60.0, 60.0, 30.0))
    assert emitted == []  # half a minute: not yet
    clock.now += 31.0
    lines.update(figures(4, 2, 240.0, 120.0, 120.0, 61.0))
    clock.now += 1.0
    lines.update(figures(4, 3, 240.0, 180.0, 180.0, 62.0))
    clock.now += 1.0
    lines.update(figures(4, 4, 240.0, 240.0, 240.0, 63.0))
    assert [line.split("，")[0] for line in emitted] == ["进度 2/4 个录音（50%）", "进度 4/4 个录音（100%）"]


def test_callqa_run_draws_a_bar_on_a_terminal_and_prints_lines_elsewhere() -> None:
    stereo = Outcome(STEREO, "HX1", "ok", elapsed_s=9.0, duration_s=72.82)
    mono = Outcome(MONO, "1003", "ok", elapsed_s=8.0, duration_s=64.14)

    terminal = Terminal()
    monitor = ProgressMonitor(terminal)
    monitor.start([STEREO, MONO])
    monitor.record(stereo, "[1/2] 1002_20261120-101233.wav (HX1): 完成")
    monitor.record(mono, "[2/2] 1003_20261120-143010.wav (1003): 完成")
    monitor.close()
    drawn = terminal.getvalue()
    # redrawn in place (a StringIO has no encoding: tqdm draws the bar in ASCII)
    assert "\r进度 100%|##########| 2/2 个录音，已分析音频 0.04 / 0.04 小时，速度 " in drawn
    assert "倍实时，用时 " in drawn
    assert "[1/2] 1002_20261120-101233.wav (HX1): 完成" in drawn
    assert english_words(drawn) == set(), drawn

    log = io.StringIO()
    monitor = ProgressMonitor(log, interval_s=3600.0)
    monitor.start([STEREO, MONO])
    monitor.record(stereo, "[1/2] 1002_20261120-101233.wav (HX1): 完成")
    monitor.record(mono, "[2/2] 1003_20261120-143010.wav (1003): 完成")
    monitor.close()
    printed = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert printed[:2] == [
        "[1/2] 1002_20261120-101233.wav (HX1): 完成",
        "[2/2] 1003_20261120-143010.wav (1003): 完成",
    ]
    assert printed[2].startswith("进度 2/2 个录音（100%），已分析音频 0.04 / 0.04 小时，速度 ")
    assert len(printed) == 3


# What the flow's module does in every worker process it is imported in: Prefect's logging set up.
PREFECT_LOGGING = """
from prefect.logging.configuration import setup_logging
setup_logging()
"""

QUIET_CLUSTER = """
import logging, sys
from pipeline.cluster import dask_client
from pipeline.config import Settings

def work(x):
    logging.getLogger("distributed.worker").info("worker-info-line")
    logging.getLogger("distributed.worker").warning("worker-warning-line")
    return x + 1

if __name__ == "__main__":
    with dask_client(Settings(), 1) as client:
        assert client.submit(work, 1).result() == 2
        logging.getLogger("distributed.scheduler").info("scheduler-info-line")
        logging.getLogger("distributed.scheduler").warning("scheduler-warning-line")
    print("done")
"""


@pytest.mark.parametrize("with_prefect", [False, True], ids=["callqa-run", "prefect-flow"])
def test_the_local_cluster_keeps_distributed_info_lines_out_and_its_warnings_in(
    tmp_path: Path, with_prefect: bool
) -> None:
    """In the Prefect flow the workers import prefect too (the flow's module), whose logging setup
    printed the workers' start-up lines (Start worker at …) before this was fixed."""
    script = tmp_path / "quiet_cluster.py"
    script.write_text((PREFECT_LOGGING if with_prefect else "") + QUIET_CLUSTER, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "done" in result.stdout, output[-3000:]
    assert "worker-warning-line" in output and "scheduler-warning-line" in output  # warnings stay
    # a worker's and the scheduler's INFO: the start, registration and close lines are of this kind
    assert "INFO" not in output and "info-line" not in output, output
