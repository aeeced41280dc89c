"""The `callqa` command.

callqa run DIR [--db PATH]         process every recording in DIR (same as the nightly flow)
callqa show CALL_ID [--db PATH]    a call's transcript: time, 客服/客户, text
callqa export [--db PATH] [--out FILE]
                                   JSON Lines, one call per line (the export contract)
callqa import-events FILE.csv [--db PATH]
                                   customer praise/complaints/lost orders/bad reviews from the CRM
callqa report [--month YYYY-MM] [--db PATH] [--policy FILE] [--no-audio]
                                   the month's ranking, money table and review pages (reports/YYYY-MM/)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from pipeline.config import Settings, load_settings
from pipeline.errors import CallQAError
from pipeline.records import ROLE_LABELS_ZH

LAYOUT_ZH = {
    "stereo-agent-left": "立体声（客服左声道）",
    "stereo-agent-right": "立体声（客服右声道）",
    "mono": "单声道",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callqa", description="Call-centre speech QA (质检) pipeline")
    parser.add_argument("--config", type=Path, help="TOML configuration file (default ./callqa.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="process every recording in a folder into the QA database")
    run.add_argument("directory", type=Path)
    run.add_argument("--db", type=Path, help="DuckDB file (default qa.duckdb)")

    show = commands.add_parser("show", help="print a call's transcript")
    show.add_argument("call_id")
    show.add_argument("--db", type=Path)

    export = commands.add_parser("export", help="write all calls as JSON Lines")
    export.add_argument("--db", type=Path)
    export.add_argument("--out", type=Path, help="output file (default: standard output)")

    events = commands.add_parser(
        "import-events", help="load customer evaluations and complaints (CSV from the phone/CRM system)"
    )
    events.add_argument("file", type=Path)
    events.add_argument("--db", type=Path)

    report = commands.add_parser("report", help="write the monthly ranking, money table and review pages")
    report.add_argument("--month", help="YYYY-MM (default: the previous month)")
    report.add_argument("--db", type=Path)
    report.add_argument("--policy", type=Path, help="reward/penalty policy (default rules/policy.yaml)")
    report.add_argument(
        "--no-audio", action="store_true", help="do not copy recordings next to the call pages"
    )

    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # `callqa show X | head`: the reader stopped listening, which is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # per-file VAD chatter
    try:
        settings = load_settings(args.config, db=getattr(args, "db", None))
        if args.command == "run":
            return _run(args.directory, settings)
        if args.command == "show":
            return _show(args.call_id, settings)
        if args.command == "import-events":
            return _import_events(args.file, settings)
        if args.command == "report":
            return _report(args.month, args.policy, not args.no_audio, settings)
        return _export(args.out, settings)
    except CallQAError as exc:
        print(f"callqa: {exc}", file=sys.stderr)
        return 2


def _run(directory: Path, settings: Settings) -> int:
    from pipeline.process import describe, run_batch
    from pipeline.reports.batch import write_batch_summary

    started = datetime.now().astimezone()
    print(f"callqa: processing {directory} into {settings.db}", file=sys.stderr)
    summary = run_batch(directory, settings, lambda i, n, o: print(describe(i, n, o), flush=True))
    report = write_batch_summary(summary, directory, settings.reports_dir, started)
    print(summary.line())
    print(f"batch summary: {report}")
    return 1 if summary.failed else 0


def _show(call_id: str, settings: Settings) -> int:
    from pipeline.store import Store

    with Store(settings.db, read_only=True, timezone=settings.input.timezone) as store:
        call = store.call(call_id)
        if call is None:
            raise CallQAError(f"{settings.db} 中没有已处理的通话 {call_id}")
        utterances = store.utterances(call_id)
    started = f"{call['started_at']:%Y-%m-%d %H:%M:%S}" if call["started_at"] else "时间未知"
    agent = " ".join(x for x in (call["agent_id"], call["agent_name"]) if x) or "未知"
    print(f"通话 {call_id}   客服 {agent}   {started}   时长 {_clock(call['duration_s'])}")
    print(
        f"文件 {call['path']}   {LAYOUT_ZH.get(call['channels'], call['channels'])}   "
        f"角色判定：{role_source_zh(call['role_source'])}（置信度 {call['role_confidence']:.2f}）"
    )
    for warning in call["warnings"] or []:
        print(f"注意：{warning}")
    print()
    for u in utterances:
        print(f"{_clock(u['start_s'])}–{_clock(u['end_s'])}  {ROLE_LABELS_ZH[u['speaker']]}  {u['text']}")
    if not utterances:
        print("（没有识别出话语）")
    return 0


def _export(out: Path | None, settings: Settings) -> int:
    from pipeline.export import export_records, write_jsonl
    from pipeline.store import Store

    with Store(settings.db, read_only=True, timezone=settings.input.timezone) as store:
        if out is None:
            count = write_jsonl(export_records(store), sys.stdout)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", encoding="utf-8") as handle:
                count = write_jsonl(export_records(store), handle)
    print(f"callqa: exported {count} calls" + (f" to {out}" if out else ""), file=sys.stderr)
    return 0


def _import_events(path: Path, settings: Settings) -> int:
    from pipeline.reports.events import read_events_csv
    from pipeline.store import Store

    parsed = read_events_csv(path)
    for problem in parsed.problems:
        print(f"跳过：{problem.describe(path)}", file=sys.stderr)
    with Store(settings.db, timezone=settings.input.timezone) as store:
        new, updated, unchanged = store.save_agent_events(parsed.events)
    print(
        f"callqa: {path}：新增 {new} 条，更新 {updated} 条，已导入过 {unchanged} 条，"
        f"跳过 {len(parsed.problems)} 行有误的记录"
    )
    return 1 if parsed.problems else 0


def _report(month_text: str | None, policy: Path | None, with_audio: bool, settings: Settings) -> int:
    from zoneinfo import ZoneInfo

    from pipeline.reports.build import write_monthly_report
    from pipeline.reports.monthly import Month

    if month_text:
        month = Month.parse(month_text)
    else:
        month = Month.previous_to(datetime.now(ZoneInfo(settings.input.timezone)))
    written = write_monthly_report(settings, month, policy, with_audio)
    print(written.line())
    return 0


def role_source_zh(source: str) -> str:
    """How the agent was identified, in words a supervisor reads."""
    if source.startswith("channel:"):
        _, _, origin = source.partition("(")  # channel:<layout>(<where the layout came from>)
        return "按声道（声道设置" + {"sidecar)": "来自随录音信息）", "config)": "来自配置）"}.get(
            origin, "）"
        )
    return {"text-cues": "按客服用语判断", "first-speaker": "按先开口的一方推测", "none": "无"}.get(
        source, source
    )


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


if __name__ == "__main__":
    sys.exit(main())
