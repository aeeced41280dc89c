"""`callqa report --month YYYY-MM`: compute the month in the store, write reports/YYYY-MM/.

    reports/YYYY-MM/ranking.html        managers: ranking, money, charts, Pareto, previous month
    reports/YYYY-MM/ranking.csv|.xlsx   the money table for payroll (money_lines.csv: every line)
    reports/YYYY-MM/agents/<id>.html    one agent's month
    reports/YYYY-MM/calls/<id>.html     a call's transcript, findings and recording (calls/audio/)

Two steps, so the Prefect flow can run them as tasks: `load_month` reads the store (read-only) and
`write_month` writes the folder. Files are replaced atomically; pages of calls or agents that are
no longer in the month, and recordings no page uses, are removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import Settings
from pipeline.privacy import Redactor
from pipeline.reports.audio import AudioCopy, review_audio
from pipeline.reports.audio_mask import Span, load_masked_spans
from pipeline.reports.files import write_text
from pipeline.reports.monthly import Month, MonthReport, read_month
from pipeline.reports.policy import load_policy
from pipeline.reports.privacy import redacting, report_privacy
from pipeline.reports.render import Renderer, call_page_name, page_name
from pipeline.reports.tables import (
    MONEY_HEADER,
    RANKING_HEADER,
    money_rows,
    ranking_rows,
    write_csv,
    write_xlsx,
)
from pipeline.reports.transcripts import TranscriptLine
from pipeline.store import Store


@dataclass(frozen=True)
class MonthData:
    report: MonthReport
    transcripts: dict[str, tuple[TranscriptLine, ...]]
    # Per call, the spans of its recording whose text the pages mask (covered in the review MP3).
    masked_audio: dict[str, tuple[Span, ...]] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)  # as configured for "report"


@dataclass(frozen=True)
class WrittenReport:
    directory: Path
    ranking_html: Path
    ranking_csv: Path
    ranking_xlsx: Path
    agent_pages: int
    call_pages: int
    audio_missing: int

    def line(self) -> str:
        missing = f"，{self.audio_missing} 通录音无法播放" if self.audio_missing else ""
        return f"月度报表：{self.ranking_html}（客服页 {self.agent_pages} 个，通话页 {self.call_pages} 个{missing}）"


def load_month(settings: Settings, month: Month, policy_file: Path | None = None) -> MonthData:
    policy = load_policy(policy_file)
    timezone = settings.input.timezone
    with (
        report_privacy(settings.privacy) as redactor,
        Store.from_settings(settings, read_only=True) as store,
    ):
        # the month's utterances are read once, for the evidence's redaction and the call pages
        read = read_month(store, month, policy, timezone)
        # what the pages mask, from the utterances redaction changed (the month is not read again)
        masked_audio = load_masked_spans(store, read.transcripts, read.changed) if read.changed else {}
    return MonthData(read.report, read.transcripts, masked_audio, redactor)


def write_month(data: MonthData, reports_dir: Path, with_audio: bool = True) -> WrittenReport:
    with redacting(data.redactor):  # call ids and file names in pages, tables and page names
        return _write_month(data, reports_dir, with_audio)


def _write_month(data: MonthData, reports_dir: Path, with_audio: bool) -> WrittenReport:
    report = data.report
    out = reports_dir / str(report.month)
    agents_dir, calls_dir = out / "agents", out / "calls"
    audio_dir = calls_dir / "audio"
    for folder in (agents_dir, calls_dir):
        folder.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(report)

    ranking_html = out / "ranking.html"
    write_text(ranking_html, renderer.ranking())
    ranking_csv, ranking_xlsx = out / "ranking.csv", out / "ranking.xlsx"
    write_csv(ranking_csv, RANKING_HEADER, ranking_rows(report))
    write_csv(out / "money_lines.csv", MONEY_HEADER, money_rows(report))
    write_xlsx(ranking_xlsx, report)

    agent_pages = set()
    for agent in report.agents:
        name = page_name(agent.agent_id)
        write_text(agents_dir / name, renderer.agent(agent))
        agent_pages.add(name)

    call_pages, audio_files, missing = set(), set(), 0
    for call in report.calls:
        if with_audio:
            audio = review_audio(
                Path(call.path), call.sha256, audio_dir, data.masked_audio.get(call.call_id, ())
            )
        else:
            audio = AudioCopy(None, "生成报表时选择了不附录音（--no-audio）")
        if audio.file:
            audio_files.add(Path(audio.file).name)
        elif with_audio:  # a recording that could not be copied, not one left out on purpose
            missing += 1
        name = call_page_name(call.call_id, call.sha256)
        write_text(calls_dir / name, renderer.call(call, data.transcripts.get(call.call_id, ()), audio))
        call_pages.add(name)

    _remove_others(agents_dir, agent_pages, "*.html")
    _remove_others(calls_dir, call_pages, "*.html")
    if audio_dir.is_dir() and with_audio:
        _remove_others(audio_dir, audio_files, "*")
    return WrittenReport(
        out, ranking_html, ranking_csv, ranking_xlsx, len(agent_pages), len(call_pages), missing
    )


def audit_report(settings: Settings, data: MonthData, command: str, with_audio: bool) -> None:
    """The audit row for a report, written before its files (pipeline/audit.py)."""
    from pipeline.audit import record

    record(
        settings,
        "report",
        command,
        target=str(settings.reports_dir / str(data.report.month)),
        records=len(data.report.calls),
        redacted=settings.privacy.redacts("report"),
        details={
            "month": str(data.report.month),
            "agents": len(data.report.agents),
            "with_audio": with_audio,
        },
    )


def write_monthly_report(
    settings: Settings,
    month: Month,
    policy_file: Path | None = None,
    with_audio: bool = True,
    command: str = "write_monthly_report",
) -> WrittenReport:
    data = load_month(settings, month, policy_file)
    audit_report(settings, data, command, with_audio)
    return write_month(data, settings.reports_dir, with_audio)


def _remove_others(folder: Path, keep: set[str], pattern: str) -> None:
    for path in folder.glob(pattern):
        if path.is_file() and path.name not in keep:
            path.unlink()
