"""A person's decision on who is the agent in a call whose roles were doubtful.

The batch stores such a call whole (transcript, metrics, score) but keeps it out of the ranking and
money (`pipeline.diarize.roles.ROLE_REVIEW_BELOW`): a swapped stereo layout would otherwise score the
customer as the agent. Swapping or confirming needs no ASR: the stored utterances and voice activity
change hands, the metrics are recomputed and the call is scored again (the old score stays in the
history), and the decision is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.audit import audit_kwargs
from pipeline.config import Settings
from pipeline.errors import CallQAError
from pipeline.process import recompute_metrics, scorecards
from pipeline.rules.rescore import Rescored, rescore_call
from pipeline.store import Store


@dataclass(frozen=True)
class RoleDecision:
    call_id: str
    swapped: bool
    role_source_before: str
    rescored: Rescored


def decide_roles(settings: Settings, call_id: str, swap: bool, command: str) -> RoleDecision:
    cards = scorecards(settings)  # a broken scorecard stops here, before anything changes
    with Store.from_settings(settings) as store:
        call = store.call(call_id)
        if call is None:
            raise CallQAError(f"{settings.db} 中没有已处理的通话 {call_id}")
        source = "person:swapped" if swap else "person:confirmed"
        store.set_roles(call_id, swap, source)
        recompute_metrics(store, call_id, settings, cards)
        rescored = rescore_call(store, call_id, cards)
        assert rescored is not None  # the call exists
        store.add_audit(
            "roles",
            target=call_id,
            records=1,
            redacted=None,
            details={
                "decision": "swap" if swap else "confirm",
                "role_source_before": call["role_source"],
                "score_before": rescored.before,
                "score_after": rescored.after,
            },
            **audit_kwargs(command),
        )
    return RoleDecision(call_id, swap, call["role_source"], rescored)
