"""Is the transcript good enough to judge by? The recogniser's own evidence, per utterance.

An absence finding ("the agent did not say X") is only as good as the text of the window where X
should be: when that text is a decoding loop (请您稍后对等从不仅仅仅仅仅仅仅仅) or garbled (the
recogniser's word probabilities or whisper's log-probability low), the words may well have been
said. A phrase hit read from such a stretch is as weak. Both go to a person instead of deducting
(scorecard `matching` section: `asr_*` limits; docs/scorecard.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.rules.schema import Matching
from pipeline.rules.transcript import Line


def unreliable(line: Line, matching: Matching) -> str | None:
    """Why the recogniser's text of this utterance is too weak to judge by (Chinese), or None.

    Word probabilities count only for recognised text (with character timings); a typed
    transcript carries none. Evidence a stored utterance lacks (older rows) is not held against it.
    """
    u = line.utterance
    reasons = []
    if matching.asr_review_loops and u.looping:
        reasons.append("疑似识别循环（同一字词反复出现）")
    if u.chars and u.confidence < matching.asr_min_word_probability:
        reasons.append(f"识别把握 {u.confidence:.2f} 低于 {matching.asr_min_word_probability:g}")
    if u.avg_logprob is not None and u.avg_logprob < matching.asr_min_avg_logprob:
        reasons.append(f"平均对数概率 {u.avg_logprob:.2f} 低于 {matching.asr_min_avg_logprob:g}")
    if u.no_speech_prob is not None and u.no_speech_prob > matching.asr_max_no_speech_prob:
        reasons.append(f"无语音概率 {u.no_speech_prob:.2f} 高于 {matching.asr_max_no_speech_prob:g}")
    if u.compression_ratio is not None and u.compression_ratio > matching.asr_max_compression_ratio:
        reasons.append(f"压缩比 {u.compression_ratio:.2f} 高于 {matching.asr_max_compression_ratio:g}")
    return "，".join(reasons) or None


def doubt(lines: Iterable[Line], matching: Matching) -> str | None:
    """Why a finding read from these lines needs a person: the first weak utterance, or None."""
    for line in lines:
        reason = unreliable(line, matching)
        if reason is not None:
            return f"{_clock(line.start)} 的转写不可靠（{reason}）"
    return None


def _clock(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"
