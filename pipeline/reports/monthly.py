"""A month's ranking and reward/penalty money, computed in DuckDB SQL from the stored scores.

Python here only orchestrates: it binds the month and the policy as parameters, registers two small
functions SQL cannot do itself (the t quantile for confidence intervals, and the abuse-phrase
matcher), runs the staged queries into temporary tables and turns rows into frozen records.

Definitions (docs/reports.md explains them for people):
- A call belongs to the month of `calls.started_at` in the configured time zone; only its current
  score (`scores.is_current`) counts.
- An agent's monthly score is the mean of their scored calls; agents with fewer than
  `ranking.min_scored_calls` are listed but not ranked. Ranks are competition ranks on the mean
  rounded to 2 decimals, so ties share a rank (1, 1, 3).
- Money lines: one per policy rule that applies to an agent, with the calls or events behind it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.cycles import collector_paused
from pipeline.diarize.roles import ROLE_REVIEW_BELOW
from pipeline.errors import CallQAError
from pipeline.reports.matching import abuse_phrases_in
from pipeline.reports.policy import LoadedPolicy
from pipeline.reports.privacy import evidence_for_output, for_output, redacts
from pipeline.reports.transcripts import Transcripts, UtteranceColumns
from pipeline.store import Store
from pipeline.store.call_time import call_span, span_filter

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
FORBIDDEN_SQL = "(f.rule_id = 'FORBIDDEN' OR f.rule_id LIKE 'FORBIDDEN-%')"


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if not match or not 1 <= int(match[2]) <= 12:
            raise CallQAError(f"月份“{text}”无效，应为 YYYY-MM（例如 2026-11）")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def previous_to(cls, moment: datetime) -> Month:
        """The month before the one `moment` falls in (the report the 1st of a month is for)."""
        return cls(moment.year, moment.month).previous()

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def label_zh(self) -> str:
        return f"{self.year} 年 {self.month} 月"


@dataclass(frozen=True)
class AgentMonth:
    agent_id: str
    agent_name: str | None
    calls: int  # scored calls this month
    mean: float | None
    median: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    min_score: float | None
    max_score: float | None
    fatal_calls: int
    fatal_findings: int
    failed_findings: int
    eligible: bool
    rank: int | None
    tied: bool
    lowest: bool
    close_to_above: bool | None  # CI overlaps the CI of the agent ranked just above
    prev_calls: int | None
    prev_mean: float | None
    prev_rank: int | None
    praise: int
    complaints: int
    lost_orders: int
    bad_reviews: int
    money_rank: int
    money_events: int
    money_total: int

    @property
    def mean_change(self) -> float | None:
        if self.mean is None or self.prev_mean is None:
            return None
        return self.mean - self.prev_mean


@dataclass(frozen=True)
class MoneyLine:
    agent_id: str
    rule_key: str  # rank_reward | lowest_rank_penalty | praise | complaint | lost_order | bad_review
    amount: int
    quantity: int
    unit_amount: int | None  # per-event rules
    rank: int | None
    mean: float | None
    threshold: float | None
    count: int | None  # praise count, events counted
    tier_min: int | None
    basis_calls: tuple[str, ...]
    basis_events: tuple[str, ...]


@dataclass(frozen=True)
class RuleFailures:
    rule_id: str
    title: str
    category: str
    failures: int
    calls_failed: int
    deduction: float
    cum_share: float
    prev_failures: int


@dataclass(frozen=True)
class AgentRuleFailures:
    agent_id: str
    rule_id: str
    title: str
    failures: int
    deduction: float


@dataclass(frozen=True)
class ScoreBin:
    low: int
    high: int
    calls: int


@dataclass(frozen=True)
class EventRow:
    event_id: str
    event_date: date
    agent_id: str
    kind: str
    substantiated: bool | None
    call_id: str | None
    note: str
    source_file: str
    source_line: int
    counted: bool  # counted by the money rules


@dataclass(frozen=True)
class GrievanceCandidate:
    call_id: str
    agent_id: str
    agent_name: str | None
    started_at: datetime
    score: float
    phrases: tuple[str, ...]
    hits: int
    first_s: float
    example: str


@dataclass(frozen=True)
class CallRow:
    call_id: str
    agent_id: str
    agent_name: str | None
    started_at: datetime
    duration_s: float
    path: str
    sha256: str
    score: float | None
    fatal: bool | None
    deduction: float
    failed_rules: tuple[str, ...]


@dataclass(frozen=True)
class FindingRow:
    call_id: str
    agent_id: str
    idx: int
    rule_id: str
    title: str
    category: str
    passed: bool
    deduction: float
    fatal: bool
    start_s: float | None
    end_s: float | None
    speaker: str | None
    evidence: str | None
    confidence: float | None
    needs_review: bool
    replacement: str | None

    @property
    def forbidden(self) -> bool:
        return self.rule_id == "FORBIDDEN" or self.rule_id.startswith("FORBIDDEN-")


@dataclass(frozen=True)
class MonthNotes:
    calls_in_month: int
    scored_calls: int
    unscored_calls: int
    calls_without_agent: int
    events: int
    calls_awaiting_roles: int  # roles doubtful (swapped channels, no service phrase): not ranked yet


@dataclass(frozen=True)
class MonthReport:
    month: Month
    timezone: str
    policy: LoadedPolicy
    agents: tuple[AgentMonth, ...]  # ranked first (by rank), then unranked
    money: tuple[MoneyLine, ...]
    rules: tuple[RuleFailures, ...]  # Pareto order
    agent_rules: tuple[AgentRuleFailures, ...]
    bins: tuple[ScoreBin, ...]
    events: tuple[EventRow, ...]
    candidates: tuple[GrievanceCandidate, ...]
    calls: tuple[CallRow, ...]
    findings: tuple[FindingRow, ...]  # failed findings of the month's current scores
    notes: MonthNotes
    generated_at: datetime

    def agent(self, agent_id: str) -> AgentMonth:
        return next(a for a in self.agents if a.agent_id == agent_id)


# ---- SQL ---------------------------------------------------------------------------------------
# Stages, each a temporary table of the connection. Parameters: $prev_start, $start, $end
# (TIMESTAMPTZ bounds of the previous and this month), $ev_start/$ev_end (DATE bounds), policy values.

STAGES: tuple[tuple[str, str], ...] = (
    (
        "rpt_calls",
        # Every call of this month and the previous one, with its current score when it has one.
        """
        SELECT c.call_id, c.agent_id, c.agent_name, c.started_at, c.duration_s, c.path, c.sha256,
               s.score, s.fatal, s.scored_at,
               CASE WHEN c.started_at >= $start THEN 'cur' ELSE 'prev' END AS period
        FROM calls c
        LEFT JOIN scores s ON s.call_id = c.call_id AND s.is_current
        WHERE c.started_at >= $prev_start AND c.started_at < $end
          AND c.role_confidence >= $role_review_below  -- roles waiting for a person: not ranked yet
        QUALIFY row_number() OVER (PARTITION BY c.call_id ORDER BY s.scored_at DESC NULLS LAST) = 1
        """,
    ),
    (
        "rpt_role_review",
        # This month's calls whose roles wait for a person (`callqa roles`): listed, not ranked.
        """
        SELECT c.call_id, c.agent_id FROM calls c
        WHERE c.started_at >= $start AND c.started_at < $end AND c.role_confidence < $role_review_below
        """,
    ),
    (
        "rpt_findings",
        # Findings of the current scores of those calls; of the previous month only the failed ones
        # (all that is counted of it: half as many rows to copy).
        """
        SELECT f.*, rc.agent_id, rc.period
        FROM findings f
        JOIN rpt_calls rc ON rc.call_id = f.call_id AND rc.scored_at = f.scored_at
        WHERE rc.agent_id IS NOT NULL AND (rc.period = 'cur' OR NOT f.passed)
          -- only skips other months' row groups (pipeline/store/call_time.py); the join decides
          AND f.call_started_at >= $prev_start AND f.call_started_at < $end
        """,
    ),
    (
        "rpt_events",
        """
        SELECT e.*,
               CASE e.kind
                   WHEN 'praise' THEN e.substantiated IS DISTINCT FROM false
                   ELSE e.substantiated IS TRUE
               END AS counted
        FROM agent_events e
        WHERE e.event_date >= $ev_start AND e.event_date < $ev_end
        """,
    ),
    (
        "rpt_stats",
        # Per agent and period: calls scored, mean, median, spread, confidence interval, fatal counts.
        """
        WITH per_call AS (
            SELECT call_id,
                   count(*) FILTER (WHERE NOT passed) AS failed,
                   count(*) FILTER (WHERE NOT passed AND fatal) AS fatal_findings
            FROM rpt_findings GROUP BY call_id
        )
        SELECT rc.period, rc.agent_id,
               arg_max(rc.agent_name, rc.started_at) AS agent_name,
               count(*) AS calls,
               avg(rc.score) AS mean,
               median(rc.score) AS median,
               stddev_samp(rc.score) AS sd,
               min(rc.score) AS min_score,
               max(rc.score) AS max_score,
               count(*) FILTER (WHERE rc.fatal) AS fatal_calls,
               coalesce(sum(pc.fatal_findings), 0)::INTEGER AS fatal_findings,
               coalesce(sum(pc.failed), 0)::INTEGER AS failed_findings
        FROM rpt_calls rc LEFT JOIN per_call pc USING (call_id)
        WHERE rc.score IS NOT NULL AND rc.agent_id IS NOT NULL
        GROUP BY rc.period, rc.agent_id
        """,
    ),
    (
        "rpt_ranked",
        """
        WITH ci AS (
            SELECT *,
                   calls >= $min_calls AS eligible,
                   round(mean, 2) AS mean_r,
                   CASE WHEN calls >= 2
                        THEN t_quantile((1 + $confidence) / 2, calls - 1) * sd / sqrt(calls) END AS half
            FROM rpt_stats
        ),
        r AS (
            SELECT *,
                   mean - half AS ci_low,
                   mean + half AS ci_high,
                   CASE WHEN eligible
                        THEN rank() OVER (PARTITION BY period, eligible ORDER BY mean_r DESC) END AS rank,
                   count(*) OVER (PARTITION BY period, eligible, mean_r) > 1 AS tied
            FROM ci
        ),
        -- The lowest lower bound among the agents of each rank, and that of the rank just above.
        rank_low AS (
            SELECT period, rank, lag(min(ci_low)) OVER (PARTITION BY period ORDER BY rank) AS above_low
            FROM r WHERE eligible GROUP BY period, rank
        )
        SELECT r.*,
               r.eligible AND r.rank = max(r.rank) OVER (PARTITION BY r.period)
                          AND max(r.rank) OVER (PARTITION BY r.period) > 1 AS lowest,
               r.ci_high >= rl.above_low AS close_to_above
        FROM r LEFT JOIN rank_low rl ON rl.period = r.period AND rl.rank = r.rank
        """,
    ),
    (
        "rpt_money",
        # One line per policy rule that applies to an agent this month.
        """
        WITH cur AS (SELECT * FROM rpt_ranked WHERE period = 'cur'),
        agent_calls AS (
            SELECT agent_id, list(call_id ORDER BY started_at, call_id) AS ids
            FROM rpt_calls WHERE period = 'cur' AND score IS NOT NULL GROUP BY agent_id
        ),
        rank_amounts AS (SELECT a.rank, a.amount FROM unnest($rank_amounts) AS t(a)),
        tiers AS (SELECT t.min_count, t.amount FROM unnest($praise_tiers) AS x(t)),
        unit AS (SELECT u.kind, u.amount FROM unnest($per_event) AS x(u)),
        praise AS (
            SELECT agent_id, count(*) AS n, list(event_id ORDER BY event_date, event_id) AS ids
            FROM rpt_events WHERE kind = 'praise' AND counted GROUP BY agent_id
        ),
        praise_tier AS (
            SELECT p.agent_id, p.n, p.ids, arg_max(t.amount, t.min_count) AS amount,
                   max(t.min_count) AS tier_min
            FROM praise p JOIN tiers t ON p.n >= t.min_count
            GROUP BY p.agent_id, p.n, p.ids
        ),
        penalties AS (
            SELECT agent_id, kind, count(*) AS n, list(event_id ORDER BY event_date, event_id) AS ids
            FROM rpt_events WHERE kind <> 'praise' AND counted GROUP BY agent_id, kind
        )
        SELECT c.agent_id, 'rank_reward' AS rule_key, ra.amount, 1 AS quantity, NULL::INTEGER AS unit_amount,
               c.rank, c.mean, $qualifying::DOUBLE AS threshold, NULL::INTEGER AS count,
               NULL::INTEGER AS tier_min, ac.ids AS basis_calls, []::VARCHAR[] AS basis_events
        FROM cur c JOIN rank_amounts ra ON ra.rank = c.rank
        JOIN agent_calls ac USING (agent_id)
        WHERE c.eligible AND c.mean_r >= $qualifying
        UNION ALL
        SELECT c.agent_id, 'lowest_rank_penalty', $lowest_amount, 1, NULL, c.rank, c.mean, $lowest_below,
               NULL, NULL, ac.ids, []::VARCHAR[]
        FROM cur c JOIN agent_calls ac USING (agent_id)
        WHERE c.lowest AND c.mean_r < $lowest_below
        UNION ALL
        SELECT agent_id, 'praise', amount, 1, NULL, NULL, NULL, NULL, n, tier_min, []::VARCHAR[], ids
        FROM praise_tier
        UNION ALL
        SELECT p.agent_id, p.kind, u.amount * p.n, p.n, u.amount, NULL, NULL, NULL, p.n, NULL,
               []::VARCHAR[], p.ids
        FROM penalties p JOIN unit u USING (kind)
        """,
    ),
    (
        "rpt_agents",
        # Everyone with a scored call or an event this month, with the previous month beside them.
        """
        WITH cur AS (SELECT * FROM rpt_ranked WHERE period = 'cur'),
        prev AS (SELECT * FROM rpt_ranked WHERE period = 'prev'),
        ev AS (
            SELECT agent_id,
                   count(*) FILTER (WHERE kind = 'praise' AND counted) AS praise,
                   count(*) FILTER (WHERE kind = 'complaint' AND counted) AS complaints,
                   count(*) FILTER (WHERE kind = 'lost_order' AND counted) AS lost_orders,
                   count(*) FILTER (WHERE kind = 'bad_review' AND counted) AS bad_reviews
            FROM rpt_events GROUP BY agent_id
        ),
        money AS (
            SELECT agent_id,
                   sum(amount) FILTER (WHERE rule_key IN ('rank_reward', 'lowest_rank_penalty')) AS rank_money,
                   sum(amount) FILTER (WHERE rule_key NOT IN ('rank_reward', 'lowest_rank_penalty')) AS event_money
            FROM rpt_money GROUP BY agent_id
        ),
        names AS (
            SELECT agent_id, arg_max(agent_name, started_at) AS agent_name
            FROM rpt_calls WHERE agent_id IS NOT NULL GROUP BY agent_id
        ),
        everyone AS (SELECT agent_id FROM cur UNION SELECT agent_id FROM ev)
        SELECT e.agent_id, coalesce(c.agent_name, n.agent_name) AS agent_name,
               coalesce(c.calls, 0)::INTEGER AS calls, c.mean, c.median, c.sd, c.ci_low, c.ci_high,
               c.min_score, c.max_score,
               coalesce(c.fatal_calls, 0)::INTEGER AS fatal_calls,
               coalesce(c.fatal_findings, 0)::INTEGER AS fatal_findings,
               coalesce(c.failed_findings, 0)::INTEGER AS failed_findings,
               coalesce(c.eligible, false) AS eligible, c.rank::INTEGER AS rank,
               coalesce(c.tied, false) AND coalesce(c.eligible, false) AS tied,
               coalesce(c.lowest, false) AS lowest, c.close_to_above,
               p.calls::INTEGER AS prev_calls, p.mean AS prev_mean, p.rank::INTEGER AS prev_rank,
               coalesce(ev.praise, 0)::INTEGER AS praise,
               coalesce(ev.complaints, 0)::INTEGER AS complaints,
               coalesce(ev.lost_orders, 0)::INTEGER AS lost_orders,
               coalesce(ev.bad_reviews, 0)::INTEGER AS bad_reviews,
               coalesce(m.rank_money, 0)::INTEGER AS money_rank,
               coalesce(m.event_money, 0)::INTEGER AS money_events,
               (coalesce(m.rank_money, 0) + coalesce(m.event_money, 0))::INTEGER AS money_total
        FROM everyone e
        LEFT JOIN cur c USING (agent_id)
        LEFT JOIN prev p USING (agent_id)
        LEFT JOIN ev USING (agent_id)
        LEFT JOIN money m USING (agent_id)
        LEFT JOIN names n USING (agent_id)
        """,
    ),
)

AGENTS_SQL = """
SELECT * FROM rpt_agents
ORDER BY rank IS NULL, rank, mean DESC NULLS LAST, calls DESC, agent_id
"""

MONEY_SQL = """
SELECT m.* FROM rpt_money m
JOIN rpt_agents a USING (agent_id)
ORDER BY a.rank IS NULL, a.rank, m.agent_id,
         list_position(['rank_reward', 'lowest_rank_penalty', 'praise', 'complaint', 'lost_order', 'bad_review'],
                       m.rule_key)
