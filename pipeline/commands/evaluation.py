"""`callqa eval`: a labelled folder analysed, then compared with its truth (pipeline/evaluate.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.config import Settings


def evaluate_folder_command(directory: Path, out: Path, recompute: bool, settings: Settings) -> int:
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
    print_accuracy(summary)
    if problems:
        print(f"\n与真值不符的 {len(problems)} 处（完整列表见 {out}）：")
        print("\n".join(problems[:40]))
    return 0


def print_accuracy(summary: dict) -> None:
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
