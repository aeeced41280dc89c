"""Bulk reads and writes over a chunk of calls, for `callqa rescore` at a year's scale.

Per call, a rescore asked the database eleven questions and wrote in its own transaction; each
question scanned its table, so the cost grew with calls rescored × calls stored (7,733 s per
100,000 calls in a 50,000-call store). Here each table is read once per chunk (a join with the
chunk's call ids) and the chunk's new scores and findings go in as one DataFrame scan each, in one
transaction. The records built are those of the per-call reads (same queries and constructors:
transcripts.py, metrics.py, scores.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb

from pipeline.records import CallMeta, CallMetrics, CallScore, Utterance
from pipeline.store.call_time import Span, call_span, span_filter
from pipeline.store.metrics import metrics_from_rows
from pipeline.store.scores import FINDING_COLUMNS, engine_version, finding_from_row
from pipeline.store.transcripts import (
    CHAR_TIMING_COLUMNS,
    UTTERANCE_COLUMNS,
    meta_from_row,
    utterances_from,
    utterances_from_rows,
)

if TYPE_CHECKING:
    from pipeline.rules.scorecard import Scorecard

_IDS = "bulk_call_ids"  # the chunk's call ids, registered as a DataFrame for the joins


@dataclass(frozen=True)
class StoredCall:
    """What a re-scoring of one call starts from."""

    meta: CallMeta
    utterances: tuple[Utterance, ...]
    metrics: CallMetrics | None
    current: CallScore | None  # the current score with its findings
    current_at: datetime | None  # its scored_at
    engine: str | None  # the rules engine's version that made it (scores.engine)
    metrics_at: datetime | None  # when its metrics were computed (call_metrics.computed_at)
    decisions: tuple[
        tuple[str, float | None, str, str], ...
    ]  # (rule_id, start_s, verdict, source), oldest first


@dataclass(frozen=True)
class NewScore:
    call_id: str
    score: CallScore


@contextmanager
def _chunk_ids(db: duckdb.DuckDBPyConnection, call_ids: Sequence[str]) -> Iterator[None]:
    import pandas as pd

    db.register(_IDS, pd.DataFrame({"call_id": pd.Series(list(call_ids), dtype=object)}))
    try:
        yield
    finally:
        db.unregister(_IDS)


def _grouped(db: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> dict[str, list[dict]]:
    """Rows of a query whose first column is call_id, as dicts without it, by call (order kept)."""
    cursor = db.execute(sql, params or [])
    names = [d[0] for d in cursor.description][1:]
    out: dict[str, list[dict]] = defaultdict(list)
    for row in cursor.fetchall():
        out[row[0]].append(dict(zip(names, row[1:], strict=True)))
    return out


def _inputs(
    db: duckdb.DuckDBPyConnection, join: str, span: Span | None
) -> tuple[
    dict[str, list[dict]], dict[str, list[dict]], dict[str, list[dict]], dict[str, dict[str, list[dict]]]
]:
    """The chunk's utterances, character timings, metrics and metric children, by call. The big
    tables are read over the chunk's time span only (pipeline/store/call_time.py)."""
    on_e, e_span = span_filter("e", span)
    on_u, u_span = span_filter("u", span)
    on_t, t_span = span_filter("t", span)
    utterances = _grouped(
        db,
        f"SELECT u.call_id, {UTTERANCE_COLUMNS} "
        f"{utterances_from(f'(SELECT * FROM utterance_evidence e WHERE true{on_e})')} "
        f"JOIN {_IDS} i ON i.call_id = u.call_id WHERE true{on_u} ORDER BY u.call_id, u.idx",
        [*e_span, *u_span],
    )
    chars = _grouped(
        db,
        f"SELECT call_id, {CHAR_TIMING_COLUMNS} FROM char_timings t {join} WHERE true{on_t} "
        "ORDER BY call_id, utterance_idx, idx",
        t_span,
    )
    metric_rows = _grouped(db, f"SELECT call_id, * FROM call_metrics {join}")
    children = {
        table: _grouped(db, f"SELECT call_id, * FROM {table} {join} ORDER BY call_id, {order}")
        for table, order in (
            ("utterance_rates", "utterance_idx"),
            ("interruptions", "idx"),
            ("holds", "idx"),
            ("dead_air", "idx"),
        )
    }
    return utterances, chars, metric_rows, children


