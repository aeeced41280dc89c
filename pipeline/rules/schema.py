"""The scorecard file format, as pydantic models: what a rule may say, validated on load.

Every field is documented in docs/scorecard.md. Unknown fields are refused (a typo must not pass
silently); a rule's `type` picks its model. `Scorecard.model_json_schema()` gives the same rules as
JSON Schema, for editors that validate YAML while a supervisor types.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from pipeline.records import SOURCE_LABELS_ZH, CallMetrics, Hold, Interruption, Stretch, UtteranceRate
from pipeline.rules.intent import QUESTION_MARKS, Intent
from pipeline.rules.matching import REGEX_PREFIX, PatternError, canonical_text, compile_pattern

Category = Literal["开场", "服务过程", "结束", "服务禁语", "一票否决"]
Speaker = Literal["agent", "customer", "any"]

# CallMetrics fields a metric rule may read; tuples of records are counted (after `where`).
LIST_METRIC_ITEMS: dict[str, type] = {
    "interruptions": Interruption,
    "holds": Hold,
    "dead_air": Stretch,
    "utterance_rates": UtteranceRate,
}
METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclass_fields(CallMetrics))
# Metrics that are words or yes/no (hangup_by = "agent"): compared with equals / not_equals only.
TEXT_METRICS: tuple[str, ...] = tuple(
    f.name for f in dataclass_fields(CallMetrics) if str(f.type).split(" |")[0] in ("str", "bool")
)


def _check_pattern(value: str) -> str:
    try:
        compile_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from exc
    return value


PatternText = Annotated[str, AfterValidator(_check_pattern)]
PhraseList = Annotated[list[PatternText], Field(min_length=1)]
# In a rule, a pattern list may also be written `phrases.NAME` (expanded before validation, see
# expand_phrase_references); the JSON Schema for editors says so.
Patterns = Annotated[
    PhraseList,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {
                    "type": "string",
                    "pattern": r"^phrases\.[a-z_]+$",
                    "description": "引用词表 phrases 里的一组",
                },
            ]
        }
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WINDOW_KEYS = ("first_turns", "last_turns", "first_s", "last_s", "before_hold_s", "after_hold_s")


class Window(Strict):
    """Where in the call a rule looks. One key; no window means the whole call."""

    first_turns: int | None = Field(None, ge=1, description="说话人的前 N 个话轮")
    last_turns: int | None = Field(None, ge=1, description="说话人的最后 N 个话轮")
    first_s: float | None = Field(None, gt=0, description="接通后 T 秒内")
    last_s: float | None = Field(None, gt=0, description="最后一句话结束前 T 秒内")
    before_hold_s: float | None = Field(None, gt=0, description="等待开始前 T 秒内（hold 规则）")
    after_hold_s: float | None = Field(None, gt=0, description="等待结束后 T 秒内（hold 规则）")

    @model_validator(mode="after")
    def _one_key(self) -> Window:
        given = self.keys()
        if len(given) > 1:
            raise ValueError(f"只能设一种窗口，这里同时设了 {'、'.join(given)}")
        if not given:
            raise ValueError(f"窗口是空的：设 {' / '.join(WINDOW_KEYS)} 之一，或删掉 window 表示整通电话")
        return self

    def keys(self) -> list[str]:
        return [k for k in WINDOW_KEYS if getattr(self, k) is not None]

    @property
    def is_hold_window(self) -> bool:
        return self.before_hold_s is not None or self.after_hold_s is not None

    @property
    def seconds(self) -> float | None:
        return self.first_s or self.last_s or self.before_hold_s or self.after_hold_s


class Said(Strict):
    speaker: Speaker = "agent"
    patterns: Patterns


class Condition(Strict):
    """When a rule applies at all; otherwise it passes as “not applicable”. All given keys must hold."""

    call_type: Annotated[list[str], Field(min_length=1)] | None = None
    said: Said | None = None
    customer_chars_max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _something(self) -> Condition:
        if self.call_type is None and self.said is None and self.customer_chars_max is None:
            raise ValueError("applies_if 是空的：设 call_type / said / customer_chars_max 之一")
        return self


class RuleBase(Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
    title: str = Field(min_length=1)
    category: Category
    speaker: Speaker = "agent"
    deduction: float = Field(ge=0, le=100)
    fatal: bool = False
    per_occurrence: bool = False
    max_deduction: float | None = Field(None, ge=0, le=100)
    review_below: float | None = Field(None, ge=0, le=1)
    asr_full_trust: float | None = Field(None, gt=0, le=1)
    always_review: bool = False
    when_unknown: Literal["review", "pass", "fail"] = "review"
    applies_if: Condition | None = None
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> RuleBase:
        if self.category == "一票否决" and not self.fatal:
            raise ValueError("一票否决类规则必须写 fatal: true")
        if self.max_deduction is not None and not self.per_occurrence:
            raise ValueError("max_deduction（封顶）只对 per_occurrence: true 的规则有意义")
        return self


def _no_hold_window(window: Window | None) -> None:
    if window is not None and window.is_hold_window:
        raise ValueError("before_hold_s / after_hold_s 只能用于 type: hold 的规则，这里永远不会命中")


def _check_word(value: str) -> str:
    if value in QUESTION_MARKS:
        return value
    if value.startswith(REGEX_PREFIX) or any(mark in value for mark in ("…", "...", "[", "]")):
        raise ValueError(f"要素里的词 {value!r} 只能是普通文字（不能写 re:、省略号或方括号）")
    if not canonical_text(value):
        raise ValueError(f"要素里的词 {value!r} 去掉标点和空格后是空的（问号请单独写 '？'）")
    return value


Word = Annotated[str, AfterValidator(_check_word)]


class IntentGroup(Strict):
    """One required element of a required_phrase rule, recognised by its sentences (`patterns`) or
    by meaning (`all_of`: in one utterance, one word of every element; pipeline/rules/intent.py)."""

    patterns: list[PatternText] = []
    all_of: dict[str, Annotated[list[Word], Field(min_length=1)]] | None = None
    within_chars: int = Field(20, ge=2, description="各要素的词在一句话里的最大跨度（字）")
    partial_requires: list[str] = Field([], description="只说到一部分时也必须有的要素（all_of 的名字）")
    exceptions: list[PatternText] = Field([], description="带着这些词也不算的说法（手册点名不算的）")

    @model_validator(mode="after")
    def _something(self) -> IntentGroup:
        if not self.patterns and not self.all_of:
            raise ValueError("要写 patterns（整句说法）或 all_of（按意思：每个要素一组可互换的词），至少一个")
        unknown = [n for n in self.partial_requires if n not in (self.all_of or {})]
        if unknown:
            raise ValueError(f"partial_requires 里的 {'、'.join(unknown)} 不是 all_of 的要素")
        return self

    def intent(self) -> Intent | None:
        if not self.all_of:
            return None
        elements = tuple((k, tuple(v)) for k, v in self.all_of.items())
        return Intent(elements, self.within_chars, tuple(self.partial_requires), tuple(self.exceptions))


class RequiredPhrase(RuleBase):
    """Fails unless the speaker says one of `patterns` (or something from every group) in the window.

    `partial: review`: when only part of what is required was heard (one group of two, or an
    utterance with every element of an `all_of` but one), the finding goes to a person instead of
    deducting."""

    type: Literal["required_phrase"]
    window: Window | None = None
    patterns: Patterns | None = None
    groups: dict[str, Patterns | IntentGroup] | None = None
    partial: Literal["fail", "review"] = "fail"

    @model_validator(mode="after")
    def _patterns_or_groups(self) -> RequiredPhrase:
        if (self.patterns is None) == (self.groups is None):
            raise ValueError("patterns 和 groups 要且只要写一个")
        if self.groups is not None and not self.groups:
            raise ValueError("groups 不能为空")
        _no_hold_window(self.window)
        return self

    def pattern_groups(self) -> dict[str, list[str]]:
        """Each group's sentences (an intent group's `patterns`, possibly none)."""
        if self.groups is None:
            return {"": list(self.patterns or [])}
        return {
            name: list(g.patterns) if isinstance(g, IntentGroup) else list(g)
            for name, g in self.groups.items()
        }

    def intents(self) -> dict[str, Intent | None]:
        """Each group's intent (`all_of`), None for a group of sentences only."""
        if self.groups is None:
            return {"": None}
        return {name: g.intent() if isinstance(g, IntentGroup) else None for name, g in self.groups.items()}


