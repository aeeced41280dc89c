"""The `callqa` command.

callqa run DIR [--db PATH] [--recheck]
                                   process every recording in DIR (same as the nightly flow);
                                   exit status 1 when any recording failed
callqa failures [--all] [--db PATH]
                                   recordings that failed (and, with --all, were skipped), and why
callqa roles [CALL_ID --swap|--confirm] [--db PATH]
                                   calls whose roles wait for a person; swap or confirm, then re-score
callqa show CALL_ID [--db PATH]    a call's transcript: time, 客服/客户, text (redacted, audited)
callqa export [--db PATH] [--out FILE]
                                   JSON Lines, one call per line (the export contract; redacted, audited)
callqa purge --before YYYY-MM [--dry-run] [--delete-audio] [--force] [--db PATH]
                                   remove calls older than the retention period (audited)
callqa audit [--since YYYY-MM-DD] [--db PATH]
                                   who exported, showed, reported or purged what, and when
callqa rescore [--scorecard FILE] [--since DATE] [--metrics] [--workers N] [--db PATH]
                                   score stored calls again (no ASR); history kept
callqa calibrate [LABELS.csv] [--portal] [--scorecard FILE] [--db PATH]
                                   people's verdicts vs the pipeline's, per rule
callqa import-events FILE.csv [--db PATH]
                                   customer praise/complaints/lost orders/bad reviews from the CRM
callqa report [--month YYYY-MM] [--db PATH] [--policy FILE] [--no-audio]
                                   the month's ranking, money table and review pages (reports/YYYY-MM/)
callqa users add|disable|reset|list NAME [--role R] [--agent-id A] [--password-stdin]
                                   accounts of the review portal (pipeline/portal/cli.py)
callqa serve [--host 127.0.0.1] [--port 8080] [--secure-cookies]
                                   the review portal (agents appeal, supervisors review, managers read)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.argparse_zh import in_chinese
from pipeline.audit import command_line
from pipeline.commands.evaluation import evaluate_folder_command
from pipeline.commands.show import show_call
from pipeline.commands.upkeep import list_audit, list_failures, purge_before, review_roles
from pipeline.config import Settings, config_line, load_settings
from pipeline.errors import CallQAError
from pipeline.permissions import restrict_outputs
from pipeline.portal import cli as portal_cli
from pipeline.privacy import install_log_redaction, redact_name, redactor_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="callqa", description="客服通话质检：转写、分角色、指标、评分、入库、报表"
    )
    parser.add_argument("--config", type=Path, help="配置文件（TOML，默认 ./callqa.toml）")
    commands = parser.add_subparsers(dest="command", required=True, title="命令")

    run = commands.add_parser("run", help="分析目录中的每个录音并写入质检数据库")
    run.add_argument("directory", type=Path, help="录音目录")
    run.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")
    run.add_argument(
        "--recheck",
        action="store_true",
        help="也重新检查跳过的录音和批处理中断过的录音（例如调高限制之后）",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="数量",
        help="同时分析的录音数（本机分布式集群，每个录音一个工作进程；默认 1：在本进程中逐个分析；0：按本机核数）",
    )
    run.add_argument(
        "--dask-address",
        metavar="地址",
        help="已有分布式集群的调度器地址（主机:端口，如 scheduler.example:8786；工作节点须能按相同路径读到录音）",
    )

    failures = commands.add_parser("failures", help="列出失败的录音及原因，以及角色待确认的通话")
    failures.add_argument("--all", action="store_true", help="同时列出跳过的录音")
    failures.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    purge = commands.add_parser("purge", help="清除某月之前的通话（记录保留 3 年）")
    purge.add_argument("--before", required=True, help="YYYY-MM：清除在此月之前开始的通话")
    purge.add_argument("--dry-run", action="store_true", help="只列出会清除什么，不实际清除")
    purge.add_argument("--delete-audio", action="store_true", help="同时删除录音文件和随录音信息")
    purge.add_argument("--force", action="store_true", help="即使仍在保留期内也清除")
    purge.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    audit = commands.add_parser("audit", help="列出导出、报表、查看转写、清除等审计记录")
    audit.add_argument("--since", type=_date, help="YYYY-MM-DD（默认：全部）")
    audit.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    roles = commands.add_parser(
        "roles", help="角色待确认的通话：不带参数列出；--swap 对调客服与客户后重新评分，--confirm 确认无误"
    )
    roles.add_argument("call_id", nargs="?", help="通话编号")
    decision = roles.add_mutually_exclusive_group()
    decision.add_argument(
        "--swap", action="store_true", help="声道接反了：对调客服与客户，重算指标并重新评分"
    )
    decision.add_argument("--confirm", action="store_true", help="角色没有问题：计入排名和奖惩")
    roles.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    show = commands.add_parser("show", help="显示一通通话的转写和评分")
    show.add_argument("call_id", help="通话编号")
    show.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    evaluate = commands.add_parser("eval", help="把指标和评分与录音旁的真值比较（评测集）")
    evaluate.add_argument("directory", type=Path, help="录音目录（每个录音旁有 NAME.truth.json 真值）")
    evaluate.add_argument("--db", type=Path, help="数据库文件（默认 目录/callqa-eval.duckdb）")
    evaluate.add_argument("--out", type=Path, help="JSON 报告（默认 目录/eval-report.json）")
    evaluate.add_argument(
        "--metrics",
        action="store_true",
        help="先重算已存通话的指标（调整 [metrics] 设置或评分表词表之后）",
    )

    export = commands.add_parser("export", help="把全部通话导出为 JSON Lines（已脱敏，留审计）")
    export.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")
    export.add_argument("--out", type=Path, help="输出文件（默认：标准输出）")

    rescore = commands.add_parser("rescore", help="按已存的转写和指标重新评分（不重新识别），保留评分历史")
    rescore.add_argument("--scorecard", type=Path, help="所有通话都用这个评分表（YAML；默认 rules/*.yaml）")
    rescore.add_argument("--since", type=_date, help="只处理在 YYYY-MM-DD 当天或之后开始的通话")
    rescore.add_argument(
        "--metrics",
        action="store_true",
        help="先重算指标（调整 [metrics] 设置或评分表词表之后）",
    )
    rescore.add_argument(
        "--workers", type=int, metavar="数量", help="评分用几个进程（默认：通话多时每个处理器核一个）"
    )
    rescore.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    calibrate = commands.add_parser("calibrate", help="人工质检结论与系统结论的一致性（按规则）")
    calibrate.add_argument("labels", type=Path, nargs="?", help="CSV：call_id, rule_id, passed[, score]")
    calibrate.add_argument(
        "--portal", action="store_true", help="复核平台中已处理的复核与申诉也作为人工结论（与系统原判比较）"
    )
    calibrate.add_argument("--scorecard", type=Path, help="用这个评分表（不写库）判定，而不用已存的结论")
    calibrate.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    events = commands.add_parser(
        "import-events", help="导入客户表扬、投诉、丢单、差评（话务/CRM 系统导出的 CSV）"
    )
    events.add_argument("file", type=Path, help="CSV 文件")
    events.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")

    report = commands.add_parser("report", help="生成月度排名、奖惩表和复核页面")
    report.add_argument("--month", help="YYYY-MM（默认：上个月）")
    report.add_argument("--db", type=Path, help="数据库文件（默认 qa.duckdb）")
    report.add_argument("--policy", type=Path, help="奖惩规则（默认 rules/policy.yaml）")
    report.add_argument("--no-audio", action="store_true", help="不把录音复制到通话页面旁")

    portal_cli.add_commands(commands)  # users, serve (pipeline/portal/cli.py)
    _config_after_any_command(parser)
    in_chinese(parser)
    args = parser.parse_args(argv)
    args.command_line = command_line(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # `callqa show X | head`: the reader stopped listening, which is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _config_after_any_command(parser: argparse.ArgumentParser) -> None:
    """`callqa run DIR --config F` works as well as `callqa --config F run DIR`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "--config",
                    type=Path,
                    default=argparse.SUPPRESS,
                    help="配置文件（TOML，默认 ./callqa.toml）",
                )