"""

RULES_SQL = """
WITH per_rule AS (
    SELECT rule_id,
           arg_max(title, scored_at) FILTER (WHERE period = 'cur') AS title,
           arg_max(category, scored_at) FILTER (WHERE period = 'cur') AS category,
           count(*) FILTER (WHERE period = 'cur' AND NOT passed) AS failures,
           count(DISTINCT call_id) FILTER (WHERE period = 'cur' AND NOT passed) AS calls_failed,
           coalesce(sum(deduction) FILTER (WHERE period = 'cur' AND NOT passed), 0) AS deduction,
           count(*) FILTER (WHERE period = 'prev' AND NOT passed) AS prev_failures
    FROM rpt_findings GROUP BY rule_id
)
SELECT rule_id, coalesce(title, rule_id) AS title, coalesce(category, '') AS category,
       failures::INTEGER AS failures, calls_failed::INTEGER AS calls_failed, deduction,
       sum(failures) OVER (ORDER BY failures DESC, rule_id ROWS UNBOUNDED PRECEDING)
           / sum(failures) OVER () AS cum_share,
       prev_failures::INTEGER AS prev_failures
FROM per_rule
WHERE failures > 0
ORDER BY failures DESC, rule_id
"""

AGENT_RULES_SQL = """
SELECT agent_id, rule_id, arg_max(title, scored_at) AS title,
       count(*)::INTEGER AS failures, sum(deduction) AS deduction
