"""Recording files in, `Recording` + `CallMeta` + `CallAudio` out.

Decoding goes through libsndfile (soundfile): WAV (PCM, A-law, μ-law, GSM), FLAC, MP3, OGG.
Audio is resampled once to 16 kHz, the rate every model downstream works at.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import soundfile as sf
import soxr
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pipeline.config import ChannelLayout, InputConfig
from pipeline.errors import CallQAError
from pipeline.records import CallAudio, CallMeta, Recording

ANALYSIS_RATE = 16_000


def discover(directory: Path, config: InputConfig) -> list[Path]:
    """Audio files directly in `directory` (sorted), by extension; sidecars and others are ignored."""
    if not directory.is_dir():
        raise CallQAError(f"{directory}: not a folder")
    extensions = {ext.lower() for ext in config.extensions}
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.suffix.lower() in extensions and not path.name.startswith(".")
    )


def fingerprint(path: Path) -> Recording:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        size = path.stat().st_size
    except OSError as exc:
        raise CallQAError(f"{path}：无法读取文件（{exc.strerror or exc}）") from exc
    return Recording(path=path, sha256=digest.hexdigest(), size_bytes=size)


class Sidecar(BaseModel):
    """The phone system's JSON beside a recording. Unknown keys are kept out of the way, not refused."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, str_strip_whitespace=True)

    call_id: str | None = Field(None, min_length=1, max_length=200)
    agent_id: str | None = Field(None, min_length=1)
    agent_name: str | None = None
    started_at: AwareDatetime | None = None
    direction: Literal["inbound", "outbound"] | None = None
    channels: ChannelLayout | None = None
    ring_seconds: float | None = Field(None, ge=0, le=600)
    hangup_by: Literal["agent", "customer"] | None = None
    customer_phone: str | None = None
    call_type: Literal["A", "B", "C", "D", "E", "F"] | None = None


def sidecar_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".json")


