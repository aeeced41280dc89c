"""A batch's progress: recordings done, audio hours analysed, throughput (× real time), time left.

`figures` computes them (a plain function over counts and seconds). `BatchProgress` keeps those
counts for one batch: the audio each file holds is read from its header when the batch starts
(well under a millisecond a file), so the time left is the audio still to analyse at the speed
measured so far. `ProgressBar` draws the figures on a terminal (tqdm); `ProgressLines` emits them as
a line every `interval_s` seconds, for logs (cron, CI, the Prefect flow). `ProgressMonitor` picks one
of the two for `callqa run`, by whether its output is a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import soundfile as sf

if TYPE_CHECKING:
    from pipeline.process import Outcome

# A log line with the figures at most this often (and always after the last recording): the batch
# log already has a line per recording, so a minute keeps the figures near without doubling it.
LINE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Figures:
    """Where a batch stands. `speed` and `eta_s` are None until a recording has been analysed."""

    done: int  # recordings finished, whatever their outcome
    total: int
    analysed_s: float  # audio of the recordings analysed so far
    planned_s: float  # audio of every recording in the batch, from the files' headers
    elapsed_s: float  # wall time since the batch started
    speed: float | None  # seconds of audio analysed per second of wall time (× real time)
    eta_s: float | None  # wall seconds left


def figures(
    total: int, done: int, planned_s: float, finished_s: float, analysed_s: float, elapsed_s: float
) -> Figures:
    """The figures of a batch of `total` recordings holding `planned_s` seconds of audio, of which
    `done` recordings holding `finished_s` seconds are finished and `analysed_s` seconds were
    analysed (the rest of the finished ones were already processed, skipped or failed), after
    `elapsed_s` seconds. The time left is the audio not yet finished at the speed so far: a rerun
    over recordings already processed ends sooner than that, as each of them takes no analysis."""
    speed = analysed_s / elapsed_s if analysed_s > 0 and elapsed_s > 0 else None
    if done >= total:
        eta: float | None = 0.0
    elif speed is None:
        eta = None
    else:
        eta = max(0.0, planned_s - finished_s) / speed
    return Figures(done, total, analysed_s, planned_s, elapsed_s, speed, eta)


def header_seconds(path: Path) -> float:
    """The audio a file holds, from its header; 0 for a file without a readable one (it fails or is
    skipped in a moment, so it adds no time)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError):
        return 0.0
    return info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else 0.0


class BatchProgress:
    """The counts of one batch, from its planned files and the outcomes as they arrive."""

    def __init__(self, paths: Sequence[Path], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._planned = {path: header_seconds(path) for path in paths}
        self.total = len(paths)
        self.planned_s = sum(self._planned.values())
        self._done = 0
        self._finished_s = 0.0
        self._analysed_s = 0.0

    def add(self, outcome: Outcome) -> Figures:
        """Count a finished recording; the figures after it."""
        self._done += 1
        self._finished_s += self._planned.get(outcome.path, 0.0)
        if outcome.status == "ok":
            self._analysed_s += outcome.duration_s or self._planned.get(outcome.path, 0.0)
        return self.figures()

    def figures(self) -> Figures:
        return figures(
            self.total,
            self._done,
            self.planned_s,
            self._finished_s,
            self._analysed_s,
            self._clock() - self._started,
        )


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def clock_text(seconds: float) -> str:
    """A duration as a supervisor reads it: 2 小时 5 分, 6 分 10 秒, 40 秒."""
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600} 小时 {whole % 3600 // 60} 分"
    if whole >= 60:
        return f"{whole // 60} 分 {whole % 60} 秒"
    return f"{whole} 秒"


def figures_text(f: Figures) -> str:
    """Audio, speed and time left: 已分析音频 0.25 / 0.80 小时，速度 8.1 倍实时，预计还需 6 分 10 秒."""
    speed = f"速度 {f.speed:.1f} 倍实时" if f.speed is not None else "速度待测"
    left = f"预计还需 {clock_text(f.eta_s)}" if f.eta_s is not None else "剩余时间待估"
    if f.done >= f.total:
        left = f"用时 {clock_text(f.elapsed_s)}"
    return f"已分析音频 {hours(f.analysed_s)} / {hours(f.planned_s)} 小时，{speed}，{left}"


def progress_line(f: Figures) -> str:
    """The figures as one log line: 进度 3/10 个录音（30%），已分析音频 …"""
    share = f"{100 * f.done / f.total:.0f}%" if f.total else "100%"
    return f"进度 {f.done}/{f.total} 个录音（{share}），{figures_text(f)}"


class ProgressLines:
    """For logs: the progress line when `interval_s` has passed since the last one, and after the
    last recording. Lines come when a recording finishes; between two a long call keeps it quiet."""

    def __init__(
        self,
        emit: Callable[[str], None],
        interval_s: float = LINE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._interval_s = interval_s
        self._clock = clock
        self._last = clock()

    def write(self, message: str) -> None:
        self._emit(message)

    def update(self, f: Figures) -> None:
        now = self._clock()
        if f.done >= f.total or now - self._last >= self._interval_s:
            self._last = now
            self._emit(progress_line(f))

    def close(self) -> None:
        pass


class ProgressBar:
    """On a terminal: a bar of recordings with the audio, speed and time left beside it; the
    recordings' own lines are written above it."""

    def __init__(self, total: int, planned_s: float, stream: TextIO) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._stream = stream
        # log warnings printed while the bar is drawn go above it instead of through it
        self._logs = logging_redirect_tqdm()
        self._logs.__enter__()
        self._bar = tqdm(
            total=total,
            file=stream,
            desc=f"共 {hours(planned_s)} 小时音频",  # tqdm's desc, placed after the bar: our figures
            bar_format="进度 {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} 个录音，{desc}",
            dynamic_ncols=True,
            leave=True,
        )

    def write(self, message: str) -> None:
        self._bar.write(message, file=self._stream)

    def update(self, f: Figures) -> None:
        self._bar.n = f.done
        self._bar.set_description_str(figures_text(f), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
        self._logs.__exit__(None, None, None)


class ProgressMonitor:
    """`callqa run`'s progress on `stream`: a bar on a terminal, periodic lines otherwise (cron, CI)."""

    def __init__(self, stream: TextIO, interval_s: float = LINE_INTERVAL_S) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._progress: BatchProgress | None = None
        self._display: ProgressBar | ProgressLines | None = None

    def start(self, paths: Sequence[Path]) -> None:
        """The batch's files, in the order planned: the totals and the start of the clock."""
        self._progress = BatchProgress(paths)
        if self._stream.isatty():
            self._display = ProgressBar(self._progress.total, self._progress.planned_s, self._stream)
        else:
            self._display = ProgressLines(self._print, self._interval_s)

    def record(self, outcome: Outcome, message: str) -> None:
        """A recording finished: its line, then the figures."""
        if self._progress is None or self._display is None:
            self._print(message)
            return
        self._display.write(message)
        self._display.update(self._progress.add(outcome))

    def close(self) -> None:
        if self._display is not None:
            self._display.close()

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)
