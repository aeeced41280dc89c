"""The monthly reward/penalty policy (`rules/policy.yaml`): typed, checked, hashed.

Section 7 of the service standards gives the amounts; the thresholds it leaves to the centre are
configurable here with sensible defaults. A malformed file is refused with the file, line and field.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import CallQAError
from pipeline.text import normalize

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "rules" / "policy.yaml"
Score = Annotated[float, Field(ge=0, le=100)]
Reward = Annotated[int, Field(gt=0)]
Penalty = Annotated[int, Field(lt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RankingPolicy(_Section):
    min_scored_calls: int = Field(20, ge=1)
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)


class RankRewards(_Section):
    qualifying_score: Score = 90
    amounts: dict[Annotated[int, Field(ge=1)], Reward] = {1: 100, 2: 50, 3: 30}


class LowestRankPenalty(_Section):
    below_score: Score = 80
    amount: Penalty = -50


class PraiseTier(_Section):
    min_count: int = Field(ge=1)
    amount: Reward


class PerEvent(_Section):
    complaint: Penalty = -50
    lost_order: Penalty = -10
    bad_review: Penalty = -10


class Grievance(_Section):
    min_score: Score = 90
    customer_abuse_phrases: tuple[str, ...] = ("破服务", "骗子")

    @field_validator("customer_abuse_phrases")
    @classmethod
    def _phrases(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        for phrase in phrases:
            if not normalize(phrase):
                raise ValueError(f"“{phrase}”去掉标点后为空")
        return phrases


class Policy(_Section):
    ranking: RankingPolicy = RankingPolicy()
    rank_rewards: RankRewards = RankRewards()
    lowest_rank_penalty: LowestRankPenalty = LowestRankPenalty()
    praise_tiers: tuple[PraiseTier, ...] = (
        PraiseTier(min_count=10, amount=10),
        PraiseTier(min_count=30, amount=30),
        PraiseTier(min_count=50, amount=50),
    )
    per_event: PerEvent = PerEvent()
    grievance: Grievance = Grievance()

    @model_validator(mode="after")
    def _tiers_increase(self) -> Policy:
        for i in range(1, len(self.praise_tiers)):
            if self.praise_tiers[i].min_count <= self.praise_tiers[i - 1].min_count:
                raise ValueError("praise_tiers: min_count 必须逐档递增")
        return self


class LoadedPolicy(BaseModel):
    """A policy with where it came from and a content hash printed on every report."""

    model_config = ConfigDict(frozen=True)
    policy: Policy
    path: str
    sha256: str


def policy_path(path: Path | None = None) -> Path:
    """`path`, else $CALLQA_POLICY, else the repository's rules/policy.yaml."""
    if path is not None:
        return Path(path)
    env = os.environ.get("CALLQA_POLICY")
    return Path(env) if env else DEFAULT_POLICY


def load_policy(path: Path | None = None) -> LoadedPolicy:
    path = policy_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CallQAError(f"{path}：找不到奖惩政策文件") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CallQAError(f"{path}：无法读取奖惩政策文件（{exc}）") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" 第 {where.line + 1} 行" if where is not None else ""
        raise CallQAError(f"{path}{line}：不是有效的 YAML（{getattr(exc, 'problem', exc)}）") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CallQAError(f"{path}：顶层应为键值对（ranking、rank_rewards、…）")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            field = ".".join(str(part) for part in loc) or "（整个文件）"
            line = _line_of(root, loc)
            problems.append(f"{f'第 {line} 行 ' if line else ''}{field}：{_message(err)}")
        raise CallQAError(f"{path}：奖惩政策有误：" + "；".join(problems)) from exc
    return LoadedPolicy(policy=policy, path=str(path), sha256=hashlib.sha256(text.encode()).hexdigest())


_MESSAGES_ZH = {
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}（扣款写负数）",
    "less_than_equal": "应不大于 {le}",
    "extra_forbidden": "未知的键（拼写错误？）",
    "missing": "缺少此项",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
}


def _message(err: dict) -> str:
    template = _MESSAGES_ZH.get(err["type"])
    if template is None:
        return str(err["msg"]).removeprefix("Value error, ")
    return template.format(**err.get("ctx", {}))


def _line_of(node: yaml.Node | None, loc: list) -> int | None:
    """The YAML line of the value at `loc` (the deepest part of it that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
