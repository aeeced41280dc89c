#!/usr/bin/env python3
"""The default scorecard's phrase rules over 250 real agent sentences (../shared/audio/magicdata_cs).

    python tools/magicdata_hits.py transcribe   # once (minutes): the pipeline's ASR of every clip
                                                #   → tests/fixtures/rules/magicdata_asr.jsonl
    python tools/magicdata_hits.py hits         # every hit on the reference and the ASR text
                                                #   → tests/fixtures/rules/magicdata_hits.tsv
    python tools/magicdata_hits.py report       # per rule: hits, false positives, misses

Each sentence is scored as one agent utterance. A hit is one pattern match of a rule (a forbidden
phrase, a required phrase's group, a sequence step, a hold phrase, the ESCALATE-TIME trigger, a
sentence with more questions than ONE-QUESTION allows). `hits` keeps the verdicts already written
in the TSV (column `verdict`: tp = the rule is right to fire here, fp = it is not) and marks new hits
`?`; check those by hand. `magicdata_expected.tsv` lists, per sentence, what a person finds in the
reference text (rule, label, count): an expected hit with no true hit is a miss. The ASR text is
judged against the same expectations (what the agent really said).

tests/test_rules_magicdata.py recomputes the hits and fails on any hit not in the checked list.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.records import CallMeta, CharTiming, Utterance  # noqa: E402
from pipeline.rules import load_scorecard  # noqa: E402
from pipeline.rules.phrase_checks import hit_doubt  # noqa: E402
from pipeline.rules.questions import count_questions  # noqa: E402
from pipeline.rules.scorecard import DEFAULT_SCORECARD, Scorecard  # noqa: E402
from pipeline.rules.transcript import CallView, Hit  # noqa: E402

MAGICDATA = ROOT.parent / "shared" / "audio" / "magicdata_cs"
FIXTURES = ROOT / "tests" / "fixtures" / "rules"
ASR_FILE = FIXTURES / "magicdata_asr.jsonl"
HITS_FILE = FIXTURES / "magicdata_hits.tsv"
EXPECTED_FILE = FIXTURES / "magicdata_expected.tsv"
HIT_COLUMNS = [
    "file",
    "source",
    "rule_id",
    "label",
    "at",
    "said",
    "pattern",
    "confidence",
    "review",
    "verdict",
    "quote",
    "note",
]


@dataclass(frozen=True)
class SentenceHit:
    file: str
    source: str  # ref | asr
    rule_id: str
    label: str
    at: int  # where in the sentence (character index), to tell repeated words apart
    said: str
    pattern: str
    confidence: float
    review: bool
    quote: str

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        return (self.file, self.source, self.rule_id, self.label, str(self.at), self.said)


def reference_texts() -> dict[str, str]:
    with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
        return {row["file"]: row["transcript"] for row in csv.DictReader(handle, delimiter="\t")}


def asr_utterances() -> dict[str, Utterance]:
    """The stored ASR output: one agent utterance per clip, with per-character timings and probabilities."""
    out = {}
    for line in ASR_FILE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        chars = tuple(CharTiming(c, s, e, p) for c, s, e, p in row["chars"])
        out[row["file"]] = Utterance("agent", 0.0, row["duration"], row["text"], chars, row["confidence"])
    return out


def sentence_hits(file: str, source: str, utterance: Utterance, card: Scorecard) -> list[SentenceHit]:
    view = CallView.build([utterance], None, CallMeta(call_id=file), card.spec.matching, card.costs)
    scope = view.scope("agent", None)
    found: list[tuple[str, Hit, float, bool]] = []

    def add(rule, hits: list[Hit], label: str | None = None) -> None:
        threshold = rule.review_below if rule.review_below is not None else card.spec.matching.review_below
        trust = rule.asr_full_trust if rule.asr_full_trust is not None else card.spec.matching.asr_full_trust
        for h in hits:
            confidence = h.confidence(trust)
            # the engine's own doubt for a forbidden word (weak text, a word the recogniser confuses)
            doubted = (
                rule.type == "forbidden_phrase" and hit_doubt(rule, h, rule.replacement, view) is not None
            )
            review = rule.always_review or confidence < threshold or doubted
            found.append((rule.id, _labelled(h, label), confidence, review))

    for rule in card.rules:
        kind = rule.type
        if rule.applies_if is not None and rule.applies_if.said is not None:
            add(rule, view.find(rule.applies_if.said.patterns, scope), "触发")
        if kind == "required_phrase":
            intents = rule.intents()
            for name, patterns in rule.pattern_groups().items():
                add(rule, view.find(patterns, scope), name or "必说")
                intent = intents.get(name)
                if intent is not None:  # said by meaning (all_of): the words of every element
                    add(rule, view.find_intent(intent, scope)[0], (name or "必说") + "·按意思")
        elif kind == "forbidden_phrase":
            for entry in rule.entries():
                hits = view.find(
                    entry.patterns,
                    scope,
                    exceptions=[*rule.exceptions, *entry.exceptions],
                    ignore_quoted=rule.ignore_quoted,
                )
                add(rule, hits, entry.name or "禁语")
        elif kind == "sequence":
            for step in rule.steps:
                add(rule, view.find(step.patterns, scope), step.name)
        elif kind == "hold":
            if rule.patterns:
                add(rule, view.find(rule.patterns, scope), rule.check)
            if rule.lookup_patterns:
                add(rule, view.find(rule.lookup_patterns, scope), "查询")
        elif kind == "phrase_count":
            hits = view.find(rule.patterns, scope)
            norm = view.lines[0].norm
            covered = all(
                any(h.raw_start <= a and b <= h.raw_end for h in hits)
                for a, b in zip(norm.raw_start, norm.raw_end, strict=True)
            )
            if hits and covered:
                add(rule, hits[:1], "整句回应")
        elif kind == "question_count":
            n = count_questions([view.lines[0].norm], rule, card.costs)
            if n > rule.max_questions:
                line = view.lines[0]
                whole = Hit(line, 0, len(line.text), line.start, line.end, 1.0, None, f"{n} 个问题", f"{n}问")
                found.append((rule.id, whole, 1.0, False))
    return [
        SentenceHit(
            file, source, rule_id, h.label, h.raw_start, h.said, h.pattern, confidence, review, h.quote()
        )
        for rule_id, h, confidence, review in found
    ]


def _labelled(hit: Hit, label: str | None) -> Hit:
    return Hit(
        hit.line,
        hit.raw_start,
        hit.raw_end,
        hit.start,
        hit.end,
        hit.similarity,
        hit.asr_probability,
        hit.pattern,
        label or hit.label,
    )


def all_hits(card: Scorecard) -> list[SentenceHit]:
    hits = []
    for file, text in sorted(reference_texts().items()):
        hits += sentence_hits(file, "ref", Utterance("agent", 0.0, 5.0, text), card)
    if ASR_FILE.exists():
        for file, utterance in sorted(asr_utterances().items()):
            hits += sentence_hits(file, "asr", utterance, card)
    return hits


def read_checked() -> dict[tuple, dict]:
    if not HITS_FILE.exists():
        return {}
    with HITS_FILE.open(encoding="utf-8") as handle:
        return {
            (r["file"], r["source"], r["rule_id"], r["label"], r["at"], r["said"]): r
            for r in csv.DictReader(handle, delimiter="\t")
        }


def read_expected() -> dict[tuple[str, str, str], int]:
    """(file, rule_id, label) → how many times a person finds it in the reference sentence."""
    expected: dict[tuple[str, str, str], int] = {}
    with EXPECTED_FILE.open(encoding="utf-8") as handle:
        for r in csv.DictReader(handle, delimiter="\t"):
            expected[(r["file"], r["rule_id"], r["label"])] = int(r["count"])
    return expected


def write_hits(hits: list[SentenceHit]) -> tuple[int, int]:
    checked = read_checked()
    rows, unchecked = [], 0
    for h in hits:
        old = checked.get(h.key, {})
        verdict = old.get("verdict", "?")
        unchecked += verdict == "?"
        rows.append(
            {
                "file": h.file,
                "source": h.source,
                "rule_id": h.rule_id,
                "label": h.label,
                "at": h.at,
                "said": h.said,
                "pattern": h.pattern,
                "confidence": f"{h.confidence:.2f}",
                "review": "review" if h.review else "",
                "verdict": verdict,
                "quote": h.quote,
                "note": old.get("note", ""),
            }
        )
    with HITS_FILE.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, HIT_COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows), unchecked


@dataclass
class RuleCount:
    hits: int = 0
    tp: int = 0
    fp: int = 0
    misses: int = 0
    reviewed_fp: int = 0  # false hits that the confidence sent to review (no silent deduction)
    reviewed_tp: int = 0


def measure(
    hits: list[SentenceHit], checked: dict[tuple, dict], expected: dict
) -> dict[tuple[str, str], RuleCount]:
    """(rule_id, source) → counts. A hit without a verdict counts as a false positive (unchecked)."""
    counts: dict[tuple[str, str], RuleCount] = defaultdict(RuleCount)
    true_hits: Counter = Counter()
    for h in hits:
        c = counts[(h.rule_id, h.source)]
        c.hits += 1
        verdict = checked.get(h.key, {}).get("verdict", "?")
        if verdict == "tp":
            c.tp += 1
            c.reviewed_tp += h.review
            true_hits[(h.file, h.source, h.rule_id, h.label)] += 1
        else:
            c.fp += 1
            c.reviewed_fp += h.review
    sources = sorted({h.source for h in hits})
    for (file, rule_id, label), count in expected.items():
        for source in sources:
            found = true_hits[(file, source, rule_id, label)]
            counts[(rule_id, source)].misses += max(0, count - found)
    return dict(counts)


def format_report(counts: dict[tuple[str, str], RuleCount]) -> str:
    lines = ["rule            source  hits   tp (to review)   fp (to review)  misses"]
    for (rule_id, source), c in sorted(counts.items()):
        lines.append(
            f"{rule_id:<16}{source:<6}{c.hits:>6}{c.tp:>5} ({c.reviewed_tp:>2})     {c.fp:>5} ({c.reviewed_fp:>2})"
            f"       {c.misses:>4}"
        )
    return "\n".join(lines)


def transcribe() -> None:
    import soundfile as sf
    import soxr

    from pipeline.asr.transcribe import load_recognizer, words_to_utterances
    from pipeline.config import AsrConfig
    from pipeline.records import SpeechTurn

    recognizer = load_recognizer(AsrConfig())
    files = sorted(reference_texts())
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with ASR_FILE.open("w", encoding="utf-8") as out:
        for i, file in enumerate(files, 1):
            signal, rate = sf.read(MAGICDATA / file, dtype="float32", always_2d=False)
            if signal.ndim > 1:
                signal = signal.mean(axis=1)
            if rate != 16000:
                signal = soxr.resample(signal, rate, 16000)
            duration = len(signal) / 16000
            words = recognizer.words(signal, vad=True)
            utterances = words_to_utterances(words, [SpeechTurn("agent", 0.0, duration)])
            text = "".join(u.text for u in utterances)
            chars = [[c.char, c.start, c.end, c.probability] for u in utterances for c in u.chars]
            confidence = utterances[0].confidence if utterances else 0.0
            row = {
                "file": file,
                "duration": round(duration, 3),
                "text": text,
                "confidence": confidence,
                "chars": chars,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{i}/{len(files)} {file} {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["transcribe", "hits", "report"])
    parser.add_argument("--scorecard", type=Path, default=DEFAULT_SCORECARD)
    args = parser.parse_args()
    if args.command == "transcribe":
        transcribe()
        return 0
    card = load_scorecard(args.scorecard)
    hits = all_hits(card)
    if args.command == "hits":
        total, unchecked = write_hits(hits)
        print(
            f"{total} hits written to {HITS_FILE.relative_to(ROOT)}; {unchecked} not yet checked (verdict '?')"
        )
        return 0
    print(format_report(measure(hits, read_checked(), read_expected())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
