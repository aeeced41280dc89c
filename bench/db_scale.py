"""The database at a year's scale: many stored calls, then show, rescore and the monthly report's queries.

    .venv/bin/python bench/db_scale.py --template T.duckdb [--calls 1000000] [--rescore 100000]
        [--phrase-rescore 2000] [--workers N] [--unredacted-report] [--keep DIR] [--tag c]

The calls are copies of the real analysed calls in a template database (make one with
`callqa run recordings_sample --db T.duckdb`): every call table's rows are copied with a new call_id,
path and content hash, the copies' start times spread over the year before the template's newest
call, and the rows go in a day at a time in the order of the calls' start, as nightly batches store
them. A store filled by an older version is then upgraded (columns, indexes: timed) and its
findings brought to today's engine (`refresh_to_engine`). Measured, each figure written to
bench/results/db-scale-<date><tag>.json as soon as it is known: `callqa show` of one call (and
EXPLAIN ANALYZE of its look-ups), the rules engine alone on 200 calls, `rescore` of the newest
`--rescore` calls after a points-only edit (CLOSE-SURVEY 3 → 0), `rescore` of the newest
`--phrase-rescore` calls after one rule's phrases changed, and the monthly report's loading
(pipeline.reports.build.load_month) for the newest full month. Targets (issue 12): rescore 100,000
calls < 60 s, the month's queries < 10 s, show < 1 s. CPU seconds are stated beside wall times: the
project's machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.rules.scorecard import Scorecard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fill(db: Path, copies: int) -> dict[str, int]:
    """Copy every call of the template `copies` times over, a day's calls at a time in the order of
    their start, as nightly batches store them (so that each table's rows lie in time order and a
    month is a contiguous stretch of it). Returns the rows per table after filling."""
    import duckdb

    from pipeline.store import CALL_TABLES

    con = duckdb.connect(str(db))
    try:
        newest = con.execute("SELECT max(started_at) FROM calls").fetchone()[0]
        tables = [t for t in CALL_TABLES if t != "calls"] + ["calls", "recordings"]
        # the template's rows aside; copy 0 keeps the template's call ids
        for table in tables:
            con.execute(f"CREATE TEMP TABLE template_{table} AS SELECT * FROM {table}")
        con.execute("DELETE FROM recordings WHERE status = 'ok'")
        for table in CALL_TABLES:
            con.execute(f"DELETE FROM {table}")
        suffix = "CASE WHEN n = 0 THEN '' ELSE '-' || lpad(CAST(n AS VARCHAR), 7, '0') END"
        con.execute(
            f"CREATE TEMP TABLE copies AS SELECT c.call_id AS source_id, n, c.call_id || {suffix} AS call_id, "
            f"{suffix} AS suffix, c.started_at - to_days(CAST(n % 365 AS INTEGER)) AS started_at "
            "FROM template_calls c, (SELECT range AS n FROM range(0, ?))",
            [copies],
        )
        days = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT CAST(started_at AS DATE) AS d FROM copies ORDER BY d"
            ).fetchall()
        ]
        keys = {t: [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()] for t in tables}
        for day in days:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE day_copies AS SELECT * FROM copies "
                "WHERE CAST(started_at AS DATE) = ?",
                [day],
            )
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO calls SELECT t.* REPLACE (m.call_id AS call_id, t.path || m.suffix AS path, "
                "t.sha256 || m.suffix AS sha256, m.started_at AS started_at) "
                "FROM template_calls t JOIN day_copies m ON m.source_id = t.call_id ORDER BY m.started_at, m.call_id"
            )
            con.execute(
                "INSERT INTO recordings SELECT t.* REPLACE (m.call_id AS call_id, t.path || m.suffix AS path, "
                "t.sha256 || m.suffix AS sha256) FROM template_recordings t "
                "JOIN day_copies m ON m.source_id = t.call_id WHERE t.status = 'ok' ORDER BY m.started_at, m.call_id"
            )
            for table in (t for t in CALL_TABLES if t != "calls"):
                if "call_id" not in keys[table]:
                    continue
                order = ", ".join(
                    f"t.{c}"
                    for c in keys[table]
                    if c in ("idx", "utterance_idx", "scored_at", "speaker", "start_s")
                )
                # the copy's start on the rows that carry it (pipeline/store/call_time.py)
                started = ", m.started_at AS call_started_at" if "call_started_at" in keys[table] else ""
                con.execute(
                    f"INSERT INTO {table} SELECT t.* REPLACE (m.call_id AS call_id{started}) FROM template_{table} t "
                    f"JOIN day_copies m ON m.source_id = t.call_id ORDER BY m.started_at, m.call_id"
                    + (f", {order}" if order else "")
                )
            con.execute("COMMIT")
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("calls", "scores", "findings")
        }
        counts["newest"] = str(newest)  # type: ignore[assignment]
        return counts
    finally:
        con.close()


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the rescore's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def _timed_queries() -> Iterator[list[tuple[float, str]]]:
    """Seconds spent in each `Store.query` and `Store.columns` (the report stage's SQL and the
    fetching of its results) while the block runs, with the query's first words."""
    from pipeline.store.connection import StoreBase

    spent: list[tuple[float, str]] = []
    originals = {name: getattr(StoreBase, name) for name in ("query", "columns")}

    def timed(original: Callable[..., object]) -> Callable[..., object]:
        def run(self: StoreBase, sql: str, params: dict[str, object] | list | None = None) -> object:
            started = time.perf_counter()
            try:
                return original(self, sql, params)
            finally:
                spent.append((time.perf_counter() - started, " ".join(sql.split())[:90]))

        return run

    for name, original in originals.items():
        setattr(StoreBase, name, timed(original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(StoreBase, name, original)


def refresh_to_engine(db: Path, template: Path, cards: list) -> dict[str, int]:
    """Make the filled store's findings those of today's engine, as if it had been filled from a
    template scored by it: the template's calls are scored again by the whole engine (in a copy);
    the copies of a call whose findings changed get the new findings, and every current score is
    marked as made by this engine version (scores.engine). Returns the template calls changed."""
    from pipeline.rules.incremental import ENGINE_VERSION
    from pipeline.rules.rescore import rescore
    from pipeline.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "template.duckdb"
        shutil.copy(template, fresh)
        with Store(fresh) as store:
            changed = [r.call_id for r in rescore(store, cards, workers=1) if r.stored]
            store.db.execute(
                "DELETE FROM findings WHERE (call_id, scored_at) NOT IN "
                "(SELECT (call_id, scored_at) FROM scores WHERE is_current)"
            )
            store.db.execute("DELETE FROM scores WHERE NOT is_current")
            store.db.execute("CHECKPOINT")
        source = "regexp_replace(call_id, '-[0-9]{7}$', '')"
        with Store(db) as store:
            con = store.db
            con.execute(f"ATTACH '{fresh}' AS fresh (READ_ONLY)")
            con.execute("BEGIN")
            if changed:
                con.execute("CREATE TEMP TABLE changed AS SELECT unnest(?) AS source_id", [changed])
                stale = f"{source} IN (SELECT source_id FROM changed)"
                con.execute(f"DELETE FROM findings WHERE {stale}")
                con.execute(f"DELETE FROM scores WHERE {stale}")
                for table, started in (("scores", ""), ("findings", ", c.started_at AS call_started_at")):
                    con.execute(
                        f"INSERT INTO {table} SELECT f.* REPLACE (c.call_id AS call_id{started}) FROM fresh.{table} f "
                        f"JOIN (SELECT call_id, started_at, {source} AS source_id FROM calls) c "
                        "ON c.source_id = f.call_id WHERE f.call_id IN (SELECT source_id FROM changed) "
                        "ORDER BY c.started_at, c.call_id"  # in time order, as the batches stored them
                        + (", f.scored_at, f.idx" if table == "findings" else ", f.scored_at")
                    )
                con.execute("INSERT INTO scorecards SELECT * FROM fresh.scorecards ON CONFLICT DO NOTHING")
            con.execute("UPDATE scores SET engine = ? WHERE is_current", [ENGINE_VERSION])
            con.execute("COMMIT")
            con.execute("DETACH fresh")
    return {"template_calls_changed": len(changed)}


def _explain_show(db: Path, call_id: str) -> dict[str, str]:
    """Whether each per-call query of `callqa show` reads its table through an index."""
    import duckdb

    from pipeline.store.transcripts import CHAR_TIMING_COLUMNS, UTTERANCE_COLUMNS, UTTERANCES_FROM

    queries = {
        "calls": "SELECT * FROM calls WHERE call_id = ?",
        "utterances": f"SELECT {UTTERANCE_COLUMNS} {UTTERANCES_FROM} WHERE u.call_id = ? ORDER BY u.idx",
        "char_timings": f"SELECT {CHAR_TIMING_COLUMNS} FROM char_timings WHERE call_id = ?",
        "findings": "SELECT * FROM findings WHERE call_id = ? AND scored_at = (SELECT max(scored_at) FROM scores WHERE call_id = ?)",
        "scores": "SELECT * FROM scores WHERE call_id = ? AND is_current",
        "utterance_rates": "SELECT * FROM utterance_rates WHERE call_id = ?",
    }
    out = {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        for name, sql in queries.items():
            plan = "\n".join(
                r[1] for r in con.execute("EXPLAIN ANALYZE " + sql, [call_id] * sql.count("?")).fetchall()
            )
            scans = [line for line in plan.splitlines() if "Type:" in line]
            total = next((line for line in plan.splitlines() if "Total Time" in line), "")
            out[name] = " ".join(" ".join(x.strip("│ ").split()) for x in [*scans, total])
    finally:
        con.close()
    return out


def same_as_engine(db: Path, card: Scorecard, call_ids: list[str], sample: int = 400) -> dict[str, object]:
    """Calls a rescore wrote (re-priced in SQL or by the engine), scored again by the whole engine
    with the same card: the same score, fatal flag, findings and card?"""
    import random

    from pipeline.rules.engine import score_call
    from pipeline.store import Store
    from pipeline.store.bulk import load_calls

    chosen = random.Random(12).sample(call_ids, min(sample, len(call_ids)))
    with Store(db, read_only=True) as store:
        calls = [c for c in load_calls(store.db, chosen) if not c.decisions and c.current is not None]
    same = 0
    for call in calls:
        fresh = score_call(call.utterances, call.metrics, call.meta, card)
        stored = call.current
        assert stored is not None
        same += (fresh.score, fresh.fatal, fresh.findings, fresh.scorecard_hash) == (
            stored.score,
            stored.fatal,
            stored.findings,
            stored.scorecard_hash,
        )
    return {"rescore_sampled": len(calls), "rescore_same_as_engine": same}


def tuned_card_text() -> str:
    """The default card after a supervisor's morning change: CLOSE-SURVEY no longer deducts
    (points only, as most edits are)."""
    text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    start = text.index("  - id: CLOSE-SURVEY")
    end = text.index("  - id: HANGUP-LAST")
    return text[:start] + text[start:end].replace("deduction: 3", "deduction: 0") + text[end:]


def phrase_card_text() -> str:
    """The default card with one more way of asking what the caller needs (OPEN-GREETING)."""
    text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    anchor = "        - 请问您有什么需要\n"
    return text.replace(anchor, anchor + "        - 您想办理什么\n", 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls after filling (about)")
    parser.add_argument("--rescore", type=int, default=100_000)
    parser.add_argument(
        "--phrase-rescore",
        type=int,
        default=2_000,
        help="calls rescored after a phrase change of one rule (the engine runs that rule)",
    )
    parser.add_argument("--workers", type=int, help="rescore's engine processes (default: one per core)")
    parser.add_argument("--tag", default="", help="added to the result's file name (e.g. b)")
    parser.add_argument(
        "--keep", type=Path, help="keep the filled database here (default: a temporary folder)"
    )
    parser.add_argument(
        "--unredacted-report",
        action="store_true",
        help="the month loaded as for privacy.unredacted_outputs = [report]: the same SQL but no masking "
        "(minutes of Python at a year's scale) and so no look-up of masked words' timings",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from pipeline.cli import main as callqa
    from pipeline.config import PrivacyConfig, Settings
    from pipeline.reports.build import load_month
    from pipeline.reports.monthly import Month
    from pipeline.rules.rescore import _use_cards, rescore, score_stored, scorecards_from
    from pipeline.rules.scorecard import parse_scorecard
    from pipeline.store import Store
    from pipeline.store.bulk import load_calls

    stamp = datetime.now()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"db-scale-{stamp:%Y-%m-%d}{args.tag}"
    result: dict[str, object] = {"cpus": os.cpu_count()}

    def record(**measured: object) -> None:
        """Keep what is measured so far (a long run stopped midway still leaves its figures)."""
        result.update(measured, loadavg=round(os.getloadavg()[0], 1))
        (args.out / f"{name}.json").write_text(
            json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8"
        )

    with tempfile.TemporaryDirectory() as tmp:
        db = (args.keep or Path(tmp)) / "scale.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        with Store(args.template, read_only=True) as store:
            template_calls = len(store.call_ids())
        if not db.exists():
            shutil.copy(args.template, db)
            Store(db).close()  # a template from an older version gets today's tables
            started = time.perf_counter()
            fill(db, max(1, args.calls // max(1, template_calls)))
            record(fill_s=round(time.perf_counter() - started, 1))
        started, cpu_before = time.perf_counter(), _cpu_s()
        upgraded = Store(db)  # a store filled by an older version: today's columns and indexes
        upgraded.close()
        record(
            migrate_s=round(time.perf_counter() - started, 1),
            migrate_cpu_s=round(_cpu_s() - cpu_before, 1),
            backfill_s=upgraded.backfilled_s,  # the call's start copied onto older rows, per table
        )
        cards = scorecards_from(None)
        started = time.perf_counter()
        record(
            **refresh_to_engine(db, args.template, cards), refresh_s=round(time.perf_counter() - started, 1)
        )
        with Store(db, read_only=True) as store:
            counts = {
                t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("calls", "scores", "findings", "char_timings")
            }
            newest = store.db.execute(
                "SELECT CAST(started_at AS DATE) FROM calls ORDER BY started_at DESC LIMIT 1 OFFSET ?",
                [min(args.rescore, counts["calls"]) - 1],
            ).fetchone()[0]
            month_row = store.db.execute(
                "SELECT strftime(started_at, '%Y-%m') AS m, count(*) FROM calls GROUP BY m ORDER BY m DESC LIMIT 2"
            ).fetchall()
            one_call = store.db.execute(
                "SELECT call_id FROM calls ORDER BY started_at LIMIT 1 OFFSET ?", [counts["calls"] // 2]
            ).fetchone()[0]
        record(
            template_calls=template_calls,
            **counts,
            findings_per_call=round(counts["findings"] / counts["calls"], 1),
            db_mb=round(db.stat().st_size / 1e6, 1),
        )

        times = []
        for _ in range(2):  # the first opens the file cold
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                status = callqa(["show", one_call, "--db", str(db)])
            times.append(round(time.perf_counter() - started, 3))
        record(
            show_status=status, show_s=times[0], show_again_s=times[1], show_plans=_explain_show(db, one_call)
        )

        with Store(db, read_only=True) as store:
            sample = load_calls(store.db, store.call_ids_since(newest)[:200])
        _use_cards(cards)  # the engine alone, one process, on 200 of the calls
        started = time.perf_counter()
        score_stored(sample)
        record(engine_ms_per_call=round((time.perf_counter() - started) / max(1, len(sample)) * 1000, 1))

        tuned = [parse_scorecard(tuned_card_text(), "tuned.yaml")]
        started, cpu_before = time.perf_counter(), _cpu_s()
        with Store(db) as store:
            results = rescore(store, tuned, newest, workers=args.workers)
        rescore_s, rescore_cpu_s = time.perf_counter() - started, _cpu_s() - cpu_before
        record(
            rescored=len(results),
            rescore_stored=sum(r.stored for r in results),
            rescore_s=round(rescore_s, 1),
            rescore_per_100k_s=round(rescore_s / max(1, len(results)) * 100_000, 1),
            rescore_workers=args.workers,
            rescore_cpu_s=round(rescore_cpu_s, 1),
            rescore_cpu_ms_per_call=round(rescore_cpu_s / max(1, len(results)) * 1000, 2),
        )

        record(**same_as_engine(db, tuned[0], [r.call_id for r in results if r.stored]))

        phrase = [parse_scorecard(phrase_card_text(), "phrase.yaml")]
        with Store(db, read_only=True) as store:
            phrase_since = store.db.execute(
                "SELECT CAST(started_at AS DATE) FROM calls ORDER BY started_at DESC LIMIT 1 OFFSET ?",
                [args.phrase_rescore - 1],
            ).fetchone()[0]
        started, cpu_before = time.perf_counter(), _cpu_s()
        with Store(db) as store:
            phrase_results = rescore(store, phrase, phrase_since, workers=args.workers)
        phrase_s = time.perf_counter() - started
        record(
            phrase_rescored=len(phrase_results),
            phrase_stored=sum(r.stored for r in phrase_results),
            phrase_s=round(phrase_s, 1),
            phrase_cpu_s=round(_cpu_s() - cpu_before, 1),
            phrase_per_100k_s=round(phrase_s / max(1, len(phrase_results)) * 100_000, 1),
        )

        privacy = PrivacyConfig(unredacted_outputs=("report",) if args.unredacted_report else ())
        settings = Settings(db=db, reports_dir=Path(tmp) / "reports", privacy=privacy)
        month = Month.parse(month_row[-1][0])  # the newest full month
        started = time.perf_counter()
        with _timed_queries() as month_sql:
            data = load_month(settings, month)
        record(
            month=str(month),
            month_calls=month_row[-1][1],
            month_redacted=not args.unredacted_report,
            month_agents=len(data.report.agents),
            month_s=round(time.perf_counter() - started, 2),
            month_sql_s=round(sum(t for t, _ in month_sql), 2),
            month_slowest_queries=[(round(t, 2), q) for t, q in sorted(month_sql, reverse=True)[:5]],
            db_mb=round(db.stat().st_size / 1e6, 1),
        )

    r = result
    lines = [
        f"# Database at scale {stamp:%Y-%m-%d %H:%M} ({os.cpu_count()} CPUs, load {r['loadavg']:.1f})",
        "",
        f"{r['calls']} calls ({r['findings_per_call']} findings each, copies of {template_calls} real "
        f"calls), {r['db_mb']} MB, filled in {r.get('fill_s', 'an earlier run:')} s; upgrade of the filled store "
        f"(columns, indexes) {r['migrate_s']} s.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| rescore {r['rescored']} calls, points-only edit ({r['rescore_stored']} new scores written; "
        f"{r['rescore_same_as_engine']} of {r['rescore_sampled']} sampled as the whole engine scores them) | "
        f"{r['rescore_s']} s ({r['rescore_cpu_s']} s CPU) | 100,000 < 60 s |",
        f"| rescore {r['phrase_rescored']} calls, one rule's phrases edited | {r['phrase_s']} s "
        f"({r['phrase_per_100k_s']} s per 100,000) | |",
        f"| monthly report's queries, {r['month']} ({r['month_calls']} calls) | {r['month_sql_s']} s | < 10 s |",
        f"| monthly report load (queries + transcripts + redaction) | {r['month_s']} s | |",
        f"| callqa show one call (first, again) | {r['show_s']} s, {r['show_again_s']} s | < 1 s |",
        "",
        f"Rules engine alone: {r['engine_ms_per_call']} ms per call in one process.",
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
