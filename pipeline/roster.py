"""The centre's agents (optional, `[agents] roster`): which agent ids a recording may carry.

An "unknown agent" is a recording whose agent_id (from the sidecar, else from the file name) is
missing or not in the roster. Such a call cannot be ranked or paid for anyone, so with a roster
configured it fails with a reason naming the file and the field, and is retried by the next batch
(after the roster or the sidecar is corrected). Without a roster nothing is checked: calls without
an agent are stored and the monthly report counts them as "calls without an agent".

The roster is a CSV file (UTF-8, or GB18030 as Excel saves it) with a header row: `agent_id`, and
optionally `agent_name` (used when the sidecar has no name).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from pipeline.errors import CallQAError
from pipeline.problems import RecordingError
from pipeline.records import CallMeta


@dataclass(frozen=True)
class Roster:
    path: Path
    names: dict[str, str | None]  # agent_id → agent_name


def load_roster(path: Path) -> Roster:
    """The roster file, read again only when it changed."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise CallQAError(f"{path}：找不到客服名单文件（agents.roster）：{exc.strerror or exc}") from exc
    return _load(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int, size: int) -> Roster:
    del mtime_ns, size  # the cache key: a changed file is read again
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise CallQAError(f"{path}：客服名单不是 UTF-8 或 GB18030 编码的文本（agents.roster）")
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    if "agent_id" not in header:
        raise CallQAError(f"{path}：客服名单缺少 agent_id 列（第 1 行是表头，例如 agent_id,agent_name）")
    names: dict[str, str | None] = {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        agent_id = row.get("agent_id", "")
        if not agent_id:
            raise CallQAError(f"{path}：第 {line} 行的 agent_id 为空")
        if agent_id in names:
            raise CallQAError(f"{path}：第 {line} 行的 agent_id {agent_id} 重复")
        names[agent_id] = row.get("agent_name") or None
    return Roster(path, names)


def check_agent(meta: CallMeta, roster: Roster, audio: Path) -> CallMeta:
    """The call's metadata with the roster's name filled in; an unknown agent is a failure."""
    where = "随录音信息字段 agent_id" if meta.source == "sidecar" else "文件名中的客服工号"
    if not meta.agent_id:
        raise RecordingError(
            f"{audio}：没有客服工号（{where}为空），无法计入任何客服的成绩；请补上随录音信息的 agent_id",
            "unknown_agent",
        )
    if meta.agent_id not in roster.names:
        raise RecordingError(
            f"{audio}：客服工号 {meta.agent_id}（{where}）不在客服名单 {roster.path} 中；"
            "请更新名单或修正随录音信息，下次批处理会重试",
            "unknown_agent",
        )
    if meta.agent_name is None and roster.names[meta.agent_id]:
        return replace(meta, agent_name=roster.names[meta.agent_id])
    return meta
