"""HTML pages from a computed month: Jinja2 templates, charts inline, no external resource.

Pages link to each other by relative paths (ranking.html, agents/<id>.html, calls/<id>.html), so
the folder can be copied, zipped or opened from a file share as it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from pipeline.records import ROLE_LABELS_ZH
from pipeline.reports import charts
from pipeline.reports.audio import AudioCopy
from pipeline.reports.describe import (
    RULE_NAMES_ZH,
    agent_remark,
    basis_text,
    line_text,
    money,
    policy_rules,
)
from pipeline.reports.events import KIND_LABELS_ZH
from pipeline.reports.monthly import AgentMonth, CallRow, FindingRow, MonthReport
from pipeline.reports.privacy import name_for_output
from pipeline.reports.transcripts import TranscriptLine

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
T = TypeVar("T")


# Plain ids are their own page names: capitals, digits, . _ - (HX20261101-0001, A03). Every other id
# gets a readable part plus a hash of the id (64 bits: no two of a month's calls share one), and a
# hashed name always ends in -<16 hex digits>, which a plain name never does: no two ids share a page,
# not even on a case-insensitive share (a01 and A01) or when one id is another's hashed name.
_PLAIN = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,99}")
_HASHED_END = re.compile(r"-[0-9A-Fa-f]{16}$")
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL"} | {f"{d}{i}" for d in ("COM", "LPT") for i in range(10)})


def page_name(identifier: str) -> str:
    """A file name for an id, unique per id: the id itself when it is plain, else a readable part
    plus a hash."""
    if (
        _PLAIN.fullmatch(identifier)
        and not _HASHED_END.search(identifier)
        and identifier.split(".")[0] not in _RESERVED
    ):
        return f"{identifier}.html"
    safe = _SAFE.sub("_", identifier).strip(".").lower()[:40]
    return f"{safe}-{hashlib.sha256(identifier.encode()).hexdigest()[:16]}.html"


def call_page_name(call_id: str, sha256: str) -> str:
    """A call's page name. An id that shows a caller's number (1001_13912345678) is named by its
    masked form plus the recording's hash — never a hash of the id, whose few hidden digits could be
    found from it by trying them all."""
    shown = name_for_output(call_id)
    if shown == call_id:
        return page_name(call_id)
    return f"{_SAFE.sub('_', shown).strip('.').lower()[:40]}-{sha256[:16]}.html"


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool
    title: str = ""


@dataclass(frozen=True)
class LineView:
    speaker: str
    start_s: float
    end_s: float
    segments: tuple[Segment, ...]
    hits: tuple[str, ...]
    recogniser: str = ""  # 识别把握 0.91 (…，转写不可靠：…)
    weak: bool = False


@dataclass(frozen=True)
class ForbiddenView:
    said: str
    replacement: str | None
    hits: tuple[FindingRow, ...]


@dataclass(frozen=True)
class Remark:
    text: str
    warn: bool


class Renderer:
    def __init__(self, report: MonthReport) -> None:
        self.report = report
        self.tz = ZoneInfo(report.timezone)
        self.env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            score=_score,
            change=_change,
            money=money,
            money_html=_money_html,
            clock=clock,
            dt=self._dt,
            anchor=_anchor,
            yesno=_yesno,
            basename=lambda p: name_for_output(Path(str(p)).name),
            callid=name_for_output,
            who=lambda agent_id, name: f"{name}（{agent_id}）" if name and name != agent_id else agent_id,
            line_text=line_text,
            basis_text=basis_text,
        )
        self.agent_files = {a.agent_id: page_name(a.agent_id) for a in report.agents}
        self.call_files = {c.call_id: call_page_name(c.call_id, c.sha256) for c in report.calls}
        self.names = {a.agent_id: a.agent_name or a.agent_id for a in report.agents}
        self.event_labels = {
            e.event_id: f"{e.event_date:%m-%d} {KIND_LABELS_ZH[e.kind]}" for e in report.events
        }
        self.rules = policy_rules(report.policy.policy)
        # Each page takes its rows from these, once (a month has tens of thousands of calls).
        self.calls_of = _by(report.calls, "agent_id")
        self.findings_of_agent = _by(report.findings, "agent_id")
        self.findings_of_call = _by(report.findings, "call_id")
        self.money_of = _by(report.money, "agent_id")
        self.rules_of = _by(report.agent_rules, "agent_id")
        self.events_of = _by(report.events, "agent_id")

    def _common(self) -> dict[str, object]:
        r = self.report
        return {
            "month_label": r.month.label_zh(),
            "generated_at": f"{r.generated_at.astimezone(self.tz):%Y-%m-%d %H:%M}",
            "timezone": r.timezone,
            "policy_path": r.policy.path,
            "policy_sha": r.policy.sha256,
            "rule_names": RULE_NAMES_ZH,
            "kind_labels": KIND_LABELS_ZH,
            "event_labels": self.event_labels,
            "speaker_labels": ROLE_LABELS_ZH,
        }

    def _dt(self, value: datetime | None) -> str:
        return f"{value.astimezone(self.tz):%Y-%m-%d %H:%M}" if value else "—"

    # ---- ranking.html ----------------------------------------------------------------------------

    def ranking(self, template: str = "ranking.html", **extra: object) -> str:
        r = self.report
        p = r.policy.policy
        ranked = [a for a in r.agents if a.rank is not None]
        scores_by_agent: dict[str, list[float]] = {}
        for c in r.calls:
            if c.score is not None:
                scores_by_agent.setdefault(c.agent_id, []).append(c.score)
        scored_agents = [a for a in r.agents if a.calls]
        low = min((s for scores in scores_by_agent.values() for s in scores), default=0.0)
        agent_chart = charts.agent_scores(
            [
                charts.AgentScores(
                    f"{a.rank if a.rank is not None else '未排名'} {a.agent_name or a.agent_id}",
                    tuple(scores_by_agent.get(a.agent_id, ())),
                    a.mean,
                    a.ci_low,
                    a.ci_high,
                    a.rank is not None,
                )
                for a in scored_agents
            ],
            "各客服得分与置信区间",
            scale_min=0.0 if low < 50 else 50.0,
        )
        histogram = charts.histogram(
            [f"{b.low}–{b.high}" for b in r.bins], [b.calls for b in r.bins], "通话得分分布"
        )
        top = r.rules[:12]
        pareto = charts.pareto([x.title for x in top], [x.failures for x in top], "扣分最多的规则")
        matrix_rules = r.rules[:8]
        matrix = {(x.agent_id, x.rule_id): x.failures for x in r.agent_rules}
        all_scores = [c.score for c in r.calls if c.score is not None]
        money_first = {
            i for i, line in enumerate(r.money) if i == 0 or r.money[i - 1].agent_id != line.agent_id
        }
        return self.env.get_template(template).render(
            **self._common(),
            agents=r.agents,
            ranked_count=len(ranked),
            notes=r.notes,
            overall_mean=sum(all_scores) / len(all_scores) if all_scores else None,
            rewards=sum(line.amount for line in r.money if line.amount > 0),
            penalties=sum(line.amount for line in r.money if line.amount < 0),
            candidates=r.candidates,
            warnings=self._warnings(),
            min_calls=p.ranking.min_scored_calls,
            confidence=f"{p.ranking.confidence_level:.0%}",
            remarks={a.agent_id: self._remarks(a) for a in r.agents},
            agent_links={k: f"agents/{v}" for k, v in self.agent_files.items()},
            call_links={k: f"calls/{v}" for k, v in self.call_files.items()},
            agent_chart=Markup(agent_chart),
            histogram=Markup(histogram),
            pareto=Markup(pareto),
            rules=r.rules,
            matrix_rules=matrix_rules,
            matrix=matrix,
            money=r.money,
            money_first=money_first,
            names=self.names,
            events=[e for e in r.events if e.kind != "praise"],
            praise_counts=[(a.agent_id, a.praise) for a in r.agents if a.praise],
            grievance_min=f"{p.grievance.min_score:g}",
            policy_rules=self.rules,
            **extra,
        )

    def _warnings(self) -> list[str]:
        n = self.report.notes
        out = []
        if n.unscored_calls:
            out.append(f"有 {n.unscored_calls} 通本月通话还没有评分，未计入排名（评分后重新生成报表）。")
        if n.calls_awaiting_roles:
            out.append(
                f"有 {n.calls_awaiting_roles} 通本月通话分不清哪一方是客服（声道可能接反，或没有听到客服用语），"
                "待质检员用 callqa roles 确认后才计入排名和奖惩。"
            )
        if n.calls_without_agent:
            out.append(f"有 {n.calls_without_agent} 通本月通话没有客服工号，无法计入任何人。")
        if not self.report.agents:
            out.append("本月没有已评分通话，也没有导入的客户评价或投诉。")
        pending = [e for e in self.report.events if e.kind != "praise" and e.substantiated is None]
        if pending:
            out.append(f"有 {len(pending)} 条投诉/丢单/恶评尚未核实（是否属实为空），未扣款。")
        return out

    def _remarks(self, agent: AgentMonth) -> list[Remark]:
        text = agent_remark(agent, self.report.policy.policy.ranking.min_scored_calls)
        return [Remark(part, part.startswith(("末位", "一票否决"))) for part in text.split("；") if part]

    # ---- agents/<id>.html -------------------------------------------------------------------------

    def agent(self, agent: AgentMonth, template: str = "agent.html", **extra: object) -> str:
        r = self.report
        calls = self.calls_of.get(agent.agent_id, [])
        findings = self.findings_of_agent.get(agent.agent_id, [])
        forbidden: dict[tuple[str, str | None], list[FindingRow]] = {}
        for f in findings:
            if f.forbidden:
                said = f.evidence or f.title or f.rule_id
                forbidden.setdefault((said, f.replacement), []).append(f)
        views = sorted(
            (
                ForbiddenView(said, replacement, tuple(hits))
                for (said, replacement), hits in forbidden.items()
            ),
            key=lambda v: (-len(v.hits), v.said),
        )
        return self.env.get_template(template).render(
            **self._common(),
            agent=agent,
            remark=agent_remark(agent, r.policy.policy.ranking.min_scored_calls),
            money=self.money_of.get(agent.agent_id, []),
            policy_texts={rule.key: rule.text for rule in self.rules},
            rules=self.rules_of.get(agent.agent_id, []),
            forbidden=views,
            forbidden_titles={f.title or f.rule_id for f in findings if f.forbidden},
            calls=calls,
            call_files=self.call_files,
            events=self.events_of.get(agent.agent_id, []),
            **extra,
        )

    # ---- calls/<id>.html --------------------------------------------------------------------------

    def call(
        self,
        call: CallRow,
        transcript: Sequence[TranscriptLine],
        audio: AudioCopy,
        template: str = "call.html",
        **extra: object,
    ) -> str:
        """The call's page; the portal passes its own template (extending this one) and its forms' data."""
        findings = self.findings_of_call.get(call.call_id, [])
        return self.env.get_template(template).render(
            **self._common(),
            call=call,
            agent_file=self.agent_files.get(call.agent_id, ""),
            audio=audio,
            findings=findings,
            quoted={f.idx: quoted_speaker(f, transcript) for f in findings},
            lines=[_line_view(line, findings) for line in transcript],
            **extra,
        )


def _by(rows: Sequence[T], key: str) -> dict[str, list[T]]:
    out: dict[str, list[T]] = {}
    for row in rows:
        out.setdefault(getattr(row, key), []).append(row)
    return out


def quoted_speaker(finding: FindingRow, transcript: Sequence[TranscriptLine]) -> str | None:
    """Whose words the finding's evidence quotes, or None when the evidence describes something
    (what was not said, a count of rings, a measured rate).

    Decided against the transcript, not by the evidence's wording: the evidence is that speaker's
    words only if they appear in one of that speaker's lines. The page then says 客服说：… for a
    quote and 依据：… for a description, never 客服说：客服没有说到…"""
    if not finding.evidence or finding.speaker is None:
        return None
    words = _quoted_words(finding.evidence)
    if len(words) < 2:
        return None
    if any(line.speaker == finding.speaker and words in line.text for line in transcript):
        return finding.speaker
    return None


def _quoted_words(evidence: str) -> str:
    """The words a quote (pipeline/rules/transcript.Line.quote) takes from the line: the context
    before the 【hit】 and the hit; without a mark, the text before any cut or note."""
    text = evidence.lstrip("…")
    if "【" in text:
        before, _, rest = text.partition("【")
        hit, closed, _ = rest.partition("】")
        return before + hit if closed else ""
    for stop in ("…", "（", "；"):
        text = text.split(stop, 1)[0]
    return text


def _line_view(line: TranscriptLine, findings: Sequence[FindingRow]) -> LineView:
    """The utterance with each finding's evidence marked, when the finding's time falls on it."""
    hits = [
        f
        for f in findings
        if f.start_s is not None
        and (f.speaker in (None, line.speaker))
        and f.start_s < line.end_s + 0.25
        and (f.end_s if f.end_s is not None else f.start_s) > line.start_s - 0.25
    ]
    spans: list[tuple[int, int, str]] = []
    for f in hits:
        if f.evidence:
            at = line.text.find(f.evidence)
            if at >= 0 and not any(a < at + len(f.evidence) and at < b for a, b, _ in spans):
                spans.append((at, at + len(f.evidence), f.title or f.rule_id))
    spans.sort()
    segments: list[Segment] = []
    pos = 0
    for a, b, title in spans:
        if a > pos:
            segments.append(Segment(line.text[pos:a], False))
        segments.append(Segment(line.text[a:b], True, title))
        pos = b
    if pos < len(line.text) or not segments:
        segments.append(Segment(line.text[pos:], False))
    return LineView(
        line.speaker,
        line.start_s,
        line.end_s,
        tuple(segments),
        tuple(f.title or f.rule_id for f in hits),
        line.recogniser,
        line.weak,
    )


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def _score(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _change(value: float | None) -> Markup:
    if value is None:
        return Markup('<span class="muted">—</span>')
    if abs(value) < 0.005:
        return Markup("±0.00")
    css, arrow = ("plus", "▲") if value > 0 else ("minus", "▼")
    return Markup(f'<span class="{css}">{arrow} {abs(value):.2f}</span>')


def _money_html(amount: int) -> Markup:
    css = "plus" if amount > 0 else "minus" if amount < 0 else "muted"
    return Markup(f'<span class="{css}">{money(amount)}</span>')


def _anchor(identifier: str) -> str:
    return page_name(identifier).removesuffix(".html")


def _yesno(value: bool | None) -> str:
    return {True: "属实", False: "不属实", None: "待核实"}[value]
