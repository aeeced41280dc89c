"""Calls and their transcripts: the `calls` row, utterances with their recogniser evidence and
character timings, voice activity, audio events — how they are written (`insert_transcript`, inside
the batch's transaction) and read back as typed records for metrics, scorecard and rescore."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from pipeline.records import (
    AudioEvent,
    CallAudio,
    CallMeta,
    CharTiming,
    Recording,
    SpeechTurn,
    Transcript,
    Utterance,
)
from pipeline.store.connection import StoreBase, insert_many

# The typed reads of one call and the bulk reads of many (pipeline/store/bulk.py) share these
# queries and constructors, so that both give the same records.
UTTERANCE_COLUMNS = (
    "u.idx, u.speaker, u.start_s, u.end_s, u.text, u.confidence, u.role_source, "
    "u.role_confidence, e.avg_logprob, e.no_speech_prob, e.compression_ratio, "
    "coalesce(e.looping, false) AS looping, e.unheard_s"
)


def utterances_from(evidence: str = "utterance_evidence") -> str:
    """Utterances `u` with their evidence `e` (`evidence`: the table, or a subquery of it)."""
    return f"FROM utterances u LEFT JOIN {evidence} e ON e.call_id = u.call_id AND e.utterance_idx = u.idx"


UTTERANCES_FROM = utterances_from()
CHAR_TIMING_COLUMNS = "utterance_idx, idx, char, start_s, end_s, probability"


def meta_from_row(row: dict) -> CallMeta:
    """A `calls` row as the call's metadata."""
    return CallMeta(
        call_id=row["call_id"],
        agent_id=row["agent_id"],
        agent_name=row["agent_name"],
        started_at=row["started_at"],
        direction=row["direction"],
        channels=row["channels"],
        ring_seconds=row["ring_seconds"],
        hangup_by=row["hangup_by"],
        customer_phone=row["customer_phone"],
        call_type=row["call_type"],
        source=row["meta_source"],
    )


def utterances_from_rows(utterance_rows: list[dict], char_rows: list[dict]) -> tuple[Utterance, ...]:
    """One call's utterance rows (in stored order) with their character timing rows."""
    chars: dict[int, list[CharTiming]] = {}
    for c in char_rows:
        chars.setdefault(c["utterance_idx"], []).append(
            CharTiming(c["char"], c["start_s"], c["end_s"], c["probability"])
        )
    return tuple(
        Utterance(
            u["speaker"],
            u["start_s"],
            u["end_s"],
            u["text"],
            tuple(chars.get(u["idx"], ())),
            u["confidence"],
            u["role_source"],
            u["role_confidence"],
            u["avg_logprob"],
            u["no_speech_prob"],
            u["compression_ratio"],
            bool(u["looping"]),
            u["unheard_s"],
        )
        for u in utterance_rows
    )


def insert_transcript(
    db: duckdb.DuckDBPyConnection,
    recording: Recording,
    meta: CallMeta,
    audio: CallAudio,
    transcript: Transcript,
    events: Sequence[AudioEvent] = (),
) -> None:
    """The call's row and everything heard in it (the caller has removed any older version)."""
    path = str(recording.path)
    utterances = sorted(transcript.utterances, key=lambda u: (u.start, u.end, u.speaker))
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
    # the start as stored (the session's time zone applied): the rows' copy is that value exactly
    started_at = db.execute("SELECT started_at FROM calls WHERE call_id = ?", [meta.call_id]).fetchone()[0]
    insert_many(
        db,
        "utterances",
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
                started_at,
            ]
            for i, u in enumerate(utterances)
        ],
    )
    insert_many(
        db,
        "utterance_evidence",
        [
            [
                meta.call_id,
                i,
                u.avg_logprob,
                u.no_speech_prob,
                u.compression_ratio,
                u.looping,
                u.unheard_s,
                started_at,
            ]
            for i, u in enumerate(utterances)
            if u.avg_logprob is not None or u.looping or u.unheard_s is not None
        ],
    )
    insert_many(
        db,
        "char_timings",
        [
            [meta.call_id, i, j, c.char, c.start, c.end, c.probability, started_at]
            for i, u in enumerate(utterances)
            for j, c in enumerate(u.chars)
        ],
    )
    activity = sorted({(v.speaker, round(v.start, 3), round(v.end, 3)) for v in transcript.voice_activity})
    insert_many(
        db,
        "voice_activity",
        [[meta.call_id, speaker, start, end] for speaker, start, end in activity],
    )
    if events:
        db.executemany(
            "INSERT INTO audio_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[meta.call_id, i, e.kind, e.start, e.end, e.channel, e.detail] for i, e in enumerate(events)],
        )