class ForbiddenEntry(Strict):
    name: str | None = None
    patterns: Patterns
    replacement: str | None = None
    exceptions: list[PatternText] = []


class ForbiddenPhrase(RuleBase):
    """Each time the speaker says one of the patterns (outside `exceptions`) is a finding."""

    type: Literal["forbidden_phrase"]
    window: Window | None = None
    patterns: Patterns | None = None
    phrases: Annotated[list[ForbiddenEntry], Field(min_length=1)] | None = None
    exceptions: list[PatternText] = []
    replacement: str | None = None
    ignore_quoted: bool = True
    # The recogniser often writes this rule's pattern for its replacement (您 heard as 你): a hit in
    # recognised text is never proof on its own, a person listens first. Typed transcripts still deduct.
    recognised_needs_review: bool = False

    @model_validator(mode="after")
    def _patterns_or_phrases(self) -> ForbiddenPhrase:
        if (self.patterns is None) == (self.phrases is None):
            raise ValueError("patterns 和 phrases 要且只要写一个")
        if self.id.startswith("FORBIDDEN"):
            if self.phrases is not None:
                missing = [
                    e.name or e.patterns[0] for e in self.phrases if not (e.replacement or self.replacement)
                ]
                if missing:
                    raise ValueError(f"服务禁语要写规范用语 replacement，缺：{'、'.join(missing)}")
            elif not self.replacement:
                raise ValueError("服务禁语要写规范用语 replacement")
        _no_hold_window(self.window)
        return self

    def entries(self) -> list[ForbiddenEntry]:
        if self.phrases is not None:
            return list(self.phrases)
        return [ForbiddenEntry(patterns=list(self.patterns or []), replacement=self.replacement)]


