"""Re-scoring without redoing what a scorecard edit did not change.

A rule's findings depend on its *evaluation* definition (patterns, windows, thresholds, doubt
settings, title — the title is quoted in evidence), the card's `matching` section and the engine's
code; its *pricing* (deduction, fatal, category) only sets numbers and labels on them. So:

- each rule has an evaluation fingerprint (`rule_fingerprints`): sha256 of the engine version, the
  card's matching section and the rule without its pricing fields;
- a call whose current score was made by this engine version (scores.engine) keeps, per rule of the
  new card, the stored findings of a rule with the same id and fingerprint (`keep`), re-prices them
  when only the pricing changed (`reprice`), and runs the engine for that rule alone otherwise
  (`evaluate`); the score is then `verdicts.total` of the findings in the new card's rule order,
  exactly as `score_call` orders them.

Re-pricing is exact because the only place pricing enters a finding is `verdicts.failed` (the
deduction, and the amount in the review note) and `passed` (labels); a rule with a cap
(max_deduction) spreads its deduction over occurrences, so a pricing change there re-evaluates.
When a stored finding does not read as `failed` would have written it, the call goes to the engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from pipeline.records import CallMeta, CallMetrics, CallScore, Finding, Utterance
from pipeline.rules.engine import CHECKERS
from pipeline.rules.schema import Rule
from pipeline.rules.scorecard import Scorecard
from pipeline.rules.transcript import CallView
from pipeline.rules.verdicts import review_note, total

PRICING_FIELDS = frozenset({"deduction", "fatal", "category"})
# The code a finding depends on: any change of these files makes stored findings untrusted.
_ENGINE_SOURCES = (
    "pipeline/rules/engine.py",
    "pipeline/rules/verdicts.py",
    "pipeline/rules/phrase_checks.py",
    "pipeline/rules/metric_checks.py",
    "pipeline/rules/evidence.py",
    "pipeline/rules/intent.py",
    "pipeline/rules/matching.py",
    "pipeline/rules/questions.py",
    "pipeline/rules/schema.py",
    "pipeline/rules/scorecard.py",
    "pipeline/rules/transcript.py",
    "pipeline/rules/handbook.py",
    "pipeline/metrics/interruptions.py",
    "pipeline/records.py",
    "pipeline/text.py",
)


def _engine_version() -> str:
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for name in _ENGINE_SOURCES:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    for package in ("opencc", "pypinyin"):  # text conversion tables come from these
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    return digest.hexdigest()[:16]


ENGINE_VERSION = _engine_version()


def rule_fingerprints(card: Scorecard) -> dict[str, str]:
    """Each rule's evaluation fingerprint (see the module's docstring), by rule id."""
    matching = card.spec.matching.model_dump(mode="json")
    out = {}
    for rule in card.spec.rules:
        definition = rule.model_dump(mode="json", exclude=set(PRICING_FIELDS))
        text = json.dumps(
            {"engine": ENGINE_VERSION, "matching": matching, "rule": definition}, sort_keys=True
        )
        out[rule.id] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


@dataclass(frozen=True)
class Plan:
    """How to score a call with `card` from findings stored with an older card."""

    card: Scorecard
    keep: frozenset[str]  # rule ids whose stored findings stand as they are
    reprice: dict[str, tuple[Rule, Rule]]  # rule id → (stored, new) rule: stored findings re-priced
    evaluate: tuple[str, ...]  # rule ids the engine runs again

    @property
    def needs_engine(self) -> bool:
        return bool(self.evaluate)


@lru_cache(maxsize=64)
def _stored_card(content: str) -> Scorecard | None:
    from pipeline.errors import CallQAError
    from pipeline.rules.scorecard import parse_scorecard

    try:
        return parse_scorecard(content)
    except CallQAError:  # written by an older version whose format this one no longer reads
        return None


def plan(card: Scorecard, stored_content: str | None) -> Plan | None:
    """What scoring with `card` needs, given the content of the card the stored findings were
    made with (None when unknown: then everything runs)."""
    old = _stored_card(stored_content) if stored_content is not None else None
    if old is None:
        return None
    old_prints, new_prints = rule_fingerprints(old), rule_fingerprints(card)
    old_rules = {r.id: r for r in old.spec.rules}
    keep, reprice, evaluate = set(), {}, []
    for rule in card.spec.rules:
        before = old_rules.get(rule.id)
        if before is None or old_prints[rule.id] != new_prints[rule.id]:
            evaluate.append(rule.id)
        elif all(getattr(before, f) == getattr(rule, f) for f in PRICING_FIELDS):
            keep.add(rule.id)
        elif rule.max_deduction is None:
            reprice[rule.id] = (before, rule)
        else:
            evaluate.append(rule.id)
    return Plan(card, frozenset(keep), reprice, tuple(evaluate))


def _repriced(finding: Finding, old: Rule, new: Rule) -> Finding | None:
    """The finding as `verdicts.passed`/`failed` write it with `new`'s pricing (None: it does not
    read as they write it, so it cannot be re-priced safely)."""
    if finding.passed:
        return replace(finding, category=new.category, fatal=new.fatal)
    evidence = finding.evidence or ""
    if finding.needs_review:
        note = review_note(old.deduction)
        if not evidence.endswith(note) or finding.deduction != 0.0:
            return None
        evidence = evidence[: -len(note)] + review_note(new.deduction)
    elif finding.deduction != old.deduction:
        return None
    return replace(
        finding,
        evidence=evidence,
        deduction=0.0 if finding.needs_review else new.deduction,
        category=new.category,
        fatal=new.fatal,
    )


def assemble(how: Plan, stored: CallScore, fresh: dict[str, list[Finding]]) -> CallScore | None:
    """The call's score with `how.card`: kept and re-priced stored findings and the `fresh` ones of
    the rules evaluated again, in the card's rule order. None when the stored findings cannot be used."""
    by_rule: dict[str, list[Finding]] = {}
    for f in stored.findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    findings: list[Finding] = []
    for rule in how.card.spec.rules:
        if rule.id in how.keep or rule.id in how.reprice:
            if rule.id not in by_rule:
                return None  # every rule leaves at least one finding: the stored score is not whole
            if rule.id in how.keep:
                findings.extend(by_rule[rule.id])
                continue
            old, new = how.reprice[rule.id]
            for f in by_rule[rule.id]:
                priced = _repriced(f, old, new)
                if priced is None:
                    return None
                findings.append(priced)
        else:
            findings.extend(fresh[rule.id])
    return total(findings, how.card.name, how.card.hash)


def score_rules(
    utterances: Sequence[Utterance],
    metrics: CallMetrics | None,
    meta: CallMeta,
    card: Scorecard,
    rule_ids: Sequence[str],
) -> dict[str, list[Finding]]:
    """The findings of these rules of `card` over one call, as `engine.score_call` finds them."""
    if not rule_ids:
        return {}
    view = CallView.build(utterances, metrics, meta, card.spec.matching, card.costs)
    rules = {r.id: r for r in card.spec.rules}
    return {rid: CHECKERS[rules[rid].type](rules[rid], view) for rid in rule_ids}
