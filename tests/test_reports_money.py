"""The month's ranking and money on a constructed month with known answers (tests/fixtures/reports).

Ties, too few calls, threshold edges (exactly at and just past each threshold), complaints,
praise tiers, month edges in Shanghai time, stale scores, previous month, Pareto, grievance
candidates. The expected figures are worked out by hand in monthdata.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fixtures.reports.monthdata import EXPECTED, TZ, build
from scipy.stats import t as student_t

from pipeline.reports.monthly import Month, MonthReport, compute_month
from pipeline.reports.policy import load_policy
from pipeline.store import Store


@pytest.fixture(scope="module")
def month_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    work = tmp_path_factory.mktemp("month")
    built = build(work / "qa.duckdb", work)
    return work / "qa.duckdb", built


def _report(db: Path, policy_text: str | None = None, tmp: Path | None = None) -> MonthReport:
    policy_file = None
    if policy_text is not None:
        assert tmp is not None
        policy_file = tmp / "policy.yaml"
        policy_file.write_text(policy_text, encoding="utf-8")
    with Store(db, read_only=True) as store:
        return compute_month(store, Month.parse("2026-11"), load_policy(policy_file), "Asia/Shanghai")


@pytest.fixture(scope="module")
def report(month_db: tuple[Path, object]) -> MonthReport:
    return _report(month_db[0])


def _money(report: MonthReport) -> set[tuple[str, str, int, int]]:
    return {(m.agent_id, m.rule_key, m.amount, m.quantity) for m in report.money}


def test_agents_calls_means_ranks_and_totals_match_the_hand_worked_answers(report: MonthReport) -> None:
    got = {a.agent_id: (a.calls, round(a.mean, 2), a.rank, a.money_total) for a in report.agents}
    assert got == EXPECTED
    # Ranked agents first in rank order, then the unranked one.
    assert [a.agent_id for a in report.agents] == ["A01", "A02", "A03", "A04", "A05"]


def test_ties_share_a_rank_and_the_next_rank_is_skipped(report: MonthReport) -> None:
    a01, a02, a03 = report.agent("A01"), report.agent("A02"), report.agent("A03")
    assert a01.rank == a02.rank == 1 and a01.tied and a02.tied
    assert a03.rank == 3 and not a03.tied
    # Both tied agents get rank 1's amount; rank 2's amount is paid to nobody.
    assert ("A01", "rank_reward", 100, 1) in _money(report)
    assert ("A02", "rank_reward", 100, 1) in _money(report)
    assert not any(m.rule_key == "rank_reward" and m.amount == 50 for m in report.money)


def test_too_few_calls_are_listed_but_not_ranked_and_still_get_event_money(report: MonthReport) -> None:
    a05 = report.agent("A05")
    assert (a05.calls, a05.eligible, a05.rank, a05.mean) == (19, False, None, 100.0)
    assert _money(report) & {m for m in _money(report) if m[0] == "A05"} == {("A05", "praise", 10, 1)}


def test_a_call_belongs_to_its_month_in_shanghai_time(
    month_db: tuple[Path, object], report: MonthReport
) -> None:
    calls = {c.call_id: c for c in report.calls if c.agent_id == "A05"}
    starts = sorted(c.started_at.astimezone(TZ).strftime("%m-%d %H:%M") for c in calls.values())
    assert starts[0] == "11-01 00:30"  # 31 Oct 16:30 UTC, but November in Shanghai
    assert starts[-1] == "11-30 23:30"
    assert not any(s.startswith("12-") or s.startswith("10-") for s in starts)
    assert len(calls) == 19


def test_only_current_scores_count_and_unscored_or_agentless_calls_are_noted(report: MonthReport) -> None:
    a02 = report.agent("A02")
    assert a02.mean == 95.0 and a02.min_score == 95.0  # the stale score 10 is not used
    assert a02.failed_findings == 20  # the stale scoring's finding is not counted
    assert report.notes.unscored_calls == 1 and report.notes.calls_without_agent == 1
    assert report.notes.scored_calls == 20 + 20 + 25 + 21 + 19
    unscored = [c for c in report.calls if c.score is None]
    assert len(unscored) == 1 and unscored[0].agent_id == "A02"


def test_complaints_count_only_when_substantiated_and_only_in_the_month(report: MonthReport) -> None:
    a03, a04 = report.agent("A03"), report.agent("A04")
    assert a03.complaints == 2 and a04.complaints == 0  # October/December complaints are not November's
    line = next(m for m in report.money if m.agent_id == "A03" and m.rule_key == "complaint")
    assert (line.amount, line.quantity, line.unit_amount) == (-100, 2, -50)
    notes = {e.event_id: e.note for e in report.events}
    assert sorted(notes[i] for i in line.basis_events) == ["态度生硬，经核实属实", "第二次投诉，属实"]
    uncounted = {
        e.note for e in report.events if e.agent_id == "A03" and e.kind == "complaint" and not e.counted
    }
    assert uncounted == {"不属实", "待核实"}
    assert ("A04", "lost_order", -30, 3) in _money(report)
    assert ("A04", "bad_review", -10, 1) in _money(report)


def test_praise_tiers_take_the_highest_tier_reached(report: MonthReport) -> None:
    praise = {m.agent_id: (m.count, m.tier_min, m.amount) for m in report.money if m.rule_key == "praise"}
    # 29 (a 30th praise marked not substantiated does not count) → 10; 30 → 30; 50 → 50; 10 → 10.
    assert praise == {"A01": (29, 10, 10), "A02": (30, 30, 30), "A03": (50, 50, 50), "A05": (10, 10, 10)}
    line = next(m for m in report.money if m.agent_id == "A01" and m.rule_key == "praise")
    assert len(line.basis_events) == 29


def test_every_money_line_names_its_rule_and_the_calls_or_events_behind_it(report: MonthReport) -> None:
    scored = {c.call_id for c in report.calls if c.agent_id == "A03" and c.score is not None}
    rank_line = next(m for m in report.money if m.agent_id == "A03" and m.rule_key == "rank_reward")
    assert set(rank_line.basis_calls) == scored and len(scored) == 25
    assert (rank_line.rank, rank_line.mean, rank_line.threshold) == (3, 90.0, 90.0)
    event_ids = {e.event_id for e in report.events}
    for line in report.money:
        assert line.rule_key in {
            "rank_reward",
            "lowest_rank_penalty",
            "praise",
            "complaint",
            "lost_order",
            "bad_review",
        }
        assert line.basis_calls or line.basis_events
        assert set(line.basis_events) <= event_ids
    totals = {a.agent_id: a.money_total for a in report.agents}
    for agent_id, total in totals.items():
        assert total == sum(m.amount for m in report.money if m.agent_id == agent_id)


def test_qualifying_threshold_edge(month_db: tuple[Path, object], tmp_path: Path) -> None:
    # 90.00 reaches 90 (default, above); 90.01 is not reached: A03 loses the rank-3 reward.
    report = _report(month_db[0], "rank_rewards:\n  qualifying_score: 90.01\n", tmp_path)
    assert not any(m.agent_id == "A03" and m.rule_key == "rank_reward" for m in report.money)
    assert report.agent("A03").money_total == -50


def test_lowest_rank_threshold_edge(
    month_db: tuple[Path, object], report: MonthReport, tmp_path: Path
) -> None:
    a04 = report.agent("A04")
    assert a04.lowest and a04.mean == 80.0
    assert not any(m.rule_key == "lowest_rank_penalty" for m in report.money)  # 80.00 is not below 80
    stricter = _report(month_db[0], "lowest_rank_penalty:\n  below_score: 80.01\n  amount: -50\n", tmp_path)
    line = next(m for m in stricter.money if m.rule_key == "lowest_rank_penalty")
    assert (line.agent_id, line.amount, line.rank) == ("A04", -50, 4)
    assert stricter.agent("A04").money_total == -90


def test_minimum_calls_is_configurable_and_changes_the_ranking(
    month_db: tuple[Path, object], tmp_path: Path
) -> None:
    report = _report(month_db[0], "ranking:\n  min_scored_calls: 19\n", tmp_path)
    ranks = {a.agent_id: a.rank for a in report.agents}
    assert ranks == {"A05": 1, "A01": 2, "A02": 2, "A03": 4, "A04": 5}
    rewards = {m.agent_id: m.amount for m in report.money if m.rule_key == "rank_reward"}
    assert rewards == {"A05": 100, "A01": 50, "A02": 50}  # rank 4 gets nothing


def test_per_event_amounts_come_from_the_policy(month_db: tuple[Path, object], tmp_path: Path) -> None:
    report = _report(month_db[0], "per_event:\n  complaint: -80\n", tmp_path)
    assert ("A03", "complaint", -160, 2) in _money(report)
    assert ("A04", "lost_order", -30, 3) in _money(report)  # the other amounts keep their defaults


def test_confidence_intervals_and_which_ranks_are_not_really_different(report: MonthReport) -> None:
    a01 = report.agent("A01")
    half = student_t.ppf(0.975, 19) * math.sqrt(500 / 19) / math.sqrt(20)
    assert a01.ci_low == pytest.approx(95 - half) and a01.ci_high == pytest.approx(95 + half)
    assert report.agent("A02").ci_low == report.agent("A02").ci_high == 95.0  # no spread
    # A03's interval [87.9, 92.1] stays below rank 1's lowest bound 92.6: a real difference.
    assert report.agent("A03").close_to_above is False
    # A04's wide interval [68.9, 91.1] overlaps A03's: rank 4 vs 3 may be chance.
    assert report.agent("A04").close_to_above is True
    assert report.agent("A05").ci_low is not None and report.agent("A05").close_to_above is None


def test_fatal_findings_and_failures_per_rule(report: MonthReport) -> None:
    a04 = report.agent("A04")
    assert (a04.fatal_calls, a04.fatal_findings, a04.median) == (1, 1, 68.0)
    per_agent = {(x.agent_id, x.rule_id): x.failures for x in report.agent_rules}
    assert per_agent[("A03", "FORBIDDEN-不知道")] == 12 and per_agent[("A03", "OPEN-GREETING")] == 24
    assert per_agent[("A04", "NO-INTERRUPT")] == 10 and ("A05", "RATE") not in per_agent


def test_pareto_orders_rules_by_failures_with_the_cumulative_share(report: MonthReport) -> None:
    order = [(r.rule_id, r.failures) for r in report.rules]
    assert order == [
        ("OPEN-GREETING", 24),
        ("RATE", 20),
        ("FORBIDDEN-不知道", 12),
        ("CLOSE-SURVEY", 10),
        ("CLOSE-THANK", 10),
        ("NO-INTERRUPT", 10),
        ("FATAL-ABUSE", 1),
        ("FORBIDDEN-这不归我管", 1),
    ]
    assert report.rules[0].cum_share == pytest.approx(24 / 88)
    assert report.rules[-1].cum_share == pytest.approx(1.0)
    assert report.rules[1].prev_failures == 0 and report.rules[6].prev_failures == 1  # October's fatal call
    assert [b.calls for b in report.bins] == [1, 0, 0, 0, 0, 0, 10, 0, 12, 82]


def test_change_against_the_previous_month(report: MonthReport) -> None:
    prev = {a.agent_id: (a.prev_mean, a.prev_rank) for a in report.agents}
    assert prev["A01"] == (85.0, 2) and prev["A02"] == (97.0, 1) and prev["A04"] == (60.0, 3)
    assert prev["A03"] == (None, None)
    assert report.agent("A01").mean_change == pytest.approx(10.0)
    assert report.agent("A02").mean_change == pytest.approx(-2.0)


def test_grievance_candidates(month_db: tuple[Path, object], report: MonthReport, tmp_path: Path) -> None:
    built = month_db[1]
    got = {c.call_id for c in report.candidates}
    # Abusive customer and a compliant agent: yes (also written in traditional characters with a
    # space, and exactly at the 90 threshold). Forbidden phrase, agent interruption, score 68: no.
    assert got == set(built.grievance_yes)
    assert not got & set(built.grievance_no)
    first = next(c for c in report.candidates if c.call_id == built.grievance_yes[0])
    assert first.phrases == ("破服务", "骗子") and first.first_s == 3.2
    stricter = _report(month_db[0], "grievance:\n  min_score: 90.01\n", tmp_path)
    assert {c.call_id for c in stricter.candidates} == {built.grievance_yes[0]}


def test_a_month_with_nothing_in_it(month_db: tuple[Path, object]) -> None:
    with Store(month_db[0], read_only=True) as store:
        empty = compute_month(store, Month.parse("2027-03"), load_policy(), "Asia/Shanghai")
    assert empty.agents == () and empty.money == () and empty.rules == () and empty.candidates == ()
    assert sum(b.calls for b in empty.bins) == 0


def test_month_parsing() -> None:
    from datetime import datetime

    from pipeline.errors import CallQAError

    assert str(Month.parse("2026-01").previous()) == "2025-12"
    assert str(Month.parse("2026-12").next()) == "2027-01"
    assert str(Month.previous_to(datetime(2026, 12, 1, 6, 0, tzinfo=TZ))) == "2026-11"
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", ""):
        with pytest.raises(CallQAError, match="YYYY-MM"):
            Month.parse(bad)
