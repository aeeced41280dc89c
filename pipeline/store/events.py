"""What comes from outside the recordings and what leaves the store: customer evaluations and
complaints imported from the CRM (`agent_events`, counted by the monthly reports) and the audit
log of every extraction of personal data (standards, section 8)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from pipeline.store.connection import StoreBase, now

if TYPE_CHECKING:
    from pipeline.reports.events import AgentEvent


def insert_audit(
    db: duckdb.DuckDBPyConnection,
    action: str,
    command: str,
    os_user: str,
    host: str,
    target: str | None,
    records: int | None,
    redacted: bool | None,
    details: dict | None = None,
) -> None:
    db.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            now(),
            action,
            command,
            os_user,
            host,
            target,
            records,
            redacted,
            json.dumps(details, ensure_ascii=False, sort_keys=True) if details else None,
        ],
    )


class EventStore(StoreBase):
    def save_agent_events(self, events: Sequence[AgentEvent]) -> tuple[int, int, int]:
        """Insert or update customer evaluations/complaints in one transaction.

        Returns (new, updated, unchanged). An event already stored (same event_id) keeps its id and
        takes the new `substantiated` and note, so a complaint decided later is re-imported cleanly.
        """
        if not events:
            return (0, 0, 0)
        ids = [e.event_id for e in events]
        imported_at = now()
        with self.transaction() as db:
            before = {
                row[0]: (row[1], row[2])
                for row in db.execute(
                    "SELECT event_id, substantiated, note FROM agent_events WHERE list_contains(?, event_id)",
                    [ids],
                ).fetchall()
            }
            db.executemany(
                """
                INSERT INTO agent_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (event_id) DO UPDATE SET
                    substantiated = excluded.substantiated, note = excluded.note,
                    source_file = excluded.source_file, source_line = excluded.source_line,
                    imported_at = excluded.imported_at
                """,
                [
                    [
                        e.event_id,
                        e.date,
                        e.agent_id,
                        e.kind,
                        e.substantiated,
                        e.call_id,
                        e.note,
                        e.source_file,
                        e.source_line,
                        imported_at,
                    ]
                    for e in events
                ],
            )
        new = sum(1 for e in events if e.event_id not in before)
        updated = sum(
            1 for e in events if e.event_id in before and before[e.event_id] != (e.substantiated, e.note)
        )
        return (new, updated, len(events) - new - updated)

    def add_audit(
        self,
        action: str,
        command: str,
        os_user: str,
        host: str,
        target: str | None,
        records: int | None,
        redacted: bool | None,
        details: dict | None = None,
    ) -> None:
        insert_audit(self.db, action, command, os_user, host, target, records, redacted, details)

    def audit_rows(self, since: datetime | None = None) -> list[dict]:
        return self._dicts(
            "SELECT * FROM audit_log WHERE logged_at >= coalesce(?, TIMESTAMPTZ '1970-01-01 00:00:00+00') ORDER BY logged_at",
            [since],
        )
