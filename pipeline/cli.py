"""The `callqa` command.

callqa run DIR [--db PATH]         process every recording in DIR (same as the nightly flow)
callqa show CALL_ID [--db PATH]    a call's transcript: time, 客服/客户, text
callqa export [--db PATH] [--out FILE]
                                   JSON Lines, one call per line (the export contract)
callqa rescore [--scorecard FILE] [--since DATE] [--db PATH]
                                   score stored calls again (no ASR); history kept
callqa calibrate LABELS.csv [--scorecard FILE] [--db PATH]
                                   people's verdicts vs the pipeline's, per rule
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date, datetime
from pathlib import Path

from pipeline.config import Settings, load_settings
from pipeline.errors import CallQAError
from pipeline.records import ROLE_LABELS_ZH, CallScore

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

    rescore = commands.add_parser(
        "rescore", help="score stored calls again from their utterances and metrics (no ASR)"
    )
    rescore.add_argument(
        "--scorecard", type=Path, help="scorecard YAML for every call (default: rules/*.yaml)"
    )
    rescore.add_argument("--since", type=_date, help="only calls that started on or after YYYY-MM-DD")
    rescore.add_argument("--db", type=Path)

    calibrate = commands.add_parser(
        "calibrate", help="agreement between people's QA verdicts and the pipeline's"
    )
    calibrate.add_argument("labels", type=Path, help="CSV: call_id, rule_id, passed[, score]")
    calibrate.add_argument(
        "--scorecard", type=Path, help="judge with this scorecard (in memory) instead of the stored findings"
    )
    calibrate.add_argument("--db", type=Path)

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
        if args.command == "rescore":
            return _rescore(args.scorecard, args.since, settings)
        if args.command == "calibrate":
            return _calibrate(args.labels, args.scorecard, settings)
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
        scored = store.current_score(call_id)
        history = store.score_history(call_id)
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
    print()
    print_findings(scored, history)
    return 0


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


def _rescore(scorecard: Path | None, since: date | None, settings: Settings) -> int:
    from pipeline.rules.rescore import rescore, scorecards_from
    from pipeline.store import Store

    cards = scorecards_from(scorecard)
    with Store(settings.db, timezone=settings.input.timezone) as store:
        results = rescore(store, cards, since)
    changed = 0
    for r in results:
        before = "未评分" if r.before is None else f"{r.before:g}"
        after = "一票否决 0" if r.fatal else f"{r.after:g}"
        note = "" if r.stored else "（与当前评分相同，未新增记录）"
        changed += int(r.stored)
        print(f"{r.call_id}  {before} → {after}  {r.scorecard.name} {r.scorecard.short_hash}{note}")
    print(
        f"callqa: 重新评分 {len(results)} 通电话，{changed} 通写入新评分（旧评分保留为历史）", file=sys.stderr
    )
    return 0


def _calibrate(labels_path: Path, scorecard: Path | None, settings: Settings) -> int:
    from pipeline.rules.calibrate import compare, format_calibration, read_labels
    from pipeline.store import Store

    labels = read_labels(labels_path)
    call_ids = sorted({label.call_id for label in labels})
    with Store(settings.db, read_only=True, timezone=settings.input.timezone) as store:
        if scorecard is None:
            pipeline = {cid: store.current_score(cid) for cid in call_ids}
        else:
            from pipeline.rules import load_scorecard, score_call

            card = load_scorecard(scorecard)
            pipeline = {}
            for cid in call_ids:
                meta = store.load_meta(cid)
                pipeline[cid] = (
                    None
                    if meta is None
                    else score_call(store.load_utterances(cid), store.load_metrics(cid), meta, card)
                )
    print(format_calibration(compare(labels, pipeline)))
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应写成 YYYY-MM-DD，而不是 {text!r}") from None


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
