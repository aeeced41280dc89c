"""Why a recording was not analysed: one code per kind of problem, a reason for people, and whether
trying again can help.

A `RecordingError` is a `CallQAError` (a problem with the user's input, message naming the file
and the field) that also says what the batch records: status `failed` (something is wrong: it is
retried by the next batch) or `skipped` (nothing to analyse, by design), the `problem` code stored
in `recordings.problem`, and `retryable` — a failure that can pass on a retry a few seconds later
(the database was busy, an I/O error), which the Prefect flow retries at once; a corrupt file never.
"""

from __future__ import annotations

from typing import Literal

from pipeline.errors import CallQAError

Status = Literal["failed", "skipped"]

# code → what `callqa failures` and the batch summary call it
PROBLEMS: dict[str, str] = {
    "unreadable": "无法读取",
    "empty": "空文件",
    "writing": "仍在写入",
    "not_audio": "不是录音文件",
    "unsupported": "编码不受支持",
    "truncated": "文件被截断",
    "corrupt": "音频损坏",
    "too_short": "录音过短",
    "too_long": "录音过长",
    "silent": "全程无声",
    "no_speech": "没有说话声",
    "sidecar": "随录音信息有误",
    "unknown_agent": "客服不在名单中",
    "duplicate": "重复录音",
    "call_id_taken": "通话编号冲突",
    "purged": "已按保留期限清除",
    "crashed": "处理时中断",
    "db_busy": "数据库被占用",
    "io": "读写错误",
    "input": "输入有误",
    "internal": "内部错误",
}

# Problems a new attempt on the same content can solve without anyone doing anything.
RETRYABLE = frozenset({"db_busy", "io"})


class RecordingError(CallQAError):
    def __init__(self, message: str, problem: str, status: Status = "failed") -> None:
        if problem not in PROBLEMS:
            raise ValueError(f"unknown problem code {problem!r}")
        super().__init__(message)
        self.problem = problem
        self.status: Status = status

    @property
    def retryable(self) -> bool:
        return self.problem in RETRYABLE


def title(problem: str | None) -> str:
    return PROBLEMS.get(problem or "", "其他")
