"""Customer evaluations and complaints from the phone/CRM system (`callqa import-events FILE.csv`).

The CSV has a header row with at least `date, agent_id, kind`, and optionally `substantiated`,
`call_id`, `note` and `event_id` (the CRM's own id, when the export has one). Column names may also
be the Chinese labels people use in the CRM (日期, 工号, 类型, 是否属实, 通话编号, 备注, 事件编号).

Bad rows are reported by line number and skipped; the good rows are stored in one transaction, so
a failure never leaves half a file loaded. Importing the same export again changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipeline.errors import CallQAError

KINDS: dict[str, str] = {
    "praise": "praise",
    "表扬": "praise",
    "好评": "praise",
    "complaint": "complaint",
    "投诉": "complaint",
    "lost_order": "lost_order",
    "丢单": "lost_order",
    "bad_review": "bad_review",
    "恶评": "bad_review",
    "差评": "bad_review",
}
KIND_LABELS_ZH: dict[str, str] = {
    "praise": "客户表扬",
    "complaint": "服务态度投诉",
    "lost_order": "未回复/态度差导致丢单",
    "bad_review": "失误导致恶意评价",
}
_TRUE = {"yes", "y", "true", "1", "是", "属实", "已核实", "成立"}
_FALSE = {"no", "n", "false", "0", "否", "不属实", "不成立"}
_BLANK = {"", "待定", "未核实", "unknown"}

# Column → accepted header names (English as in the issue, Chinese as people write them).
COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("date", "日期"),
    "agent_id": ("agent_id", "工号", "客服工号"),
    "kind": ("kind", "类型", "事件类型"),
    "substantiated": ("substantiated", "是否属实", "核实结果"),
    "call_id": ("call_id", "通话编号"),
    "note": ("note", "备注", "说明"),
    "event_id": ("event_id", "事件编号"),
}
REQUIRED = ("date", "agent_id", "kind")
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


@dataclass(frozen=True)
class AgentEvent:
    event_id: str
    date: date
    agent_id: str
    kind: str  # praise | complaint | lost_order | bad_review
    substantiated: bool | None
    call_id: str | None
    note: str
    source_file: str
    source_line: int


@dataclass(frozen=True)
class RowProblem:
    line: int
    field: str
    message: str

    def describe(self, path: Path) -> str:
        return f"{path} 第 {self.line} 行，{self.field}：{self.message}"


@dataclass(frozen=True)
class ParsedEvents:
    events: tuple[AgentEvent, ...]
    problems: tuple[RowProblem, ...]


def read_events_csv(path: Path) -> ParsedEvents:
    """Parse and check every row. A file that cannot be read as a table raises CallQAError."""
    text = _decode(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CallQAError(f"{path}：文件为空，没有表头") from None
    except csv.Error as exc:
        raise CallQAError(f"{path} 第 1 行：CSV 格式错误（{exc}）") from exc
    columns = _columns(path, header)
    events: list[AgentEvent] = []
    problems: list[RowProblem] = []
    occurrences: Counter[tuple] = Counter()
    first_line: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CallQAError(f"{path} 第 {reader.line_num} 行：CSV 格式错误（{exc}）") from exc
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(RowProblem(line, "列数", f"有 {len(row)} 列，表头只有 {len(header)} 列"))
            continue
        values = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
        event, row_problems = _event(values, path, line, occurrences)
        if row_problems:
            problems.extend(row_problems)
        elif event is not None and event.event_id in first_line:
            problems.append(
                RowProblem(
                    line, "event_id", f"事件编号 {event.event_id} 与第 {first_line[event.event_id]} 行重复"
                )
            )
        elif event is not None:
            first_line[event.event_id] = line
            events.append(event)
    return ParsedEvents(tuple(events), tuple(problems))


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CallQAError(f"{path}：无法读取文件（{exc.strerror or exc}）") from exc
    # CRM exports are UTF-8 (often with a BOM, for Excel) or GB18030/GBK from older systems.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CallQAError(f"{path}：文件编码不是 UTF-8 或 GBK/GB18030")


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    found: dict[str, int] = {}
    for column, aliases in COLUMNS.items():
        for i, name in enumerate(names):
            if name in aliases:
                if column in found:
                    raise CallQAError(
                        f"{path} 第 1 行：列 {column} 出现了两次（第 {found[column] + 1} 和第 {i + 1} 列）"
                    )
                found[column] = i
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise CallQAError(
            f"{path} 第 1 行：缺少列 {', '.join(missing)}（表头应含 date, agent_id, kind，"
            f"可选 substantiated, call_id, note, event_id；实际为 {', '.join(header)}）"
        )
    return found


def _event(
    values: dict[str, str], path: Path, line: int, occurrences: Counter[tuple]
) -> tuple[AgentEvent | None, list[RowProblem]]:
    problems: list[RowProblem] = []
    day = _parse_date(values["date"])
    if day is None:
        problems.append(RowProblem(line, "date", f"日期“{values['date']}”无效，应为 YYYY-MM-DD"))
    agent_id = values["agent_id"]
    if not agent_id:
        problems.append(RowProblem(line, "agent_id", "工号为空"))
    kind = KINDS.get(values["kind"].lower())
    if kind is None:
        problems.append(
            RowProblem(
                line, "kind", f"类型“{values['kind']}”无效，应为 praise、complaint、lost_order 或 bad_review"
            )
        )
    raw_sub = values.get("substantiated", "").lower()
    substantiated: bool | None = None
    if raw_sub in _TRUE:
        substantiated = True
    elif raw_sub in _FALSE:
        substantiated = False
    elif raw_sub not in _BLANK:
        problems.append(
            RowProblem(line, "substantiated", f"“{values['substantiated']}”无效，应为 yes/no（是/否）或留空")
        )
    if problems or day is None or kind is None:
        return None, problems
    call_id = values.get("call_id") or None
    note = values.get("note", "")
    event_id = values.get("event_id") or _content_id(day, agent_id, kind, call_id, note, occurrences)
    event = AgentEvent(event_id, day, agent_id, kind, substantiated, call_id, note, str(path), line)
    return event, []


def _parse_date(text: str) -> date | None:
    match = _DATE.match(text)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _content_id(
    day: date, agent_id: str, kind: str, call_id: str | None, note: str, occurrences: Counter[tuple]
) -> str:
    """Same row content → same id; the n-th identical row in a file is a separate event.

    `substantiated` is left out on purpose: a complaint decided later keeps its id.
    """
    key = (day.isoformat(), agent_id, kind, call_id or "", note)
    occurrences[key] += 1
    digest = hashlib.sha256("\x1f".join((*key, str(occurrences[key]))).encode("utf-8")).hexdigest()
    return "csv:" + digest[:24]
