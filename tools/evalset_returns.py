"""Holds that end and go on in other ways, for the tuning set (`make_evalset.py --return-variants`).

The tuning batches so far come back from a hold the same way: the agent speaks first, thanks first
(or not at all), then the answer, and the customer waits in silence or with a word. People do more:

* the answer first and the thanks at its end (查到了，您的订单明天送到，不好意思让您等了这么久);
* the thanks alone, a breath, then the answer;
* the customer speaks first at the end of the wait (喂？ / 喂，查到了吗？) and the agent answers
  在的，让您久等了 …;
* the customer says more than a word when asked to wait or during a check-in (好的，那你快一点啊，
  我等下还要出门), or nothing at all;

Whether a hold is asked and thanked stays the main generator's draw, so the truth (asked / thanked
/ check-ins) and the verdicts read off it keep their meaning; only the way it is said moves. Each
hold draws its form here from the call's own stream.

This phrase bank is written for the tuning set only; the held-out set has its own, written
independently (tools/make_testset.py), and the two must not be merged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# The customer's answer to the ask, longer than a word (the hold starts after it).
LONG_ACKS = [
    "好的，那你快一点啊，我等下还要出门。",
    "行，没问题，我就在这儿等着。",
    "嗯好的，麻烦你帮我好好查一下。",
]
# The customer's answer to a check-in, longer than a word; the agent goes back to waiting.
LONG_REPLIES = [
    "没事没事，你慢慢查，我不着急的。",
    "好的，那麻烦你快一点，我这边还有事情。",
    "嗯，我知道了，那我再等一会儿吧。",
]
# The customer breaking the silence just before the agent comes back.
PROMPTS = ["喂？", "喂，您好？", "喂，查到了吗？"]
# The agent answering that prompt, with thanks for the waiting (thanked) or without.
PROMPT_ANSWERS_THANKED = [
    "在的，不好意思让您久等了，",
    "在的在的，让您久等了，",
    "您好您好，感谢您的耐心等待，",
]
PROMPT_ANSWERS = ["在的，", "在的在的，查到了，", "您好，我在的，"]
# Thanks said after the answer, at the end of the same turn.
THANKS_AFTER = ["，不好意思让您等了这么久。", "，让您久等了。", "，感谢您的耐心等待。"]
# Thanks said alone, then a breath, then the answer.
THANKS_ALONE = ["让您久等了。", "不好意思，让您久等了。", "感谢您的耐心等待。"]


@dataclass(frozen=True)
class ReturnPlan:
    """How one hold is said: the customer's answer to the ask and to each check-in, the return."""

    ack: str | None  # None: the main generator's short answer; "" : the customer says nothing
    long_replies: tuple[str | None, ...]  # per check-in, a long answer or None (keep the other streams')
    form: str  # "first" (as before), "after", "alone", "prompt"
    prompt: str | None
    lead: str | None  # what the agent says first after a prompt
    thanks: str | None  # the thanks text for "after" / "alone"

    def comeback(
        self, content: str, opening: str, thanked: bool, rng: random.Random
    ) -> list[tuple[str, float]]:
        """What the agent says on coming back, as (text, gap before it): the thanks and `content`
        in this plan's form ("first": `opening` + `content`, as the other streams word it)."""
        if self.form == "prompt":
            return [((self.lead or "") + content, 0.5)]
        if thanked and self.form == "after":
            return [(content.rstrip("。") + (self.thanks or ""), 0.6)]
        if thanked and self.form == "alone":
            return [(self.thanks or "", 0.6), (content, round(rng.uniform(1.0, 1.8), 2))]
        return [(opening + content, 0.6)]


def plan_return(rng: random.Random, thanked: bool, checkins: int) -> ReturnPlan:
    ack_draw = rng.random()
    ack = rng.choice(LONG_ACKS) if ack_draw < 0.3 else "" if ack_draw < 0.45 else None
    long_replies = tuple(rng.choice(LONG_REPLIES) if rng.random() < 0.35 else None for _ in range(checkins))
    forms = ["first", "after", "alone", "prompt"] if thanked else ["first", "prompt"]
    form = rng.choice(forms)
    prompt = rng.choice(PROMPTS) if form == "prompt" else None
    lead = None
    if form == "prompt":
        lead = rng.choice(PROMPT_ANSWERS_THANKED if thanked else PROMPT_ANSWERS)
    thanks = (
        rng.choice(THANKS_AFTER) if form == "after" else rng.choice(THANKS_ALONE) if form == "alone" else None
    )
    return ReturnPlan(ack, long_replies, form, prompt, lead, thanks)
