"""Retention (`callqa purge`): removing old calls with everything stored about them, in one
transaction with its audit row, and remembering purged recordings by content hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.privacy_names import redact_name
from pipeline.store.connection import CALL_TABLES, StoreBase, now
from pipeline.store.events import insert_audit


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    months: dict[str, int]  # YYYY-MM → calls
    rows: dict[str, int]  # table → rows of the purged calls
    recordings: int  # processing records (ok, failed, skipped)
    events: int  # customer events dated before the cutoff
    files: tuple[str, ...]  # the recordings' files

    @property
    def calls(self) -> int:
        return self.rows.get("calls", 0)

    def details(self) -> dict:
        return {
            "months": self.months,
            "rows": self.rows,
            "recordings": self.recordings,
            "events": self.events,
        }


class RetentionStore(StoreBase):
    def purge_before(self, cutoff: datetime, dry_run: bool, audit: dict | None = None) -> PurgeResult:
        """Remove every call that started before `cutoff` (processed before it, when its start is
        unknown), with everything stored about it, the failed/skipped records older than `cutoff`,
        and customer events dated before it — in one transaction, with the audit row (`audit`:
        the keyword arguments of `add_audit` but `action` and `records`). Purged recordings are
        remembered by content hash so that the batch does not take their audio in again.
        `dry_run`: count only, change nothing."""
        with self.transaction() as db:
            db.execute(
                """
                CREATE OR REPLACE TEMP TABLE purge_recordings AS
                SELECT r.path, r.sha256, r.call_id, r.status,
                       strftime(coalesce(c.started_at, r.processed_at), '%Y-%m') AS month
                FROM recordings r LEFT JOIN calls c ON c.path = r.path AND r.status = 'ok'
                WHERE coalesce(c.started_at, r.processed_at) < ?
                """,
                [cutoff],
            )
            db.execute(
                """
                CREATE OR REPLACE TEMP TABLE purge_calls AS
                SELECT c.call_id FROM calls c LEFT JOIN recordings r ON r.path = c.path
                WHERE coalesce(c.started_at, r.processed_at) < ?
                """,
                [cutoff],
            )
            rows = {
                table: db.execute(
                    f"SELECT count(*) FROM {table} WHERE call_id IN (SELECT call_id FROM purge_calls)"
                ).fetchone()[0]
                for table in CALL_TABLES
            }
            months = dict(
                db.execute(
                    "SELECT month, count(*) FILTER (WHERE status = 'ok') AS calls FROM purge_recordings "
                    "GROUP BY month HAVING calls > 0 ORDER BY month"
                ).fetchall()
            )
            recordings = db.execute(
                "SELECT path, sha256, call_id, status, month FROM purge_recordings"
            ).fetchall()
            events = db.execute(
                "SELECT count(*) FROM agent_events WHERE event_date < CAST(? AS DATE)", [cutoff]
            ).fetchone()[0]
            result = PurgeResult(
                cutoff=cutoff,
                months=months,
                rows=rows,
                recordings=len(recordings),
                events=int(events),
                files=tuple(sorted({path for path, *_ in recordings})),
            )
            if not dry_run:
                for table in CALL_TABLES:
                    db.execute(f"DELETE FROM {table} WHERE call_id IN (SELECT call_id FROM purge_calls)")
                db.execute("DELETE FROM recordings WHERE path IN (SELECT path FROM purge_recordings)")
                db.execute("DELETE FROM processing WHERE path IN (SELECT path FROM purge_recordings)")
                db.execute("DELETE FROM agent_events WHERE event_date < CAST(? AS DATE)", [cutoff])
                db.executemany(
                    "INSERT INTO purged_recordings VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        # kept for good: no caller's number from the file name (standards, section 8)
                        [sha, redact_name(path), redact_name(call_id), month, now()]
                        for path, sha, call_id, _, month in recordings
                        if sha
                    ],
                )
                if audit is not None:
                    audit = dict(audit)
                    extra = audit.pop("extra", None) or {}
                    insert_audit(
                        db,
                        "purge",
                        records=result.calls,
                        details={"before": cutoff.isoformat(), **result.details(), **extra},
                        **audit,
                    )
            db.execute("DROP TABLE purge_recordings")
            db.execute("DROP TABLE purge_calls")
        if not dry_run:
            self.db.execute("CHECKPOINT")
        return result