def read_sidecar(path: Path) -> Sidecar | None:
    """The sidecar beside `path`, or None when there is none. A broken one is an error."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        raw = json.loads(side.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CallQAError(f"{side}：随录音信息文件不是 UTF-8 文本") from exc
    except json.JSONDecodeError as exc:
        raise CallQAError(f"{side}：随录音信息不是有效的 JSON（第 {exc.lineno} 行：{exc.msg}）") from exc
    if not isinstance(raw, dict):
        raise CallQAError(f"{side}：随录音信息必须是一个 JSON 对象")
    try:
        return Sidecar.model_validate(raw)
    except ValidationError as exc:
        problems = "；".join(
            f"字段 {'.'.join(str(p) for p in err['loc'])} 有误：{err['msg']}（值为 {err.get('input')!r}）"
            for err in exc.errors()
        )
        raise CallQAError(f"{side}：{problems}") from exc


_DATE_TOKEN = re.compile(r"^[YmdHMS\-_.:T]+$")
_STRFTIME = {"YYYY": "%Y", "mm": "%m", "dd": "%d", "HH": "%H", "MM": "%M", "SS": "%S"}


def compile_filename_pattern(pattern: str, extensions: tuple[str, ...]) -> tuple[re.Pattern[str], str | None]:
    """Turn e.g. `{agent_id}_{YYYYmmdd-HHMMSS}*.wav` into a regex and the strptime format of its date.

    Fields: {agent_id}, {call_id}, and one date field made of YYYY mm dd HH MM SS. `*` matches
    anything. A trailing audio extension matches every configured audio extension.
    """
    stem_pattern = pattern
    for ext in extensions:
        if stem_pattern.lower().endswith(ext.lower()):
            stem_pattern = stem_pattern[: -len(ext)]
            break
    regex = "^"
    date_formats: list[str] = []
    for part in re.split(r"(\{[^}]*\}|\*)", stem_pattern):
        if not part:
            continue
        if part == "*":
            regex += ".*?"
        elif part in ("{agent_id}", "{call_id}"):
            regex += f"(?P<{part[1:-1]}>[^_/]+?)"
        elif part.startswith("{") and _DATE_TOKEN.match(part[1:-1]):
            body = part[1:-1]
            date_format = body
            for token, code in _STRFTIME.items():
                date_format = date_format.replace(token, code)
            if "%" not in date_format:
                raise CallQAError(f"input.filename_pattern: date field {part} has no date parts")
            digits = sum(4 if code == "%Y" else 2 for code in re.findall(r"%[YmdHMS]", date_format))
            separators = len(re.sub(r"%[YmdHMS]", "", date_format))
            regex += f"(?P<date{len(date_formats)}>[0-9\\-_.:T]{{{digits + separators}}})"
            date_formats.append(date_format)
        elif part.startswith("{"):
            raise CallQAError(
                f"input.filename_pattern: unknown field {part} (use {{agent_id}}, {{call_id}} "
                "or a date such as {YYYYmmdd-HHMMSS})"
            )
        else:
            regex += re.escape(part)
    regex += r"(?:\.[A-Za-z0-9]+)?$"
    # Several date fields ({YYYYmmdd}_{HHMMSS}) are parsed together, joined by "|".
    return re.compile(regex), "|".join(date_formats) or None


def meta_from_filename(path: Path, config: InputConfig) -> CallMeta:
    regex, date_format = compile_filename_pattern(config.filename_pattern, config.extensions)
    match = regex.match(path.name)
    if not match:
        return CallMeta(call_id=path.stem, source="none")
    fields = match.groupdict()
    started_at = None
    if date_format:
        stamp = "|".join(value for key, value in sorted(fields.items()) if key.startswith("date"))
        try:
            started_at = datetime.strptime(stamp, date_format).replace(tzinfo=ZoneInfo(config.timezone))
        except ValueError:
            started_at = None
    return CallMeta(
        call_id=fields.get("call_id") or path.stem,
        agent_id=fields.get("agent_id"),
        started_at=started_at,
        source="filename",
    )


def read_meta(path: Path, config: InputConfig) -> CallMeta:
    """Sidecar fields where present, completed from the file name (agent_id, started_at)."""
    from_name = meta_from_filename(path, config)
    side = read_sidecar(path)
    if side is None:
        return from_name
    return CallMeta(
        call_id=side.call_id or from_name.call_id,
        agent_id=side.agent_id or from_name.agent_id,
        agent_name=side.agent_name,
        started_at=side.started_at or from_name.started_at,
        direction=side.direction,
        channels=side.channels,
        ring_seconds=side.ring_seconds,
        hangup_by=side.hangup_by,
        customer_phone=side.customer_phone,
        call_type=side.call_type,
        source="sidecar",
    )


def decode(path: Path, meta: CallMeta, config: InputConfig) -> CallAudio:
    """Decode and resample; split stereo into agent/customer by the sidecar's or configured layout."""
    try:
        info = sf.info(str(path))
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise CallQAError(f"{path}：无法解码音频（{_libsndfile_reason(exc)}）") from exc
    if samples.shape[0] == 0:
        raise CallQAError(f"{path}：文件中没有音频数据")
    source_format = f"{info.format}/{info.subtype}"
    warnings: list[str] = []
    channels = samples.shape[1]
    if channels > 2:
        warnings.append(f"录音有 {channels} 个声道，只分析前两个")
        samples = samples[:, :2]
        channels = 2

    if channels == 2:
        if meta.channels == "mono":
            warnings.append("随录音信息写的是单声道，但文件是双声道：按双声道分析")
        layout = meta.channels if meta.channels in ("stereo-agent-left", "stereo-agent-right") else None
        layout_source = "sidecar" if layout else "config"
        layout = layout or config.default_stereo_layout
        agent_index = 0 if layout == "stereo-agent-left" else 1
        tracks = {
            "agent": _resample(samples[:, agent_index], rate),
            "customer": _resample(samples[:, 1 - agent_index], rate),
        }
    else:
        if meta.channels and meta.channels != "mono":
            warnings.append(f"随录音信息写的是 {meta.channels}，但文件只有一个声道：按单声道分析")
        layout, layout_source = "mono", "file"
        tracks = {"mono": _resample(samples[:, 0], rate)}

    duration = samples.shape[0] / rate
    return CallAudio(
        call_id=meta.call_id,
        sample_rate=ANALYSIS_RATE,
        tracks=tracks,
        layout=layout,
        layout_source=layout_source,
        source_sample_rate=int(rate),
        source_channels=int(info.channels),
        source_format=source_format,
        duration_s=float(duration),
        warnings=tuple(warnings),
    )


def _resample(signal: np.ndarray, rate: int) -> np.ndarray:
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    if rate == ANALYSIS_RATE:
        return signal
    return soxr.resample(signal, rate, ANALYSIS_RATE, quality="HQ").astype(np.float32)


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc)
    if "Format not recognised" in text or "unknown format" in text.lower():
        return "不是可以读取的音频格式（支持 WAV、FLAC、MP3、OGG）"
    return text.split(":", 1)[-1].strip() or type(exc).__name__