class TranscriptStore(StoreBase):
    def role_reviews(self, below: float) -> list[dict]:
        """Calls whose roles wait for a person (role confidence under `below`), oldest first."""
        return self._dicts(
            "SELECT call_id, path, agent_id, started_at, channels, role_source, role_confidence, warnings "
            "FROM calls WHERE role_confidence < ? ORDER BY started_at, call_id",
            [below],
        )

    def set_roles(self, call_id: str, swap: bool, source: str) -> None:
        """A person's decision on who is the agent: swap the parties (utterances, voice activity, the
        analysed layout) or keep them; either way the roles are then certain (confidence 1)."""
        other = {"agent": "customer", "customer": "agent"}
        layouts = {"stereo-agent-left": "stereo-agent-right", "stereo-agent-right": "stereo-agent-left"}
        with self.transaction() as db:
            if swap:
                # rewritten rather than updated in place: the swap must not collide on the primary key
                activity = db.execute(
                    "SELECT speaker, start_s, end_s FROM voice_activity WHERE call_id = ?", [call_id]
                ).fetchall()
                db.execute("DELETE FROM voice_activity WHERE call_id = ?", [call_id])
                insert_many(db, "voice_activity", [[call_id, other[sp], a, b] for sp, a, b in activity])
                db.execute(
                    "UPDATE utterances SET speaker = CASE speaker WHEN 'agent' THEN 'customer' ELSE 'agent' END "
                    "WHERE call_id = ?",
                    [call_id],
                )
                (layout,) = db.execute("SELECT channels FROM calls WHERE call_id = ?", [call_id]).fetchone()
                db.execute(
                    "UPDATE calls SET channels = ? WHERE call_id = ?", [layouts.get(layout, layout), call_id]
                )
            db.execute(
                "UPDATE utterances SET role_source = ?, role_confidence = 1.0 WHERE call_id = ?",
                [source, call_id],
            )
            db.execute(
                "UPDATE calls SET role_source = ?, role_confidence = 1.0 WHERE call_id = ?", [source, call_id]
            )

    def call_ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT call_id FROM calls ORDER BY call_id").fetchall()]

    def load_meta(self, call_id: str) -> CallMeta | None:
        row = self.call(call_id)
        return meta_from_row(row) if row is not None else None

    def load_utterances(self, call_id: str) -> tuple[Utterance, ...]:
        """Utterances in stored order (by start time), each with its character timings."""
        return utterances_from_rows(self.utterances(call_id), self.char_timings(call_id))

    def load_voice_activity(self, call_id: str) -> tuple[SpeechTurn, ...]:
        return tuple(SpeechTurn(v["speaker"], v["start_s"], v["end_s"]) for v in self.voice_activity(call_id))

    def load_audio_events(self, call_id: str) -> tuple[AudioEvent, ...]:
        rows = self._dicts(
            "SELECT kind, start_s, end_s, channel, detail FROM audio_events WHERE call_id = ? ORDER BY idx",
            [call_id],
        )
        return tuple(AudioEvent(r["kind"], r["start_s"], r["end_s"], r["channel"], r["detail"]) for r in rows)

    def call(self, call_id: str) -> dict | None:
        rows = self._dicts("SELECT * FROM calls WHERE call_id = ?", [call_id])
        return rows[0] if rows else None

    def utterances(self, call_id: str) -> list[dict]:
        return self._dicts(
            f"SELECT {UTTERANCE_COLUMNS} {UTTERANCES_FROM} WHERE u.call_id = ? ORDER BY u.idx", [call_id]
        )

    def char_timings(self, call_id: str) -> list[dict]:
        return self._dicts(
            f"SELECT {CHAR_TIMING_COLUMNS} FROM char_timings WHERE call_id = ? ORDER BY utterance_idx, idx",
            [call_id],
        )

    def voice_activity(self, call_id: str) -> list[dict]:
        return self._dicts(
            "SELECT speaker, start_s, end_s FROM voice_activity WHERE call_id = ? ORDER BY start_s",
            [call_id],
        )