class Step(Strict):
    name: str = Field(min_length=1)
    patterns: Patterns
    min_gap_s: float = Field(0.0, ge=0)
    max_gap_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _gaps(self) -> Step:
        if self.max_gap_s is not None and self.max_gap_s < self.min_gap_s:
            raise ValueError(
                f"max_gap_s {self.max_gap_s} 小于 min_gap_s {self.min_gap_s}，这一步永远无法满足"
            )
        return self


class SequenceRule(RuleBase):
    """Steps said in order (each after the previous one, with gaps in seconds if given)."""

    type: Literal["sequence"]
    window: Window | None = None
    steps: Annotated[list[Step], Field(min_length=2)]

    @model_validator(mode="after")
    def _fits_window(self) -> SequenceRule:
        _no_hold_window(self.window)
        if self.window is not None and self.window.seconds is not None:
            needed = sum(s.min_gap_s for s in self.steps)
            if needed > self.window.seconds:
                raise ValueError(
                    f"各步之间至少要 {needed:g} 秒，比窗口 {self.window.seconds:g} 秒还长，规则永远无法通过"
                )
        return self


Scalar = str | bool | int | float


class MetricRule(RuleBase):
    """A CallMetrics value against limits. Tuples of records (interruptions, holds…) are counted."""

    type: Literal["metric"]
    metric: str
    where: dict[str, Scalar] | None = None
    min: float | None = None
    max: float | None = None
    equals: Scalar | None = None
    not_equals: Scalar | None = None
    excused_if_quiet_before_end_s: float | None = Field(None, gt=0)
    # Sources of the value (records.SOURCE_LABELS_ZH keys) that only guess it: a failure measured
    # from one of them goes to a person instead of deducting (who hung up is not heard in a recording).
    review_if_source: list[str] = []

    @model_validator(mode="after")
    def _known_metric(self) -> MetricRule:
        if self.metric not in METRIC_FIELDS:
            raise ValueError(f"未知指标 {self.metric!r}，可用：{', '.join(METRIC_FIELDS)}")
        if self.where is not None:
            item = LIST_METRIC_ITEMS.get(self.metric)
            if item is None:
                raise ValueError(f"where 只能用于列表指标（{', '.join(LIST_METRIC_ITEMS)}）")
            known = [f.name for f in dataclass_fields(item)]
            unknown = [k for k in self.where if k not in known]
            if unknown:
                raise ValueError(
                    f"where 里的 {', '.join(unknown)} 不是 {self.metric} 的字段，可用：{', '.join(known)}"
                )
        if self.metric in TEXT_METRICS and (self.min is not None or self.max is not None):
            raise ValueError(f"{self.metric} 不是数值，不能用 min / max，请用 equals / not_equals")
        if all(v is None for v in (self.min, self.max, self.equals, self.not_equals)):
            raise ValueError("要写 min / max / equals / not_equals 至少一个")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} 大于 max {self.max:g}，任何值都过不了")
        strange = [s for s in self.review_if_source if s not in SOURCE_LABELS_ZH]
        if strange:
            raise ValueError(
                f"review_if_source 里的 {', '.join(strange)} 不是来源，可用：{', '.join(SOURCE_LABELS_ZH)}"
            )
        return self


