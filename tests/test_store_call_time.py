"""The call's start on the big per-call tables (pipeline/store/call_time.py): every writer sets it,
an older store is back-filled once, and the month read through it is the month read without it."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import numpy as np
from fixtures.reports.monthdata import MONTH, build
from storecalls import TZ, save_call, transcript

from pipeline.config import Settings
from pipeline.records import CallAudio, CallMeta, Recording
from pipeline.reports.build import MonthData, load_month
from pipeline.reports.monthly import Month
from pipeline.rules import DEFAULT_SCORECARD, load_scorecard, parse_scorecard
from pipeline.rules.rescore import rescore, rescore_call
from pipeline.store import Store
from pipeline.store.call_time import TIMED_TABLES, backfilled, call_span

LINES = [("agent", 0.5, 3.0, "您好，请问有什么可以帮您？"), ("customer", 3.2, 6.0, "我想查一下订单。")]


def _mismatched(store: Store) -> dict[str, int]:
    """Rows per table whose call_started_at is not their call's start."""
    return {
        table: store.db.execute(
            f"SELECT count(*) FROM {table} t JOIN calls c USING (call_id) "
            "WHERE t.call_started_at IS DISTINCT FROM c.started_at"
        ).fetchone()[0]
        for table in TIMED_TABLES
    }


def _forget_call_times(db: Path) -> None:
    """The store as an older version left it: the column empty (as ADD COLUMN makes it), no mark."""
    with Store(db) as store:
        for table in TIMED_TABLES:
            store.db.execute(f"UPDATE {table} SET call_started_at = NULL")
        store.db.execute("DELETE FROM schema_info WHERE key = 'call_started_at_filled'")
        assert not backfilled(store.db)


def _comparable(data: MonthData) -> object:
    return _rounded(
        (dataclasses.replace(data.report, generated_at=None), data.transcripts, data.masked_audio)
    )


def _rounded(value: object) -> object:
    """Floats to 9 significant digits: DuckDB's parallel sums differ in the last bits between runs."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple((f.name, _rounded(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, list | tuple):
        return tuple(_rounded(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _rounded(v)) for k, v in value.items()))
    return value


def _save_undated(store: Store, call_id: str) -> None:
    """A call whose start nobody knows (no sidecar time): it belongs to no month."""
    recording = Recording(Path(f"/recordings/{call_id}.wav"), call_id.encode().hex().ljust(64, "0"), 1000)
    audio = CallAudio(
        call_id, 16000, {"agent": np.zeros(1), "customer": np.zeros(1)}, "stereo-agent-left", "sidecar",
        8000, 2, "WAV/PCM_16", 7.0,
    )  # fmt: skip
    meta = CallMeta(call_id=call_id, agent_id="1001", started_at=None, source="none")
    store.save_call(recording, meta, audio, transcript(LINES), elapsed_s=1.0)


def test_every_writer_stores_the_call_s_start(tmp_path: Path) -> None:
    db = tmp_path / "qa.duckdb"
    default = load_scorecard(DEFAULT_SCORECARD)
    tuned = parse_scorecard(
        DEFAULT_SCORECARD.read_text(encoding="utf-8").replace("deduction: 3", "deduction: 0"), "t.yaml"
    )
    with Store(db) as store:
        for i, day in enumerate((20, 3, 27)):  # stored out of time order
            save_call(store, f"C{i}", LINES, started_at=datetime(2026, 11, day, 9, 0, tzinfo=TZ))
        _save_undated(store, "UNDATED")
        rescore(store, [default], workers=1)  # bulk: scores and findings of every call
        rescore_call(store, "C1", [tuned])  # one call's: Store.save_score
        counts = {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TIMED_TABLES}
        assert all(counts[t] > 0 for t in ("utterances", "char_timings", "findings")), counts
        assert _mismatched(store) == dict.fromkeys(TIMED_TABLES, 0)
        dated = store.db.execute(
            "SELECT count(*) FROM findings WHERE call_id = 'C1' AND call_started_at IS NOT NULL"
        ).fetchone()[0]
        assert dated > counts["findings"] // 4  # both scorings of C1
        assert call_span(store.db, ["C0", "C1", "C2"]) == (
            datetime(2026, 11, 3, 9, 0, tzinfo=TZ),
            datetime(2026, 11, 27, 9, 0, tzinfo=TZ),
        )
        assert call_span(store.db, ["C0", "UNDATED"]) is None  # its rows have no start to filter by
        assert call_span(store.db, ["unknown"]) is None
        assert backfilled(store.db)


def test_an_older_store_is_back_filled_once_and_its_month_is_unchanged(tmp_path: Path) -> None:
    """The constructed month (rows stored out of time order: month edges, October after November)
    read through the call's start equals the month read after the store is emptied of it and
    back-filled, and every row of the month's calls is in it."""
    db = tmp_path / "qa.duckdb"
    build(db, tmp_path)
    settings = Settings(db=db, reports_dir=tmp_path / "reports")
    month = Month.parse(MONTH)
    before = load_month(settings, month)
    _forget_call_times(db)
    with Store(db, read_only=True) as store:  # a read-only open upgrades the store first
        assert backfilled(store.db)
        assert _mismatched(store) == dict.fromkeys(TIMED_TABLES, 0)
    after = load_month(settings, month)
    assert _comparable(after) == _comparable(before)
    # nothing of the month's calls is missing: every utterance and every failed current finding
    with Store(db, read_only=True) as store:
        utterances = store.db.execute(
            "SELECT u.call_id, count(*) FROM utterances u JOIN calls c USING (call_id) "
            "WHERE c.call_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL",
            [[c.call_id for c in after.report.calls]],
        ).fetchall()
        failed = store.db.execute(
            "SELECT count(*) FROM current_findings WHERE NOT passed AND agent_id IS NOT NULL "
            "AND started_at >= ? AND started_at < ?",
            [datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 12, 1, tzinfo=TZ)],
        ).fetchone()[0]
    assert {c: len(after.transcripts[c]) for c, _ in utterances} == dict(utterances)
    assert len(after.report.findings) == failed > 0
    assert sum(r.prev_failures for r in after.report.rules) > 0  # October's findings were read too
