"""The scorecard stage: rules/*.yaml over a call's utterances and metrics → findings and a score.

    from pipeline.rules import load_scorecard, score_call
    card = load_scorecard("rules/default.yaml")          # validated; refuses a broken file
    score = score_call(utterances, metrics, meta, card)  # pure: CallScore(score, fatal, findings, …)
    store.save_score(meta.call_id, score, card)          # history kept, new row current

Writing and tuning a scorecard: docs/scorecard.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.rules.engine import score_call
    from pipeline.rules.scorecard import (
        DEFAULT_SCORECARD,
        Scorecard,
        load_scorecard,
        load_scorecards,
        parse_scorecard,
        scorecard_for,
    )

# Imported on first use: the metrics stage imports pipeline.rules.matching (the one phrase matcher)
# and must not pull in the scoring engine with it.
_HOMES = {"score_call": "pipeline.rules.engine"} | dict.fromkeys(
    (
        "DEFAULT_SCORECARD",
        "Scorecard",
        "load_scorecard",
        "load_scorecards",
        "parse_scorecard",
        "scorecard_for",
    ),
    "pipeline.rules.scorecard",
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


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'pipeline.rules' has no attribute {name!r}")
