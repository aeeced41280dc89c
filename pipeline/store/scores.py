"""The scorecard stage's results: scores, findings, scorecards.

One scoring of a call = one `scores` row + its `findings`; re-scoring adds a row marked
is_current and un-marks the older ones, so history stays with the scorecard hash it used.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb

from pipeline.records import CallScore, Finding
from pipeline.store.connection import StoreBase, now

if TYPE_CHECKING:
    from pipeline.rules.scorecard import Scorecard


def engine_version() -> str:
    """The version of the rules engine that made the scores being stored (scores.engine)."""
    from pipeline.rules.incremental import ENGINE_VERSION

    return ENGINE_VERSION


# A per-call read filters on call_id alone and tests the rest in its result: DuckDB reads through
# the call_id index only when that is the scan's only filter (with `AND is_current` it read all
# 25 million findings of a million-call store: 0.29 s of `callqa show`'s 1 s).


def current_score_row(db: duckdb.DuckDBPyConnection, call_id: str) -> dict | None:
    cursor = db.execute(
        "SELECT s.scored_at, s.scorecard_hash, c.name, s.score, s.fatal FROM "
        "(SELECT * FROM scores WHERE call_id = ? ORDER BY is_current DESC LIMIT 1) s "
        "JOIN scorecards c USING (scorecard_hash) WHERE s.is_current",
        [call_id],
    )
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None


FINDING_COLUMNS = (
    "rule_id, passed, deduction, start_s, end_s, speaker, evidence, confidence, needs_review, "
    "title, category, fatal, replacement"
)


def finding_from_row(r: tuple) -> Finding:
    """A `findings` row (FINDING_COLUMNS, in that order: Finding's own field order) as a Finding."""
    return Finding(*r)


def findings_of(db: duckdb.DuckDBPyConnection, call_id: str, scored_at: datetime) -> tuple[Finding, ...]:
    rows = db.execute(
        f"SELECT scored_at = ? AS wanted, {FINDING_COLUMNS} FROM findings WHERE call_id = ? ORDER BY idx",
        [scored_at, call_id],
    ).fetchall()
    return tuple(finding_from_row(r[1:]) for r in rows if r[0])


def insert_score(db: duckdb.DuckDBPyConnection, call_id: str, score: CallScore, scorecard: Scorecard) -> bool:
    if score.scorecard_hash != scorecard.hash:
        raise ValueError(f"score of {call_id} was computed with another scorecard than the one given")
    return insert_score_row(db, call_id, score, scorecard)


def insert_score_row(
    db: duckdb.DuckDBPyConnection, call_id: str, score: CallScore, scorecard: Scorecard | None
) -> bool:
    current = current_score_row(db, call_id)
    if (
        current is not None
        and current["scorecard_hash"] == score.scorecard_hash
        and current["score"] == score.score
        and current["fatal"] == score.fatal
        and findings_of(db, call_id, current["scored_at"]) == score.findings
    ):
        return False
    scored_at = now()
    if current is not None and scored_at <= current["scored_at"]:
        scored_at = current["scored_at"] + timedelta(microseconds=1)
    if scorecard is not None:
        db.execute(
            "INSERT INTO scorecards VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                scorecard.hash,
                scorecard.name,
                str(scorecard.path) if scorecard.path else None,
                scorecard.content,
                scored_at,
            ],
        )
    db.execute("UPDATE scores SET is_current = false WHERE call_id = ? AND is_current", [call_id])
    db.execute(
        "INSERT INTO scores (call_id, scored_at, scorecard_hash, score, fatal, is_current, engine) "
        "VALUES (?, ?, ?, ?, ?, true, ?)",
        [call_id, scored_at, score.scorecard_hash, score.score, score.fatal, engine_version()],
    )
    if score.findings:
        started_at = db.execute("SELECT started_at FROM calls WHERE call_id = ?", [call_id]).fetchone()
        db.executemany(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    call_id,
                    scored_at,
                    i,
                    f.rule_id,
                    f.title,
                    f.category,
                    f.passed,
                    f.deduction,
                    f.fatal,
                    f.start,
                    f.end,
                    f.speaker,
                    f.evidence,
                    f.confidence,
                    f.needs_review,
                    f.replacement,
                    score.scorecard_hash,
                    started_at[0] if started_at else None,  # pipeline/store/call_time.py
                ]
                for i, f in enumerate(score.findings)
            ],
        )
    return True


class ScoreStore(StoreBase):
    def save_score(self, call_id: str, score: CallScore, scorecard: Scorecard) -> bool:
        """Make `score` the call's current score, in one transaction (scorecard, score, findings).

        Returns False and writes nothing when the current score already comes from the same scorecard
        with the same findings: re-scoring without a change adds no history.
        """
        with self.transaction() as db:
            return insert_score(db, call_id, score, scorecard)

    def save_decided_score(self, call_id: str, score: CallScore, db: duckdb.DuckDBPyConnection) -> bool:
        """Make `score` current, inside the caller's transaction `db`: the current findings with people's
        decisions applied (pipeline/decisions.py), same scorecard. False when nothing changed."""
        return insert_score_row(db, call_id, score, None)

    def current_score(self, call_id: str) -> CallScore | None:
        """The call's current score with its findings, or None when it was never scored."""
        row = current_score_row(self.db, call_id)
        if row is None:
            return None
        return CallScore(
            score=row["score"],
            fatal=row["fatal"],
            findings=findings_of(self.db, call_id, row["scored_at"]),
            scorecard_name=row["name"],
            scorecard_hash=row["scorecard_hash"],
        )

    def current_findings(self, call_id: str) -> tuple[Finding, ...]:
        current = self.current_score(call_id)
        return current.findings if current is not None else ()

    def score_history(self, call_id: str) -> list[dict]:
        """Every scoring of the call, newest first: scored_at, scorecard_hash, name, score, fatal, is_current."""
        return self._dicts(
            "SELECT s.scored_at, s.scorecard_hash, c.name, s.score, s.fatal, s.is_current "
            "FROM scores s JOIN scorecards c USING (scorecard_hash) WHERE s.call_id = ? ORDER BY s.scored_at DESC",
            [call_id],
        )

    def scorecard_content(self, scorecard_hash: str) -> str | None:
        row = self.db.execute(
            "SELECT content FROM scorecards WHERE scorecard_hash = ?", [scorecard_hash]
        ).fetchone()
        return row[0] if row else None