class HoldRule(RuleBase):
    """Checks every hold (from the metrics) of at least `min_hold_s`."""

    type: Literal["hold"]
    check: Literal["asked", "checkins", "max_duration", "thanked"]
    min_hold_s: float = Field(0.0, ge=0)
    window: Window | None = None
    patterns: Patterns | None = None
    max_gap_s: float | None = Field(None, gt=0)
    max_s: float | None = Field(None, gt=0)
    lookup_patterns: Patterns | None = None
    lookup_max_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _fields_for_check(self) -> HoldRule:
        w = self.window
        if self.check in ("asked", "thanked"):
            side = "before_hold_s" if self.check == "asked" else "after_hold_s"
            if self.patterns is None:
                raise ValueError(f"check: {self.check} 需要 patterns")
            if w is None or getattr(w, side) is None:
                raise ValueError(
                    f"check: {self.check} 需要 window.{side}（在等待{'之前' if side == 'before_hold_s' else '之后'}找）"
                )
        if self.check == "checkins" and self.max_gap_s is None:
            raise ValueError("check: checkins 需要 max_gap_s")
        if self.check == "max_duration":
            if self.max_s is None:
                raise ValueError("check: max_duration 需要 max_s")
            if (self.lookup_patterns is None) != (self.lookup_max_s is None):
                raise ValueError("lookup_patterns 和 lookup_max_s 要一起写")
            if self.lookup_patterns is not None and (w is None or w.before_hold_s is None):
                raise ValueError("lookup_patterns 需要 window.before_hold_s（在等待之前找“查询”等字样）")
        if w is not None and not w.is_hold_window:
            raise ValueError("hold 规则的窗口只能是 before_hold_s / after_hold_s")
        return self


class QuestionCount(RuleBase):
    """At most `max_questions` questions in one stretch of speech (before the other party can answer)."""

    type: Literal["question_count"]
    window: Window | None = None
    max_questions: int = Field(ge=1)
    question_words: Patterns
    question_tags: Patterns
    question_endings: Patterns
    exceptions: list[PatternText] = []
    answer_gap_s: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _window(self) -> QuestionCount:
        _no_hold_window(self.window)
        return self


class PhraseCount(RuleBase):
    """Fails when the speaker says the patterns too often (per minute of `per`)."""

    type: Literal["phrase_count"]
    window: Window | None = None
    patterns: Patterns
    whole_utterance: bool = True
    max_per_minute: float = Field(gt=0)
    min_count: int = Field(1, ge=1)
    per: Literal["customer_talk", "call"] = "customer_talk"

    @model_validator(mode="after")
    def _window(self) -> PhraseCount:
        _no_hold_window(self.window)
        return self


Rule = Annotated[
    RequiredPhrase | ForbiddenPhrase | SequenceRule | MetricRule | HoldRule | QuestionCount | PhraseCount,
    Field(discriminator="type"),
]
RULE_TYPES: tuple[str, ...] = (
    "required_phrase",
    "forbidden_phrase",
    "sequence",
    "metric",
    "hold",
    "question_count",
    "phrase_count",
)


class BudgetStep(Strict):
    min_chars: int = Field(ge=1)
    budget: float = Field(ge=0)


class Matching(Strict):
    review_below: float = Field(0.7, ge=0, le=1)
    asr_full_trust: float = Field(0.5, gt=0, le=1)
    homophone_cost: float = Field(0.25, gt=0, le=1)
    near_pinyin_cost: float = Field(0.5, gt=0, le=1)
    budget: Annotated[list[BudgetStep], Field(min_length=1)] = [
        BudgetStep(min_chars=3, budget=0.25),
        BudgetStep(min_chars=5, budget=0.5),
        BudgetStep(min_chars=8, budget=1.0),
        BudgetStep(min_chars=12, budget=1.5),
    ]
    max_gap_chars: int = Field(30, ge=1)
    time_slack_s: float = Field(1.0, ge=0)
    metric_margin: float = Field(0.05, ge=0, lt=1)
    near_miss_margin: float = Field(1.0, ge=0)
    # An almost-match this similar to a required phrase (1 − edit cost ÷ the phrase's length) with a
    # character the recogniser was unsure of (asr_unsure_char_probability) may be the phrase said and
    # misheard: the absence goes to review. Shorter, looser almost-matches (假单 for 久等) prove nothing.
    near_miss_unsure_similarity: float = Field(0.75, ge=0, le=1)
    metrics_slack: float = Field(0.5, ge=0)
    # The recogniser's evidence (pipeline/rules/evidence.py): an utterance beyond any of these is too
    # weak to judge by, and absence findings over it or phrase hits in it go to review.
    # 0.6: real speech through the telephone band never fell below 0.77, garbled drawn-out speech
    # (CER > 0.5) mostly did (bench/results/asr-guards-2026-11-28.md).
    asr_min_word_probability: float = Field(0.6, ge=0, le=1)
    asr_min_avg_logprob: float = Field(-1.0, le=0)
    # A character below this probability marks a stretch the recogniser was unsure of: a required
    # word of three characters or more that sounds close to it (pipeline/rules/intent.py,
    # misheard_places) may have been said and misheard, so its absence goes to review.
    asr_unsure_char_probability: float = Field(0.6, ge=0, le=1)
    # Off by default (1.0): whisper measures it at the start of a 30 s window of joined turns, often
    # a pause, and on drawn-out speech it flagged well-recognised sentences (bench/asr_guards.py).
    asr_max_no_speech_prob: float = Field(1.0, ge=0, le=1)
    asr_max_compression_ratio: float = Field(2.4, gt=0)
    asr_review_loops: bool = True
    # Speech without text: more than this many seconds of a turn, and more than this share of it.
    asr_max_unheard_s: float = Field(2.5, ge=0)
    asr_max_unheard_share: float = Field(0.35, ge=0, le=1)


