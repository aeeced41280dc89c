"""`callqa export`: one JSON object per recording (JSON Lines), the project's export contract.

Contract keys (fixed; later stages add keys, never rename or remove one): call_id, file, sha256,
agent_id, started_at, duration_s, channels, status, error, utterances[{speaker, start, end, text}],
metrics, findings, score. The scorecard stage adds fatal (bool, null when not scored) and scorecard
({name, hash}); each finding is {rule_id, passed, deduction, start, end, speaker, evidence, confidence,
needs_review} plus title, category, fatal, replacement — one per rule per call, plus one per extra
occurrence of a per-occurrence rule (服务禁语).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from pipeline.records import Finding
from pipeline.store import Store


def export_records(store: Store) -> Iterator[dict]:
    for row in store.recordings():
        ok = row["status"] == "ok"
        utterances = store.utterances(row["call_id"]) if ok else []
        scored = store.current_score(row["call_id"]) if ok else None
        yield {
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
                }
                for u in utterances
            ],
            "metrics": {},
            "findings": [finding_record(f) for f in scored.findings] if scored else [],
            "score": scored.score if scored else None,
            "fatal": scored.fatal if scored else None,
            "scorecard": {"name": scored.scorecard_name, "hash": scored.scorecard_hash} if scored else None,
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
