"""The read path of reports, the portal, `callqa show` and exports: lists of calls and recordings
as rows. (Their aggregation SQL lives with them, pipeline/reports/monthly.py and pipeline/portal,
and runs through `StoreBase.query`; typed reads of one call are in transcripts/metrics/scores.)"""

from __future__ import annotations

from datetime import date, datetime

from pipeline.store.connection import StoreBase


class ReadStore(StoreBase):
    def call_ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT call_id FROM calls ORDER BY call_id").fetchall()]

    def call_ids_since(self, since: date | None = None) -> list[str]:
        """Processed calls that started on or after `since` (all calls when None), oldest first."""
        if since is None:
            return self.call_ids()
        return [
            row[0]
            for row in self.db.execute(
                "SELECT call_id FROM calls WHERE CAST(started_at AS DATE) >= ? ORDER BY started_at, call_id",
                [since],
            ).fetchall()
        ]

    def recordings(self) -> list[dict]:
        return self._dicts(
            """
            SELECT r.path AS file, r.sha256, r.status, r.error, r.call_id, r.processed_at,
                   c.agent_id, c.agent_name, c.started_at, c.duration_s, c.channels, c.direction,
                   c.ring_seconds, c.hangup_by, c.call_type, c.meta_source, c.diarization_method,
                   c.asr_model, c.role_source, c.role_confidence, c.warnings, c.source_format
            FROM recordings r LEFT JOIN calls c ON c.path = r.path AND r.status = 'ok'
            ORDER BY coalesce(c.started_at, r.processed_at), r.path
            """
        )

    def recordings_page(self, after: tuple[datetime, str] | None, limit: int) -> list[dict]:
        """`recordings()` one page at a time, in the same order, after the (sort time, path) given:
        an export reads a page per short connection and never holds the database for long."""
        where, params = "", []
        if after is not None:
            where = "WHERE sort_at > ? OR (sort_at = ? AND file > ?)"
            params = [after[0], after[0], after[1]]
        return self._dicts(
            f"""
            SELECT * FROM (
                SELECT r.path AS file, r.sha256, r.status, r.error, r.call_id, r.processed_at,
                       c.agent_id, c.agent_name, c.started_at, c.duration_s, c.channels, c.direction,
                       c.ring_seconds, c.hangup_by, c.call_type, c.meta_source, c.diarization_method,
                       c.asr_model, c.role_source, c.role_confidence, c.warnings, c.source_format,
                       coalesce(c.started_at, r.processed_at) AS sort_at
                FROM recordings r LEFT JOIN calls c ON c.path = r.path AND r.status = 'ok'
            ) {where}
            ORDER BY sort_at, file LIMIT {int(limit)}
            """,
            params,
        )
