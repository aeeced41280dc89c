"""The commands that keep the store: `callqa failures`, `callqa roles`, `callqa purge`, `callqa audit`."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.commands.show import unmasked_call_id
from pipeline.config import Settings
from pipeline.errors import CallQAError
from pipeline.privacy import Redactor, redact_name, redactor_for


def review_roles(call_id: str | None, swap: bool, confirm: bool, settings: Settings, command: str) -> int:
    from pipeline.review import decide_roles

    if call_id is None:
        from pipeline.diarize.roles import ROLE_REVIEW_BELOW
        from pipeline.store import Store

        with Store.from_settings(settings, read_only=True) as store:
            waiting = store.role_reviews(ROLE_REVIEW_BELOW)
        print_role_reviews(waiting, settings.db, redactor_for(settings.privacy, "show"))
        return 0
    if not (swap or confirm):
        raise CallQAError("请选择 --swap（对调客服与客户）或 --confirm（角色无误）")
    call_id = unmasked_call_id(call_id, settings)
    decided = decide_roles(settings, call_id, swap, command)
    before = "—" if decided.rescored.before is None else f"{decided.rescored.before:.1f}"
    action = "已对调客服与客户，重算指标并重新评分" if swap else "已确认角色无误"
    print(
        f"{redactor_for(settings.privacy, 'show').name(call_id)}：{action}；得分 {before} → {decided.rescored.after:.1f}，现在计入排名和奖惩"
    )
    return 0


def print_role_reviews(rows: list[dict], db: Path, redactor: Redactor) -> None:
    print(f"{db}：{len(rows)} 通通话分不清哪一方是客服，待人工确认（确认前不计入排名和奖惩）")
    for r in rows:
        print(f"  {redactor.name(r['call_id'])}  {redactor.name(r['path'])}  客服工号 {r['agent_id'] or '—'}")
        for warning in r["warnings"]:
            print(f"      {redactor.line(warning)}")
    if rows:
        print("用 callqa roles 通话编号 --swap（声道接反）或 --confirm（角色无误）处理。")


def list_failures(settings: Settings, include_skipped: bool) -> int:
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
    print_role_reviews(waiting, settings.db, redactor)
    return 0


def purge_before(
    before: str, dry_run: bool, delete_audio: bool, force: bool, settings: Settings, command: str
) -> int:
    import shutil

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


def list_audit(since: date | None, settings: Settings) -> int:
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
