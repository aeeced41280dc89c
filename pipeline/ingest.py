"""Recording files in, `Recording` + `CallMeta` + `CallAudio` out.

Decoding goes through libsndfile (soundfile): WAV (PCM, A-law, μ-law, GSM), FLAC, MP3, OGG.
Audio is read block by block and resampled once to 16 kHz, the rate every model downstream works
at, so decoding holds little more than the 16 kHz result in memory.

Every way a file can be unusable ends here in a `RecordingError` that names the file and says
what is wrong in words a supervisor understands (docs/operations.md has the catalogue).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
import struct
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import soundfile as sf
import soxr
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pipeline.config import ChannelLayout, InputConfig, IntakeConfig
from pipeline.errors import CallQAError, field_problem
from pipeline.problems import RecordingError
from pipeline.records import CallAudio, CallMeta, Recording

ANALYSIS_RATE = 16_000
_BLOCK_FRAMES = 1 << 16  # frames decoded at a time
# A sample this close to full scale (μ-law and A-law peak at 0.98) counts as clipped.
_CLIP_LEVEL = 0.97


def discover(directory: Path, config: InputConfig, intake: IntakeConfig | None = None) -> list[Path]:
    """Audio files directly in `directory` (sorted), by extension; sidecars and others are ignored.

    Files with an audio extension the decoder cannot read (`intake.unsupported_extensions`, e.g.
    .amr) and links to files that are gone are included, so that each is reported with its reason
    instead of being silently left out."""
    if not directory.is_dir():
        raise CallQAError(f"{directory}：不是文件夹")
    intake = intake or IntakeConfig()
    extensions = {ext.lower() for ext in config.extensions} | {
        ext.lower() for ext in intake.unsupported_extensions
    }
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix.lower() in extensions
        and not path.name.startswith(".")
        and (path.is_file() or (path.is_symlink() and not path.exists()))
    )


def fingerprint(path: Path, settle_s: float = 0.0, since: float | None = None) -> Recording:
    """The file's content hash, refusing files that cannot be read or are still being written.

    "Still being written": modified less than `settle_s` seconds before `since` (the batch's start,
    default now) or after it, or its size or modification time changed while it was being read
    (the phone system is still recording into it)."""
    before = _stat(path)
    reference = time.time() if since is None else since
    age = reference - before.st_mtime
    if age < settle_s:
        when = "批处理开始后" if age < 0 else f"批处理开始前 {age:.0f} 秒"
        raise RecordingError(
            f"{path}：文件在{when}还有改动，可能仍在录音或写入（intake.settle_s = {settle_s:g} 秒）："
            "本次不分析，下次批处理会自动处理",
            "writing",
            status="skipped",
        )
    if before.st_size == 0:
        raise RecordingError(f"{path}：文件是空的（0 字节），录音没有保存成功", "empty")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise _os_problem(path, exc) from exc
    after = _stat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise RecordingError(
            f"{path}：读取时文件还在变化（{before.st_size} → {after.st_size} 字节），仍在写入：本次不分析，"
            "下次批处理会自动处理",
            "writing",
            status="skipped",
        )
    return Recording(path=path, sha256=digest.hexdigest(), size_bytes=after.st_size)


def _stat(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except OSError as exc:
        raise _os_problem(path, exc) from exc
    if not stat.S_ISREG(info.st_mode):
        raise RecordingError(f"{path}：不是普通文件，无法作为录音读取", "unreadable")
    return info


def _os_problem(path: Path, exc: OSError) -> RecordingError:
    if exc.errno == errno.ENOENT:
        what = (
            "指向的文件不存在（链接失效或文件已被移走）"
            if path.is_symlink()
            else "文件不存在（可能已被移走）"
        )
        return RecordingError(f"{path}：{what}", "unreadable")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return RecordingError(f"{path}：没有读取权限，请检查录音文件夹的权限设置", "unreadable")
    if exc.errno == errno.EISDIR:
        return RecordingError(f"{path}：是一个文件夹，不是录音文件", "unreadable")
    # EIO, ESTALE, ETIMEDOUT …: the disk or the network share hiccuped; a retry may pass.
    return RecordingError(f"{path}：读取文件时出现输入输出错误（{exc.strerror or exc}），稍后会重试", "io")


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
    except OSError as exc:
        raise RecordingError(f"{side}：无法读取随录音信息文件（{exc.strerror or exc}）", "sidecar") from exc
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{side}：随录音信息文件不是 UTF-8 文本", "sidecar") from exc
    except json.JSONDecodeError as exc:
        raise RecordingError(
            f"{side}：随录音信息不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{_json_reason(exc.msg)}）",
            "sidecar",
        ) from exc
    if not isinstance(raw, dict):
        raise RecordingError(f"{side}：随录音信息必须是一个 JSON 对象（{{...}}）", "sidecar")
    try:
        return Sidecar.model_validate(raw)
    except ValidationError as exc:
        problems = "；".join(
            f"字段 {'.'.join(str(p) for p in err['loc'])} {field_problem(err)}（值为 {err.get('input')!r}）"
            for err in exc.errors()
        )
        raise RecordingError(f"{side}：{problems}", "sidecar") from exc


def _json_reason(message: str) -> str:
    return {
        "Expecting value": "缺少值",
        "Expecting ',' delimiter": "缺少逗号",
        "Expecting property name enclosed in double quotes": "字段名要用双引号",
        "Unterminated string starting at": "引号没有结束",
        "Extra data": "对象结束后还有多余内容",
        "Expecting ':' delimiter": "缺少冒号",
    }.get(message, message)


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


@dataclass(frozen=True)
class AudioInfo:
    """What the file's header says, read without decoding the audio."""

    duration_s: float
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    warnings: tuple[str, ...] = ()


