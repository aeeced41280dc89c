"""Words people read about money: each policy rule and each money line, in Chinese.

HTML, CSV and XLSX all take their texts from here, so a line reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.reports.events import KIND_LABELS_ZH
from pipeline.reports.monthly import AgentMonth, MoneyLine
from pipeline.reports.policy import Policy

RULE_NAMES_ZH: dict[str, str] = {
    "rank_reward": "名次奖",
    "lowest_rank_penalty": "末位扣款",
    "praise": "客户表扬奖",
    "complaint": "服务态度投诉",
    "lost_order": "丢单",
    "bad_review": "恶意评价",
}


@dataclass(frozen=True)
class PolicyRule:
    key: str
    name: str
    text: str

    @property
    def anchor(self) -> str:
        return f"policy-{self.key}"


def policy_rules(policy: Policy) -> tuple[PolicyRule, ...]:
    ranks = "，".join(f"第 {r} 名 {money(a)} 元" for r, a in sorted(policy.rank_rewards.amounts.items()))
    tiers = "，".join(f"满 {t.min_count} 次 {money(t.amount)} 元" for t in policy.praise_tiers)
    unit = policy.per_event
    return (
        PolicyRule(
            "rank_reward",
            RULE_NAMES_ZH["rank_reward"],
            f"{ranks}；月度均分须达到（≥）{policy.rank_rewards.qualifying_score:g} 分。"
            f"当月已评分通话不少于 {policy.ranking.min_scored_calls} 通才参加排名；"
            "均分（保留两位小数）相同者名次并列，各得该名次金额。",
        ),
        PolicyRule(
            "lowest_rank_penalty",
            RULE_NAMES_ZH["lowest_rank_penalty"],
            f"参加排名且名次最后的客服，月度均分低于（<）{policy.lowest_rank_penalty.below_score:g} 分时 "
            f"{money(policy.lowest_rank_penalty.amount)} 元；全员并列时没有末位。",
        ),
        PolicyRule(
            "praise",
            RULE_NAMES_ZH["praise"],
            f"当月客户表扬次数：{tiers}（取达到的最高一档；标为不属实的表扬不计）。",
        ),
        PolicyRule(
            "complaint",
            RULE_NAMES_ZH["complaint"],
            f"服务态度投诉经核实属实，每次 {money(unit.complaint)} 元。",
        ),
        PolicyRule(
            "lost_order",
            RULE_NAMES_ZH["lost_order"],
            f"不回复或态度不好导致丢单，经核实，每次 {money(unit.lost_order)} 元。",
        ),
        PolicyRule(
            "bad_review",
            RULE_NAMES_ZH["bad_review"],
            f"客服失误或交接不当导致恶意评价，经核实，每次 {money(unit.bad_review)} 元。",
        ),
    )


def line_text(line: MoneyLine) -> str:
    """What earned or cost this amount, with the numbers that decided it."""
    if line.rule_key == "rank_reward":
        return f"月度排名第 {line.rank} 名，均分 {line.mean:.2f} ≥ 合格线 {line.threshold:g}"
    if line.rule_key == "lowest_rank_penalty":
        return f"排名末位（第 {line.rank} 名），均分 {line.mean:.2f} < {line.threshold:g}"
    if line.rule_key == "praise":
        return f"客户表扬 {line.count} 次，达到“满 {line.tier_min} 次”档"
    label = KIND_LABELS_ZH.get(line.rule_key, line.rule_key)
    return f"{label}（属实）{line.quantity} 次 × {money(line.unit_amount or 0)} 元"


def basis_text(line: MoneyLine) -> str:
    if line.basis_calls:
        return f"本月 {len(line.basis_calls)} 通已评分通话"
    return "事件 " + "、".join(line.basis_events)


def money(amount: int | float) -> str:
    """Signed yuan: +100, −50, 0."""
    if amount > 0:
        return f"+{amount:g}"
    if amount < 0:
        return f"−{-amount:g}"
    return "0"


def agent_remark(agent: AgentMonth, min_calls: int) -> str:
    remarks = []
    if not agent.eligible:
        remarks.append(
            f"已评分通话 {agent.calls} 通，少于 {min_calls} 通，不参加排名"
            if agent.calls
            else "本月没有已评分通话，不参加排名"
        )
    if agent.tied:
        remarks.append("并列")
    if agent.lowest:
        remarks.append("末位")
    if agent.close_to_above:
        remarks.append("与上一名次差异不显著")
    if agent.fatal_calls:
        remarks.append(f"一票否决 {agent.fatal_calls} 通")
    return "；".join(remarks)