FROM rpt_findings
WHERE period = 'cur' AND NOT passed
GROUP BY agent_id, rule_id
ORDER BY agent_id, failures DESC, rule_id
"""

BINS_SQL = """
WITH edges AS (SELECT range AS low FROM range(0, 100, 10)),
binned AS (
    SELECT least(floor(score / 10), 9)::INTEGER * 10 AS low
    FROM rpt_calls WHERE period = 'cur' AND score IS NOT NULL AND agent_id IS NOT NULL
)
SELECT e.low::INTEGER AS low, (e.low + 10)::INTEGER AS high, count(b.low)::INTEGER AS calls
FROM edges e LEFT JOIN binned b ON b.low = e.low
GROUP BY e.low ORDER BY e.low
"""

EVENTS_SQL = """
SELECT event_id, event_date, agent_id, kind, substantiated, call_id, note, source_file, source_line,
       counted
FROM rpt_events ORDER BY event_date, agent_id, kind, event_id
"""

CANDIDATES_SQL = """
WITH hits AS (
    SELECT u.call_id, u.start_s, u.text, p.phrase
    FROM utterances u
    JOIN rpt_calls rc ON rc.call_id = u.call_id AND rc.period = 'cur'
    CROSS JOIN unnest(abuse_phrases(u.text)) AS p(phrase)
    WHERE u.speaker = 'customer' AND u.call_started_at >= $start AND u.call_started_at < $end
),
abusive AS (
    SELECT call_id, list(DISTINCT phrase ORDER BY phrase) AS phrases, count(*)::INTEGER AS hits,
           min(start_s) AS first_s, arg_min(text, start_s) AS example
    FROM hits GROUP BY call_id
)
SELECT a.call_id, rc.agent_id, rc.agent_name, rc.started_at, rc.score, a.phrases, a.hits, a.first_s,
       a.example