def _dispatch(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # per-file VAD chatter
    try:
        db = getattr(args, "db", None)
        if args.command == "eval" and db is None:
            db = args.directory / "callqa-eval.duckdb"  # never mix generated calls into the QA store
        settings = load_settings(args.config, db=db)
        install_log_redaction(settings.privacy)
        if args.command in _SAYS_CONFIG:
            print(f"callqa：{config_line(settings)}", file=sys.stderr)
        with restrict_outputs(settings):  # what it writes is owner-only ([privacy] group_readable)
            return _command(args, settings)
    except CallQAError as exc:
        print(f"callqa：{redact_name(str(exc))}", file=sys.stderr)  # it may name a recording
        return 2


# Commands whose output holds what customers said: they say which configuration (and so which
# redaction) is in force.
_SAYS_CONFIG = frozenset({"run", "report", "export", "show", "failures", "roles"})


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "eval":
        return evaluate_folder_command(
            args.directory, args.out or args.directory / "eval-report.json", args.metrics, settings
        )
    if args.command == "run":
        return _run(args.directory, settings, args.recheck, args.workers, args.dask_address)
    if args.command == "failures":
        return list_failures(settings, args.all)
    if args.command == "purge":
        return purge_before(
            args.before, args.dry_run, args.delete_audio, args.force, settings, args.command_line
        )
    if args.command == "audit":
        return list_audit(args.since, settings)
    if args.command == "roles":
        return review_roles(args.call_id, args.swap, args.confirm, settings, args.command_line)
    if args.command == "show":
        return show_call(args.call_id, settings, args.command_line)
    if args.command == "rescore":
        return _rescore(args.scorecard, args.since, args.metrics, settings, args.workers)
    if args.command == "calibrate":
        return _calibrate(args.labels, args.scorecard, settings, args.portal)
    if args.command == "import-events":
        return _import_events(args.file, settings)
    if args.command in portal_cli.COMMANDS:
        return portal_cli.run(args, settings)
    if args.command == "report":
        return _report(args.month, args.policy, not args.no_audio, settings, args.command_line)
    return _export(args.out, settings, args.command_line)


def _run(
    directory: Path,
    settings: Settings,
    recheck: bool = False,
    workers: int = 1,
    dask_address: str | None = None,
) -> int:
    from pipeline.batch import describe, run_batch
    from pipeline.progress import ProgressMonitor
    from pipeline.reports.batch import write_batch_summary

    started = datetime.now(ZoneInfo(settings.input.timezone))  # the centre's clock, not the server's
    names = redactor_for(settings.privacy, "logs")
    print(f"callqa：分析 {names.name(directory)} 中的录音，写入 {names.name(settings.db)}", file=sys.stderr)
    if workers < 0:
        raise CallQAError(f"--workers {workers}：同时分析的录音数不能为负数")
    # a bar on a terminal; under cron or CI a line with the figures every minute and at the end
    progress = ProgressMonitor(sys.stdout)
    try:
        summary = run_batch(
            directory,
            settings,
            lambda i, n, o: progress.record(o, names.line(describe(i, n, o)) or ""),
            recheck,
            workers,
            dask_address,
            on_plan=progress.start,
        )
    finally:
        progress.close()
    report = write_batch_summary(
        summary,
        directory,
        settings.reports_dir,
        started,
        redactor_for(settings.privacy, "report"),
        config_line(settings),
    )
    print(summary.line())
    if summary.failed:
        print("失败的录音会在下次批处理时自动重试；callqa failures 列出全部失败原因")
    print(f"批处理汇总：{report}")
    return 1 if summary.failed else 0


def _rescore(
    scorecard: Path | None,
    since: date | None,
    recompute: bool,
    settings: Settings,
    workers: int | None = None,
) -> int:
    from pipeline.process import recompute_metrics
    from pipeline.rules.rescore import rescore, scorecards_from
    from pipeline.store import Store

    cards = scorecards_from(scorecard, settings.scorecards)
    with Store.from_settings(settings) as store:
        if recompute:  # after a change to [metrics] settings or to the scorecard's phrases
            for call_id in store.call_ids_since(since):
                recompute_metrics(store, call_id, settings, cards)
        results = rescore(store, cards, since, workers)
    changed = 0
    for r in results:
        before = "未评分" if r.before is None else f"{r.before:g}"
        after = "一票否决 0" if r.fatal else f"{r.after:g}"
        note = "" if r.stored else "（与当前评分相同，未新增记录）"
        changed += int(r.stored)
        print(
            f"{redact_name(r.call_id)}  {before} → {after}  {r.scorecard.name} {r.scorecard.short_hash}{note}"
        )
    print(
        f"callqa：重新评分 {len(results)} 通电话，{changed} 通写入新评分（旧评分保留为历史）", file=sys.stderr
    )
    return 0


def _calibrate(
    labels_path: Path | None, scorecard: Path | None, settings: Settings, portal: bool = False
) -> int:
    from pipeline.rules.calibrate import compare, format_calibration, read_labels
    from pipeline.store import Store

    if labels_path is None and not portal:
        raise CallQAError("请给出人工质检结果 CSV，或用 --portal 取复核平台中的人工结论")
    labels = read_labels(labels_path) if labels_path else []
    with Store.from_settings(settings, read_only=True) as store:
        if portal:
            from pipeline.decisions import human_labels

            labels += human_labels(store.db)
        call_ids = sorted({label.call_id for label in labels})
        if scorecard is None and not portal:
            pipeline = {cid: store.current_score(cid) for cid in call_ids}
        else:
            # the scorecard given, else (--portal: the current score already holds people's
            # verdicts) the scorecards in force, over the stored transcripts, without the verdicts
            from pipeline.process import scorecards
            from pipeline.rules import load_scorecard, score_call
            from pipeline.rules.scorecard import card_for_call

            cards = [load_scorecard(scorecard)] if scorecard else scorecards(settings)
            pipeline = {}
            for cid in call_ids:
                meta = store.load_meta(cid)
                pipeline[cid] = (
                    None
                    if meta is None
                    else score_call(
                        store.load_utterances(cid), store.load_metrics(cid), meta, card_for_call(meta, cards)
                    )
                )
    print(format_calibration(compare(labels, pipeline)))
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应写成 YYYY-MM-DD，而不是 {text!r}") from None


def _export(out: Path | None, settings: Settings, command: str = "callqa export") -> int:
    from pipeline.audit import audit_kwargs
    from pipeline.export import export_records, write_jsonl
    from pipeline.privacy import redactor_for
    from pipeline.reports.files import replacing
    from pipeline.store import Store

    redactor = redactor_for(settings.privacy, "export")
    if not settings.db.exists():
        raise CallQAError(f"{settings.db}：还没有质检数据库（请先运行 callqa run DIR）")
    with Store.from_settings(settings) as store:
        total = store.query("SELECT count(*) AS n FROM recordings")[0]["n"]
        store.add_audit(
            "export",
            target=str(out) if out else "标准输出",
            records=total,
            redacted=redactor.enabled,
            details={"format": "jsonl"},
            **audit_kwargs(command),
        )

    def open_store() -> Store:
        return Store.from_settings(settings, read_only=True)

    if out is None:
        count = write_jsonl(export_records(open_store, redactor), sys.stdout)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as partial, partial.open("w", encoding="utf-8") as handle:
            count = write_jsonl(export_records(open_store, redactor), handle)
    print(
        f"callqa：导出 {count} 条记录"
        + (f"到 {out}" if out else "")
        + ("（已脱敏）" if redactor.enabled else "（未脱敏）"),
        file=sys.stderr,
    )
    return 0


def _import_events(path: Path, settings: Settings) -> int:
    from pipeline.reports.events import read_events_csv
    from pipeline.store import Store

    parsed = read_events_csv(path)
    for problem in parsed.problems:
        print(f"跳过：{redact_name(problem.describe(path))}", file=sys.stderr)
    with Store.from_settings(settings) as store:
        new, updated, unchanged = store.save_agent_events(parsed.events)
    print(
        f"callqa：{path}：新增 {new} 条，更新 {updated} 条，已导入过 {unchanged} 条，"
        f"跳过 {len(parsed.problems)} 行有误的记录"
    )
    return 1 if parsed.problems else 0


def _report(
    month_text: str | None,
    policy: Path | None,
    with_audio: bool,
    settings: Settings,
    command: str = "callqa report",
) -> int:
    from zoneinfo import ZoneInfo

    from pipeline.reports.build import audit_report, load_month, write_month
    from pipeline.reports.monthly import Month

    if month_text:
        month = Month.parse(month_text)
    else:
        month = Month.previous_to(datetime.now(ZoneInfo(settings.input.timezone)))
    data = load_month(settings, month, policy)
    audit_report(settings, data, command, with_audio)
    written = write_month(data, settings.reports_dir, with_audio)
    print(written.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
