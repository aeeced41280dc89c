"""`callqa rescore` after an edit of points only, as a few set-based statements.

When a scorecard edit changes only deductions, fatal flags or categories, a call's new findings are
its stored ones re-priced (pipeline/rules/incremental.py: `_repriced`, `assemble`, `verdicts.total`).
Done per call in Python that is 0.47 ms of CPU per call (47 s per 100,000 calls, most of it building
and writing Finding objects: bench/results/db-scale-2026-11-29c.md). Here the same rules are SQL over
the stored findings: which calls qualify, the re-priced findings in the card's rule order, the score,
and the writes, in one transaction. A call whose stored findings do not read as the engine writes
them (a rule without findings, a deduction that is not the old card's, a review note that does not
end the evidence) is left to the caller, which scores it as before.

Rules for the caller (pipeline/rules/rescore.py): the calls given have one scorecard, their current
score was made by this engine version with the stored card `stored_hash`, and `rules` is the plan
(keep or re-price, no rule evaluated again) in the new card's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb

from pipeline.store.call_time import call_span, span_filter

if TYPE_CHECKING:
    from pipeline.rules.scorecard import Scorecard


@dataclass(frozen=True)
class RulePricing:
    """One rule of the new card: its stored findings kept as they are, or re-priced."""

    rule_id: str
    reprice: bool
    old_deduction: float
    new_deduction: float
    new_category: str
    new_fatal: bool
    old_note: str  # the review note of the old deduction (verdicts.review_note)
    new_note: str


@dataclass(frozen=True)
class Repriced:
    call_id: str
    before: float
    after: float
    fatal: bool
    stored: bool


_IDS = "reprice_call_ids"

# The calls whose stored findings can be used: current score by this engine with the stored card,
# no person's verdict, metrics not computed again since (rescore._Plans.for_call).
_CANDIDATES = f"""
CREATE OR REPLACE TEMP TABLE reprice_calls AS
SELECT s.call_id, s.score AS before, s.scored_at AS current_at
FROM scores s JOIN {_IDS} i USING (call_id)
LEFT JOIN call_metrics m USING (call_id)
WHERE s.is_current AND s.scorecard_hash = $stored AND s.engine = $engine
  AND (m.computed_at IS NULL OR m.computed_at <= s.scored_at)
  AND s.call_id NOT IN (SELECT call_id FROM finding_decisions)
"""

# Each stored finding of a rule in the new card, re-priced as incremental._repriced does; `usable`
# is false where it would return None.
_FINDINGS = """
CREATE OR REPLACE TEMP TABLE reprice_findings AS
SELECT f.call_id, f.idx AS stored_idx, p.pos, f.rule_id, f.title,
       CASE WHEN p.reprice THEN p.new_category ELSE f.category END AS category,
       f.passed,
       CASE WHEN NOT p.reprice OR f.passed THEN f.deduction
            WHEN f.needs_review THEN 0.0 ELSE p.new_deduction END AS deduction,
       CASE WHEN p.reprice THEN p.new_fatal ELSE f.fatal END AS fatal,
       f.start_s, f.end_s, f.speaker,
       CASE WHEN NOT p.reprice OR f.passed THEN f.evidence
            WHEN f.needs_review THEN left(f.evidence, length(f.evidence) - length(p.old_note)) || p.new_note
            ELSE coalesce(f.evidence, '') END AS evidence,
       f.confidence, f.needs_review, f.replacement, f.call_started_at,
       CASE WHEN NOT p.reprice OR f.passed THEN true
            WHEN f.needs_review THEN coalesce(ends_with(f.evidence, p.old_note), false) AND f.deduction = 0.0
            ELSE f.deduction = p.old_deduction END AS usable
FROM findings f
JOIN reprice_calls c ON c.call_id = f.call_id AND c.current_at = f.scored_at
JOIN reprice_rules p USING (rule_id)
WHERE true{span}
"""

# Calls whose every rule has findings and every finding is usable, with their new score (verdicts.total).
_SCORES = """
CREATE OR REPLACE TEMP TABLE reprice_scores AS
SELECT call_id, before, current_at, fatal,
       CASE WHEN fatal THEN 0.0 ELSE round(greatest(0.0, 100.0 - deducted), 2) END AS score
