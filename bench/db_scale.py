"""The database at a year's scale: many stored calls, then rescore, the monthly report's queries and show.

    .venv/bin/python bench/db_scale.py --template T.duckdb [--calls 1000000] [--rescore 100000] [--out bench/results]

The calls are copies of the real analysed calls in a template database (make one with
`callqa run recordings_sample --db T.duckdb`): every call table's rows are copied with a new call_id,
path and content hash, and the copies' start times spread over the year before the template's
newest call, so each month holds about a twelfth of them. Measured: filling, `rescore` of the
newest `--rescore` calls (through pipeline.rules.rescore, as `callqa rescore --since` does), the
monthly report's loading (pipeline.reports.build.load_month) for the newest full month, and
`callqa show` of one call. Targets (issue 12): rescore 100,000 calls < 60 s, the month < 10 s,
show < 1 s. Results go to bench/results/db-scale-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fill(db: Path, copies: int) -> dict[str, int]:
    """Copy every call of the template `copies` times over (rows per table after filling)."""
    import duckdb

    from pipeline.store import CALL_TABLES

    con = duckdb.connect(str(db))
    try:
        newest = con.execute("SELECT max(started_at) FROM calls").fetchone()[0]
        con.execute("CREATE TEMP TABLE copies AS SELECT range AS n FROM range(1, ?)", [copies])
        suffix = "'-' || lpad(CAST(n AS VARCHAR), 7, '0')"
        shifted = "started_at - to_days(CAST(n % 365 AS INTEGER))"
        con.execute("BEGIN")
        con.execute(
            f"INSERT INTO calls SELECT * EXCLUDE (n) REPLACE (call_id || {suffix} AS call_id, path || {suffix} AS path, "
            f"sha256 || {suffix} AS sha256, {shifted} AS started_at) FROM calls, copies"
        )
        con.execute(
            f"INSERT INTO recordings SELECT * EXCLUDE (n) REPLACE (call_id || {suffix} AS call_id, path || {suffix} AS path, "
            f"sha256 || {suffix} AS sha256) FROM (SELECT * FROM recordings WHERE status = 'ok'), copies"
        )
        for table in (t for t in CALL_TABLES if t not in ("calls", "recordings")):
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            if "call_id" in columns:
                con.execute(
                    f"INSERT INTO {table} SELECT * EXCLUDE (n) REPLACE (call_id || {suffix} AS call_id) FROM {table}, copies"
                )
        con.execute("COMMIT")
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("calls", "scores", "findings")
        }
        counts["newest"] = str(newest)  # type: ignore[assignment]
        return counts
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls after filling (about)")
    parser.add_argument("--rescore", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from pipeline.cli import main as callqa
    from pipeline.config import Settings
    from pipeline.reports.build import load_month
    from pipeline.reports.monthly import Month
    from pipeline.rules.rescore import rescore, scorecards_from
    from pipeline.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.duckdb"
        shutil.copy(args.template, db)
        with Store(db, read_only=True) as store:
            template_calls = len(store.call_ids())
        copies = max(1, args.calls // max(1, template_calls))
        started = time.perf_counter()
        counts = fill(db, copies)
        fill_s = time.perf_counter() - started
        settings = Settings(db=db, reports_dir=Path(tmp) / "reports")

        with Store(db, read_only=True) as store:
            newest = store.db.execute(
                "SELECT CAST(started_at AS DATE) FROM calls ORDER BY started_at DESC LIMIT 1 OFFSET ?",
                [min(args.rescore, counts["calls"]) - 1],
            ).fetchone()[0]
            month_row = store.db.execute(
                "SELECT strftime(started_at, '%Y-%m') AS m, count(*) FROM calls GROUP BY m ORDER BY m DESC LIMIT 2"
            ).fetchall()
            one_call = store.db.execute("SELECT call_id FROM calls LIMIT 1").fetchone()[0]
        cards = scorecards_from(None, settings.scorecards)
        started = time.perf_counter()
        with Store(db) as store:
            rescored = len(rescore(store, cards, newest))
        rescore_s = time.perf_counter() - started

        month = Month.parse(month_row[-1][0])  # the newest full month
        started = time.perf_counter()
        data = load_month(settings, month)
        month_s = time.perf_counter() - started

        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = callqa(["show", one_call, "--db", str(db)])
        show_s = time.perf_counter() - started
        size_mb = db.stat().st_size / 1e6

    result = {
        "template_calls": template_calls,
        "calls": counts["calls"],
        "scores": counts["scores"],
        "findings": counts["findings"],
        "findings_per_call": round(counts["findings"] / counts["calls"], 1),
        "db_mb": round(size_mb, 1),
        "fill_s": round(fill_s, 1),
        "rescored": rescored,
        "rescore_s": round(rescore_s, 1),
        "rescore_per_100k_s": round(rescore_s / max(1, rescored) * 100_000, 1),
        "month": str(month),
        "month_calls": month_row[-1][1],
        "month_agents": len(data.report.agents),
        "month_s": round(month_s, 2),
        "show_status": status,
        "show_s": round(show_s, 3),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg()[0],
    }
    stamp = datetime.now()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"db-scale-{stamp:%Y-%m-%d}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = [
        f"# Database at scale {stamp:%Y-%m-%d %H:%M} ({os.cpu_count()} CPUs, load {result['loadavg']:.1f})",
        "",
        f"{result['calls']} calls ({result['findings_per_call']} findings each, copies of {template_calls} real "
        f"calls), {result['db_mb']} MB, filled in {result['fill_s']} s.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| rescore {rescored} calls | {result['rescore_s']} s ({result['rescore_per_100k_s']} s per 100,000) | "
        "100,000 < 60 s |",
        f"| monthly report load, {month} ({result['month_calls']} calls) | {result['month_s']} s | < 10 s |",
        f"| callqa show one call | {result['show_s']} s | < 1 s |",
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
