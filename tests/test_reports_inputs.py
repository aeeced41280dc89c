"""What people feed the monthly report: the CRM events CSV and the policy file, and the two commands.

Bad input gets a clear error naming the file, line and field; nothing is half-loaded; importing
the same export twice changes nothing.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from fixtures.reports.monthdata import EXPECTED, build
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.errors import CallQAError
from pipeline.reports.events import AgentEvent, read_events_csv
from pipeline.reports.policy import load_policy
from pipeline.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "reports"


def _stored(db: Path) -> list[tuple]:
    with Store(db, read_only=True) as store:
        return store.db.execute(
            "SELECT event_date, agent_id, kind, substantiated, call_id, note FROM agent_events "
            "ORDER BY source_line"
        ).fetchall()


# ---- events CSV --------------------------------------------------------------------------------


def test_good_file_is_loaded_and_importing_it_again_changes_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "qa.duckdb"
    source = FIXTURES / "events-good.csv"
    assert main(["import-events", str(source), "--db", str(db)]) == 0
    first = _stored(db)
    assert len(first) == 7  # the two identical 表扬 rows are two praises, not one
    assert first[0] == (date(2026, 11, 3), "A01", "praise", None, "HX20261103-0001", "客户来电表扬服务耐心")
    assert first[5][2:4] == ("lost_order", True)  # 是 → substantiated
    assert first[6][2:4] == ("bad_review", False)
    assert "新增 7 条" in capsys.readouterr().out

    assert main(["import-events", str(source), "--db", str(db)]) == 0
    assert _stored(db) == first
    assert "新增 0 条，更新 0 条，已导入过 7 条" in capsys.readouterr().out


def test_a_complaint_decided_later_is_updated_not_duplicated(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    later = tmp_path / "later.csv"
    text = (FIXTURES / "events-good.csv").read_text(encoding="utf-8")
    later.write_text(
        text.replace("2026-11-12,A03,complaint,,,待核实", "2026-11-12,A03,complaint,yes,,待核实")
    )
    with Store(db) as store:
        assert store.save_agent_events(read_events_csv(FIXTURES / "events-good.csv").events) == (7, 0, 0)
        assert store.save_agent_events(read_events_csv(later).events) == (0, 1, 6)
    rows = _stored(db)
    assert len(rows) == 7
    assert [r[3] for r in rows if r[5] == "待核实"] == [True]


def test_bad_rows_are_reported_by_line_and_field_and_skipped(tmp_path: Path, capsys) -> None:
    db = tmp_path / "qa.duckdb"
    source = FIXTURES / "events-bad-rows.csv"
    parsed = read_events_csv(source)
    assert [(p.line, p.field) for p in parsed.problems] == [
        (3, "date"),
        (4, "agent_id"),
        (5, "kind"),
        (6, "substantiated"),
        (8, "列数"),
    ]
    assert [e.source_line for e in parsed.events] == [2, 7, 10]  # the blank line 9 is not an error
    assert main(["import-events", str(source), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"{source} 第 3 行，date：日期“2026-11-31”无效" in err
    assert "第 5 行，kind：类型“thanks”无效" in err
    assert [r[5] for r in _stored(db)] == ["好", "属实", "不属实"]


def test_gbk_export_with_chinese_headers(tmp_path: Path) -> None:
    parsed = read_events_csv(FIXTURES / "events-gbk.csv")
    assert not parsed.problems
    assert [(e.date, e.agent_id, e.kind, e.substantiated) for e in parsed.events] == [
        (date(2026, 11, 7), "A05", "praise", None),
        (date(2026, 11, 8), "A05", "complaint", True),
    ]


def test_a_file_that_is_not_an_events_table_is_refused_whole(tmp_path: Path, capsys) -> None:
    db = tmp_path / "qa.duckdb"
    source = FIXTURES / "events-missing-column.csv"
    with pytest.raises(CallQAError, match=r"events-missing-column.csv 第 1 行：缺少列 date"):
        read_events_csv(source)
    assert main(["import-events", str(source), "--db", str(db)]) == 2
    assert "缺少列 date" in capsys.readouterr().err
    assert not db.exists()  # refused before the store is even opened
    with pytest.raises(CallQAError, match="无法读取文件"):
        read_events_csv(tmp_path / "nope.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x30\x81" * 10)
    with pytest.raises(CallQAError, match="编码"):
        read_events_csv(binary)


def test_duplicate_crm_event_ids_are_rejected(tmp_path: Path) -> None:
    source = tmp_path / "ids.csv"
    source.write_text(
        "event_id,date,agent_id,kind\nE1,2026-11-01,A01,praise\nE1,2026-11-02,A01,praise\nE2,2026-11-02,A01,praise\n",
        encoding="utf-8",
    )
    parsed = read_events_csv(source)
    assert [e.event_id for e in parsed.events] == ["E1", "E2"]
    assert [(p.line, p.field) for p in parsed.problems] == [(3, "event_id")]


def test_a_failing_load_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    good = read_events_csv(FIXTURES / "events-good.csv").events
    broken = AgentEvent("X", date(2026, 11, 1), "A01", "not-a-kind", None, None, "", "f.csv", 9)
    with Store(db) as store, pytest.raises(duckdb.ConstraintException):
        store.save_agent_events([*good, broken])
    assert _stored(db) == []


# ---- policy ------------------------------------------------------------------------------------


def test_the_shipped_policy_has_the_handbook_defaults() -> None:
    loaded = load_policy()
    p = loaded.policy
    assert loaded.path.endswith("rules/policy.yaml") and len(loaded.sha256) == 64
    assert p.rank_rewards.amounts == {1: 100, 2: 50, 3: 30}
    assert p.lowest_rank_penalty.amount == -50
    assert [(t.min_count, t.amount) for t in p.praise_tiers] == [(10, 10), (30, 30), (50, 50)]
    assert (p.per_event.complaint, p.per_event.lost_order, p.per_event.bad_review) == (-50, -10, -10)
    assert p.ranking.min_scored_calls == 20
    assert {"破服务", "骗子"} <= set(p.grievance.customer_abuse_phrases)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("per_event:\n  complaint: 50\n", ["第 2 行", "per_event.complaint", "扣款写负数"]),
        ("ranking:\n  min_scored_calls: 0\n", ["第 2 行", "ranking.min_scored_calls"]),
        ("rank_rewards:\n  qualifying_score: 120\n", ["第 2 行", "rank_rewards.qualifying_score", "100"]),
        ("rank_rewards:\n  amounts:\n    1: -100\n", ["第 3 行", "rank_rewards.amounts.1"]),
        ("lowest_rank_penalty:\n  amout: -50\n", ["第 2 行", "lowest_rank_penalty.amout", "未知的键"]),
        (
            "praise_tiers:\n  - {min_count: 30, amount: 30}\n  - {min_count: 10, amount: 10}\n",
            ["praise_tiers", "递增"],
        ),
        (
            "praise_tiers:\n  - {min_count: ten, amount: 10}\n",
            ["第 2 行", "praise_tiers.0.min_count", "整数"],
        ),
        ("grievance:\n  customer_abuse_phrases: ['！！']\n", ["grievance.customer_abuse_phrases", "为空"]),
        ("ranking: [1, 2\n", ["第 2 行", "不是有效的 YAML"]),
        ("- just\n- a list\n", ["顶层应为键值对"]),
    ],
)
def test_a_malformed_policy_is_refused_with_file_line_and_field(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CallQAError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_report_command_refuses_a_bad_policy_and_a_missing_database(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("per_event:\n  complaint: 50\n", encoding="utf-8")
    db = tmp_path / "qa.duckdb"
    Store(db).close()
    assert main(["report", "--month", "2026-11", "--db", str(db), "--policy", str(bad)]) == 2
    assert "per_event.complaint" in capsys.readouterr().err
    assert main(["report", "--month", "2026-11", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "还没有质检数据库" in capsys.readouterr().err


# ---- the report command and the payroll table ---------------------------------------------------


def test_report_command_writes_the_folder_and_the_money_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    build(tmp_path / "qa.duckdb", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--month", "2026-11", "--db", "qa.duckdb", "--no-audio"]) == 0
    out = tmp_path / "reports" / "2026-11"
    assert "ranking.html" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {
        "ranking.html",
        "ranking.csv",
        "ranking.xlsx",
        "agents",
        "calls",
    }
    assert sorted(p.name for p in (out / "agents").iterdir()) == [f"{a}.html" for a in sorted(EXPECTED)]
    assert len(list((out / "calls").glob("*.html"))) == 106  # every agent's November call, scored or not

    with (out / "ranking.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = {r["工号"]: (r["名次"], r["已评分通话"], r["均分"], r["合计（元）"]) for r in rows}
    assert table == {
        agent: ("未排名" if rank is None else str(rank), str(calls), str(mean), str(total))
        for agent, (calls, mean, rank, total) in EXPECTED.items()
    }
    assert "不参加排名" in next(r["备注"] for r in rows if r["工号"] == "A05")

    book = load_workbook(out / "ranking.xlsx", read_only=True)
    assert book.sheetnames == ["排名与奖惩", "奖惩明细", "委屈奖候选", "奖惩政策"]
    ranking = list(book["排名与奖惩"].iter_rows(values_only=True))
    header = ranking[0]
    totals = {r[header.index("工号")]: r[header.index("合计（元）")] for r in ranking[1:]}
    assert totals == {agent: expected[3] for agent, expected in EXPECTED.items()}
    lines = list(book["奖惩明细"].iter_rows(values_only=True))[1:]
    assert sum(line[5] for line in lines) == sum(e[3] for e in EXPECTED.values())
    complaint = next(line for line in lines if line[0] == "A03" and line[2] == "服务态度投诉")
    assert complaint[3] == "服务态度投诉（属实）2 次 × −50 元" and complaint[5] == -100
    assert len(list(book["委屈奖候选"].iter_rows(values_only=True))) == 1 + 2
    candidates = list(book["委屈奖候选"].iter_rows(values_only=True))
    assert all(isinstance(row[3], datetime) for row in candidates[1:])  # a real date/time cell

    # print-ready for payroll: landscape, one page wide, header repeated, formats and wrapping
    printable = load_workbook(out / "ranking.xlsx")
    for sheet in printable.worksheets:
        setup = sheet.page_setup
        assert (setup.orientation, setup.fitToWidth, setup.fitToHeight) == ("landscape", 1, 0)
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.print_title_rows == "$1:$1"
        assert all(cell.alignment.wrap_text for row in sheet.iter_rows(min_row=2) for cell in row)
    ranking_sheet = printable["排名与奖惩"]
    columns = [c.value for c in ranking_sheet[1]]
    row = ranking_sheet[2]
    assert row[columns.index("均分")].number_format == "0.00"
    assert "元" in row[columns.index("合计（元）")].number_format
    assert printable["委屈奖候选"]["D2"].number_format == "yyyy-mm-dd hh:mm"

    # A re-run for a month whose data changed removes the pages that no longer belong to it.
    (out / "calls" / "stale-call.html").write_text("old", encoding="utf-8")
    assert main(["report", "--month", "2026-11", "--db", "qa.duckdb", "--no-audio"]) == 0
    assert not (out / "calls" / "stale-call.html").exists()
