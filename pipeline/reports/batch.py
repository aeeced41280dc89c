"""The nightly batch summary a QA supervisor reads in the morning (Markdown, Chinese labels)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.batch import BatchSummary
from pipeline.privacy import Redactor
from pipeline.problems import title

STATUS_ZH = {"ok": "完成", "unchanged": "已处理过", "skipped": "跳过", "failed": "失败"}


def write_batch_summary(
    summary: BatchSummary,
    directory: Path,
    reports_dir: Path,
    when: datetime,
    redactor: Redactor | None = None,
    config: str = "",
) -> Path:
    """Write reports/batches/<time>.md and return its path; one file per run, never overwritten.
    File names, call ids and messages are redacted (`Redactor.name`): phone systems put the caller's
    number in the file name. `config` says which configuration file (and redaction) was in force."""
    redactor = redactor or Redactor()
    out_dir = reports_dir / "batches"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{when:%Y-%m-%d_%H%M%S}.md"
    lines = [
        f"# 质检批处理汇总 {when:%Y-%m-%d %H:%M}（{getattr(when.tzinfo, 'key', when.tzname())} 时间）",
        "",
        f"- 录音目录：`{redactor.name(directory)}`",
        *([f"- 配置：{config}"] if config else []),
        f"- 录音总数：{len(summary.outcomes)}；完成 {summary.count('ok')}，已处理过 "
        f"{summary.count('unchanged')}，跳过 {summary.count('skipped')}，失败 {summary.failed}",
        f"- 待人工复核的发现：{sum(o.review_findings for o in summary.outcomes)}（确认前不扣分）",
        f"- 分不清哪一方是客服的通话：{summary.roles_doubtful}（callqa roles 确认前不计入排名和奖惩）",
        "",
        "| 文件 | 通话编号 | 状态 | 时长 (秒) | 话语数 | 得分 | 待复核 | 用时 (秒) | 说明 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in summary.outcomes:
        duration = f"{o.duration_s:.1f}" if o.duration_s is not None else ""
        utterances = str(o.utterances) if o.status == "ok" else ""
        elapsed = f"{o.elapsed_s:.1f}" if o.status in ("ok", "failed") else ""
        score = f"{o.score:.1f}" if o.status == "ok" and o.score is not None else ""
        review = str(o.review_findings) if o.status == "ok" else ""
        message = (redactor.line(o.message) or "").replace("|", "\\|").replace("\n", " ")
        if o.problem and o.status in ("failed", "skipped"):
            message = f"【{title(o.problem)}】{message}"
        lines.append(
            f"| {redactor.name(o.path.name)} | {redactor.name(o.call_id)} | {STATUS_ZH.get(o.status, o.status)} | {duration} | "
            f"{utterances} | {score} | {review} | {elapsed} | {message} |"
        )
    if summary.failed:
        lines += [
            "",
            "失败的录音会在下次批处理时自动重试（批处理在其上中断过多次的除外）；`callqa failures` 列出全部失败原因，"
            "`callqa show`/`callqa export` 可查看已完成的通话。",
        ]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
