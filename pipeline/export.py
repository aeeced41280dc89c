"""`callqa export`: one JSON object per recording (JSON Lines), the project's export contract.

Contract keys (fixed; later stages add keys, never rename or remove one): call_id, file, sha256,
agent_id, started_at, duration_s, channels, status, error, utterances[{speaker, start, end, text}],
metrics, findings, score.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from pipeline.store import Store


def export_records(store: Store) -> Iterator[dict]:
    for row in store.recordings():
        ok = row["status"] == "ok"
        utterances = store.utterances(row["call_id"]) if ok else []
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
            "findings": [],
            "score": None,
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
