"""The evaluation's totals (pipeline/evaluate.py): which side of the agent's rate misses, per layout."""

from __future__ import annotations

from dataclasses import replace

from pipeline.evaluate import MetricsEvaluation, TruthFacts
from pipeline.records import CallMetrics

TRUTH = TruthFacts(
    stereo=False,
    agent_chars_per_min=150.0,
    agent_chars=150,
    agent_speaking_s=60.0,
    interruptions=(),
    holds=(),
    rings=0,
    answer_delay_s=None,
    hangup_by=None,
)
METRICS = CallMetrics(
    duration_s=120.0,
    agent_chars_per_min=150.0,
    customer_chars_per_min=None,
    agent_speaking_s=60.0,
    agent_rate_outside_share=None,
    utterance_rates=(),
    interruptions=(),
    holds=(),
    dead_air=(),
    rings=0,
    rings_source=None,
    answered_at=0.0,
    answer_delay_s=None,
    answer_delay_source=None,
    agent_talk_s=60.0,
    customer_talk_s=0.0,
    overlap_s=0.0,
    silence_ratio=0.0,
    longest_silence_s=0.0,
    hangup_by=None,
    hangup_source=None,
    call_type=None,
    nuisance_over_max=None,
)


def test_rate_misses_say_whether_time_or_characters_are_off() -> None:
    evaluation = MetricsEvaluation()
    evaluation.add("right", TRUTH, METRICS)
    # 10 % of the speaking time missed, the words all heard: the rate reads 11 % high
    evaluation.add("short", TRUTH, replace(METRICS, agent_speaking_s=54.0, agent_chars_per_min=166.7))
    # the customer's words credited to the agent: 20 % more characters in 10 % more time
    evaluation.add("extra", TRUTH, replace(METRICS, agent_speaking_s=66.0, agent_chars_per_min=163.6))
    evaluation.add("stereo", replace(TRUTH, stereo=True), replace(METRICS, agent_chars_per_min=140.0))
    by_layout = evaluation.summary()["rate_by_layout"]
    mono = by_layout["mono"]
    assert (mono["too_high"], mono["too_low"]) == (2, 0)
    assert mono["outside"] == [(0.091, 1.1, 1.2), (0.111, 0.9, 1.0)]
    assert mono["speaking_time_ratio"] == 1.0 and mono["chars_ratio"] == 1.0  # medians of three
    stereo = by_layout["stereo"]
    assert (stereo["too_high"], stereo["too_low"], stereo["median_error"]) == (0, 1, -0.0667)
    assert stereo["outside"] == [(-0.067, 1.0, 0.933)]
