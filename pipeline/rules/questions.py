"""Counting the questions in a stretch of speech (ONE-QUESTION), without trusting ASR punctuation.

Whisper often ends a question with 。 and sometimes writes no punctuation at all, so questions are
found by their words. The text is cut into clauses at punctuation and after a question ending
(吗): 对吗我帮您查一下请您稍等可以吗 is two clauses. A clause is
  * a tag when it is nothing but a question tag (对吗, 是吗, 好吗, 对吧 …): it turns the clause before
    it into a question, or is one itself after a statement;
  * a question when it ends with a question ending, ends with ？, or holds a question word
    (请问, 什么, 怎么, 哪, 多少, 是否 …) outside the scorecard's exceptions (没什么, 什么的 …);
  * a statement otherwise.
Questions = question clauses + tags that follow a statement. 请问您咨询的是……问题，对吗？ is one
question; ……问题，对吗？我帮您查询一下，请您稍等可以吗？ is two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.rules.matching import Costs, Match, NormText, compile_pattern

if TYPE_CHECKING:
    from pipeline.rules.schema import QuestionCount

_BREAKS = set("，,。.？?！!；;：:、…—~～ \t\n")
_QUESTION_MARKS = set("？?")

STATEMENT, QUESTION, TAG = 0, 1, 2


def count_questions(lines: Sequence[NormText], rule: QuestionCount, costs: Costs) -> int:
    count = 0
    previous = STATEMENT
    for norm in lines:
        for kind in classify_clauses(norm, rule, costs):
            if kind == QUESTION or (kind == TAG and previous != QUESTION):
                count += 1
            previous = kind
    return count


def classify_clauses(norm: NormText, rule: QuestionCount, costs: Costs) -> list[int]:
    text = norm.text
    if not text:
        return []
    endings = _matches(rule.question_endings, norm, costs)
    tags = _matches(rule.question_tags, norm, costs)
    words = _matches(rule.question_words, norm, costs)
    guards = _matches(rule.exceptions, norm, costs)
    words = [w for w in words if not any(g.start <= w.start and w.end <= g.end for g in guards)]
    kinds = []
    for start, end, marked in _clauses(norm, {m.end for m in endings}):
        if any(t.start == start and t.end == end for t in tags):
            kinds.append(TAG)
        elif (
            marked
            or any(m.end == end for m in endings)
            or any(start <= w.start and w.end <= end for w in words)
        ):
            kinds.append(QUESTION)
        else:
            kinds.append(STATEMENT)
    return kinds


def _matches(patterns: Sequence[str], norm: NormText, costs: Costs) -> list[Match]:
    return [m for p in patterns for m in compile_pattern(p).search(norm, costs)]


def _clauses(norm: NormText, cut_after: set[int]) -> list[tuple[int, int, bool]]:
    """(start, end, ends with a question mark) of each clause, in canonical positions."""
    raw = norm.raw
    out = []
    start = 0
    n = len(norm.text)
    for i in range(1, n + 1):
        between = raw[norm.raw_end[i - 1] : norm.raw_start[i]] if i < n else raw[norm.raw_end[n - 1] :]
        punctuated = any(c in _BREAKS for c in between)
        if i == n or punctuated or i in cut_after:
            out.append((start, i, any(c in _QUESTION_MARKS for c in between)))
            start = i
    return out
