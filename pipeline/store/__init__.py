"""DuckDB: the QA store. Each recording's results are written in one transaction.

The schema is one SQL file (`schema.sql`, beside these modules); this package is the only code that
writes SQL against it. `Store` is one connection; its methods come from one small module per concern,
all over that connection:

- `connection` — opening the file (waiting out another process's lock), schema, transactions, `query`
  (rows as dicts) and `columns` (a result of millions of rows, by column)
- `writer` — the batch's write path: `save_call`, one recording's whole result in one transaction
- `intake` — bookkeeping of files seen, failed, in progress (crash marks), moved, purged
- `transcripts` — calls, utterances, voice activity, audio events; role decisions
- `metrics` — a call's metrics
- `scores` — scores, findings, scorecards, and the bulk reads/writes of `callqa rescore`
- `events` — customer events from the CRM and the audit log
- `retention` — `callqa purge`
- `reads` — the read path of reports, portal, `callqa show` and exports
- `call_time` — the call's start on the big per-call tables, so that a month's reads skip the rest
- `bulk`, `reprice` — `callqa rescore`'s chunked reads and writes, and points-only edits as SQL

The monthly reports' and the portal's aggregation SQL lives with them (pipeline/reports/monthly.py,
pipeline/portal/store.py) and runs through `Store.query`, or `Store.columns` for the month's
utterances and failed findings.
"""

from __future__ import annotations

from pipeline.store.connection import (
    CALL_TABLES,
    DEFAULT_LOCK_WAIT_S,
    METRIC_TABLES,
    SCHEMA_VERSION,
    StoreBusyError,
)
from pipeline.store.events import EventStore
from pipeline.store.intake import IntakeStore, RecordingRow
from pipeline.store.metrics import MetricsStore
from pipeline.store.reads import ReadStore
from pipeline.store.retention import PurgeResult, RetentionStore
from pipeline.store.scores import ScoreStore
from pipeline.store.transcripts import TranscriptStore
from pipeline.store.writer import WriterStore

__all__ = [
    "CALL_TABLES",
    "DEFAULT_LOCK_WAIT_S",
    "METRIC_TABLES",
    "SCHEMA_VERSION",
    "PurgeResult",
    "RecordingRow",
    "Store",
    "StoreBusyError",
]


class Store(
    WriterStore,
    IntakeStore,
    TranscriptStore,
    MetricsStore,
    ScoreStore,
    EventStore,
    RetentionStore,
    ReadStore,
):
    """A connection to the QA database. Use as a context manager; it closes the file on exit.

    Keep it open only as long as needed: while it is open, no other process can write the file
    (and a writer keeps everyone else out)."""
