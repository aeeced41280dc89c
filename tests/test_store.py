"""The QA store on hand-built records: one transaction per call, no duplicates, readable failures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pipeline.errors import CallQAError
from pipeline.records import (
    CallAudio,
    CallMeta,
    CharTiming,
    Recording,
    RoleAssignment,
    SpeechTurn,
    Transcript,
    Utterance,
)
from pipeline.store import Store

TZ = ZoneInfo("Asia/Shanghai")


def _call(call_id: str = "C1", path: str = "/calls/a.wav", sha: str = "a" * 64) -> tuple:
    recording = Recording(Path(path), sha, 1234)
    meta = CallMeta(
        call_id=call_id,
        agent_id="1001",
        started_at=datetime(2026, 11, 20, 9, 0, tzinfo=TZ),
        ring_seconds=6.0,
        source="sidecar",
    )
    audio = CallAudio(
        call_id,
        16000,
        {"agent": np.zeros(1), "customer": np.zeros(1)},
        "stereo-agent-left",
        "sidecar",
        8000,
        2,
        "WAV/PCM_16",
        42.0,
    )
    utterances = (
        Utterance(
            "agent", 1.0, 3.0, "您好", (CharTiming("您", 1.0, 1.5, 0.9), CharTiming("好", 1.5, 2.0, 0.9)), 0.9
        ),
        Utterance("customer", 3.5, 5.0, "你好", (CharTiming("你", 3.5, 4.0, 0.8),), 0.8),
    )
    transcript = Transcript(
        utterances,
        (SpeechTurn("agent", 1.0, 2.0), SpeechTurn("customer", 3.5, 5.0)),
        "stereo:test",
        "whisper-test",
        RoleAssignment({}, "channel", 1.0),
    )
    return recording, meta, audio, transcript


def _counts(store: Store) -> dict[str, int]:
    return {
        t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("recordings", "calls", "utterances", "char_timings", "voice_activity")
    }


def test_saving_twice_replaces_and_never_duplicates(tmp_path: Path) -> None:
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_call(*_call(), elapsed_s=1.0)
        first = _counts(store)
        store.save_call(*_call(), elapsed_s=1.0)
        assert (
            _counts(store)
            == first
            == {"recordings": 1, "calls": 1, "utterances": 2, "char_timings": 3, "voice_activity": 2}
        )
        assert store.recording_at(Path("/calls/a.wav")).attempts == 2
        call = store.call("C1")
        assert call["started_at"] == datetime(2026, 11, 20, 9, 0, tzinfo=TZ) and call["ring_seconds"] == 6.0
        assert [u["text"] for u in store.utterances("C1")] == ["您好", "你好"]


def test_changed_file_replaces_the_old_call(tmp_path: Path) -> None:
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_call(*_call(sha="a" * 64), elapsed_s=1.0)
        store.save_call(*_call(sha="b" * 64), elapsed_s=1.0)
        assert _counts(store)["calls"] == 1 and store.recording_at(Path("/calls/a.wav")).sha256 == "b" * 64


def test_failure_keeps_the_reason_and_a_later_success_clears_it(tmp_path: Path) -> None:
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_failure(Path("/calls/a.wav"), "a" * 64, 10, "C1", "failed", "cannot decode audio")
        row = store.recording_at(Path("/calls/a.wav"))
        assert (row.status, row.error, row.attempts) == ("failed", "cannot decode audio", 1)
        store.save_call(*_call(), elapsed_s=1.0)
        row = store.recording_at(Path("/calls/a.wav"))
        assert (row.status, row.error, row.attempts) == ("ok", None, 2)


def test_failure_of_a_changed_file_removes_its_stale_call(tmp_path: Path) -> None:
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_call(*_call(), elapsed_s=1.0)
        store.save_failure(Path("/calls/a.wav"), "c" * 64, 10, "C1", "failed", "truncated")
        assert store.call("C1") is None and _counts(store)["utterances"] == 0


def test_a_failed_write_leaves_nothing_half_done(tmp_path: Path) -> None:
    recording, meta, audio, transcript = _call()
    bad = Transcript(
        (*transcript.utterances, Utterance("robot", 9, 10, "x")),
        transcript.voice_activity,
        "m",
        "a",
        transcript.roles,
    )  # violates the speaker CHECK constraint mid-transaction
    with Store(tmp_path / "qa.duckdb") as store:
        with pytest.raises(Exception, match=r"(?i)constraint"):
            store.save_call(recording, meta, audio, bad, elapsed_s=1.0)
        assert _counts(store) == {
            "recordings": 0,
            "calls": 0,
            "utterances": 0,
            "char_timings": 0,
            "voice_activity": 0,
        }


def test_moved_recording_follows_its_file(tmp_path: Path) -> None:
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_call(*_call(), elapsed_s=1.0)
        store.move_recording("/calls/a.wav", Path("/archive/a.wav"))
        assert (
            store.call("C1")["path"] == "/archive/a.wav" and store.recording_at(Path("/calls/a.wav")) is None
        )


def test_reading_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CallQAError, match="还没有质检数据库"):
        Store(tmp_path / "nope.duckdb", read_only=True)


def test_metrics_and_audio_events_round_trip(tmp_path: Path) -> None:
    from pipeline.records import AudioEvent, CallMetrics, Hold, Interruption, Stretch, UtteranceRate

    metrics = CallMetrics(
        duration_s=42.0,
        agent_chars_per_min=151.5,
        customer_chars_per_min=170.0,
        agent_speaking_s=20.0,
        agent_rate_outside_share=0.1,
        utterance_rates=(UtteranceRate(0, "agent", 30, 12.0, 150.0),),
        interruptions=(Interruption(10.0, 10.8, "agent", "你先别说了", "我想问一下", 0.8),),
        holds=(Hold(20.0, 45.0, True, "请您稍等", 1, (32.0,), 13.0, True, "让您久等了", False),),
        dead_air=(Stretch(50.0, 56.0),),
        rings=2,
        rings_source="metadata",
        answered_at=6.0,
        answer_delay_s=0.6,
        answer_delay_source="metadata",
        agent_talk_s=22.0,
        customer_talk_s=10.0,
        overlap_s=0.8,
        silence_ratio=0.25,
        longest_silence_s=25.0,
        hangup_by="customer",
        hangup_source="metadata",
        call_type=None,
        nuisance_over_max=None,
    )
    events = (AudioEvent("ring", 0.0, 1.0, "customer", "450 Hz"), AudioEvent("music", 20.0, 45.0, "agent"))
    recording, meta, audio, transcript = _call()
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_call(recording, meta, audio, transcript, 1.0, events=events, metrics=metrics)
        assert store.load_metrics("C1") == metrics
        assert store.load_audio_events("C1") == events
        assert store.load_utterances("C1") == transcript.utterances
        assert store.load_meta("C1").ring_seconds == 6.0
        store.save_call(recording, meta, audio, transcript, 1.0)  # redone without metrics: none left over
        assert store.load_metrics("C1") is None and store.load_audio_events("C1") == ()


def test_recogniser_evidence_round_trips_and_goes_with_the_call(tmp_path: Path) -> None:
    from dataclasses import replace

    recording, meta, audio, transcript = _call()
    heard = (
        replace(
            transcript.utterances[0],
            avg_logprob=-1.25,
            no_speech_prob=0.1,
            compression_ratio=2.6,
            looping=True,
            unheard_s=0.4,
        ),
        transcript.utterances[1],  # a typed line: no whisper figures, nothing stored for it
    )
    transcript = replace(transcript, utterances=heard)
    with Store(tmp_path / "qa.duckdb") as store:
        store.save_call(recording, meta, audio, transcript, 1.0)
        assert store.load_utterances("C1") == heard
        rows = store.utterances("C1")
        assert (rows[0]["avg_logprob"], rows[0]["looping"]) == (-1.25, True)
        assert (rows[1]["avg_logprob"], rows[1]["looping"]) == (None, False)
        assert store.db.execute("SELECT count(*) FROM utterance_evidence").fetchone()[0] == 1
        store.save_call(recording, meta, audio, replace(transcript, utterances=heard[1:]), 1.0)  # redone
        assert store.db.execute("SELECT count(*) FROM utterance_evidence").fetchone()[0] == 0