def probe(path: Path, intake: IntakeConfig | None = None) -> AudioInfo:
    """The header: format, rate, channels, length. Unreadable audio is explained, not just refused."""
    intake = intake or IntakeConfig()
    if path.suffix.lower() in {ext.lower() for ext in intake.unsupported_extensions}:
        kind = path.suffix.lstrip(".").upper()
        raise RecordingError(
            f"{path}：{kind} 格式的录音无法解码；请让录音系统导出 WAV（PCM、A-law、μ-law、GSM）、MP3、FLAC 或 OGG",
            "unsupported",
        )
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise diagnose(path, exc) from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise RecordingError(f"{path}：文件中没有音频数据（文件可能被截断）", "truncated")
    warnings = []
    declared = _declared_wav_frames(path)
    if declared is not None and declared > info.frames + info.samplerate // 10:
        warnings.append(
            f"文件被截断：文件头标明 {declared / info.samplerate:.0f} 秒，实际只有 {info.frames / info.samplerate:.0f} 秒，"
            "只分析现有部分"
        )
    return AudioInfo(
        duration_s=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        format=info.format,
        subtype=info.subtype,
        warnings=tuple(warnings),
    )


def check_duration(path: Path, info: AudioInfo, intake: IntakeConfig) -> None:
    """Too short to judge, or too long to analyse within memory and time: skipped, with the reason."""
    if info.duration_s < intake.min_duration_s:
        raise RecordingError(
            f"{path}：录音只有 {info.duration_s:.1f} 秒，短于 {intake.min_duration_s:g} 秒（intake.min_duration_s），"
            "没有可以质检的内容",
            "too_short",
            status="skipped",
        )
    if info.duration_s > intake.max_duration_s:
        raise RecordingError(
            f"{path}：录音长 {_hours(info.duration_s)}，超过上限 {_hours(intake.max_duration_s)}"
            "（intake.max_duration_s）：未分析，以免占用过多内存和时间；可能是线路未挂断。确需分析请调高上限后运行 "
            "callqa run 目录 --recheck",
            "too_long",
            status="skipped",
        )


