"""Intake bookkeeping: which files the batch has seen (`recordings`), which it is working on
(`processing`, crash detection), and which were purged — everything the batch decides by before
it reads a recording's audio."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.store.connection import CALL_TABLES, StoreBase, now


@dataclass(frozen=True)
class RecordingRow:
    path: str
    sha256: str
    status: str
    error: str | None
    call_id: str
    attempts: int
    problem: str | None = None


_RECORDING_COLUMNS = "path, sha256, status, error, call_id, attempts, problem"


def attempts_for(db: duckdb.DuckDBPyConnection, path: str) -> int:
    """The attempt number of a new result for this file."""
    row = db.execute("SELECT attempts FROM recordings WHERE path = ?", [path]).fetchone()
    return (row[0] + 1) if row else 1


def delete_call_of(db: duckdb.DuckDBPyConnection, path: str, call_id: str | None) -> None:
    """Remove everything stored about the call(s) of this file (and of `call_id`)."""
    ids = {row[0] for row in db.execute("SELECT call_id FROM calls WHERE path = ?", [path]).fetchall()}
    if call_id:
        ids.add(call_id)
    for cid in ids:
        for table in CALL_TABLES:
            db.execute(f"DELETE FROM {table} WHERE call_id = ?", [cid])


class IntakeStore(StoreBase):
    _delete_call_of = staticmethod(delete_call_of)

    def recording_at(self, path: Path) -> RecordingRow | None:
        row = self.db.execute(
            f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE path = ?", [str(path)]
        ).fetchone()
        return RecordingRow(*row) if row else None

    def recordings_with_call_id(self, call_id: str) -> list[RecordingRow]:
        """Files recorded under this call id, whatever their status (failed and skipped ones too)."""
        rows = self.db.execute(
            f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE call_id = ? ORDER BY path", [call_id]
        ).fetchall()
        return [RecordingRow(*row) for row in rows]

    def ok_recording_with_sha(self, sha256: str) -> RecordingRow | None:
        row = self.db.execute(
            f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE sha256 = ? AND status = 'ok'", [sha256]
        ).fetchone()
        return RecordingRow(*row) if row else None

    def call_path(self, call_id: str) -> str | None:
        row = self.db.execute("SELECT path FROM calls WHERE call_id = ?", [call_id]).fetchone()
        return row[0] if row else None

    def save_failure(
        self,
        path: Path,
        sha256: str,
        size_bytes: int,
        call_id: str,
        status: str,
        error: str,
        elapsed_s: float | None = None,
        problem: str | None = None,
        finished: bool = True,
    ) -> None:
        """Record why a file was not processed. A previous good result for the file is removed only
        when the file changed (a different sha256), since it no longer describes that file.
        `finished` False keeps the file's in-progress mark (a crash recorded at batch start)."""
        with self.transaction() as db:
            previous = db.execute("SELECT sha256 FROM recordings WHERE path = ?", [str(path)]).fetchone()
            if previous and sha256 and previous[0] != sha256:  # an unread file ("") keeps its result
                delete_call_of(db, str(path), None)
            attempts = attempts_for(db, str(path))
            db.execute("DELETE FROM recordings WHERE path = ?", [str(path)])
            db.execute(
                "INSERT INTO recordings (path, sha256, size_bytes, status, error, call_id, attempts, "
                "elapsed_s, processed_at, problem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [str(path), sha256, size_bytes, status, error, call_id, attempts, elapsed_s, now(), problem],
            )
            if finished:
                db.execute("DELETE FROM processing WHERE path = ?", [str(path)])

    # ---- the batch's in-progress marks (crash detection) --------------------------------------

    def begin_processing(self, path: Path, sha256: str) -> None:
        """Mark the file as being worked on. A mark the next batch finds means this batch died on it.
        The crash count survives a new attempt on the same content and resets for new content."""
        with self.transaction() as db:
            row = db.execute("SELECT sha256, crashes FROM processing WHERE path = ?", [str(path)]).fetchone()
            crashes = row[1] if row and row[0] == sha256 else 0
            db.execute("DELETE FROM processing WHERE path = ?", [str(path)])
            db.execute(
                "INSERT INTO processing VALUES (?, ?, ?, ?, ?)",
                [str(path), sha256, now(), os.getpid(), crashes],
            )

    def interrupted(self) -> list[dict]:
        """Files a previous batch started and never finished: path, sha256, started_at, pid, crashes."""
        return self._dicts("SELECT * FROM processing ORDER BY started_at")

    def count_crash(self, path: str) -> int:
        """One more batch died on this file; returns how many have."""
        with self.transaction() as db:
            # pid 0: counted, nobody working on it (begin_processing sets the working process's pid)
            db.execute("UPDATE processing SET crashes = crashes + 1, pid = 0 WHERE path = ?", [path])
            row = db.execute("SELECT crashes FROM processing WHERE path = ?", [path]).fetchone()
        return int(row[0]) if row else 0

    def move_recording(self, old_path: str, new_path: Path) -> None:
        """The same audio turned up under a new name and the old file is gone: follow the move."""
        with self.transaction() as db:
            db.execute("DELETE FROM recordings WHERE path = ?", [str(new_path)])
            db.execute("UPDATE recordings SET path = ? WHERE path = ?", [str(new_path), old_path])
            db.execute("UPDATE calls SET path = ? WHERE path = ?", [str(new_path), old_path])
            db.execute("DELETE FROM processing WHERE path = ?", [str(new_path)])

    def purged(self, sha256: str) -> dict | None:
        rows = self._dicts("SELECT * FROM purged_recordings WHERE sha256 = ?", [sha256])
        return rows[0] if rows else None

    def problems(self) -> list[dict]:
        """Recordings that failed or were skipped, failed first, newest first within each."""
        return self._dicts(
            "SELECT path, status, problem, error, call_id, attempts, processed_at FROM recordings "
            "WHERE status <> 'ok' ORDER BY status, processed_at DESC, path"
        )