FROM abusive a JOIN rpt_calls rc USING (call_id)
WHERE rc.agent_id IS NOT NULL AND rc.score IS NOT NULL AND NOT rc.fatal AND rc.score >= $min_score
  AND NOT EXISTS (
      SELECT 1 FROM rpt_findings f
      WHERE f.call_id = a.call_id AND NOT f.passed
        AND (f.fatal OR f.rule_id = 'NO-INTERRUPT' OR """
CANDIDATES_SQL += (
    FORBIDDEN_SQL
    + """)
  )
  AND NOT EXISTS (SELECT 1 FROM interruptions i WHERE i.call_id = a.call_id AND i.by_speaker = 'agent')
ORDER BY a.hits DESC, rc.score DESC, rc.started_at
"""
)

CALLS_SQL = """
WITH failed AS (
    SELECT call_id, sum(deduction) AS deduction,
           list(DISTINCT coalesce(nullif(title, ''), rule_id) ORDER BY coalesce(nullif(title, ''), rule_id)) AS rules
    FROM rpt_findings WHERE period = 'cur' AND NOT passed GROUP BY call_id
)
SELECT rc.call_id, rc.agent_id, rc.agent_name, rc.started_at, rc.duration_s, rc.path, rc.sha256,
       rc.score, rc.fatal, coalesce(f.deduction, 0) AS deduction, coalesce(f.rules, []) AS failed_rules
