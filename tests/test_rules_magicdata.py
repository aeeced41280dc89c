"""The default scorecard over 250 real agent sentences (../shared/audio/magicdata_cs): the checked hit list.

Every hit of the default scorecard on the reference transcripts and on the pipeline's own ASR of the
audio (tests/fixtures/rules/magicdata_asr.jsonl) must be in tests/fixtures/rules/magicdata_hits.tsv,
checked by hand (tp / fp). A change to a pattern that adds or removes a hit fails here until the
list is regenerated (`python tools/magicdata_hits.py hits`) and the new rows are checked. The false
positives and misses per rule are pinned below: they are the measurement reported for the scorecard.
"""

from __future__ import annotations

import magicdata_hits as md
import pytest

from pipeline.rules import DEFAULT_SCORECARD, load_scorecard

# (rule, source) → (hits, false positives, false positives that deduct (not sent to review), misses);
# source ref = the reference transcript, asr = the pipeline's whisper-base output of the audio.
MEASURED: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("ASK-NAME", "asr"): (0, 0, 0, 1),
    ("ASK-NAME", "ref"): (1, 0, 0, 0),
    ("CLOSE-ASK", "asr"): (2, 0, 0, 0),  # the handbook sentence and the same sentence by meaning (all_of)
    ("CLOSE-ASK", "ref"): (2, 0, 0, 0),
    ("CONFIRM", "asr"): (13, 1, 1, 4),
    ("CONFIRM", "ref"): (13, 0, 0, 3),
    ("ESCALATE-TIME", "asr"): (6, 0, 0, 2),
    ("ESCALATE-TIME", "ref"): (8, 0, 0, 0),
    ("FORBIDDEN", "asr"): (1, 0, 0, 0),
    ("FORBIDDEN", "ref"): (1, 0, 0, 0),
    ("HOLD-ASK", "asr"): (2, 0, 0, 1),
    ("HOLD-ASK", "ref"): (3, 0, 0, 0),
    # a look-up by meaning (查 + 账户) also hears 查寻账户 in 如果只是为了查询账户余额 (no hold follows: harmless)
    ("HOLD-MAX", "asr"): (7, 1, 1, 0),
    ("HOLD-MAX", "ref"): (7, 1, 1, 0),
    ("HOLD-THANK", "asr"): (1, 0, 0, 0),
    ("HOLD-THANK", "ref"): (1, 0, 0, 0),
    ("NO-HEDGE", "asr"): (4, 0, 0, 0),
    ("NO-HEDGE", "ref"): (4, 0, 0, 0),
    ("ONE-QUESTION", "asr"): (4, 1, 1, 1),
    ("ONE-QUESTION", "ref"): (5, 1, 1, 0),
    # the offer of help by meaning (请问/有什么 + 帮/需要/问题 …) also hears 有什么问题您可以跟他说 (a
    # hand-over, not an offer: harmless outside the opening's first two turns, where the rule looks)
    ("OPEN-GREETING", "asr"): (7, 1, 1, 0),
    ("OPEN-GREETING", "ref"): (7, 1, 1, 0),
    ("POLITE-YOU", "asr"): (60, 32, 0, 1),  # recognised 你 always to review: 10 of 30 sure ones were 您
    ("POLITE-YOU", "ref"): (29, 0, 0, 0),
    ("SILENT-CALL", "asr"): (1, 0, 0, 0),
    ("SILENT-CALL", "ref"): (1, 0, 0, 0),
}


@pytest.fixture(scope="module")
def hits() -> list[md.SentenceHit]:
    return md.all_hits(load_scorecard(DEFAULT_SCORECARD))


def test_the_asr_output_of_every_clip_is_stored() -> None:
    assert len(md.asr_utterances()) == len(md.reference_texts()) == 250


def test_every_hit_is_checked_by_hand(hits: list[md.SentenceHit]) -> None:
    checked = md.read_checked()
    found = {h.key for h in hits}
    unchecked = sorted(k for k in found if checked.get(k, {}).get("verdict") not in ("tp", "fp"))
    stale = sorted(k for k in checked if k not in found)
    assert not unchecked, f"new hits to check by hand (tools/magicdata_hits.py hits): {unchecked[:10]}"
    assert not stale, f"checked hits that no longer occur (regenerate the list): {stale[:10]}"


def test_false_positives_and_misses_per_rule(hits: list[md.SentenceHit]) -> None:
    counts = md.measure(hits, md.read_checked(), md.read_expected())
    measured = {key: (c.hits, c.fp, c.fp - c.reviewed_fp, c.misses) for key, c in counts.items()}
    assert measured == MEASURED, md.format_report(counts)


def test_no_false_forbidden_or_fatal_hit_on_what_agents_really_said(hits: list[md.SentenceHit]) -> None:
    checked = md.read_checked()
    wrong = [
        h
        for h in hits
        if h.source == "ref"
        and h.rule_id in ("FORBIDDEN", "FATAL-ABUSE", "FATAL-DATA-LEAK", "NO-HEDGE", "POLITE-YOU")
        and checked[h.key]["verdict"] == "fp"
    ]
    assert wrong == []
