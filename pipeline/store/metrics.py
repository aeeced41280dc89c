"""A call's metrics (`call_metrics` and its per-utterance, interruption, hold and dead-air rows):
written with the call or by a re-computation, read back as `CallMetrics`."""

from __future__ import annotations

import duckdb

from pipeline.records import CallMetrics, Hold, Interruption, Stretch, UtteranceRate
from pipeline.store.connection import METRIC_TABLES, StoreBase, now


def insert_metrics(db: duckdb.DuckDBPyConnection, call_id: str, m: CallMetrics) -> None:
    for table in METRIC_TABLES:
        db.execute(f"DELETE FROM {table} WHERE call_id = ?", [call_id])
    db.execute(
        "INSERT INTO call_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            call_id,
            m.duration_s,
            m.agent_chars_per_min,
            m.customer_chars_per_min,
            m.agent_speaking_s,
            m.agent_rate_outside_share,
            m.rings,
            m.rings_source,
            m.answered_at,
            m.answer_delay_s,
            m.answer_delay_source,
            m.agent_talk_s,
            m.customer_talk_s,
            m.overlap_s,
            m.silence_ratio,
            m.longest_silence_s,
            m.hangup_by,
            m.hangup_source,
            m.call_type,
            m.nuisance_over_max,
            now(),
        ],
    )
    if m.utterance_rates:
        db.executemany(
            "INSERT INTO utterance_rates VALUES (?, ?, ?, ?, ?, ?)",
            [
                [call_id, r.utterance_index, r.speaker, r.chars, r.speaking_s, r.chars_per_min]
                for r in m.utterance_rates
            ],
        )
    if m.interruptions:
        db.executemany(
            "INSERT INTO interruptions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [call_id, i, x.start, x.end, x.by, x.text, x.interrupted_text, x.overlap_s]
                for i, x in enumerate(m.interruptions)
            ],
        )
    if m.holds:
        db.executemany(
            "INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    call_id,
                    i,
                    h.start,
                    h.end,
                    h.asked,
                    h.ask_text,
                    h.checkins,
                    list(h.checkin_times),
                    h.max_checkin_gap_s,
                    h.thanked,
                    h.thank_text,
                    h.music,
                    h.ends_call,
                    h.lookup,
                ]
                for i, h in enumerate(m.holds)
            ],
        )
    if m.dead_air:
        db.executemany(
            "INSERT INTO dead_air VALUES (?, ?, ?, ?)",
            [[call_id, i, d.start, d.end] for i, d in enumerate(m.dead_air)],
        )


class MetricsStore(StoreBase):
    def save_metrics(self, call_id: str, metrics: CallMetrics) -> None:
        """Replace a call's metrics (re-computation from stored utterances and events)."""
        with self.transaction() as db:
            insert_metrics(db, call_id, metrics)

    def load_metrics(self, call_id: str) -> CallMetrics | None:
        rows = self._dicts("SELECT * FROM call_metrics WHERE call_id = ?", [call_id])
        if not rows:
            return None
        return metrics_from_rows(
            rows[0],
            self._dicts("SELECT * FROM utterance_rates WHERE call_id = ? ORDER BY utterance_idx", [call_id]),
            self._dicts("SELECT * FROM interruptions WHERE call_id = ? ORDER BY idx", [call_id]),
            self._dicts("SELECT * FROM holds WHERE call_id = ? ORDER BY idx", [call_id]),
            self._dicts("SELECT * FROM dead_air WHERE call_id = ? ORDER BY idx", [call_id]),
        )


def metrics_from_rows(
    m: dict,
    rate_rows: list[dict],
    interruption_rows: list[dict],
    hold_rows: list[dict],
    dead_air_rows: list[dict],
) -> CallMetrics:
    """One call's `call_metrics` row with its child rows (each in stored order) as `CallMetrics`."""
    rates = tuple(
        UtteranceRate(r["utterance_idx"], r["speaker"], r["chars"], r["speaking_s"], r["chars_per_min"])
        for r in rate_rows
    )
    interruptions = tuple(
        Interruption(
            r["start_s"], r["end_s"], r["by_speaker"], r["text"], r["interrupted_text"], r["overlap_s"]
        )
        for r in interruption_rows
    )
    holds = tuple(
        Hold(
            r["start_s"],
            r["end_s"],
            r["asked"],
            r["ask_text"],
            r["checkins"],
            tuple(r["checkin_times"]),
            r["max_checkin_gap_s"],
            r["thanked"],
            r["thank_text"],
            r["music"],
            r["ends_call"],
            r["lookup"],
        )
        for r in hold_rows
    )
    dead_air = tuple(Stretch(r["start_s"], r["end_s"]) for r in dead_air_rows)
    return CallMetrics(
        duration_s=m["duration_s"],
        agent_chars_per_min=m["agent_chars_per_min"],
        customer_chars_per_min=m["customer_chars_per_min"],
        agent_speaking_s=m["agent_speaking_s"],
        agent_rate_outside_share=m["agent_rate_outside_share"],
        utterance_rates=rates,
        interruptions=interruptions,
        holds=holds,
        dead_air=dead_air,
        rings=m["rings"],
        rings_source=m["rings_source"],
        answered_at=m["answered_at"],
        answer_delay_s=m["answer_delay_s"],
        answer_delay_source=m["answer_delay_source"],
        agent_talk_s=m["agent_talk_s"],
        customer_talk_s=m["customer_talk_s"],
        overlap_s=m["overlap_s"],
        silence_ratio=m["silence_ratio"],
        longest_silence_s=m["longest_silence_s"],
        hangup_by=m["hangup_by"],
        hangup_source=m["hangup_source"],
        call_type=m["call_type"],
        nuisance_over_max=m["nuisance_over_max"],
    )