FROM rpt_calls rc LEFT JOIN failed f USING (call_id)
WHERE rc.period = 'cur' AND rc.agent_id IS NOT NULL
ORDER BY rc.agent_id, rc.started_at, rc.call_id
"""

FINDINGS_SQL = """
SELECT call_id, agent_id, idx, rule_id, title, category, passed, deduction, fatal, start_s, end_s,
       speaker, evidence, confidence, needs_review, replacement
FROM rpt_findings WHERE period = 'cur' AND NOT passed
ORDER BY call_id, start_s NULLS LAST, idx
"""

NOTES_SQL = """
SELECT count(*)::INTEGER AS calls_in_month,
       count(*) FILTER (WHERE score IS NOT NULL AND agent_id IS NOT NULL)::INTEGER AS scored_calls,
       count(*) FILTER (WHERE score IS NULL AND agent_id IS NOT NULL)::INTEGER AS unscored_calls,
       count(*) FILTER (WHERE agent_id IS NULL)::INTEGER AS calls_without_agent,
       (SELECT count(*) FROM rpt_events)::INTEGER AS events,
       (SELECT count(*) FROM rpt_role_review)::INTEGER AS calls_awaiting_roles
FROM rpt_calls WHERE period = 'cur'
"""

T = TypeVar("T")
_TEXT_FIELDS = frozenset({"evidence", "note", "example", "text"})


def compute_month(store: Store, month: Month, policy: LoadedPolicy, timezone: str) -> MonthReport:
    """Everything the month's reports show, from the store, as records."""
    return _compute_month(store, month, policy, timezone, with_transcripts=False).report


