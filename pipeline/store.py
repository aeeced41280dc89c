"""DuckDB: the QA store. Each recording's results are written in one transaction.

The schema is one SQL file (`schema.sql`); this module is the only one that writes SQL against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import duckdb

from pipeline.errors import CallQAError
from pipeline.records import CallAudio, CallMeta, Recording, Transcript

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class RecordingRow:
    path: str
    sha256: str
    status: str
    error: str | None
    call_id: str
    attempts: int


class Store:
    """A connection to the QA database. Use as a context manager; it closes the file on exit."""

    def __init__(self, path: Path, read_only: bool = False, timezone: str = "Asia/Shanghai") -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise CallQAError(f"{self.path}：还没有质检数据库（请先运行 callqa run DIR）")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise CallQAError(f"{self.path}：无法打开质检数据库（{exc}）") from exc
        self.db.execute(f"SET TimeZone = '{timezone}'")
        if not read_only:
            self.db.execute(files("pipeline").joinpath("schema.sql").read_text(encoding="utf-8"))
            self.db.execute(
                "INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)", [SCHEMA_VERSION]
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.db.execute("BEGIN TRANSACTION")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- reads used by the batch -------------------------------------------------------------

    def recording_at(self, path: Path) -> RecordingRow | None:
        row = self.db.execute(
            "SELECT path, sha256, status, error, call_id, attempts FROM recordings WHERE path = ?",
            [str(path)],
        ).fetchone()
        return RecordingRow(*row) if row else None

    def ok_recording_with_sha(self, sha256: str) -> RecordingRow | None:
        row = self.db.execute(
            "SELECT path, sha256, status, error, call_id, attempts FROM recordings "
            "WHERE sha256 = ? AND status = 'ok'",
            [sha256],
        ).fetchone()
        return RecordingRow(*row) if row else None

    def call_path(self, call_id: str) -> str | None:
        row = self.db.execute("SELECT path FROM calls WHERE call_id = ?", [call_id]).fetchone()
        return row[0] if row else None

    # ---- writes ------------------------------------------------------------------------------

    def save_call(
        self,
        recording: Recording,
        meta: CallMeta,
        audio: CallAudio,
        transcript: Transcript,
        elapsed_s: float,
    ) -> None:
        """Replace everything known about this file (and its call) with this result, atomically."""
        path = str(recording.path)
        utterances = sorted(transcript.utterances, key=lambda u: (u.start, u.end, u.speaker))
        with self.transaction() as db:
            attempts = self._attempts(db, path)
            self._delete_call_of(db, path, meta.call_id)
            db.execute(
                "DELETE FROM recordings WHERE path = ? OR (call_id = ? AND status = 'ok')",
                [path, meta.call_id],
            )
            db.execute(
                "INSERT INTO recordings VALUES (?, ?, ?, 'ok', NULL, ?, ?, ?, ?)",
                [path, recording.sha256, recording.size_bytes, meta.call_id, attempts, elapsed_s, _now()],
            )
            db.execute(
                "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    meta.call_id,
                    path,
                    recording.sha256,
                    meta.agent_id,
                    meta.agent_name,
                    meta.started_at,
                    meta.direction,
                    audio.layout,
                    audio.layout_source,
                    meta.ring_seconds,
                    meta.hangup_by,
                    meta.customer_phone,
                    meta.call_type,
                    meta.source,
                    audio.duration_s,
                    audio.source_format,
                    audio.source_sample_rate,
                    audio.source_channels,
                    transcript.diarization_method,
                    transcript.asr_model,
                    transcript.roles.source,
                    transcript.roles.confidence,
                    list(audio.warnings) + list(transcript.warnings),
                ],
            )
            if utterances:
                db.executemany(
                    "INSERT INTO utterances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [
                            meta.call_id,
                            i,
                            u.speaker,
                            u.start,
                            u.end,
                            u.text,
                            u.confidence,
                            u.role_source,
                            u.role_confidence,
                        ]
                        for i, u in enumerate(utterances)
                    ],
                )
            chars = [
                [meta.call_id, i, j, c.char, c.start, c.end, c.probability]
                for i, u in enumerate(utterances)
                for j, c in enumerate(u.chars)
            ]
            if chars:
                db.executemany("INSERT INTO char_timings VALUES (?, ?, ?, ?, ?, ?, ?)", chars)
            activity = sorted(
                {(v.speaker, round(v.start, 3), round(v.end, 3)) for v in transcript.voice_activity}
            )
            if activity:
                db.executemany(
                    "INSERT INTO voice_activity VALUES (?, ?, ?, ?)",
                    [[meta.call_id, speaker, start, end] for speaker, start, end in activity],
                )

    def save_failure(
        self,
        path: Path,
        sha256: str,
        size_bytes: int,
        call_id: str,
        status: str,
        error: str,
        elapsed_s: float | None = None,
    ) -> None:
        """Record why a file was not processed. A previous good result for the file is removed only
        when the file changed (a different sha256), since it no longer describes that file."""
        with self.transaction() as db:
            previous = db.execute("SELECT sha256 FROM recordings WHERE path = ?", [str(path)]).fetchone()
            if previous and previous[0] != sha256:
                self._delete_call_of(db, str(path), None)
            attempts = self._attempts(db, str(path))
            db.execute("DELETE FROM recordings WHERE path = ?", [str(path)])
            db.execute(
                "INSERT INTO recordings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [str(path), sha256, size_bytes, status, error, call_id, attempts, elapsed_s, _now()],
            )

    def move_recording(self, old_path: str, new_path: Path) -> None:
        """The same audio turned up under a new name and the old file is gone: follow the move."""
        with self.transaction() as db:
            db.execute("DELETE FROM recordings WHERE path = ?", [str(new_path)])
            db.execute("UPDATE recordings SET path = ? WHERE path = ?", [str(new_path), old_path])
            db.execute("UPDATE calls SET path = ? WHERE path = ?", [str(new_path), old_path])

    @staticmethod
    def _attempts(db: duckdb.DuckDBPyConnection, path: str) -> int:
        row = db.execute("SELECT attempts FROM recordings WHERE path = ?", [path]).fetchone()
        return (row[0] + 1) if row else 1

    @staticmethod
    def _delete_call_of(db: duckdb.DuckDBPyConnection, path: str, call_id: str | None) -> None:
        ids = {row[0] for row in db.execute("SELECT call_id FROM calls WHERE path = ?", [path]).fetchall()}
        if call_id:
            ids.add(call_id)
        for cid in ids:
            for table in ("char_timings", "utterances", "voice_activity", "calls"):
                db.execute(f"DELETE FROM {table} WHERE call_id = ?", [cid])

    # ---- reads for show / export -------------------------------------------------------------

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

    def call(self, call_id: str) -> dict | None:
        rows = self._dicts("SELECT * FROM calls WHERE call_id = ?", [call_id])
        return rows[0] if rows else None

    def utterances(self, call_id: str) -> list[dict]:
        return self._dicts(
            "SELECT idx, speaker, start_s, end_s, text, confidence, role_source, role_confidence "
            "FROM utterances WHERE call_id = ? ORDER BY idx",
            [call_id],
        )

    def char_timings(self, call_id: str) -> list[dict]:
        return self._dicts(
            "SELECT utterance_idx, idx, char, start_s, end_s, probability FROM char_timings "
            "WHERE call_id = ? ORDER BY utterance_idx, idx",
            [call_id],
        )

    def voice_activity(self, call_id: str) -> list[dict]:
        return self._dicts(
            "SELECT speaker, start_s, end_s FROM voice_activity WHERE call_id = ? ORDER BY start_s",
            [call_id],
        )

    def _dicts(self, sql: str, params: list | None = None) -> list[dict]:
        cursor = self.db.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _now() -> datetime:
    return datetime.now(UTC)
