"""The batch's write: one recording's whole result — intake record, call, transcript, metrics,
score — replacing any earlier result for the file or call, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.records import AudioEvent, CallAudio, CallMeta, CallMetrics, CallScore, Recording, Transcript
from pipeline.store.connection import StoreBase, now
from pipeline.store.intake import attempts_for, delete_call_of
from pipeline.store.metrics import insert_metrics
from pipeline.store.scores import insert_score
from pipeline.store.transcripts import insert_transcript

if TYPE_CHECKING:
    from pipeline.rules.scorecard import Scorecard


class WriterStore(StoreBase):
    def save_call(
        self,
        recording: Recording,
        meta: CallMeta,
        audio: CallAudio,
        transcript: Transcript,
        elapsed_s: float,
        events: Sequence[AudioEvent] = (),
        metrics: CallMetrics | None = None,
        score: CallScore | None = None,
        scorecard: Scorecard | None = None,
    ) -> None:
        """Replace everything known about this file (and its call) with this result, atomically."""
        path = str(recording.path)
        with self.transaction() as db:
            attempts = attempts_for(db, path)
            delete_call_of(db, path, meta.call_id)
            db.execute(
                "DELETE FROM recordings WHERE path = ? OR (call_id = ? AND status = 'ok')",
                [path, meta.call_id],
            )
            db.execute(
                "INSERT INTO recordings (path, sha256, size_bytes, status, error, call_id, attempts, "
                "elapsed_s, processed_at, problem) VALUES (?, ?, ?, 'ok', NULL, ?, ?, ?, ?, NULL)",
                [path, recording.sha256, recording.size_bytes, meta.call_id, attempts, elapsed_s, now()],
            )
            db.execute("DELETE FROM processing WHERE path = ?", [path])
            insert_transcript(db, recording, meta, audio, transcript, events)
            if metrics is not None:
                insert_metrics(db, meta.call_id, metrics)
            if score is not None and scorecard is not None:
                insert_score(db, meta.call_id, score, scorecard)
