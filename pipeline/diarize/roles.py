"""Which speaker is the agent, decided from what each one says in their first turns.

Agents open with fixed service phrases (您好…客服中心…工号…请问有什么可以帮您); customers rarely
do. In mono recordings this turns cluster labels into roles; in stereo recordings, where the
channel layout already says who is who, it is a cross-check that catches a mis-configured layout.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pipeline.records import LAYOUT_LABELS_ZH, SOURCE_LABELS_ZH, RoleAssignment, Utterance
from pipeline.rules.matching import canonical_text, heard_as


def agent_cue_scores(
    utterances: Sequence[Utterance], cues: Sequence[str], first_turns: int
) -> dict[str, int]:
    """Number of agent cue phrases in each speaker's first `first_turns` utterances, heard as the
    same characters or homophones (matching.heard_as): whisper wrote 上午好，星河电器客服，工号三二七
    as 笑我好，心何变其克服，功耗散气 on a tuning call, and the customer's 转接其他客服 then outweighed
    the agent's opening, swapping the roles of the whole call."""
    wanted = [canonical_text(cue) for cue in cues]
    seen: dict[str, int] = defaultdict(int)
    scores: dict[str, int] = defaultdict(int)
    for utterance in sorted(utterances, key=lambda u: u.start):
        if seen[utterance.speaker] >= first_turns:
            continue
        seen[utterance.speaker] += 1
        heard = canonical_text(utterance.text)
        scores[utterance.speaker] += sum(1 for cue in wanted if heard_as(cue, heard))
    return dict(scores)


def assign_roles(utterances: Sequence[Utterance], cues: Sequence[str], first_turns: int) -> RoleAssignment:
    """Map cluster labels to agent/customer. The label with the most agent cues is the agent.

    Without any cue the first speaker is taken as the agent (inbound calls are answered by the
    agent), with low confidence so that a supervisor can see it is a guess.
    """
    labels = sorted(
        {u.speaker for u in utterances}, key=lambda s: min(u.start for u in utterances if u.speaker == s)
    )
    if not labels:
        return RoleAssignment(mapping={}, source="none", confidence=0.0)
    scores = agent_cue_scores(utterances, cues, first_turns)
    ranked = sorted(labels, key=lambda label: -scores.get(label, 0))  # stable: ties keep speaking order
    best = scores.get(ranked[0], 0)
    runner_up = scores.get(ranked[1], 0) if len(ranked) > 1 else 0
    if best == 0:
        agent, source, confidence = labels[0], "first-speaker", 0.5
    else:
        agent, source = ranked[0], "text-cues"
        # 1.0 when only one speaker uses agent phrases, 0.5 when both use them equally often.
        confidence = round(0.5 + 0.5 * (best - runner_up) / (best + runner_up), 2)
    mapping = {label: ("agent" if label == agent else "customer") for label in labels}
    return RoleAssignment(mapping=mapping, source=source, confidence=confidence)


# A customer who says almost nothing in a call with real conversation is more often two voices that
# the mono clustering put into one speaker than a silent customer (tuning set: the one collapsed call
# had 3 % of the speech time for the customer, the 15 others 31–48 %). Who said what is then unknown.
MIN_CUSTOMER_SHARE = 0.10
MIN_SPEECH_FOR_SHARE_S = 30.0
MERGED_VOICES_CONFIDENCE = 0.4


def merged_voices_check(
    roles: RoleAssignment, utterances: Sequence[Utterance]
) -> tuple[RoleAssignment, str | None]:
    """Mono: lower the roles' confidence when the customer's share of the speech is too small for
    a two-party call, so that a person looks before the call is scored into the money."""
    spoken: dict[str, float] = defaultdict(float)
    for u in utterances:
        spoken[roles.mapping.get(u.speaker, "customer")] += max(0.0, u.end - u.start)
    total = spoken["agent"] + spoken["customer"]
    if total < MIN_SPEECH_FOR_SHARE_S or spoken["customer"] >= MIN_CUSTOMER_SHARE * total:
        return roles, None
    share = spoken["customer"] / total
    warning = (
        f"只分出很少的客户语音（占说话时间的 {share:.0%}）：两个人的声音可能被当成了一个人，"
        "客服和客户的话可能混在一起，待人工确认角色"
    )
    confidence = min(roles.confidence, MERGED_VOICES_CONFIDENCE)
    return RoleAssignment(roles.mapping, roles.source, confidence), warning


# Roles decided with less confidence than this (a layout the text contradicts, no service phrase on
# either side, a mono call whose agent is only guessed) wait for a person: the call is stored with its
# transcript, metrics and score, but stays out of the ranking and money until `callqa roles` decides.
ROLE_REVIEW_BELOW = 0.6


def _layout_zh(layout: str, source: str) -> str:
    return f"{LAYOUT_LABELS_ZH.get(layout, layout)}，来自{SOURCE_LABELS_ZH.get(source, source)}"


def check_stereo_roles(
    utterances: Sequence[Utterance], layout: str, layout_source: str, cues: Sequence[str], first_turns: int
) -> tuple[RoleAssignment, str | None]:
    """Roles come from the channel layout; the text only confirms or raises a warning."""
    scores = agent_cue_scores(utterances, cues, first_turns)
    agent_score, customer_score = scores.get("agent", 0), scores.get("customer", 0)
    source = f"channel:{layout}({layout_source})"
    identity = {"agent": "agent", "customer": "customer"}
    if customer_score > agent_score and customer_score >= 2:
        warning = (
            f"客户声道听起来像客服（客服用语 {customer_score} 次，客服声道只有 {agent_score} 次）："
            f"请检查声道设置（{_layout_zh(layout, layout_source)}）"
        )
        return RoleAssignment(identity, source, 0.5), warning
    if agent_score == 0 and customer_score == 0:
        warning = (
            f"两个声道都没有听到客服用语，无法确认哪一方是客服（{_layout_zh(layout, layout_source)}）："
            "待人工确认角色"
        )
        return RoleAssignment(identity, source, 0.5), warning
    return RoleAssignment(identity, source, 1.0), None
