"""Calibration: how far people (QA supervisors' verdicts) and the pipeline agree, rule by rule.

Labels are a CSV with columns `call_id, rule_id, passed` and optionally `score` (the person's total
for the call). A violation (passed = false) is the positive class: precision is the share of the
pipeline's violations that people confirm, recall the share of people's violations the pipeline
finds, Cohen's kappa the agreement beyond chance. A rule with few labels or a low kappa is not yet
to be trusted on its own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import CallQAError
from pipeline.records import CallScore
from pipeline.rules.handbook import export_rule_id

TRUE_WORDS = {"1", "true", "t", "yes", "y", "pass", "passed", "ok", "是", "通过", "合格", "对", "√", "✓"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "fail", "failed", "否", "不通过", "不合格", "错", "×", "✗"}
REQUIRED_COLUMNS = ("call_id", "rule_id", "passed")


@dataclass(frozen=True)
class Label:
    call_id: str
    rule_id: str
    passed: bool
    score: float | None
    line: int


@dataclass(frozen=True)
class Disagreement:
    call_id: str
    rule_id: str
    human_passed: bool
    pipeline_passed: bool
    needs_review: bool
    evidence: str


@dataclass
class RuleAgreement:
    rule_id: str
    tp: int = 0  # both say violation
    fp: int = 0  # pipeline violation, people pass
    fn: int = 0  # people violation, pipeline pass
    tn: int = 0  # both pass
    reviewed: int = 0  # pipeline's violations it had sent to review

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def agreement(self) -> float | None:
        return (self.tp + self.tn) / self.n if self.n else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def kappa(self) -> float | None:
        n = self.n
        if not n:
            return None
        observed = (self.tp + self.tn) / n
        human_fail = (self.tp + self.fn) / n
        pipeline_fail = (self.tp + self.fp) / n
        chance = human_fail * pipeline_fail + (1 - human_fail) * (1 - pipeline_fail)
        if chance >= 1.0:
            return None  # everyone said the same thing every time: kappa is undefined
        return (observed - chance) / (1 - chance)


@dataclass
class Calibration:
    rules: dict[str, RuleAgreement] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    unscored_calls: list[str] = field(default_factory=list)
    unknown_rules: list[tuple[str, str]] = field(default_factory=list)
    scores: list[tuple[str, float, float]] = field(default_factory=list)  # call, people, pipeline

    @property
    def overall(self) -> RuleAgreement:
        total = RuleAgreement("全部")
        for r in self.rules.values():
            total.tp += r.tp
            total.fp += r.fp
            total.fn += r.fn
            total.tn += r.tn
            total.reviewed += r.reviewed
        return total


def read_labels(path: Path) -> list[Label]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CallQAError(f"{path}：无法读取人工质检结果（{exc}）") from exc
    with handle:
        sample = handle.read(4096)
        handle.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise CallQAError(
                f"{path}：缺少列 {', '.join(missing)}（需要 call_id, rule_id, passed，可选 score；第一行是列名）"
            )
        labels = []
        scores: dict[str, tuple[float, int]] = {}
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            line = reader.line_num
            if not any(row.values()):
                continue
            call_id, rule_id = row["call_id"], row["rule_id"].upper()
            if not call_id or not rule_id:
                raise CallQAError(f"{path}：第 {line} 行：call_id 和 rule_id 不能为空")
            passed = _truth(row["passed"], path, line)
            score = None
            if row.get("score"):
                try:
                    score = float(row["score"])
                except ValueError:
                    raise CallQAError(
                        f"{path}：第 {line} 行：字段 score 不是数字：{row['score']!r}"
                    ) from None
                if call_id in scores and scores[call_id][0] != score:
                    raise CallQAError(
                        f"{path}：第 {line} 行：通话 {call_id} 的 score {score:g} 与第 {scores[call_id][1]} 行的 "
                        f"{scores[call_id][0]:g} 不一致"
                    )
                scores[call_id] = (score, line)
            labels.append(Label(call_id, export_rule_id(rule_id), passed, score, line))
    if not labels:
        raise CallQAError(f"{path}：没有人工质检结果")
    return labels


def _truth(value: str, path: Path, line: int) -> bool:
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CallQAError(
        f"{path}：第 {line} 行：字段 passed 应为 true/false（或 1/0、通过/不通过），实际是 {value!r}"
    )


def compare(labels: Iterable[Label], pipeline: Mapping[str, CallScore | None]) -> Calibration:
    """People's labels against the pipeline's findings (current, or from a candidate scorecard)."""
    result = Calibration()
    human_scores: dict[str, float] = {}
    for label in labels:
        scored = pipeline.get(label.call_id)
        if label.score is not None:
            human_scores[label.call_id] = label.score
        if scored is None:
            if label.call_id not in result.unscored_calls:
                result.unscored_calls.append(label.call_id)
            continue
        findings = [f for f in scored.findings if export_rule_id(f.rule_id) == label.rule_id]
        if not findings:
            result.unknown_rules.append((label.call_id, label.rule_id))
            continue
        pipeline_passed = all(f.passed for f in findings)
        failing = [f for f in findings if not f.passed]
        reviewed = bool(failing) and all(f.needs_review for f in failing)
        stats = result.rules.setdefault(label.rule_id, RuleAgreement(label.rule_id))
        if not label.passed and not pipeline_passed:
            stats.tp += 1
        elif label.passed and not pipeline_passed:
            stats.fp += 1
        elif not label.passed and pipeline_passed:
            stats.fn += 1
        else:
            stats.tn += 1
        stats.reviewed += int(reviewed)
        if label.passed != pipeline_passed:
            shown = failing[0] if failing else findings[0]
            result.disagreements.append(
                Disagreement(
                    label.call_id,
                    label.rule_id,
                    label.passed,
                    pipeline_passed,
                    reviewed,
                    shown.evidence or "",
                )
            )
    for call_id, score in human_scores.items():
        scored = pipeline.get(call_id)
        if scored is not None:
            result.scores.append((call_id, score, scored.score))
    return result


def format_calibration(cal: Calibration) -> str:
    lines = ["人工质检与系统质检的一致性（不合格为阳性）", ""]
    header = f"{'规则':<16}{'样本':>5}{'一致率':>8}{'精确率':>8}{'召回率':>8}{'kappa':>8}  人工/系统不合格  系统待复核"
    lines.append(header)
    ordered = sorted(cal.rules.values(), key=lambda r: r.rule_id)
    for r in [*ordered, cal.overall] if ordered else []:
        lines.append(
            f"{r.rule_id:<16}{r.n:>5}{_pct(r.agreement):>8}{_pct(r.precision):>8}{_pct(r.recall):>8}"
            f"{_num(r.kappa):>8}  {r.tp + r.fn:>4} / {r.tp + r.fp:<4}      {r.reviewed}"
        )
    if cal.scores:
        diffs = [abs(a - b) for _, a, b in cal.scores]
        lines += ["", f"总分：{len(cal.scores)} 通电话，人工与系统平均相差 {sum(diffs) / len(diffs):.1f} 分"]
        for call_id, people, machine in sorted(cal.scores, key=lambda x: -abs(x[1] - x[2]))[:10]:
            if people != machine:
                lines.append(f"  {call_id}  人工 {people:g}  系统 {machine:g}")
    if cal.disagreements:
        lines += ["", f"不一致的判定（{len(cal.disagreements)} 处）："]
        for d in sorted(cal.disagreements, key=lambda d: (d.rule_id, d.call_id)):
            people = "合格" if d.human_passed else "不合格"
            machine = (
                "合格" if d.pipeline_passed else "不合格" + ("（已转人工复核）" if d.needs_review else "")
            )
            lines.append(f"  {d.call_id}  {d.rule_id}  人工：{people}  系统：{machine}  {d.evidence[:80]}")
    if cal.unscored_calls:
        lines += [
            "",
            f"系统没有评分的通话（{len(cal.unscored_calls)} 通）：{'、'.join(cal.unscored_calls[:20])}",
        ]
    if cal.unknown_rules:
        rules = sorted({r for _, r in cal.unknown_rules})
        lines += ["", f"评分表里没有的规则（{len(cal.unknown_rules)} 条标注）：{'、'.join(rules)}"]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
