"""Recording files in: sidecars, file-name metadata, decoding of call-centre formats."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import soundfile as sf

from pipeline.config import InputConfig, IntakeConfig
from pipeline.errors import CallQAError
from pipeline.ingest import (
    AudioInfo,
    check_duration,
    compile_filename_pattern,
    decode,
    discover,
    fingerprint,
    read_meta,
)
from pipeline.problems import RecordingError

RATE = 8000


def _two_tones(seconds: float = 1.0) -> np.ndarray:
    """Left channel 440 Hz, right channel 40 dB quieter (a live channel, not a dead one): tells which
    channel became the agent."""
    t = np.arange(int(seconds * RATE)) / RATE
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.005 * np.sin(2 * np.pi * 1000 * t)
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "subtype", "fmt"),
    [
        ("a_pcm.wav", "PCM_16", None),
        ("a_alaw.wav", "ALAW", None),
        ("a_ulaw.wav", "ULAW", None),
        ("a.flac", "PCM_16", None),
        ("a.mp3", "MPEG_LAYER_III", "MP3"),
    ],
)
def test_decodes_telephone_formats_to_16k_agent_left(
    tmp_path: Path, name: str, subtype: str, fmt: str | None
) -> None:
    path = tmp_path / name
    sf.write(path, _two_tones(), RATE, subtype=subtype, format=fmt)
    config = InputConfig()
    audio = decode(path, read_meta(path, config), config)
    assert audio.sample_rate == 16000 and audio.source_sample_rate == RATE
    assert audio.layout == "stereo-agent-left" and audio.layout_source == "config"
    assert audio.duration_s == pytest.approx(1.0, abs=0.06)  # MP3 frames pad the end a little
    agent_rms = float(np.sqrt(np.mean(audio.tracks["agent"] ** 2)))
    customer_rms = float(np.sqrt(np.mean(audio.tracks["customer"] ** 2)))
    assert agent_rms > 0.2 and customer_rms < 0.02


def test_sidecar_layout_agent_right_swaps_channels(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, _two_tones(), RATE)
    path.with_suffix(".json").write_text(json.dumps({"channels": "stereo-agent-right", "call_id": "C1"}))
    config = InputConfig()
    meta = read_meta(path, config)
    audio = decode(path, meta, config)
    assert meta.call_id == "C1" and audio.layout == "stereo-agent-right" and audio.layout_source == "sidecar"
    assert np.sqrt(np.mean(audio.tracks["customer"] ** 2)) > 0.2  # the 440 Hz left channel is the customer


def test_mono_file_with_stereo_sidecar_is_analysed_as_mono_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "m.wav"
    sf.write(path, _two_tones()[:, 0], RATE)
    path.with_suffix(".json").write_text(json.dumps({"channels": "stereo-agent-left"}))
    audio = decode(path, read_meta(path, InputConfig()), InputConfig())
    assert audio.layout == "mono" and set(audio.tracks) == {"mono"}
    assert any("只有一个声道" in w for w in audio.warnings)


def test_full_sidecar_is_read(tmp_path: Path) -> None:
    path = tmp_path / "1001_20261120-091502.wav"
    path.write_bytes(b"")
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "call_id": "HX1",
                "agent_id": 1001,
                "agent_name": "张敏",
                "started_at": "2026-11-20T09:15:02+08:00",
                "direction": "inbound",
                "channels": "mono",
                "ring_seconds": 6.5,
                "hangup_by": "customer",
                "customer_phone": "13812345678",
                "pbx_trunk": "T7",  # unknown keys from the phone system are ignored
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    meta = read_meta(path, InputConfig())
    assert meta.source == "sidecar" and meta.call_id == "HX1"
    assert meta.agent_id == "1001"  # a numeric id from the PBX is still an id
    assert meta.started_at == datetime(2026, 11, 20, 9, 15, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert (meta.ring_seconds, meta.hangup_by, meta.direction) == (6.5, "customer", "inbound")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "不是有效的 JSON"),
        ("[1, 2]", "必须是一个 JSON 对象"),
        ('{"ring_seconds": "three"}', "ring_seconds"),
        ('{"channels": "quad"}', "channels"),
        ('{"started_at": "2026-11-20 09:15"}', "started_at"),  # no zone: ambiguous across sites
        ('{"hangup_by": "nobody"}', "hangup_by"),
    ],
)
def test_broken_sidecar_is_refused_naming_file_and_field(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "c.wav"
    path.with_suffix(".json").write_text(content)
    with pytest.raises(CallQAError) as err:
        read_meta(path, InputConfig())
    assert "c.json" in str(err.value) and expected in str(err.value)


def test_metadata_from_default_file_name_pattern() -> None:
    meta = read_meta(Path("/nowhere/1004_20261121-110045.flac"), InputConfig())
    assert meta.source == "filename" and meta.agent_id == "1004" and meta.call_id == "1004_20261121-110045"
    assert meta.started_at == datetime(2026, 11, 21, 11, 0, 45, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_custom_file_name_pattern_with_call_id() -> None:
    config = InputConfig(filename_pattern="{YYYYmmdd}_{HHMMSS}_{agent_id}_{call_id}.wav", timezone="UTC")
    meta = read_meta(Path("20261121_080000_A17_CALL99.mp3"), config)
    assert (meta.agent_id, meta.call_id) == ("A17", "CALL99")
    assert meta.started_at == datetime(2026, 11, 21, 8, 0, 0, tzinfo=ZoneInfo("UTC"))


def test_file_name_not_matching_pattern_keeps_the_stem_as_call_id() -> None:
    meta = read_meta(Path("recording.wav"), InputConfig())
    assert meta.call_id == "recording" and meta.agent_id is None and meta.source == "none"


def test_bad_pattern_field_is_refused() -> None:
    with pytest.raises(CallQAError, match="unknown field"):
        compile_filename_pattern("{agent}_{YYYYmmdd}.wav", (".wav",))


def test_discover_lists_audio_only(tmp_path: Path) -> None:
    for name in ("b.wav", "a.FLAC", "a.json", "a.truth.json", "notes.txt", ".hidden.wav"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in discover(tmp_path, InputConfig())] == ["a.FLAC", "b.wav"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "文件是空的"),
        (b"RIFF\x24\x00\x00\x00WAVE", "WAV 文件头不完整"),
        (b"this is not audio at all" * 100, "这是一个文本文件，不是录音"),
    ],
)
def test_undecodable_file_is_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(CallQAError, match=rf"broken\.wav：{reason}"):
        decode(path, read_meta(path, InputConfig()), InputConfig())


def test_fingerprint_is_the_content_hash(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"same")
    (tmp_path / "b.wav").write_bytes(b"same")
    a, b = fingerprint(tmp_path / "a.wav"), fingerprint(tmp_path / "b.wav")
    assert a.sha256 == b.sha256 and a.size_bytes == 4
    assert a.sha256 == "0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5"


def test_the_default_limit_takes_a_four_hour_recording_and_refuses_a_longer_one() -> None:
    """Analysis works window by window (3 hours of stereo under 2 GB): the default limit is 4 hours."""
    intake = IntakeConfig()
    hours = 3600 * 8000
    check_duration(Path("open_line.wav"), AudioInfo(4 * 3600.0, 8000, 2, 4 * hours, "WAV", "PCM_16"), intake)
    with pytest.raises(RecordingError) as refused:
        check_duration(
            Path("open_line.wav"), AudioInfo(5 * 3600.0, 8000, 2, 5 * hours, "WAV", "PCM_16"), intake
        )
    assert (refused.value.problem, refused.value.status) == ("too_long", "skipped")
    assert "录音长 5 小时 0 分，超过上限 4 小时 0 分（intake.max_duration_s）" in str(refused.value)
