"""Calls built by hand and saved through `Store.save_call`, for tests that need a filled store
without running speech recognition (privacy, purge, audit, concurrency)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from pipeline.records import (
    CallAudio,
    CallMeta,
    CharTiming,
    Interruption,
    Recording,
    RoleAssignment,
    SpeechTurn,
    Transcript,
    Utterance,
)
from pipeline.store import Store

TZ = ZoneInfo("Asia/Shanghai")
Line = tuple[str, float, float, str]  # speaker, start, end, text


def transcript(lines: Sequence[Line]) -> Transcript:
    utterances = tuple(
        Utterance(
            speaker,
            start,
            end,
            text,
            tuple(
                CharTiming(
                    ch,
                    start + i * (end - start) / len(text),
                    start + (i + 1) * (end - start) / len(text),
                    0.9,
                )
                for i, ch in enumerate(text)
            ),
            0.9,
            "channel",
            1.0,
        )
        for speaker, start, end, text in lines
    )
    return Transcript(
        utterances,
        tuple(SpeechTurn(u.speaker, u.start, u.end) for u in utterances),
        "stereo:test",
        "whisper-test",
        RoleAssignment({}, "channel", 1.0),
    )


def save_call(
    store: Store,
    call_id: str,
    lines: Sequence[Line],
    started_at: datetime | None = None,
    path: str | None = None,
    agent_id: str = "1001",
    sha256: str | None = None,
) -> None:
    path = path or f"/recordings/{call_id}.wav"
    recording = Recording(Path(path), sha256 or hashlib.sha256(call_id.encode()).hexdigest(), 1000)
    meta = CallMeta(
        call_id=call_id,
        agent_id=agent_id,
        started_at=started_at or datetime(2026, 11, 20, 9, 0, tzinfo=TZ),
        source="sidecar",
    )
    duration = max((end for _, _, end, _ in lines), default=1.0) + 1.0
    audio = CallAudio(
        call_id,
        16000,
        {"agent": np.zeros(1), "customer": np.zeros(1)},
        "stereo-agent-left",
        "sidecar",
        8000,
        2,
        "WAV/PCM_16",
        duration,
    )
    store.save_call(recording, meta, audio, transcript(lines), elapsed_s=1.0)


def interruption(by: str, text: str, interrupted: str) -> Interruption:
    return Interruption(1.0, 2.0, by, text, interrupted, 0.5)
