"""The scorecard stage: rules/*.yaml over a call's utterances and metrics → findings and a score.

    from pipeline.rules import load_scorecard, score_call
    card = load_scorecard("rules/default.yaml")          # validated; refuses a broken file
    score = score_call(utterances, metrics, meta, card)  # pure: CallScore(score, fatal, findings, …)
    store.save_score(meta.call_id, score, card)          # history kept, new row current

Writing and tuning a scorecard: docs/scorecard.md.
"""

from pipeline.rules.engine import score_call
from pipeline.rules.scorecard import (
    DEFAULT_SCORECARD,
    Scorecard,
    load_scorecard,
    load_scorecards,
    parse_scorecard,
    scorecard_for,
)

__all__ = [
    "DEFAULT_SCORECARD",
    "Scorecard",
    "load_scorecard",
    "load_scorecards",
    "parse_scorecard",
    "score_call",
    "scorecard_for",
]
