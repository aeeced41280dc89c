"""Re-scoring stored calls: utterances and metrics from the store, rules again, no ASR.

A supervisor tunes a rule in the morning and sees the effect at once; every earlier score stays in
the store with the hash of the scorecard that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipeline.decisions import with_decisions
from pipeline.rules.engine import score_call
from pipeline.rules.scorecard import REPO_RULES, Scorecard, card_for_call, load_scorecard, load_scorecards
from pipeline.store import Store


@dataclass(frozen=True)
class Rescored:
    call_id: str
    before: float | None
    after: float
    fatal: bool
    stored: bool  # False: the current score was already this one (nothing written)
    scorecard: Scorecard


def scorecards_from(path: Path | None, folder: Path | None = None) -> list[Scorecard]:
    """`--scorecard FILE` (one card for every call), else every scorecard in the configured folder
    (settings.scorecards), else the project's rules/."""
    if path is not None:
        return [load_scorecard(path)]
    return load_scorecards(folder or REPO_RULES)


def rescore(store: Store, scorecards: list[Scorecard], since: date | None = None) -> list[Rescored]:
    """Score every stored call (started on or after `since`) again and store the results."""
    results = [rescore_call(store, call_id, scorecards) for call_id in store.call_ids_since(since)]
    return [r for r in results if r is not None]


def rescore_call(store: Store, call_id: str, scorecards: list[Scorecard]) -> Rescored | None:
    """Score one stored call again and store the result (None for an unknown call)."""
    meta = store.load_meta(call_id)
    if meta is None:
        return None
    card = card_for_call(meta, scorecards)
    before = store.current_score(call_id)
    score = score_call(store.load_utterances(call_id), store.load_metrics(call_id), meta, card)
    score = with_decisions(store, call_id, score, card)  # people's verdicts (reviews, appeals) stand
    stored = store.save_score(call_id, score, card)
    return Rescored(call_id, before.score if before else None, score.score, score.fatal, stored, card)