@dataclass(frozen=True)
class MonthRead:
    report: MonthReport
    transcripts: Transcripts  # of the month's calls (report.calls)
    changed: dict[tuple[str, int], str]  # stored text of the utterances redaction changed


def read_month(store: Store, month: Month, policy: LoadedPolicy, timezone: str) -> MonthRead:
    """`compute_month` and the transcripts of its calls (`read_transcripts`), the month's utterances
    read once: the redaction of the findings' evidence takes its calls' text from the same rows."""
    return _compute_month(store, month, policy, timezone, with_transcripts=True)


def _compute_month(
    store: Store, month: Month, policy: LoadedPolicy, timezone: str, with_transcripts: bool
) -> MonthRead:
    tz = _zone(timezone)
    p = policy.policy
    stage_params: dict[str, object] = {
        "prev_start": month.previous().start(tz),
        "role_review_below": ROLE_REVIEW_BELOW,
        "start": month.start(tz),
        "end": month.next().start(tz),
        "ev_start": month.first_day(),
        "ev_end": month.next().first_day(),
        "min_calls": p.ranking.min_scored_calls,
        "confidence": p.ranking.confidence_level,
        "rank_amounts": [{"rank": r, "amount": a} for r, a in sorted(p.rank_rewards.amounts.items())],
        "qualifying": p.rank_rewards.qualifying_score,
        "lowest_below": p.lowest_rank_penalty.below_score,
        "lowest_amount": p.lowest_rank_penalty.amount,
        "praise_tiers": [{"min_count": t.min_count, "amount": t.amount} for t in p.praise_tiers],
        "per_event": [{"kind": k, "amount": v} for k, v in p.per_event.model_dump().items()],
    }
    phrases = p.grievance.customer_abuse_phrases
    with _functions(store, phrases), collector_paused():
        for table, sql in STAGES:
            used = {k: v for k, v in stage_params.items() if f"${k}" in sql}
            store.db.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", used)
        calls = _records(CallRow, store.query(CALLS_SQL))
        utterances = UtteranceColumns.read(store, [c.call_id for c in calls]) if with_transcripts else None
        said = utterances.said() if utterances is not None and redacts() else {}
        # the failed findings by column: up to a million rows a month (a dict per row: seconds)
        findings = store.columns(FINDINGS_SQL)
        findings["evidence"] = _quoting_calls(store, findings["call_id"], findings["evidence"], said)
        report = MonthReport(
            month=month,
            timezone=timezone,
            policy=policy,
            agents=_records(AgentMonth, store.query(AGENTS_SQL)),
            money=_records(MoneyLine, store.query(MONEY_SQL)),
            rules=_records(RuleFailures, store.query(RULES_SQL)),
            agent_rules=_records(AgentRuleFailures, store.query(AGENT_RULES_SQL)),
            bins=_records(ScoreBin, store.query(BINS_SQL)),
            events=_records(EventRow, _with_calls(store, store.query(EVENTS_SQL), "note", said)),
            candidates=_records(
                GrievanceCandidate,
                _with_calls(
                    store,
                    store.query(
                        CANDIDATES_SQL,
                        {
                            "min_score": p.grievance.min_score,
                            "start": stage_params["start"],
                            "end": stage_params["end"],
                        },
                    ),
                    "example",
                    said,
                ),
            ),
            calls=calls,
            findings=_column_records(FindingRow, findings),
            notes=_records(MonthNotes, store.query(NOTES_SQL))[0],
            generated_at=datetime.now(tz),
        )
        for table, _ in reversed(STAGES):
            store.db.execute(f"DROP TABLE IF EXISTS {table}")
    if utterances is None:
        return MonthRead(report, {}, {})
    return MonthRead(report, *utterances.transcripts(store))


