"""`callqa export`: one JSON object per recording (JSON Lines), the project's export contract.

Contract keys (fixed; later stages add keys, never rename or remove one): call_id, file, sha256,
agent_id, started_at, duration_s, channels, status, error, utterances[{speaker, start, end, text}],
metrics, findings, score. The metrics stage fills metrics (docs/metrics.md). The scorecard stage
adds fatal (bool, null when not scored) and scorecard ({name, hash}); each finding is {rule_id,
passed, deduction, start, end, speaker, evidence, confidence, needs_review} plus title, category,
fatal, replacement — one per rule per call, plus one per extra occurrence of a per-occurrence
rule (服务禁语).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO

from pipeline.privacy import Redactor
from pipeline.records import CallMetrics, Finding
from pipeline.store import Store

PAGE = 200  # recordings read per connection: the nightly batch is never kept waiting for long


def export_records(open_store: Callable[[], Store], redactor: Redactor, page: int = PAGE) -> Iterator[dict]:
    """Every recording as an export record, redacted as configured.

    The store is opened once per page of recordings and closed before the page's records are
    handed on, so a slow reader (a pipe, a network share) never holds the database while the
    nightly batch wants to write. Each record is read whole within one connection."""
    after = None
    while True:
        with open_store() as store:
            rows = store.recordings_page(after, page)
            records = [_record(store, row) for row in rows]
        for record in records:
            yield redact_record(record, redactor)
        if len(rows) < page:
            return
        after = (rows[-1]["sort_at"], rows[-1]["file"])


def _record(store: Store, row: dict) -> dict:
    ok = row["status"] == "ok"
    utterances = store.utterances(row["call_id"]) if ok else []
    metrics = store.load_metrics(row["call_id"]) if ok else None
    scored = store.current_score(row["call_id"]) if ok else None
    return {
        "call_id": row["call_id"],
        "file": row["file"],
        "sha256": row["sha256"],
        "agent_id": row["agent_id"],
        "agent_name": row["agent_name"],
        "started_at": _iso(row["started_at"]),
        "duration_s": _round(row["duration_s"]),
        "channels": row["channels"],
        "direction": row["direction"],
        "status": row["status"],
        "error": row["error"],
        "processed_at": _iso(row["processed_at"]),
        "diarization": row["diarization_method"],
        "asr_model": row["asr_model"],
        "role_source": row["role_source"],
        "role_confidence": row["role_confidence"],
        "warnings": list(row["warnings"] or []),
        "utterances": [
            {
                "speaker": u["speaker"],
                "start": _round(u["start_s"]),
                "end": _round(u["end_s"]),
                "text": u["text"],
                "confidence": _round(u["confidence"]),
                # the recogniser's evidence (docs/scorecard.md): null where not known
                "avg_logprob": _round(u["avg_logprob"]),
                "no_speech_prob": _round(u["no_speech_prob"]),
                "compression_ratio": _round(u["compression_ratio"]),
                "looping": bool(u["looping"]),
                "unheard_s": _round(u["unheard_s"]),
            }
            for u in utterances
        ],
        "metrics": metrics_record(metrics) if metrics else {},
        "findings": [finding_record(f) for f in scored.findings] if scored else [],
        "score": scored.score if scored else None,
        "fatal": scored.fatal if scored else None,
        "scorecard": {"name": scored.scorecard_name, "hash": scored.scorecard_hash} if scored else None,
    }


def redact_record(record: dict, redactor: Redactor) -> dict:
    """The one place where an export record's free text is redacted: the transcript (read as a whole,
    so a number split over two utterances is caught), evidence (with the call around it: it may quote
    the hidden part of a number), interruption texts, the error, the file name and call id."""
    if not redactor.enabled:
        return record
    lines = [(u["speaker"], u["text"]) for u in record["utterances"]]
    texts = redactor.utterances(lines)
    metrics = record["metrics"]
    if metrics.get("interruptions"):
        metrics = {
            **metrics,
            "interruptions": [
                {
                    **i,
                    "text": redactor.text(i["text"]),
                    "interrupted_text": redactor.text(i["interrupted_text"]),
                }
                for i in metrics["interruptions"]
            ],
        }
    return {
        **record,
        # the phone system may have put the caller's number in the file name (and so the call id);
        # `sha256` stays the record's unique key
        **{key: redactor.name(record[key]) for key in ("call_id", "file") if key in record},
        "error": redactor.line(record["error"]),
        "utterances": [{**u, "text": text} for u, text in zip(record["utterances"], texts, strict=True)],
        "metrics": metrics,
        "findings": [{**f, "evidence": redactor.with_call(f["evidence"], lines)} for f in record["findings"]],
    }


def metrics_record(m: CallMetrics) -> dict:
    """The export's `metrics` object (docs/metrics.md defines every key)."""
    return {
        "agent_chars_per_min": m.agent_chars_per_min,
        "customer_chars_per_min": m.customer_chars_per_min,
        "agent_speaking_s": m.agent_speaking_s,
        "agent_rate_outside_share": m.agent_rate_outside_share,
        "interruptions": [
            {
                "start": i.start,
                "end": i.end,
                "by": i.by,
                "text": i.text,
                "interrupted_text": i.interrupted_text,
                "overlap_s": i.overlap_s,
            }
            for i in m.interruptions
        ],
        "holds": [
            {
                "start": h.start,
                "end": h.end,
                "duration_s": round(h.duration, 3),
                "asked": h.asked,
                "checkins": h.checkins,
                "checkin_times": list(h.checkin_times),
                "max_checkin_gap_s": h.max_checkin_gap_s,
                "thanked": h.thanked,
                "music": h.music,
                "lookup": h.lookup,
                "ends_call": h.ends_call,
            }
            for h in m.holds
        ],
        "dead_air": [{"start": d.start, "end": d.end} for d in m.dead_air],
        "rings": m.rings,
        "rings_source": m.rings_source,
        "answered_at": m.answered_at,
        "answer_delay_s": m.answer_delay_s,
        "answer_delay_source": m.answer_delay_source,
        "duration_s": m.duration_s,
        "agent_talk_s": m.agent_talk_s,
        "customer_talk_s": m.customer_talk_s,
        "agent_talk_share": _share(m.agent_talk_s, m.duration_s),
        "customer_talk_share": _share(m.customer_talk_s, m.duration_s),
        "overlap_s": m.overlap_s,
        "silence_ratio": m.silence_ratio,
        "longest_silence_s": m.longest_silence_s,
        "hangup_by": m.hangup_by,
        "hangup_source": m.hangup_source,
        "call_type": m.call_type,
        "nuisance_over_max": m.nuisance_over_max,
        "utterance_rates": [
            {
                "utterance": r.utterance_index,
                "speaker": r.speaker,
                "chars": r.chars,
                "speaking_s": r.speaking_s,
                "chars_per_min": r.chars_per_min,
            }
            for r in m.utterance_rates
        ],
    }


def finding_record(f: Finding) -> dict:
    """One finding in the export: the contract's keys, then what reports and review pages show."""
    return {
        "rule_id": f.rule_id,
        "passed": f.passed,
        "deduction": f.deduction,
        "start": _round(f.start),
        "end": _round(f.end),
        "speaker": f.speaker,
        "evidence": f.evidence,
        "confidence": _round(f.confidence),
        "needs_review": f.needs_review,
        "title": f.title,
        "category": f.category,
        "fatal": f.fatal,
        "replacement": f.replacement,
    }


def _share(seconds: float, duration_s: float) -> float | None:
    return round(seconds / duration_s, 3) if duration_s else None


def write_jsonl(records: Iterator[dict], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _round(value: float | None) -> float | None:
    return round(float(value), 3) if value is not None else None
