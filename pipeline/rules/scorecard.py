"""Loading scorecards: YAML → validated `Scorecard`, or a refusal that names the file, the rule and the field.

A scorecard is identified by the sha256 of its file content; the hash is stored with every score, and
the content with it (table `scorecards`), so an old score can always be explained.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.errors import CallQAError
from pipeline.records import CallMeta
from pipeline.rules.handbook import handbook_rule
from pipeline.rules.matching import Costs, ServicePhrases
from pipeline.rules.schema import RULE_TYPES, Rule, ScorecardSpec, expand_phrase_references

REPO_RULES = Path(__file__).resolve().parents[2] / "rules"
DEFAULT_SCORECARD = REPO_RULES / "default.yaml"
MAX_ERRORS_SHOWN = 20
_SCORECARD_KIND = re.compile(r"^kind:\s*['\"]?scorecard['\"]?\s*(#.*)?$", re.MULTILINE)


@dataclass(frozen=True, eq=False)
class Scorecard:
    name: str
    hash: str  # sha256 of `content`
    content: str  # the file as written
    path: Path | None
    spec: ScorecardSpec

    @property
    def rules(self) -> list[Rule]:
        return list(self.spec.rules)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def costs(self) -> Costs:
        m = self.spec.matching
        return Costs(
            homophone=m.homophone_cost,
            near=m.near_pinyin_cost,
            budget_steps=tuple((b.min_chars, b.budget) for b in m.budget),
            max_gap_chars=m.max_gap_chars,
        )

    @property
    def phrases(self) -> ServicePhrases:
        """The service-phrase vocabulary for the metrics stage: this scorecard's `phrases` section,
        else the default scorecard's (a business line's card may leave it out)."""
        section = self.spec.phrases
        if section is None:
            return default_phrases()
        return ServicePhrases(
            hold_ask=tuple(section.hold_ask),
            hold_checkin=tuple(section.hold_checkin),
            hold_thanks=tuple(section.hold_thanks),
            hold_lookup=tuple(section.hold_lookup),
            goodbye=tuple(section.goodbye),
            customer_waits=tuple(section.customer_waits),
            costs=self.costs,
            slack=self.spec.matching.metrics_slack,
        )

    def applies_to(self, meta: CallMeta) -> bool:
        target = self.spec.applies_to
        if target is None:
            return False
        return (meta.agent_id is not None and meta.agent_id in target.agent_ids) or (
            meta.call_type is not None and meta.call_type in target.call_types
        )


def load_scorecard(path: Path | str) -> Scorecard:
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CallQAError(f"{path}：评分表文件不存在") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CallQAError(f"{path}：无法读取评分表（{exc}）") from exc
    return parse_scorecard(content, path)


def parse_scorecard(content: str, path: Path | str | None = None) -> Scorecard:
    """Validate scorecard text. `path` is only used to name the file in messages and in the store."""
    where = str(path) if path is not None else "<评分表>"
    data = _yaml(content, where)
    if not isinstance(data, dict):
        raise CallQAError(
            f"{where}：评分表应是一个 YAML 映射（kind、name、rules …），实际是 {type(data).__name__}"
        )
    data, unknown = expand_phrase_references(data)
    if unknown:
        raise CallQAError(
            f"{where}：评分表有 {len(unknown)} 处错误，未采用：\n"
            + "\n".join(
                f"{where}：规则 {_rule_name(data, i)}：字段 {field}：{problem}"
                for i, field, problem in unknown
            )
        )
    try:
        spec = ScorecardSpec.model_validate(data)
    except ValidationError as exc:
        raise CallQAError(_describe(exc, data, where)) from None
    problems = _cross_rule_problems(spec, where)
    if problems:
        raise CallQAError(f"{where}：评分表有 {len(problems)} 处错误，未采用：\n" + "\n".join(problems))
    return Scorecard(
        name=spec.name,
        hash=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        content=content,
        path=Path(path) if path is not None else None,
        spec=spec,
    )


def default_phrases() -> ServicePhrases:
    """The vocabulary of the repository's default scorecard (re-read when the file changes)."""
    return _phrases_of(DEFAULT_SCORECARD.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _phrases_of(content: str) -> ServicePhrases:
    card = parse_scorecard(content, DEFAULT_SCORECARD)
    if card.spec.phrases is None:
        raise CallQAError(f"{DEFAULT_SCORECARD}：默认评分表必须有 phrases 词表（其他评分表不写时沿用它）")
    return card.phrases


def load_scorecards(folder: Path | str) -> list[Scorecard]:
    """Every scorecard (`kind: scorecard`) in a folder; other YAML files there (policies) are left alone."""
    folder = Path(folder)
    cards = []
    for path in sorted(folder.glob("*.y*ml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if _SCORECARD_KIND.search(text):  # other YAML there (policy.yaml) is not ours to judge
            cards.append(load_scorecard(path))
    if not cards:
        raise CallQAError(f"{folder}：没有评分表（kind: scorecard 的 YAML 文件）")
    return cards


def card_for_call(meta: CallMeta, scorecards: list[Scorecard]) -> Scorecard:
    """One scorecard given (`--scorecard FILE`): it judges every call; several: the call's own."""
    return scorecards[0] if len(scorecards) == 1 else scorecard_for(meta, scorecards)


def scorecard_for(meta: CallMeta, scorecards: list[Scorecard]) -> Scorecard:
    """The business line's scorecard for this call (`applies_to`), else the one scorecard without applies_to."""
    for card in scorecards:
        if card.applies_to(meta):
            return card
    defaults = [c for c in scorecards if c.spec.applies_to is None]
    if len(defaults) != 1:
        names = "、".join(str(c.path or c.name) for c in defaults) or "没有"
        raise CallQAError(
            f"通话 {meta.call_id} 没有对应的评分表：不带 applies_to 的默认评分表应恰好一份（{names}）"
        )
    return defaults[0]


# ---- messages ------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key written twice in one mapping (the second would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"重复的键 {key!r}（后写的会悄悄覆盖先写的）", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml(content: str, where: str) -> Any:
    try:
        return yaml.load(content, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"第 {mark.line + 1} 行" if mark is not None else "位置未知"
        problem = getattr(exc, "problem", None) or str(exc)
        raise CallQAError(f"{where}：YAML 格式错误（{line}）：{problem}") from None


def _rule_name(data: dict, index: int) -> str:
    raw = data["rules"][index]
    return str(raw["id"]) if isinstance(raw, dict) and raw.get("id") else f"第 {index + 1} 条规则"


def _describe(exc: ValidationError, data: dict, where: str) -> str:
    rules = data.get("rules") if isinstance(data.get("rules"), list) else []
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            raw = rules[index] if index < len(rules) else None
            rule_id = raw.get("id") if isinstance(raw, dict) and raw.get("id") else f"第 {index + 1} 条规则"
            rest = loc[2:]
            if rest and rest[0] in RULE_TYPES:
                rest = rest[1:]
            field = _field_path(rest) or _implied_field(error)
            lines.append(f"{where}：规则 {rule_id}：字段 {field}：{_message(error)}")
        else:
            field = _field_path(loc) or _implied_field(error)
            lines.append(f"{where}：字段 {field}：{_message(error)}")
    shown = lines[:MAX_ERRORS_SHOWN]
    more = f"\n…… 另有 {len(lines) - len(shown)} 处" if len(lines) > len(shown) else ""
    return f"{where}：评分表有 {len(lines)} 处错误，未采用：\n" + "\n".join(shown) + more


def _field_path(loc: list) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "list", "dict") or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _implied_field(error: dict) -> str:
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "type"
    return "（整条规则）" if error["type"] == "value_error" else "（评分表）"


def _message(error: dict) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "union_tag_invalid":
        return f"未知的规则类型 {ctx.get('tag')!r}，可用：{', '.join(RULE_TYPES)}"
    if kind == "union_tag_not_found":
        return f"缺少 type，可用：{', '.join(RULE_TYPES)}"
    if kind == "missing":
        return "缺少必填字段"
    if kind == "extra_forbidden":
        return f"未知字段（拼写错误？值为 {value!r}；各类规则可用的字段见 docs/scorecard.md）"
    if kind == "literal_error":
        return f"取值 {value!r} 不允许，应为 {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} 格式不对：规则编号只能用大写字母、数字和连字符（如 OPEN-GREETING）"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}[
            kind
        ]
        bound = next(iter(ctx.values()), "")
        return f"取值 {value!r} 不行，必须 {sign} {bound}"
    if kind in ("too_short", "string_too_short"):
        return "不能为空"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = kind.removesuffix("_type").removesuffix("_parsing")
        return f"类型不对：应为 {expected}，实际是 {value!r}"
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ")


def _cross_rule_problems(spec: ScorecardSpec, where: str) -> list[str]:
    problems = []
    seen: set[str] = set()
    for rule in spec.rules:
        if rule.id in seen:
            problems.append(f"{where}：规则 {rule.id}：字段 id：规则编号重复（每个编号只能有一条规则）")
        seen.add(rule.id)
        entry = handbook_rule(rule.id)
        if entry is not None and entry.type != rule.type:
            problems.append(
                f"{where}：规则 {rule.id}：字段 type：手册规则 {rule.id} 的类型是 {entry.type}，不能写成 {rule.type}"
            )
    return problems
