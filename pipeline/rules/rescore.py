"""Re-scoring stored calls: utterances and metrics from the store, rules again, no ASR.

A supervisor tunes a rule in the morning and sees the effect at once; every earlier score stays in
the store with the hash of the scorecard that produced it.

At a year's scale (`rescore`) the calls go in chunks: each chunk's inputs are read with one query
per table, scored by the rules engine (in a pool of worker processes when there are many calls and
more than one core: the engine is nearly all of the time), and its changed scores written in one
transaction (pipeline/store/bulk.py). The next chunk is read while the workers score this one.
With one scorecard, an edit of points only (deductions, fatal flags, categories) is first applied
as set-based SQL to every call whose stored findings qualify (pipeline/store/reprice.py); the rest
go through the chunks. `rescore_call` does the same for one call; all give the same rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from multiprocessing import get_context
from pathlib import Path

from pipeline.cycles import collector_paused
from pipeline.decisions import Decision, with_decisions, with_verdicts
from pipeline.records import CallScore
from pipeline.rules.engine import score_call
from pipeline.rules.incremental import ENGINE_VERSION, Plan, assemble, plan, score_rules
from pipeline.rules.scorecard import REPO_RULES, Scorecard, card_for_call, load_scorecard, load_scorecards
from pipeline.rules.verdicts import review_note
from pipeline.store import Store
from pipeline.store.bulk import NewScore, StoredCall, load_calls, save_scores, unchanged
from pipeline.store.reprice import RulePricing, reprice

CHUNK_CALLS = 2000  # calls read, scored and written together (about 50 MB of inputs in memory)
LIGHT_CHUNK_CALLS = 20_000  # calls whose stored findings are read together to decide what to redo
POOL_FROM_CALLS = 400  # fewer calls are scored in this process: starting workers costs seconds
CALLS_PER_TASK = 100  # calls sent to a worker at once


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


def rescore(
    store: Store, scorecards: list[Scorecard], since: date | None = None, workers: int | None = None
) -> list[Rescored]:
    """Score every stored call (started on or after `since`) again and store the results.
    `workers`: engine processes (default: one per core when there are many calls).

    Calls whose stored findings this engine made keep those of the rules the cards did not change
    and have them re-priced where only points changed (pipeline/rules/incremental.py); only the
    rules changed run again, and a call needing none is scored here without reading its transcript."""
    with collector_paused():
        return _rescore(store, scorecards, since, workers)


def _rescore(
    store: Store, scorecards: list[Scorecard], since: date | None, workers: int | None
) -> list[Rescored]:
    call_ids = store.call_ids_since(since)
    plans = _Plans(scorecards, store)
    results: dict[str, Rescored] = {}
    if len(scorecards) == 1:  # one card judges every call: points-only plans run as SQL
        results = {r.call_id: r for r in _reprice_in_sql(store, scorecards[0], plans, call_ids)}
    rest = [c for c in call_ids if c not in results] if results else call_ids
    engine_ids: list[str] = []
    for i in range(0, len(rest), LIGHT_CHUNK_CALLS):
        kept: list[StoredCall] = []
        scored: list[tuple[int, CallScore]] = []
        for call in load_calls(store.db, rest[i : i + LIGHT_CHUNK_CALLS], inputs=False):
            how = plans.for_call(call)
            score = None
            if how is not None and call.current is not None and not how.needs_engine:
                score = assemble(how, call.current, {})
            if how is None or score is None:
                engine_ids.append(call.meta.call_id)
                continue
            kept.append(call)
            scored.append((scorecards.index(how.card), score))
        done: Future[list[tuple[int, CallScore]]] = Future()
        done.set_result(scored)
        for r in _store_chunk(store, scorecards, kept, [done]):
            results[r.call_id] = r
    for r in _rescore_with_engine(store, scorecards, plans, engine_ids, workers):
        results[r.call_id] = r
    return [results[c] for c in call_ids if c in results]


def _reprice_in_sql(store: Store, card: Scorecard, plans: _Plans, call_ids: list[str]) -> list[Rescored]:
    """The calls whose stored findings only need re-pricing (or nothing), re-priced and written by
    set-based SQL (pipeline/store/reprice.py): the same rows as `assemble` and `save_scores`, some
    0.5 ms of Python per call less. Calls it cannot take are left to the chunks."""
    out: list[Rescored] = []
    stored_hashes = [
        row[0]
        for row in store.db.execute(
            "SELECT DISTINCT scorecard_hash FROM scores WHERE is_current AND engine = ?", [ENGINE_VERSION]
        ).fetchall()
    ]
    for stored_hash in sorted(stored_hashes):
        how = plans.plan_for(card, stored_hash)
        if how is None or how.needs_engine:
            continue
        rules = []
        for rule in card.spec.rules:
            old, new = how.reprice.get(rule.id, (rule, rule))
            rules.append(
                RulePricing(
                    rule.id,
                    rule.id in how.reprice,
                    old.deduction,
                    new.deduction,
                    new.category,
                    new.fatal,
                    review_note(old.deduction),
                    review_note(new.deduction),
                )
            )
        with store.transaction() as db:
            done = reprice(db, call_ids, stored_hash, ENGINE_VERSION, card, rules, datetime.now(UTC))
        out += [Rescored(r.call_id, r.before, r.after, r.fatal, r.stored, card) for r in done]
    return out


class _Plans:
    """The incremental plan of each (card, stored card) pair, made once."""

    def __init__(self, scorecards: list[Scorecard], store: Store) -> None:
        self.scorecards = scorecards
        self.contents = dict(store.db.execute("SELECT scorecard_hash, content FROM scorecards").fetchall())
        self.made: dict[tuple[str, str], Plan | None] = {}

    def for_call(self, call: StoredCall) -> Plan | None:
        """None: score the call in full (no current score, findings of another engine version,
        metrics computed again since it was scored, or people's verdicts, which change findings
        after the engine)."""
        if call.current is None or call.engine != ENGINE_VERSION or call.decisions:
            return None
        if call.metrics_at is not None and call.current_at is not None and call.metrics_at > call.current_at:
            return None
        return self.plan_for(card_for_call(call.meta, self.scorecards), call.current.scorecard_hash)

    def plan_for(self, card: Scorecard, stored_hash: str) -> Plan | None:
        key = (card.hash, stored_hash)
        if key not in self.made:
            self.made[key] = plan(card, self.contents.get(stored_hash))
        return self.made[key]


def _rescore_with_engine(
    store: Store, scorecards: list[Scorecard], plans: _Plans, call_ids: list[str], workers: int | None
) -> list[Rescored]:
    """The calls that need the engine, in chunks: read, scored in the pool, written."""
    chunks = [call_ids[i : i + CHUNK_CALLS] for i in range(0, len(call_ids), CHUNK_CALLS)]
    workers = _worker_count(workers, len(call_ids))
    pool = (
        ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_use_cards, initargs=(scorecards,)
        )
        if workers > 1
        else None
    )
    _use_cards(scorecards)
    results: list[Rescored] = []
    pending: tuple[list[StoredCall], list[Future[list[tuple[int, CallScore]]]]] | None = None
    try:
        for chunk in [*chunks, None]:
            scoring = None
            if chunk is not None:
                calls = load_calls(store.db, chunk)
                scoring = (calls, _submit(pool, calls, [plans.for_call(c) for c in calls]))
            if pending is not None:
                results.extend(_store_chunk(store, scorecards, *pending))
            pending = scoring
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


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


def _worker_count(asked: int | None, calls: int) -> int:
    if asked is not None:
        return max(1, asked)
    if calls < POOL_FROM_CALLS:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), calls // CALLS_PER_TASK))


_cards: list[Scorecard] = []  # the scorecards of this process (a worker's, set once at its start)


def _use_cards(scorecards: list[Scorecard]) -> None:
    _cards[:] = scorecards


def score_stored(
    calls: Sequence[StoredCall], plans: Sequence[Plan | None] | None = None
) -> list[tuple[int, CallScore]]:
    """Each call's new score (people's verdicts applied) and the index of the scorecard it used.
    With a plan, only the rules it names run; the other findings come from the stored score."""
    out = []
    for call, how in zip(calls, plans or [None] * len(calls), strict=True):
        card = card_for_call(call.meta, _cards)
        score = None
        if how is not None and call.current is not None and how.card.hash == card.hash:
            fresh = score_rules(call.utterances, call.metrics, call.meta, card, how.evaluate)
            score = assemble(how, call.current, fresh)
        if score is None:
            score = score_call(call.utterances, call.metrics, call.meta, card)
        score = with_verdicts(score, [Decision(*d) for d in call.decisions], card)
        out.append((next(i for i, c in enumerate(_cards) if c is card), score))
    return out


def _submit(
    pool: ProcessPoolExecutor | None, calls: list[StoredCall], plans: list[Plan | None]
) -> list[Future[list[tuple[int, CallScore]]]]:
    if pool is None:
        done: Future[list[tuple[int, CallScore]]] = Future()
        done.set_result(score_stored(calls, plans))
        return [done]
    return [
        pool.submit(score_stored, calls[i : i + CALLS_PER_TASK], plans[i : i + CALLS_PER_TASK])
        for i in range(0, len(calls), CALLS_PER_TASK)
    ]


def _store_chunk(
    store: Store,
    scorecards: list[Scorecard],
    calls: list[StoredCall],
    futures: list[Future[list[tuple[int, CallScore]]]],
) -> list[Rescored]:
    """Write the chunk's changed scores in one transaction; nothing for a score already current."""
    scored = [item for future in futures for item in future.result()]
    results, new = [], []
    for call, (card_index, score) in zip(calls, scored, strict=True):
        stored = not unchanged(score, call.current)
        if stored:
            new.append(NewScore(call.meta.call_id, score))
        before = call.current.score if call.current else None
        results.append(
            Rescored(call.meta.call_id, before, score.score, score.fatal, stored, scorecards[card_index])
        )
    replaced = [c.current_at for c in calls if c.current_at is not None]
    if new:
        with store.transaction() as db:
            save_scores(db, new, scorecards, datetime.now(UTC), max(replaced) if replaced else None)
    return results