def _hours(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} 小时 {rest // 60} 分" if hours else f"{rest // 60} 分 {rest % 60} 秒"


# WAV format codes (the fmt chunk's first field) that libsndfile decodes, and names for some it
# does not, which phone systems use.
_WAV_DECODED = {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0040, 0x0055, 0xFFFE}
_WAV_CODECS = {
    0x0014: "G.723 ADPCM",
    0x0022: "DSP Group TrueSpeech",
    0x0042: "G.723.1",
    0x0045: "G.726",
    0x0057: "AMR-NB",
    0x0058: "AMR-WB",
    0x0064: "G.726 ADPCM",
    0x0065: "G.722 ADPCM",
    0x0133: "G.729",
    0x0161: "WMA",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
    0xA100: "G.723.1",
    0xA106: "AAC",
}


def _wav_chunks(head: bytes) -> dict[bytes, tuple[int, int]] | None:
    """RIFF chunk id → (offset of its data, declared size), for the chunks in `head`; None if not WAV."""
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    chunks: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(head):
        chunk_id, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        chunks.setdefault(chunk_id, (pos + 8, size))
        if chunk_id == b"data":
            break
        pos += 8 + size + (size & 1)
    return chunks


def _declared_wav_frames(path: Path) -> int | None:
    """Frames a PCM-like WAV header promises; None when unknown (not WAV, streaming header …)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None
    chunks = _wav_chunks(head)
    if not chunks or b"fmt " not in chunks or b"data" not in chunks:
        return None
    fmt_at, fmt_size = chunks[b"fmt "]
    if fmt_size < 16 or fmt_at + 16 > len(head):
        return None
    block_align = struct.unpack("<H", head[fmt_at + 12 : fmt_at + 14])[0]
    size = chunks[b"data"][1]
    if block_align == 0 or size in (0, 0xFFFFFFFF):  # still being written, or RF64
        return None
    return size // block_align


def diagnose(path: Path, exc: Exception | None = None) -> RecordingError:
    """Why libsndfile could not open `path`, from the file's first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError as err:
        return _os_problem(path, err)
    if not head:
        return RecordingError(f"{path}：文件是空的（0 字节），录音没有保存成功", "empty")
    chunks = _wav_chunks(head)
    if chunks is not None:
        if b"fmt " not in chunks:
            return RecordingError(
                f"{path}：WAV 文件头不完整（缺少格式信息），文件可能被截断，无法解码音频", "truncated"
            )
        fmt_at, fmt_size = chunks[b"fmt "]
        if not 16 <= fmt_size <= 1024:
            return RecordingError(f"{path}：WAV 文件头已损坏（格式信息的长度不对），无法解码音频", "corrupt")
        if fmt_at + fmt_size > len(head):
            return RecordingError(
                f"{path}：WAV 文件头不完整（文件在格式信息中间就结束了），文件被截断，无法解码音频",
                "truncated",
            )
        if fmt_at + 2 <= len(head):
            tag = struct.unpack("<H", head[fmt_at : fmt_at + 2])[0]
            if tag not in _WAV_DECODED:
                codec = _WAV_CODECS.get(tag, "未知编码")
                return RecordingError(
                    f"{path}：WAV 文件里的音频编码是 {codec}（格式代码 0x{tag:04X}），无法解码音频；"
                    "请让录音系统导出 PCM、A-law、μ-law 或 GSM 编码的 WAV，或 MP3、FLAC、OGG",
                    "unsupported",
                )
        if b"data" not in chunks:
            return RecordingError(
                f"{path}：WAV 文件被截断：文件头之后没有音频数据，无法解码音频", "truncated"
            )
        return RecordingError(f"{path}：WAV 文件已损坏，无法解码音频（{_libsndfile_reason(exc)}）", "corrupt")
    if head.startswith(b"#!AMR"):
        return RecordingError(
            f"{path}：这是 AMR 格式的录音，无法解码；请让录音系统导出 WAV、MP3、FLAC 或 OGG", "unsupported"
        )
    if head[4:8] == b"ftyp":
        return RecordingError(
            f"{path}：这是 MP4/M4A（AAC）格式的录音，无法解码；请让录音系统导出 WAV、MP3、FLAC 或 OGG",
            "unsupported",
        )
    if head.startswith((b"fLaC", b"OggS", b"ID3")) or _mpeg_frame_header(head):
        return RecordingError(f"{path}：音频文件已损坏，无法解码音频（{_libsndfile_reason(exc)}）", "corrupt")
    if _looks_like_text(head):
        return RecordingError(f"{path}：这是一个文本文件，不是录音", "not_audio")
    return RecordingError(
        f"{path}：不是可以识别的音频文件（文件开头不是 WAV、FLAC、MP3 或 OGG 的标记；支持这四种格式）",
        "not_audio",
    )


def _mpeg_frame_header(head: bytes) -> bool:
    """An MPEG audio frame header at the start: sync bits, and version, layer, bit rate and sample
    rate fields that are not reserved values."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _looks_like_text(head: bytes) -> bool:
    sample = head[:4096]
    for encoding in ("utf-8", "gb18030"):
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        printable = sum(1 for c in text if c.isprintable() or c in "\r\n\t")
        return printable >= 0.95 * len(text)
    return False


def decode(path: Path, meta: CallMeta, config: InputConfig, intake: IntakeConfig | None = None) -> CallAudio:
    """Decode and resample; split stereo into agent/customer by the sidecar's or configured layout.

    Read in blocks, each channel resampled as a stream into one preallocated 16 kHz array. A
    recording whose every channel is silent is refused (skipped); a stereo recording with one silent
    channel is analysed as mono from the other channel (both parties are there, or only one is, and
    the roles come from what is said), so that an agent is never scored on a dead channel."""
    intake = intake or IntakeConfig()
    info = probe(path, intake)
    rate = info.sample_rate
    warnings = list(info.warnings)
    used = min(info.channels, 2)
    if info.channels > 2:
        warnings.append(f"录音有 {info.channels} 个声道，只分析前两个")
    capacity = math.ceil(info.frames * ANALYSIS_RATE / rate) + ANALYSIS_RATE
    tracks = [np.empty(capacity, dtype=np.float32) for _ in range(used)]
    filled = [0] * used
    streams = [
        soxr.ResampleStream(rate, ANALYSIS_RATE, 1, dtype="float32", quality="HQ")
        if rate != ANALYSIS_RATE
        else None
        for _ in range(used)
    ]
    power = [0.0] * used
    clipped = 0
    frames = 0
    try:
        for block in sf.blocks(str(path), blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
            frames += block.shape[0]
            for ch in range(used):
                signal = np.ascontiguousarray(block[:, ch])
                power[ch] += float(np.dot(signal, signal))
                clipped += int(np.count_nonzero(np.abs(signal) >= _CLIP_LEVEL))
                out = streams[ch].resample_chunk(signal) if streams[ch] is not None else signal
                tracks[ch], filled[ch] = _append(tracks[ch], filled[ch], out)
        for ch in range(used):
            if streams[ch] is not None:
                out = streams[ch].resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                tracks[ch], filled[ch] = _append(tracks[ch], filled[ch], out)
    except (sf.LibsndfileError, RuntimeError) as exc:
        at = f"，解码到第 {frames / rate:.0f} 秒时出错" if frames else ""
        raise RecordingError(f"{path}：音频数据已损坏{at}（{_libsndfile_reason(exc)}）", "corrupt") from exc
    if frames == 0:
        raise RecordingError(f"{path}：文件中没有音频数据（文件可能被截断）", "truncated")
    signals = [tracks[ch][: filled[ch]] for ch in range(used)]
    levels = [10 * math.log10(power[ch] / frames + 1e-20) for ch in range(used)]
    silent = [level < intake.silent_dbfs for level in levels]
    if all(silent):
        raise RecordingError(
            f"{path}：录音全程无声（{_level(max(levels))}，低于 {intake.silent_dbfs:g} dBFS），可能是录音故障或空线路，"
            "不质检",
            "silent",
            status="skipped",
        )
    share = clipped / (frames * used)
    if share >= intake.clipping_warn_share:
        warnings.append(f"录音音量过大，{share:.1%} 的采样削波失真，识别结果可能不准确")

    if used == 2 and not any(silent):
        if meta.channels == "mono":
            warnings.append("随录音信息写的是单声道，但文件是双声道：按双声道分析")
        layout = meta.channels if meta.channels in ("stereo-agent-left", "stereo-agent-right") else None
        layout_source = "sidecar" if layout else "config"
        layout = layout or config.default_stereo_layout
        agent_index = 0 if layout == "stereo-agent-left" else 1
        by_role = {"agent": signals[agent_index], "customer": signals[1 - agent_index]}
    elif used == 2:
        dead = silent.index(True)
        side = "左" if dead == 0 else "右"
        warnings.append(
            f"{side}声道全程无声（{_level(levels[dead])}，可能是录音故障）：按单声道分析另一个声道，客服和客户由说话内容判断"
        )
        layout, layout_source = "mono", "file"
        by_role = {"mono": signals[1 - dead]}
    else:
        if meta.channels and meta.channels != "mono":
            warnings.append(f"随录音信息写的是 {meta.channels}，但文件只有一个声道：按单声道分析")
        layout, layout_source = "mono", "file"
        by_role = {"mono": signals[0]}

    return CallAudio(
        call_id=meta.call_id,
        sample_rate=ANALYSIS_RATE,
        tracks=by_role,
        layout=layout,
        layout_source=layout_source,
        source_sample_rate=int(rate),
        source_channels=int(info.channels),
        source_format=f"{info.format}/{info.subtype}",
        duration_s=float(frames / rate),
        warnings=tuple(warnings),
    )


def _level(dbfs: float) -> str:
    return "数字静音" if dbfs < -100 else f"音量 {dbfs:.0f} dBFS"


def _append(track: np.ndarray, filled: int, chunk: np.ndarray) -> tuple[np.ndarray, int]:
    """Copy `chunk` after the first `filled` samples, growing the array only if the header lied."""
    end = filled + len(chunk)
    if end > len(track):
        grown = np.empty(max(end, int(len(track) * 1.25)), dtype=np.float32)
        grown[:filled] = track[:filled]
        track = grown
    track[filled:end] = chunk
    return track, end


def _libsndfile_reason(exc: Exception | None) -> str:
    if exc is None:
        return "未知原因"
    text = str(exc)
    if "Format not recognised" in text or "unknown format" in text.lower():
        return "不是可以读取的音频格式（支持 WAV、FLAC、MP3、OGG）"
    return text.split(":", 1)[-1].strip() or type(exc).__name__