def load_calls(
    db: duckdb.DuckDBPyConnection, call_ids: Sequence[str], inputs: bool = True
) -> list[StoredCall]:
    """The stored inputs of these calls, in the order given (unknown ids left out): one query per table.
    `inputs=False`: the calls and their current scores only (no utterances, no metrics)."""
    join = f"JOIN {_IDS} USING (call_id)"
    with _chunk_ids(db, call_ids):
        calls = {cid: rows[0] for cid, rows in _grouped(db, f"SELECT call_id, * FROM calls {join}").items()}
        span = call_span(db, _IDS)  # the big tables are read over the chunk's time span only
        utterances, chars, metric_rows, children = _inputs(db, join, span) if inputs else ({}, {}, {}, {})
        current = _grouped(
            db,
            "SELECT s.call_id, s.scored_at, s.scorecard_hash, c.name, s.score, s.fatal, s.engine, "
            "m.computed_at AS metrics_at FROM scores s JOIN scorecards c USING (scorecard_hash) "
            f"JOIN {_IDS} i ON i.call_id = s.call_id LEFT JOIN call_metrics m ON m.call_id = s.call_id "
            "WHERE s.is_current",
        )
        findings: dict[str, list[tuple]] = defaultdict(list)
        during, span_params = span_filter("f", span)
        for row in db.execute(
            f"SELECT f.call_id, {', '.join('f.' + c for c in FINDING_COLUMNS.split(', '))} FROM findings f "
            "JOIN scores s ON s.call_id = f.call_id AND s.scored_at = f.scored_at AND s.is_current "
            f"JOIN {_IDS} i ON i.call_id = f.call_id WHERE true{during} ORDER BY f.call_id, f.idx",
            span_params,
        ).fetchall():
            findings[row[0]].append(row[1:])
        decisions: dict[str, list[tuple]] = defaultdict(list)
        for row in db.execute(
            f"SELECT call_id, rule_id, start_s, verdict, source FROM finding_decisions {join} "
            "ORDER BY call_id, decided_at"
        ).fetchall():
            decisions[row[0]].append(tuple(row[1:]))
    out = []
    for call_id in call_ids:
        row = calls.get(call_id)
        if row is None:
            continue
        metrics = None
        if call_id in metric_rows:
            metrics = metrics_from_rows(
                metric_rows[call_id][0], *(children[t].get(call_id, []) for t in children)
            )
        score, scored_at = None, None
        if call_id in current:
            s = current[call_id][0]
            scored_at = s["scored_at"]
            score = CallScore(
                score=s["score"],
                fatal=s["fatal"],
                findings=tuple(finding_from_row(r) for r in findings.get(call_id, [])),
                scorecard_name=s["name"],
                scorecard_hash=s["scorecard_hash"],
            )
        out.append(
            StoredCall(
                meta_from_row(row),
                utterances_from_rows(utterances.get(call_id, []), chars.get(call_id, [])),
                metrics,
                score,
                scored_at,
                current[call_id][0]["engine"] if call_id in current else None,
                current[call_id][0]["metrics_at"] if call_id in current else None,
                tuple(decisions.get(call_id, [])),  # type: ignore[arg-type]
            )
        )
    return out


def unchanged(new: CallScore, current: CallScore | None) -> bool:
    """Whether storing `new` would repeat the current score (same card, score, fatal and findings)."""
    return (
        current is not None
        and current.scorecard_hash == new.scorecard_hash
        and current.score == new.score
        and current.fatal == new.fatal
        and current.findings == new.findings
    )


