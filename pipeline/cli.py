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
from pipeline.config import Settings, config_line, load_settings
from pipeline.errors import CallQAError
from pipeline.permissions import restrict_outputs
from pipeline.portal import cli as portal_cli
from pipeline.privacy import Redactor, install_log_redaction, redact_name, redactor_for
from pipeline.records import LAYOUT_LABELS_ZH, ROLE_LABELS_ZH, SOURCE_LABELS_ZH, CallMetrics, CallScore


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
        return _eval(args.directory, args.out or args.directory / "eval-report.json", args.metrics, settings)
    if args.command == "run":
        return _run(args.directory, settings, args.recheck, args.workers, args.dask_address)
    if args.command == "failures":
        return _failures(settings, args.all)
    if args.command == "purge":
        return _purge(args.before, args.dry_run, args.delete_audio, args.force, settings, args.command_line)
    if args.command == "audit":
        return _audit(args.since, settings)
    if args.command == "roles":
        return _roles(args.call_id, args.swap, args.confirm, settings, args.command_line)
    if args.command == "show":
        return _show(args.call_id, settings, args.command_line)
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


def _unmasked_call_id(given: str, settings: Settings) -> str:
    """The call id that `given` names: itself, or the one stored call whose id prints as `given`
    (callqa prints 1001_139****5678; the operator may type it back)."""
    from pipeline.store import Store

    if "*" not in given or not settings.db.exists():
        return given
    with Store.from_settings(settings, read_only=True) as store:
        matches = [cid for cid in store.call_ids() if redact_name(cid) == given]
    if len(matches) > 1:
        raise CallQAError(f"通话编号 {given} 对应 {len(matches)} 通通话，请输入完整的通话编号")
    return matches[0] if matches else given


def _roles(call_id: str | None, swap: bool, confirm: bool, settings: Settings, command: str) -> int:
    from pipeline.review import decide_roles

    if call_id is None:
        from pipeline.diarize.roles import ROLE_REVIEW_BELOW
        from pipeline.store import Store

        with Store.from_settings(settings, read_only=True) as store:
            waiting = store.role_reviews(ROLE_REVIEW_BELOW)
        _print_role_reviews(waiting, settings.db, redactor_for(settings.privacy, "show"))
        return 0
    if not (swap or confirm):
        raise CallQAError("请选择 --swap（对调客服与客户）或 --confirm（角色无误）")
    call_id = _unmasked_call_id(call_id, settings)
    decided = decide_roles(settings, call_id, swap, command)
    before = "—" if decided.rescored.before is None else f"{decided.rescored.before:.1f}"
    action = "已对调客服与客户，重算指标并重新评分" if swap else "已确认角色无误"
    print(
        f"{redactor_for(settings.privacy, 'show').name(call_id)}：{action}；得分 {before} → {decided.rescored.after:.1f}，现在计入排名和奖惩"
    )
    return 0


def _print_role_reviews(rows: list[dict], db: Path, redactor: Redactor) -> None:
    print(f"{db}：{len(rows)} 通通话分不清哪一方是客服，待人工确认（确认前不计入排名和奖惩）")
    for r in rows:
        print(f"  {redactor.name(r['call_id'])}  {redactor.name(r['path'])}  客服工号 {r['agent_id'] or '—'}")
        for warning in r["warnings"]:
            print(f"      {redactor.line(warning)}")
    if rows:
        print("用 callqa roles 通话编号 --swap（声道接反）或 --confirm（角色无误）处理。")