FROM (
    SELECT f.call_id, c.before, c.current_at,
           bool_or(f.fatal AND NOT f.passed AND NOT f.needs_review) AS fatal,
           coalesce(sum(f.deduction) FILTER (WHERE NOT f.passed AND NOT f.needs_review), 0.0) AS deducted
    FROM reprice_findings f JOIN reprice_calls c USING (call_id)
    GROUP BY f.call_id, c.before, c.current_at
    HAVING count(DISTINCT f.rule_id) = $rules AND bool_and(f.usable)
)
"""


def reprice(
    db: duckdb.DuckDBPyConnection,
    call_ids: Sequence[str],
    stored_hash: str,
    engine: str,
    card: Scorecard,
    rules: Sequence[RulePricing],
    scored_at: datetime,
) -> list[Repriced]:
    """Re-price the calls that qualify, in the caller's transaction; returns them (the others are
    the caller's). Nothing is written for a call whose card is the stored one (its score would not
    change: `bulk.unchanged`)."""
    import pandas as pd

    if not call_ids or not rules:
        return []
    db.register(_IDS, pd.DataFrame({"call_id": pd.Series(list(call_ids), dtype=object)}))
    db.register(
        "reprice_rules_frame",
        pd.DataFrame(
            {
                "rule_id": pd.Series([r.rule_id for r in rules], dtype=object),
                "pos": pd.Series(range(len(rules)), dtype="int32"),
                "reprice": pd.Series([r.reprice for r in rules], dtype="bool"),
                "old_deduction": pd.Series([r.old_deduction for r in rules], dtype="float64"),
                "new_deduction": pd.Series([r.new_deduction for r in rules], dtype="float64"),
                "new_category": pd.Series([r.new_category for r in rules], dtype=object),
                "new_fatal": pd.Series([r.new_fatal for r in rules], dtype="bool"),
                "old_note": pd.Series([r.old_note for r in rules], dtype=object),
                "new_note": pd.Series([r.new_note for r in rules], dtype=object),
            }
        ),
    )
    try:
        db.execute("CREATE OR REPLACE TEMP TABLE reprice_rules AS SELECT * FROM reprice_rules_frame")
        db.execute(_CANDIDATES, {"stored": stored_hash, "engine": engine})
        during, span = span_filter("f", call_span(db, "reprice_calls"))
        db.execute(_FINDINGS.format(span=during), span)
        db.execute(_SCORES, {"rules": len(rules)})
        rows = db.execute(
            "SELECT call_id, before, score, fatal, max(current_at) OVER () FROM reprice_scores"
        ).fetchall()
        if not rows:
            return []
        store = stored_hash != card.hash
        if store:
            latest = rows[0][4]
            if latest is not None and scored_at <= latest:
                scored_at = latest + timedelta(microseconds=1)
            db.execute(
                "INSERT INTO scorecards VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [card.hash, card.name, str(card.path) if card.path else None, card.content, scored_at],
            )
            _write(db, card.hash, engine, scored_at)
        return [Repriced(r[0], r[1], r[2], r[3], store) for r in rows]
    finally:
        db.unregister(_IDS)
        db.unregister("reprice_rules_frame")
        for table in ("reprice_scores", "reprice_findings", "reprice_calls", "reprice_rules"):
            db.execute(f"DROP TABLE IF EXISTS {table}")


def _write(db: duckdb.DuckDBPyConnection, card_hash: str, engine: str, scored_at: datetime) -> None:
    """The new current scores and their findings (the rows `bulk.save_scores` writes)."""
    db.execute(
        "UPDATE scores SET is_current = false WHERE is_current "
        "AND call_id IN (SELECT call_id FROM reprice_scores)"
    )
    db.execute(
        "INSERT INTO scores (call_id, scored_at, scorecard_hash, score, fatal, is_current, engine) "
        "SELECT call_id, $at, $card, score, fatal, true, $engine FROM reprice_scores",
        {"at": scored_at, "card": card_hash, "engine": engine},
    )
    db.execute(
        "INSERT INTO findings (call_id, scored_at, idx, rule_id, title, category, passed, deduction, "
        "fatal, start_s, end_s, speaker, evidence, confidence, needs_review, replacement, scorecard_hash, "
        "call_started_at) "
        "SELECT call_id, $at, (row_number() OVER (PARTITION BY call_id ORDER BY pos, stored_idx) - 1)::INTEGER, "
        "rule_id, title, category, passed, deduction, fatal, start_s, end_s, speaker, evidence, confidence, "
        "needs_review, replacement, $card, call_started_at FROM reprice_findings "
        "WHERE call_id IN (SELECT call_id FROM reprice_scores) "
        "ORDER BY call_started_at, call_id, pos, stored_idx",
        {"at": scored_at, "card": card_hash},
    )
