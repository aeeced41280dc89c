"""The call's start on every row of the big per-call tables, so that a month is a range DuckDB skips to.

DuckDB keeps each column's minimum and maximum per row group (122,880 rows) and skips the row groups
a constant filter excludes. `calls` is pruned that way by `started_at`, but a join by call_id cannot
prune: a month's transcripts read all 19.5 million utterances of a million-call store (24.6 s,
bench/results/db-scale-2026-11-29c.md). So utterances, their recogniser evidence, character timings
and findings carry `call_started_at`, the call's `calls.started_at` copied at insert; nightly batches
store calls roughly in time order, so a month's rows lie in few row groups. Readers join by call_id
as before (that keeps results exact) and add a filter on `call_started_at` (`span_filter`), which
only skips row groups: a call stored late and out of order widens one row group's range, no more.

Invariant: a row's `call_started_at` is its call's `started_at` (NULL when the call has none; such
calls belong to no month, and `call_span` then gives no filter). Writers set it (transcripts.py,
scores.py, bulk.py); stores of older versions are back-filled once (`backfill`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import duckdb

TIMED_TABLES = ("utterances", "utterance_evidence", "char_timings", "findings")
COLUMN = "call_started_at"
_FILLED_KEY = "call_started_at_filled"  # schema_info: the back-fill of older rows is done
_BACKFILL_ROWS = 20_000_000


def backfilled(db: duckdb.DuckDBPyConnection) -> bool:
    """Whether every timed table has the column and older rows have been back-filled."""
    tables = db.execute(
        "SELECT count(*) FROM information_schema.columns WHERE column_name = ? "
        "AND list_contains(?, table_name)",
        [COLUMN, list(TIMED_TABLES)],
    ).fetchone()[0]
    if tables != len(TIMED_TABLES):
        return False
    return bool(db.execute("SELECT count(*) FROM schema_info WHERE key = ?", [_FILLED_KEY]).fetchone()[0])


def backfill(db: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Copy each call's start onto its rows stored before the column existed (schema.sql adds it),
    once per store, one transaction per table (an interrupted back-fill resumes where it stopped).
    Returns the seconds per table (minutes at a million calls: docs/operations.md)."""
    if backfilled(db):
        return {}
    spent = {}
    for table in TIMED_TABLES:
        started = time.perf_counter()
        last = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
        # in pieces of rows, one transaction each: the update's undo data of 323 million character
        # timings at once would be gigabytes of memory
        for first in range(0, (last or 0) + 1, _BACKFILL_ROWS):
            db.execute("BEGIN TRANSACTION")
            db.execute(
                f"UPDATE {table} t SET {COLUMN} = c.started_at FROM calls c "
                f"WHERE c.call_id = t.call_id AND t.{COLUMN} IS NULL AND c.started_at IS NOT NULL "
                "AND t.rowid BETWEEN ? AND ?",
                [first, first + _BACKFILL_ROWS - 1],
            )
            db.execute("COMMIT")
        spent[table] = round(time.perf_counter() - started, 1)
    db.execute("INSERT OR REPLACE INTO schema_info VALUES (?, 'yes')", [_FILLED_KEY])
    db.execute("CHECKPOINT")  # the zone maps of the new column are written with the data
    return spent


Span = tuple[datetime, datetime]


def call_span(db: duckdb.DuckDBPyConnection, call_ids: Sequence[str] | str) -> Span | None:
    """The earliest and latest start of these calls (a list, or the name of a table or view with a
    call_id column); None when one of them has no start (its rows have no key to skip by) or none
    is stored."""
    if isinstance(call_ids, str):
        source, params = f"SELECT call_id FROM {call_ids}", []
    else:
        source, params = "SELECT unnest(?::VARCHAR[]) AS call_id", [list(call_ids)]
    low, high, undated = db.execute(
        "SELECT min(started_at), max(started_at), count(*) FILTER (WHERE started_at IS NULL) "
        f"FROM calls WHERE call_id IN ({source})",
        params,
    ).fetchone()
    if low is None or undated:
        return None
    return low, high


def span_filter(alias: str, span: Span | None) -> tuple[str, list[datetime]]:
    """`AND <alias>.call_started_at BETWEEN ? AND ?` and its two values (nothing for no span)."""
    if span is None:
        return "", []
    return f" AND {alias}.{COLUMN} BETWEEN ? AND ?", [span[0], span[1]]