PHRASE_REFERENCE = "phrases."


class Phrases(Strict):
    """The service-phrase vocabulary (`phrases:`): named lists that rules reference and that the
    metrics stage matches with the same engine (docs/scorecard.md, section 1)."""

    hold_ask: PhraseList = Field(description="请客户等待、征求同意（HOLD-ASK；指标的“已征询”）")
    hold_checkin: PhraseList = Field(description="等待中的回应（指标：短暂回来说这些话又离开，是中途回应）")
    hold_thanks: PhraseList = Field(description="等待后致谢（HOLD-THANK；指标的“已致谢”）")
    hold_lookup: PhraseList = Field(description="查询类等待的字样（HOLD-MAX 的查询上限；指标的 lookup）")
    goodbye: PhraseList = Field(description="告别语：之后的静音是通话结束，不是等待")
    customer_waits: PhraseList = Field(
        default_factory=list,
        description="客户表示愿意继续等（指标：等待中客户说了这些话，说得再长也不算接回通话）",
    )


def expand_phrase_references(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    """`patterns: phrases.hold_ask` in a rule (or an item `phrases.hold_ask` in a pattern list) → the
    list of that name in the scorecard's `phrases` section, before the rules are validated.

    Returns the expanded data and, for each reference to a list that is not there,
    (rule index, field path, problem)."""
    vocabulary = data.get("phrases")
    rules = data.get("rules")
    if not isinstance(rules, list):
        return data, []
    problems: list[tuple[int, str, str]] = []

    def resolve(name: str, index: int, path: str) -> list[Any] | None:
        key = name[len(PHRASE_REFERENCE) :]
        if not isinstance(vocabulary, dict):
            problems.append((index, path, f"引用了 {name}，但评分表没有 phrases 词表"))
            return None
        found = vocabulary.get(key)
        if not isinstance(found, list):
            known = "、".join(str(k) for k in vocabulary) or "（空）"
            problems.append((index, path, f"词表 phrases 里没有 {key}（有：{known}）"))
            return None
        return list(found)

    def is_reference(value: Any) -> bool:
        return isinstance(value, str) and value.startswith(PHRASE_REFERENCE)

    def walk(value: Any, index: int, path: str) -> Any:
        if is_reference(value):
            found = resolve(value, index, path)
            return value if found is None else found
        if isinstance(value, dict):
            return {k: walk(v, index, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            out: list[Any] = []
            for i, item in enumerate(value):
                if is_reference(item):
                    out.extend(resolve(item, index, f"{path}[{i}]") or [item])
                else:
                    out.append(walk(item, index, f"{path}[{i}]"))
            return out
        return value

    expanded = [walk(rule, i, "") for i, rule in enumerate(rules)]
    return {**data, "rules": expanded}, problems


class AppliesTo(Strict):
    agent_ids: list[str] = []
    call_types: list[str] = []

    @model_validator(mode="after")
    def _something(self) -> AppliesTo:
        if not self.agent_ids and not self.call_types:
            raise ValueError("applies_to 是空的：写 agent_ids 或 call_types，或删掉它（默认评分表）")
        return self


class ScorecardSpec(Strict):
    kind: Literal["scorecard"]
    name: str = Field(min_length=1)
    description: str = ""
    applies_to: AppliesTo | None = None
    matching: Matching = Matching()
    phrases: Phrases | None = None
    rules: Annotated[list[Rule], Field(min_length=1)]