def _with_calls(
    store: Store, rows: list[dict[str, Any]], field: str, said: Mapping[str, Sequence[tuple[str, str]]]
) -> list[dict[str, Any]]:
    """Rows whose text `field` quotes the row's call, redacted with that call around it
    (`_quoting_calls`)."""
    texts = _quoting_calls(store, [row["call_id"] for row in rows], [row[field] for row in rows], said)
    return [{**row, field: text} for row, text in zip(rows, texts, strict=True)]


def _quoting_calls(
    store: Store,
    call_ids: Sequence[str | None],
    texts: Sequence[str | None],
    said: Mapping[str, Sequence[tuple[str, str]]],
) -> list[str | None]:
    """Texts (a finding's evidence, a CRM note, an abuse example), each quoting the call beside it,
    redacted with that call around it: a text may hold the hidden part of a number said in the
    call. `_records` then leaves them as they are (redacting twice changes nothing). `said`: the
    (speaker, text) of calls already read (the month's, `UtteranceColumns.said`); others are read."""
    quoting = [bool(text and call_id) for call_id, text in zip(call_ids, texts, strict=True)]
    wanted = sorted({call_id for call_id, q in zip(call_ids, quoting, strict=True) if q and call_id})
    if not wanted or not redacts():  # unredacted: the text passes as it is, no call needed around it
        return list(texts)
    lines: dict[str, list[tuple[str, str]]] = {}
    missing = [call_id for call_id in wanted if call_id not in said]
    if missing:
        during, span = span_filter("u", call_span(store.db, missing))
        read = store.columns(
            "SELECT call_id, speaker, text FROM utterances u WHERE call_id IN (SELECT unnest(?::VARCHAR[]))"
            f"{during} ORDER BY call_id, idx",
            [missing, *span],
        )
        for call_id, speaker, text in zip(read["call_id"], read["speaker"], read["text"], strict=True):
            lines.setdefault(call_id, []).append((speaker, text))
    return [
        evidence_for_output(text, said.get(call_id) or lines.get(call_id, [])) if q and call_id else text
        for call_id, text, q in zip(call_ids, texts, quoting, strict=True)
    ]