def save_scores(
    db: duckdb.DuckDBPyConnection,
    scores: Sequence[NewScore],
    scorecards: Sequence[Scorecard],
    scored_at: datetime,
    latest_before: datetime | None,
) -> datetime:
    """Make these scores current, in the caller's transaction: the scorecards they used, one UPDATE
    of the old current rows, one INSERT of the scores and one of the findings. `scored_at` is moved
    past `latest_before` (the newest current score replaced) so that history keeps its order.
    Returns the scoring time used."""
    import pandas as pd

    if not scores:
        return scored_at
    if latest_before is not None and scored_at <= latest_before:
        scored_at = latest_before + timedelta(microseconds=1)
    used = {s.score.scorecard_hash for s in scores}
    for card in scorecards:
        if card.hash in used:
            db.execute(
                "INSERT INTO scorecards VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [card.hash, card.name, str(card.path) if card.path else None, card.content, scored_at],
            )
    new_scores = pd.DataFrame(
        {
            "call_id": pd.Series([s.call_id for s in scores], dtype=object),
            "scorecard_hash": pd.Series([s.score.scorecard_hash for s in scores], dtype=object),
            "score": pd.Series([s.score.score for s in scores], dtype="float64"),
            "fatal": pd.Series([s.score.fatal for s in scores], dtype="bool"),
        }
    )
    rows = [(s.call_id, s.score.scorecard_hash, i, f) for s in scores for i, f in enumerate(s.score.findings)]
    # nullable numbers as pandas' nullable type: None goes in as NULL, never as a NaN
    new_findings = pd.DataFrame(
        {
            "call_id": pd.Series([r[0] for r in rows], dtype=object),
            "idx": pd.Series([r[2] for r in rows], dtype="int32"),
            "rule_id": pd.Series([r[3].rule_id for r in rows], dtype=object),
            "title": pd.Series([r[3].title for r in rows], dtype=object),
            "category": pd.Series([r[3].category for r in rows], dtype=object),
            "passed": pd.Series([r[3].passed for r in rows], dtype="bool"),
            "deduction": pd.Series([r[3].deduction for r in rows], dtype="float64"),
            "fatal": pd.Series([r[3].fatal for r in rows], dtype="bool"),
            "start_s": pd.array([r[3].start for r in rows], dtype="Float64"),
            "end_s": pd.array([r[3].end for r in rows], dtype="Float64"),
            "speaker": pd.Series([r[3].speaker for r in rows], dtype=object),
            "evidence": pd.Series([r[3].evidence for r in rows], dtype=object),
            "confidence": pd.array([r[3].confidence for r in rows], dtype="Float64"),
            "needs_review": pd.Series([r[3].needs_review for r in rows], dtype="bool"),
            "replacement": pd.Series([r[3].replacement for r in rows], dtype=object),
            "scorecard_hash": pd.Series([r[1] for r in rows], dtype=object),
        }
    )
    db.register("bulk_new_scores", new_scores)
    db.register("bulk_new_findings", new_findings)
    try:
        db.execute(
            "UPDATE scores SET is_current = false WHERE is_current "
            "AND call_id IN (SELECT call_id FROM bulk_new_scores)"
        )
        db.execute(
            "INSERT INTO scores (call_id, scored_at, scorecard_hash, score, fatal, is_current, engine) "
            "SELECT call_id, $at, scorecard_hash, score, fatal, true, $engine FROM bulk_new_scores",
            {"at": scored_at, "engine": engine_version()},
        )
        db.execute(
            "INSERT INTO findings (call_id, scored_at, idx, rule_id, title, category, passed, deduction, "
            "fatal, start_s, end_s, speaker, evidence, confidence, needs_review, replacement, scorecard_hash, "
            "call_started_at) "
            "SELECT n.call_id, $at, n.idx, n.rule_id, n.title, n.category, n.passed, n.deduction, n.fatal, "
            "n.start_s, n.end_s, n.speaker, n.evidence, n.confidence, n.needs_review, n.replacement, "
            "n.scorecard_hash, c.started_at FROM bulk_new_findings n LEFT JOIN calls c USING (call_id)",
            {"at": scored_at},
        )
    finally:
        db.unregister("bulk_new_scores")
        db.unregister("bulk_new_findings")
    return scored_at
