"""The money table for payroll: ranking.csv (UTF-8 with BOM, so Excel shows the Chinese) and
ranking.xlsx (ranking, money lines with their rule and basis, grievance candidates, the policy)."""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.reports.describe import RULE_NAMES_ZH, agent_remark, basis_text, line_text, policy_rules
from pipeline.reports.files import replacing
from pipeline.reports.monthly import MonthReport
from pipeline.reports.privacy import name_for_output

RANKING_HEADER = (
    "名次",
    "工号",
    "姓名",
    "已评分通话",
    "均分",
    "中位数",
    "置信区间下限",
    "置信区间上限",
    "一票否决通话",
    "上月均分",
    "均分变化",
    "上月名次",
    "客户表扬",
    "属实投诉",
    "丢单",
    "恶意评价",
    "名次奖惩（元）",
    "事件奖惩（元）",
    "合计（元）",
    "备注",
)
MONEY_HEADER = ("工号", "姓名", "奖惩规则", "说明", "数量", "金额（元）", "依据", "依据编号")
CANDIDATE_HEADER = (
    "通话编号",
    "工号",
    "姓名",
    "通话时间",
    "得分",
    "客户辱骂用语",
    "首次出现（秒）",
    "客户原话",
)


def ranking_rows(report: MonthReport) -> list[list[object]]:
    min_calls = report.policy.policy.ranking.min_scored_calls
    rows: list[list[object]] = []
    for a in report.agents:
        rows.append(
            [
                a.rank if a.rank is not None else "未排名",
                a.agent_id,
                a.agent_name or "",
                a.calls,
                _round(a.mean),
                _round(a.median),
                _round(a.ci_low),
                _round(a.ci_high),
                a.fatal_calls,
                _round(a.prev_mean),
                _round(a.mean_change),
                a.prev_rank if a.prev_rank is not None else "",
                a.praise,
                a.complaints,
                a.lost_orders,
                a.bad_reviews,
                a.money_rank,
                a.money_events,
                a.money_total,
                agent_remark(a, min_calls),
            ]
        )
    return rows


def money_rows(report: MonthReport) -> list[list[object]]:
    names = {a.agent_id: a.agent_name or "" for a in report.agents}
    return [
        [
            line.agent_id,
            names.get(line.agent_id, ""),
            RULE_NAMES_ZH[line.rule_key],
            line_text(line),
            line.quantity,
            line.amount,
            basis_text(line),
            " ".join(map(name_for_output, line.basis_calls) if line.basis_calls else line.basis_events),
        ]
        for line in report.money
    ]


def candidate_rows(report: MonthReport) -> list[list[object]]:
    return [
        [
            name_for_output(c.call_id),
            c.agent_id,
            c.agent_name or "",
            c.started_at.astimezone(ZoneInfo(report.timezone)).replace(tzinfo=None, second=0, microsecond=0),
            round(c.score, 2),
            "、".join(c.phrases),
            round(c.first_s, 1),
            c.example,
        ]
        for c in report.candidates
    ]


# A text cell starting with one of these is a formula to Excel and LibreOffice (=HYPERLINK(…),
# +cmd|…, @SUM(…)): an agent's name or a customer's words must never run in the payroll sheet.
_FORMULA_START = tuple("=+-@\t\r＝＋－＠")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def is_formula_like(value: object) -> bool:
    """A text that a spreadsheet would read as a formula (a plain signed number is not one)."""
    return isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value)


def csv_cell(value: object) -> object:
    """A CSV cell as text: a formula-like text gets a leading apostrophe (OWASP's advice)."""
    return f"'{value}" if is_formula_like(value) else value


def write_csv(path: Path, header: Sequence[str], rows: list[list[object]]) -> None:
    with replacing(path) as partial, partial.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([csv_cell(v) for v in row] for row in rows)


MONTH_TABLES = {
    "ranking.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ranking.csv": "text/csv; charset=utf-8",
    "money_lines.csv": "text/csv; charset=utf-8",
}


def month_table_bytes(report: MonthReport, name: str) -> bytes:
    """One of a month's tables (MONTH_TABLES), the same bytes `callqa report` writes into reports/YYYY-MM/."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        if name == "ranking.xlsx":
            write_xlsx(path, report)
        elif name == "ranking.csv":
            write_csv(path, RANKING_HEADER, ranking_rows(report))
        elif name == "money_lines.csv":
            write_csv(path, MONEY_HEADER, money_rows(report))
        else:
            raise ValueError(f"not a month table: {name}")
        return path.read_bytes()


def write_xlsx(path: Path, report: MonthReport) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "排名与奖惩"
    _fill(sheet, RANKING_HEADER, ranking_rows(report))
    _fill(book.create_sheet("奖惩明细"), MONEY_HEADER, money_rows(report))
    _fill(book.create_sheet("委屈奖候选"), CANDIDATE_HEADER, candidate_rows(report))
    policy = book.create_sheet("奖惩政策")
    rules = [[r.name, r.text] for r in policy_rules(report.policy.policy)]
    rules += [["政策文件", report.policy.path], ["文件 SHA-256", report.policy.sha256]]
    _fill(policy, ("规则", "内容"), rules)
    book.properties.title = f"{report.month.label_zh()} 质检排名与奖惩"
    with replacing(path) as partial:
        book.save(partial)


def _fill(sheet: Worksheet, header: Sequence[str], rows: list[list[object]]) -> None:
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if is_formula_like(cell.value):  # openpyxl made it a formula: write it as text
                cell.data_type = "s"
                cell.quotePrefix = True
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE6F4")
    for cell in sheet[1]:
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    formats = [_number_format(name) for name in header]
    for row in sheet.iter_rows(min_row=2):
        for cell, number_format in zip(row, formats, strict=False):
            cell.alignment = Alignment(vertical="top", wrap_text=True)
            if number_format and not isinstance(cell.value, str):
                cell.number_format = number_format
    sheet.freeze_panes = "A2"
    for i, name in enumerate(header, 1):
        width = max([_width(name)] + [_width(row[i - 1]) for row in rows[:500]])
        # narrow enough to print: long text wraps inside its cell instead of widening the page
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 6), 28)
    # For payroll on paper: landscape A4, one page wide (as many pages down as needed), the header
    # row repeated on every page.
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:1"
    sheet.print_options.gridLines = True


def _number_format(column: str) -> str | None:
    if column.endswith("（元）"):
        return '#,##0" 元";-#,##0" 元";0" 元"'
    if column in ("均分", "中位数", "置信区间下限", "置信区间上限", "上月均分", "均分变化", "得分"):
        return "0.00"
    if column == "通话时间":
        return "yyyy-mm-dd hh:mm"
    return None


def _width(value: object) -> int:
    text = str(value if value is not None else "")
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _round(value: float | None) -> float | str:
    return round(value, 2) if value is not None else ""