def _records(cls: Callable[..., T], rows: Sequence[dict[str, Any]]) -> tuple[T, ...]:
    """Rows → records; list columns become tuples and free text passes through `for_output`."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    out = []
    for row in rows:
        values = {}
        for name in names:
            value = row[name]
            if isinstance(value, list):
                value = tuple(value)
            elif name in _TEXT_FIELDS:
                value = for_output(value)
            values[name] = value
        out.append(cls(**values))
    return tuple(out)


def _column_records(cls: Callable[..., T], columns: dict[str, list]) -> tuple[T, ...]:
    """`_records` of a result read by column (`Store.columns`: no list columns)."""
    values = []
    for name in (f.name for f in fields(cls)):  # type: ignore[arg-type]
        column = columns[name]
        values.append([for_output(v) for v in column] if name in _TEXT_FIELDS else column)
    return tuple(cls(*row) for row in zip(*values, strict=True))


@contextmanager
def _functions(store: Store, phrases: tuple[str, ...]) -> Iterator[None]:
    """The two things SQL cannot do itself, as scalar functions of this connection."""
    # scipy.stats' t.ppf is this function behind argument checks; scipy.stats takes 0.9 s to import
    from scipy.special import stdtrit

    def t_quantile(p: float, df: int) -> float:
        return float(stdtrit(df, p))

    def abuse_phrases(text: str) -> list[str]:
        return abuse_phrases_in(text, phrases)

    store.db.create_function("t_quantile", t_quantile, ["DOUBLE", "BIGINT"], "DOUBLE")
    store.db.create_function("abuse_phrases", abuse_phrases, ["VARCHAR"], "VARCHAR[]")
    try:
        yield
    finally:
        store.db.remove_function("abuse_phrases")
        store.db.remove_function("t_quantile")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CallQAError(f"时区“{name}”无效（input.timezone）") from exc