def _failures(settings: Settings, include_skipped: bool) -> int:
    from pipeline.diarize.roles import ROLE_REVIEW_BELOW
    from pipeline.problems import title
    from pipeline.store import Store

    redactor = redactor_for(settings.privacy, "show")
    with Store.from_settings(settings, read_only=True) as store:
        rows = store.problems()
        waiting = store.role_reviews(ROLE_REVIEW_BELOW)
    failed = [r for r in rows if r["status"] == "failed"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    print(
        f"{settings.db}：失败 {len(failed)} 个录音，跳过 {len(skipped)} 个"
        + ("" if include_skipped or not skipped else "（--all 一并列出跳过的）")
    )
    if failed:
        print("失败的录音会在下次批处理时自动重试（中断过多次的除外，见原因）。")
    for status, group in (("失败", failed), ("跳过", skipped if include_skipped else [])):
        if not group:
            continue
        print(f"\n【{status}】")
        by_problem: dict[str, list[dict]] = {}
        for row in group:
            by_problem.setdefault(title(row["problem"]), []).append(row)
        for name, items in sorted(by_problem.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            print(f"  {name}（{len(items)} 个）")
            for r in items:
                when = f"{r['processed_at']:%Y-%m-%d %H:%M}"
                print(f"    {redactor.name(r['path'])}  第 {r['attempts']} 次，{when}")
                print(f"      {redactor.line(r['error']) or ''}")
    print()
    _print_role_reviews(waiting, settings.db, redactor)
    return 0


def _purge(
    before: str, dry_run: bool, delete_audio: bool, force: bool, settings: Settings, command: str
) -> int:
    import shutil
    from zoneinfo import ZoneInfo

    from pipeline.audit import audit_kwargs
    from pipeline.batch import batch_lock
    from pipeline.reports.monthly import Month
    from pipeline.store import Store

    month = Month.parse(before)
    tz = ZoneInfo(settings.input.timezone)
    now = datetime.now(tz)
    keep = settings.retention.keep_months
    newest = Month(now.year, now.month)
    for _ in range(keep):
        newest = newest.previous()
    if (month.year, month.month) > (newest.year, newest.month) and not force:
        raise CallQAError(
            f"记录按规定保存 {keep} 个月（retention.keep_months）：--before {month} 会删除 {newest} 以后、仍在保存期内的记录；"
            f"最晚可以 --before {newest}。确需删除请加 --force"
        )
    cutoff = month.start(tz)
    report_months = sorted(
        p
        for p in settings.reports_dir.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]")
        if p.is_dir() and p.name < str(month)
    )
    summaries = sorted(p for p in (settings.reports_dir / "batches").glob("*.md") if p.name[:7] < str(month))
    if not settings.db.exists():
        raise CallQAError(f"{settings.db}：还没有质检数据库")
    with batch_lock(settings.db):  # never while a batch is writing (or reading the audio)
        with Store.from_settings(settings) as store:
            result = store.purge_before(
                cutoff,
                dry_run,
                audit=None
                if dry_run
                else {
                    **audit_kwargs(command),
                    "target": str(settings.db),
                    "redacted": None,
                    "extra": {
                        "delete_audio": delete_audio,
                        "report_folders": [p.name for p in report_months],
                        "batch_summaries": len(summaries),
                    },
                },
            )
        verb = "将删除" if dry_run else "已删除"
        print(
            f"{verb} {month} 之前的记录（{cutoff:%Y-%m-%d} 以前开始的通话）"
            + ("：试运行，没有改动任何东西" if dry_run else "")
        )
        for name, calls in result.months.items():
            print(f"  {name}：{calls} 通通话")
        rows = result.rows
        print(
            f"  通话 {result.calls} 通，话语 {rows.get('utterances', 0)} 句，字时间 {rows.get('char_timings', 0)} 条，"
            f"评分 {rows.get('scores', 0)} 次，质检发现 {rows.get('findings', 0)} 条，"
            f"处理记录 {result.recordings} 条（含失败和跳过的），客户评价事件 {result.events} 条"
        )
        for folder in report_months:
            print(f"  月度报表文件夹 {folder}（含通话页和录音副本）")
            if not dry_run:
                shutil.rmtree(folder)
        if summaries:
            print(f"  批处理汇总 {len(summaries)} 个（{summaries[0].name} … {summaries[-1].name}）")
            if not dry_run:
                for summary_file in summaries:
                    summary_file.unlink(missing_ok=True)
        if delete_audio:
            deleted, missing, refused = 0, 0, []
            for name in result.files:
                audio = Path(name)
                for path in (audio, audio.with_suffix(".json")):
                    if not path.exists():
                        missing += path == audio
                        continue
                    if dry_run:
                        deleted += path == audio
                        continue
                    try:
                        path.unlink()
                        deleted += path == audio
                    except OSError as exc:
                        refused.append(f"{redact_name(str(path))}（{exc.strerror or exc}）")
            print(
                f"  录音文件 {deleted} 个（连同随录音信息）"
                + (f"，{missing} 个已不在原处" if missing else "")
            )
            for problem in refused:
                print(f"  无法删除：{problem}", file=sys.stderr)
            if refused:
                return 1
        elif present := sum(1 for name in result.files if Path(name).exists()):
            print(f"  录音文件保留在原处（{present} 个；加 --delete-audio 一并删除）；批处理不会再分析它们")
    return 0


def _audit(since: date | None, settings: Settings) -> int:
    from pipeline.store import Store

    with Store.from_settings(settings, read_only=True) as store:
        rows = store.audit_rows(datetime.combine(since, datetime.min.time()).astimezone() if since else None)
    from pipeline.audit import ACTION_LABELS_ZH, change_text

    for r in rows:
        redacted = {True: "已脱敏", False: "未脱敏", None: ""}[r["redacted"]]
        count = f"{r['records']} 条" if r["records"] is not None else ""
        print(
            f"{r['logged_at']:%Y-%m-%d %H:%M:%S}  {ACTION_LABELS_ZH.get(r['action'], r['action'])}  "
            f"{r['os_user']}@{r['host']}  {redact_name(r['target'] or '')}  {count}  {redacted}  "
            f"{change_text(r['details'])}  {redact_name(r['command'])}".rstrip()
        )
    print(f"共 {len(rows)} 条审计记录", file=sys.stderr)
    return 0


def _eval(directory: Path, out: Path, recompute: bool, settings: Settings) -> int:
    import json

    from pipeline.batch import describe, run_batch
    from pipeline.evaluate import bar_results, evaluate_folder

    print(
        f"callqa：分析 {directory} 中的录音，写入 {settings.db}（已处理过的通话跳过）",
        file=sys.stderr,
    )
    # generated evaluation calls are complete the moment they are written: no settling time
    settings = settings.model_copy(update={"intake": settings.intake.model_copy(update={"settle_s": 0.0})})
    run_batch(directory, settings, lambda i, n, o: print(describe(i, n, o), file=sys.stderr, flush=True))
    if recompute:
        from pipeline.process import recompute_metrics, scorecards
        from pipeline.store import Store

        cards = scorecards(settings)
        with Store.from_settings(settings) as store:
            for call_id in store.call_ids():
                recompute_metrics(store, call_id, settings, cards)
    summary, problems = evaluate_folder(directory, settings)
    bars = bar_results(summary)
    out.write_text(
        json.dumps({"summary": summary, "bars": bars, "problems": problems}, ensure_ascii=False, indent=1)
        + "\n",
        encoding="utf-8",
    )
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    print("\n指标 | 实测 | 标准 | 结果")
    for key, value, bar, met in bars:
        shown = f"{value:.3f}" if value is not None else "无数据"
        print(f"{key} | {shown} | ≥ {bar} | {'达标' if met else '未达标'}")
    _print_accuracy(summary)
    if problems:
        print(f"\n与真值不符的 {len(problems)} 处（完整列表见 {out}）：")
        print("\n".join(problems[:40]))
    return 0


def _not_processed(call_id: str, files: list, db: Path, redactor: Redactor) -> str:
    """Why `show` has nothing for this call: never seen, or seen and not analysed (and why)."""
    if not files:
        return f"{db} 中没有通话 {redactor.name(call_id)}：批处理还没有见过这个录音"
    status_zh = {"failed": "失败", "skipped": "跳过"}
    lines = [f"{db} 中通话 {redactor.name(call_id)} 还没有分析结果："]
    lines += [f"  {status_zh.get(f.status, f.status)}：{redactor.line(f.error) or ''}" for f in files]
    return "\n".join(lines)


def _print_accuracy(summary: dict) -> None:
    """Role, transcript and rule-verdict accuracy, when the truth allows them."""
    transcripts = summary.get("transcripts", {})
    roles = transcripts.get("role_accuracy", {})

    def shown(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "无数据"

    if roles:
        print(
            f"\n角色准确率（0.1 秒帧）：双声道 {shown(roles.get('stereo'))}，单声道 {shown(roles.get('mono'))}"
        )
        print(f"客服字错率（CER）：{shown(transcripts.get('agent_cer_mean'))}")
        print(
            f"客服文本中的回声字（双声道，落在客户独自说话时段的字）：{shown(transcripts.get('echo_char_share_stereo'))}"
        )
    verdicts = summary.get("verdicts")
    if not verdicts:
        return
    print("\n规则判定（“不合格”为正类；转人工复核的不算扣分）")
    print("规则 | 查准率 | 查全率 | F1 | 正确扣分 | 误扣 | 漏判 | 转复核")
    for rule, r in verdicts["rules"].items():
        print(
            f"{rule} | {shown(r['precision'])} | {shown(r['recall'])} | {shown(r['f1'])} | "
            f"{r['tp']} | {r['fp']} | {r['fn']} | {r['review']}"
        )
    print(
        f"至少一处误扣分的通话占比：{shown(verdicts['wrong_deduction_call_share'])}"
        f"（共 {verdicts['calls']} 通），转人工复核 {verdicts['reviews']} 项"
    )


def _show(call_id: str, settings: Settings, command: str = "callqa show") -> int:
    from dataclasses import replace

    from pipeline.audit import audit_kwargs
    from pipeline.rules.evidence import recogniser_note_zh, scorecard_matching
    from pipeline.store import Store

    redactor = redactor_for(settings.privacy, "show")
    call_id = _unmasked_call_id(call_id, settings)
    with Store.from_settings(settings) as store:
        call = store.call(call_id)
        if call is None:
            raise CallQAError(
                _not_processed(call_id, store.recordings_with_call_id(call_id), settings.db, redactor)
            )
        utterances = store.utterances(call_id)
        recognised = store.load_utterances(call_id)
        metrics = store.load_metrics(call_id)
        scored = store.current_score(call_id)
        history = store.score_history(call_id)
        matching = scorecard_matching(store.scorecard_content(scored.scorecard_hash) if scored else None)
        store.add_audit("show", target=call_id, records=1, redacted=redactor.enabled, **audit_kwargs(command))
    # the one place where what `show` prints is redacted
    lines = [(u["speaker"], u["text"]) for u in utterances]
    texts = redactor.utterances(lines)
    utterances = [{**u, "text": text} for u, text in zip(utterances, texts, strict=True)]
    if metrics is not None:
        metrics = replace(
            metrics,
            interruptions=tuple(
                replace(i, text=redactor.text(i.text), interrupted_text=redactor.text(i.interrupted_text))
                for i in metrics.interruptions
            ),
        )
    if scored is not None:
        scored = replace(
            scored,
            findings=tuple(
                replace(f, evidence=redactor.with_call(f.evidence, lines)) for f in scored.findings
            ),
        )
    started = f"{call['started_at']:%Y-%m-%d %H:%M:%S}" if call["started_at"] else "时间未知"
    agent = " ".join(x for x in (call["agent_id"], call["agent_name"]) if x) or "未知"
    print(f"通话 {redactor.name(call_id)}   客服 {agent}   {started}   时长 {_clock(call['duration_s'])}")
    print(
        f"文件 {redactor.name(call['path'])}   {LAYOUT_LABELS_ZH.get(call['channels'], call['channels'])}   "
        f"角色判定：{role_source_zh(call['role_source'])}（置信度 {call['role_confidence']:.2f}）"
    )
    for warning in call["warnings"] or []:
        print(f"注意：{redactor.line(warning)}")
    print()
    for u, heard in zip(utterances, recognised, strict=True):
        note = recogniser_note_zh(heard, matching)
        print(
            f"{_clock(u['start_s'])}–{_clock(u['end_s'])}  {ROLE_LABELS_ZH[u['speaker']]}  {u['text']}  〔{note}〕"
        )
    if not utterances:
        print("（没有识别出话语）")
    if metrics is not None:
        print()
        print("\n".join(describe_metrics(metrics)))
    print()
    print_findings(scored, history)
    return 0


YES_NO = {True: "是", False: "否"}


def describe_metrics(m: CallMetrics) -> list[str]:
    """The call's metrics as a supervisor reads them (docs/metrics.md has the definitions)."""

    def rate(value: float | None) -> str:
        return f"{value:.0f} 字/分钟" if value is not None else "无法计算"

    def share(seconds: float) -> str:
        return f"{seconds / m.duration_s:.0%}" if m.duration_s else "-"

    def source(name: str | None) -> str:
        return SOURCE_LABELS_ZH.get(name or "", "未知")

    outside = ""
    if m.agent_rate_outside_share is not None:
        outside = f"，100–200 之外的占比 {m.agent_rate_outside_share:.0%}"
    rings = f"{m.rings} 声" if m.rings is not None else "未知"
    delay = f"{m.answer_delay_s:.1f} 秒后" if m.answer_delay_s is not None else "始终没有"
    lines = [
        "【通话指标】",
        f"语速：客服 {rate(m.agent_chars_per_min)}（标准 150{outside}）；客户 {rate(m.customer_chars_per_min)}",
        f"响铃：{rings}（来源：{source(m.rings_source)}）；接通 {delay}客服开口（接通时间来源：{source(m.answer_delay_source)}）",
        f"时长 {m.duration_s:.1f} 秒：客服说话 {m.agent_talk_s:.1f} 秒（{share(m.agent_talk_s)}），"
        f"客户 {m.customer_talk_s:.1f} 秒（{share(m.customer_talk_s)}），重叠 {m.overlap_s:.1f} 秒，"
        f"静音占比 {m.silence_ratio:.0%}，最长静音 {m.longest_silence_s:.1f} 秒",
    ]
    for i in m.interruptions:
        who = "客服打断客户" if i.by == "agent" else "客户打断客服"
        lines.append(f"抢话：{_clock(i.start)} {who}（重叠 {i.overlap_s:.1f} 秒）：“{i.text}”")
    for h in m.holds:
        lines.append(
            f"等待：{_clock(h.start)}–{_clock(h.end)}（{h.duration:.0f} 秒）事先征询 {YES_NO[h.asked]}，"
            f"中途回应 {h.checkins} 次"
            + (f"（最长 {h.max_checkin_gap_s:.0f} 秒没有回应）" if h.max_checkin_gap_s is not None else "")
            + f"，事后致谢 {YES_NO[h.thanked]}，"
            f"等待音乐 {YES_NO[h.music]}"
            + ("，查询类" if h.lookup else "")
            + ("，等待中通话结束" if h.ends_call else "")
        )
    for d in m.dead_air:
        lines.append(
            f"冷场：{_clock(d.start)}–{_clock(d.end)}（{d.end - d.start:.0f} 秒，双方都没有说话且未事先说明）"
        )
    if m.hangup_by:
        who = "客服先挂机" if m.hangup_by == "agent" else "客户先挂机"
        lines.append(f"挂机：{who}（来源：{source(m.hangup_source)}）")
    if m.nuisance_over_max:
        lines.append("骚扰电话：通话超过规定时长")
    return lines


def print_findings(scored: CallScore | None, history: list[dict]) -> None:
    """The scoring sheet under the transcript: per category, each rule with its verdict and evidence."""
    if scored is None:
        print("质检：尚未评分（callqa rescore 可立即评分）")
        return
    when = f"，{history[0]['scored_at']:%Y-%m-%d %H:%M} 评分" if history else ""
    verdict = "一票否决，0 分" if scored.fatal else f"{scored.score:g} 分"
    review = sum(1 for f in scored.findings if f.needs_review)
    print(
        f"质检：{verdict}（评分表 {scored.scorecard_name} {scored.scorecard_hash[:12]}{when}）"
        + (f"，{review} 项待人工复核" if review else "")
    )
    category = None
    for f in scored.findings:
        if f.category != category:
            category = f.category
            print(f"  【{category}】")
        mark = "？" if f.needs_review else ("✓" if f.passed else "✗")
        points = f" −{f.deduction:g}" if f.deduction else ""
        at = f" {_clock(f.start)}" if f.start is not None and not f.passed else ""
        print(f"  {mark} {f.rule_id} {f.title}{points}{at}  {f.evidence or ''}".rstrip())
        if f.replacement and not f.passed:
            print(f"      建议说法：{f.replacement}")
    if len(history) > 1:
        earlier = "；".join(
            f"{h['scored_at']:%m-%d %H:%M} {h['score']:g} 分（{h['scorecard_hash'][:8]}）"
            for h in history[1:4]
        )
        print(f"  历史评分：{earlier}")


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
