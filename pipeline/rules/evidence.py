"""Is the transcript good enough to judge by? The recogniser's own evidence, per utterance.

An absence finding ("the agent did not say X") is only as good as the text of the window where X
should be: when that text is a decoding loop (请您稍后对等从不仅仅仅仅仅仅仅仅) or garbled (the
recogniser's word probabilities or whisper's log-probability low), the words may well have been
said. A phrase hit read from such a stretch is as weak. Both go to a person instead of deducting
(scorecard `matching` section: `asr_*` limits; docs/scorecard.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from pipeline.rules.schema import Matching
from pipeline.rules.transcript import Line


class Heard(Protocol):
    """What the recogniser's evidence of an utterance is judged by: an `Utterance`, or a stored
    row of one read without building it (pipeline/reports/monthly.py)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def chars(self) -> Sequence[object]: ...
    @property
    def confidence(self) -> float: ...
    @property
    def avg_logprob(self) -> float | None: ...
    @property
    def no_speech_prob(self) -> float | None: ...
    @property
    def compression_ratio(self) -> float | None: ...
    @property
    def looping(self) -> bool: ...
    @property
    def unheard_s(self) -> float | None: ...


def unreliable(line: Line, matching: Matching, absence: bool = True) -> str | None:
    return weak_evidence(line.utterance, matching, absence=absence)


def weak_evidence(
    u: Heard, matching: Matching, recognised: bool | None = None, absence: bool = True
) -> str | None:
    """Why the recogniser's text of this utterance is too weak to judge by (Chinese), or None.

    Word probabilities count only for recognised text (with character timings); a typed
    transcript carries none. Evidence a stored utterance lacks (older rows) is not held against it.
    `recognised` overrides the character-timing test (a page that reads no timings). Speech left
    without text weakens an absence ("did not say X": X may be in it), not a phrase that was heard.
    """
    recognised = bool(u.chars) if recognised is None else recognised
    reasons = []
    if matching.asr_review_loops and u.looping:
        reasons.append("疑似识别循环（同一字词反复出现）")
    if recognised and u.confidence < matching.asr_min_word_probability:
        reasons.append(f"识别把握 {u.confidence:.2f} 低于 {matching.asr_min_word_probability:g}")
    if u.avg_logprob is not None and u.avg_logprob < matching.asr_min_avg_logprob:
        reasons.append(f"平均对数概率 {u.avg_logprob:.2f} 低于 {matching.asr_min_avg_logprob:g}")
    if u.no_speech_prob is not None and u.no_speech_prob > matching.asr_max_no_speech_prob:
        reasons.append(f"无语音概率 {u.no_speech_prob:.2f} 高于 {matching.asr_max_no_speech_prob:g}")
    if u.compression_ratio is not None and u.compression_ratio > matching.asr_max_compression_ratio:
        reasons.append(f"压缩比 {u.compression_ratio:.2f} 高于 {matching.asr_max_compression_ratio:g}")
    if absence and u.unheard_s is not None and u.unheard_s > matching.asr_max_unheard_s:
        share = u.unheard_s / (u.end - u.start) if u.end > u.start else 1.0
        if share > matching.asr_max_unheard_share:
            reasons.append(f"{u.unheard_s:.1f} 秒语音（本句的 {share:.0%}）没有识别出文字")
    return "，".join(reasons) or None


# The fastest speech an absence is checked against (6 characters a second, well above the
# handbook's 200 per minute): a weak utterance too short to hold the missing words at this rate
# (a 0.6 s 是的 heard with probability 0.04) cannot be where they were said.
FASTEST_CHARS_PER_S = 6.0


def doubt(
    lines: Iterable[Line], matching: Matching, absence: bool = True, missing_chars: int = 0
) -> str | None:
    """Why a finding read from these lines needs a person: the first weak utterance, or None.
    `absence`: the finding is that something was not said (else: a phrase was heard);
    `missing_chars`: the fewest characters the missing words take (utterances too short to hold
    them are not doubted)."""
    shortest_s = missing_chars / FASTEST_CHARS_PER_S if absence else 0.0
    for line in lines:
        if line.end - line.start < shortest_s:
            continue
        reason = unreliable(line, matching, absence)
        if reason is not None:
            return f"{_clock(line.start)} 的转写不可靠（{reason}）"
    return None


def recogniser_note_zh(u: Heard, matching: Matching, recognised: bool | None = None) -> str:
    """What `callqa show` and the call page print beside an utterance: 识别把握 0.91, or, for weak
    text, 识别把握 0.31，转写不可靠：平均对数概率 -1.20 低于 -1."""
    return recogniser_evidence_zh(u, matching, recognised)[0]


def recogniser_evidence_zh(
    u: Heard, matching: Matching, recognised: bool | None = None
) -> tuple[str, str | None]:
    """`recogniser_note_zh` and `weak_evidence` of one utterance, the weak test run once (a month's
    call pages need both for 1.7 million utterances)."""
    recognised = bool(u.chars) if recognised is None else recognised
    known = recognised or u.avg_logprob is not None or u.confidence > 0
    note = f"识别把握 {u.confidence:.2f}" if known else "无识别把握数据"
    weak = weak_evidence(u, matching, recognised)
    return (f"{note}，转写不可靠：{weak}" if weak else note), weak


def scorecard_matching(content: str | None) -> Matching:
    """The `matching` section of a stored scorecard's text; the defaults when it cannot be read."""
    import yaml
    from pydantic import ValidationError

    # libyaml's safe loader when installed: the pure-Python one took 0.6 s of `callqa show`'s 0.9 s
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(content or "", Loader=loader)  # a safe loader either way
    except yaml.YAMLError:
        return Matching()
    section = data.get("matching") if isinstance(data, dict) else None
    try:
        return Matching.model_validate(section or {})
    except ValidationError:  # a scorecard stored by an older version: judge by the defaults
        return Matching()


def _clock(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"
