"""`callqa show`: one call's transcript, metrics and scoring sheet as a supervisor reads them
(redacted, audited)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import CallQAError
from pipeline.privacy import Redactor, redact_name, redactor_for
from pipeline.records import LAYOUT_LABELS_ZH, ROLE_LABELS_ZH, SOURCE_LABELS_ZH, CallMetrics, CallScore


def unmasked_call_id(given: str, settings: Settings) -> str:
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


def not_processed(call_id: str, files: list, db: Path, redactor: Redactor) -> str:
    """Why `show` has nothing for this call: never seen, or seen and not analysed (and why)."""
    if not files:
        return f"{db} 中没有通话 {redactor.name(call_id)}：批处理还没有见过这个录音"
    status_zh = {"failed": "失败", "skipped": "跳过"}
    lines = [f"{db} 中通话 {redactor.name(call_id)} 还没有分析结果："]
    lines += [f"  {status_zh.get(f.status, f.status)}：{redactor.line(f.error) or ''}" for f in files]
    return "\n".join(lines)


def show_call(call_id: str, settings: Settings, command: str = "callqa show") -> int:
    from dataclasses import replace

    from pipeline.audit import audit_kwargs
    from pipeline.rules.evidence import recogniser_note_zh, scorecard_matching
    from pipeline.store import Store

    redactor = redactor_for(settings.privacy, "show")
    call_id = unmasked_call_id(call_id, settings)
    with Store.from_settings(settings) as store:
        call = store.call(call_id)
        if call is None:
            raise CallQAError(
                not_processed(call_id, store.recordings_with_call_id(call_id), settings.db, redactor)
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
    print(f"通话 {redactor.name(call_id)}   客服 {agent}   {started}   时长 {clock(call['duration_s'])}")
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
            f"{clock(u['start_s'])}–{clock(u['end_s'])}  {ROLE_LABELS_ZH[u['speaker']]}  {u['text']}  〔{note}〕"
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
        lines.append(f"抢话：{clock(i.start)} {who}（重叠 {i.overlap_s:.1f} 秒）：“{i.text}”")
    for h in m.holds:
        lines.append(
            f"等待：{clock(h.start)}–{clock(h.end)}（{h.duration:.0f} 秒）事先征询 {YES_NO[h.asked]}，"
            f"中途回应 {h.checkins} 次"
            + (f"（最长 {h.max_checkin_gap_s:.0f} 秒没有回应）" if h.max_checkin_gap_s is not None else "")
            + f"，事后致谢 {YES_NO[h.thanked]}，"
            f"等待音乐 {YES_NO[h.music]}"
            + ("，查询类" if h.lookup else "")
            + ("，等待中通话结束" if h.ends_call else "")
        )
    for d in m.dead_air:
        lines.append(
            f"冷场：{clock(d.start)}–{clock(d.end)}（{d.end - d.start:.0f} 秒，双方都没有说话且未事先说明）"
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
        at = f" {clock(f.start)}" if f.start is not None and not f.passed else ""
        print(f"  {mark} {f.rule_id} {f.title}{points}{at}  {f.evidence or ''}".rstrip())
        if f.replacement and not f.passed:
            print(f"      建议说法：{f.replacement}")
    if len(history) > 1:
        earlier = "；".join(
            f"{h['scored_at']:%m-%d %H:%M} {h['score']:g} 分（{h['scorecard_hash'][:8]}）"
            for h in history[1:4]
        )
        print(f"  历史评分：{earlier}")


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


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"
