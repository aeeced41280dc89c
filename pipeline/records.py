"""The records that flow between stages. One definition each, imported everywhere.

Time is seconds from the start of the recording (float) everywhere. Roles are the strings
"agent" and "customer" (客服 / 客户 only in text shown to people).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

Role = Literal["agent", "customer"]
ROLES: tuple[Role, Role] = ("agent", "customer")
ROLE_LABELS_ZH: dict[str, str] = {"agent": "客服", "customer": "客户"}
# Where a number or a layout came from, as users read it (stored as the codes on the left).
SOURCE_LABELS_ZH: dict[str, str] = {
    "metadata": "话务系统记录",
    "audio": "录音分析",
    "recording-start": "录音开头（没有听到振铃音）",
    "sidecar": "随录音信息",
    "config": "配置",
    "file": "文件名",
}
# The handbook's call types (service-standards §6), as a supervisor names them.
CALL_TYPE_LABELS_ZH: dict[str, str] = {
    "A": "投诉",
    "B": "意向商户",
    "C": "媒体",
    "D": "重复投诉",
    "E": "咨询",
    "F": "骚扰",
}


def call_type_zh(code: str | None) -> str:
    """`F 类（骚扰）`; an unknown code stays as written, no code reads 未知."""
    if not code:
        return "未知"
    name = CALL_TYPE_LABELS_ZH.get(code)
    return f"{code} 类（{name}）" if name else f"{code} 类"


LAYOUT_LABELS_ZH: dict[str, str] = {
    "stereo-agent-left": "立体声（客服左声道）",
    "stereo-agent-right": "立体声（客服右声道）",
    "mono": "单声道",
}


@dataclass(frozen=True)
class CallMeta:
    """What the phone system says about a call (sidecar JSON) or what its file name implies."""

    call_id: str
    agent_id: str | None = None
    agent_name: str | None = None
    started_at: datetime | None = None
    direction: str | None = None
    channels: str | None = None  # stereo-agent-left | stereo-agent-right | mono, when stated
    ring_seconds: float | None = None
    hangup_by: str | None = None
    customer_phone: str | None = None
    call_type: str | None = None
    source: Literal["sidecar", "filename", "none"] = "none"


@dataclass(frozen=True, eq=False)
class CallAudio:
    """Decoded audio at the analysis rate, split by party when the recording is stereo.

    `tracks` maps "agent"/"customer" to a channel for stereo recordings, or "mono" to the
    single (down-mixed) track.
    """

    call_id: str
    sample_rate: int
    tracks: dict[str, np.ndarray]
    layout: str  # stereo-agent-left | stereo-agent-right | mono
    layout_source: str  # sidecar | config | file
    source_sample_rate: int
    source_channels: int
    source_format: str  # e.g. "WAV/ALAW"
    duration_s: float
    warnings: tuple[str, ...] = ()

    @property
    def is_stereo(self) -> bool:
        return self.layout != "mono"


@dataclass(frozen=True)
class Recording:
    """A file in the batch, identified by its content hash."""

    path: Path
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class SpeechTurn:
    """A stretch of one party's speech. `speaker` is a role, or a cluster label before roles."""

    speaker: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Diarization:
    """Who spoke when.

    `turns` are what ASR transcribes one by one (a party's speech up to a long pause or the other
    party speaking); `voice_activity` are the finer voiced stretches inside them, per party, that
    speaking-rate and overlap measurements need. Turns of different parties may overlap.
    """

    turns: tuple[SpeechTurn, ...]
    voice_activity: tuple[SpeechTurn, ...]
    method: str
    roles_known: bool  # stereo: channels are roles; mono: cluster labels until roles are assigned


@dataclass(frozen=True)
class CharTiming:
    char: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Utterance:
    speaker: str  # "agent" | "customer" (a cluster label only inside the mono stage)
    start: float
    end: float
    text: str
    chars: tuple[CharTiming, ...] = ()
    confidence: float = 0.0  # mean word probability from the recogniser
    role_source: str = ""
    role_confidence: float = 1.0
    # Recogniser evidence (pipeline/asr/guards.py); None where unknown (typed transcripts, old rows).
    avg_logprob: float | None = None  # lowest mean token log-probability of whisper's windows
    no_speech_prob: float | None = None  # highest no-speech probability of those windows
    compression_ratio: float | None = None  # highest gzip ratio of those windows' text
    looping: bool = False  # a unit repeated back to back (仅仅仅仅仅): a decoding loop
    unheard_s: float | None = None  # seconds of the turn no recognised word covers (speech left out)


@dataclass(frozen=True)
class RoleAssignment:
    """How cluster labels became agent/customer (mono), or how channels did (stereo)."""

    mapping: dict[str, str]
    source: str
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """The spine's output for one call: role-labelled utterances and the voice activity under them."""

    utterances: tuple[Utterance, ...]
    voice_activity: tuple[SpeechTurn, ...]
    diarization_method: str
    asr_model: str
    roles: RoleAssignment
    warnings: tuple[str, ...] = field(default=())


# ---- metrics (pipeline/metrics) ----------------------------------------------------------------


@dataclass(frozen=True)
class AudioEvent:
    """Something heard in the audio that is not speech: a ringback-tone burst or hold music."""

    kind: Literal["ring", "music"]
    start: float
    end: float
    channel: str  # agent | customer | mono
    detail: str = ""  # e.g. "450 Hz"


@dataclass(frozen=True)
class Interruption:
    """One party starts talking while the other is talking (back-channels excluded)."""

    start: float  # where the interrupter starts
    end: float  # where the overlap ends
    by: Role
    text: str  # what the interrupter says during the overlap
    interrupted_text: str  # what the other party was saying
    overlap_s: float


@dataclass(frozen=True)
class Hold:
    """A stretch of at least the hold threshold in which the agent does not address the customer."""

    start: float
    end: float
    asked: bool
    ask_text: str | None
    checkins: int
    checkin_times: tuple[float, ...]
    max_checkin_gap_s: float | None
    thanked: bool
    thank_text: str | None
    music: bool
    ends_call: bool = False
    lookup: bool = False  # the agent said it was looking something up (handbook: 60 s limit)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Stretch:
    """A plain time span (dead air, a silence)."""

    start: float
    end: float


@dataclass(frozen=True)
class UtteranceRate:
    utterance_index: int
    speaker: str
    chars: int
    speaking_s: float
    chars_per_min: float


@dataclass(frozen=True)
class CallMetrics:
    """Every timing fact the handbook checks, with where each number came from."""

    duration_s: float
    agent_chars_per_min: float | None
    customer_chars_per_min: float | None
    agent_speaking_s: float  # voiced time used for the rate (pauses > 0.3 s excluded)
    agent_rate_outside_share: float | None  # share of agent speaking time in utterances outside 100-200
    utterance_rates: tuple[UtteranceRate, ...]
    interruptions: tuple[Interruption, ...]  # by the agent and by the customer
    holds: tuple[Hold, ...]
    dead_air: tuple[Stretch, ...]
    rings: int | None
    rings_source: str | None  # metadata | audio | None
    answered_at: float | None  # connection time: end of the last ring, or 0 when no ringing
    answer_delay_s: float | None
    answer_delay_source: str | None
    agent_talk_s: float
    customer_talk_s: float
    overlap_s: float
    silence_ratio: float
    longest_silence_s: float
    hangup_by: str | None
    hangup_source: str | None  # metadata | audio | None
    call_type: str | None
    nuisance_over_max: bool | None  # a nuisance call (type F) longer than the limit


# ---- scorecard (pipeline/rules) ----------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one call (or one extra occurrence of a per-occurrence rule)."""

    rule_id: str
    passed: bool
    deduction: float
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    evidence: str | None = None
    confidence: float | None = None
    needs_review: bool = False
    title: str = ""
    category: str = ""
    fatal: bool = False
    replacement: str | None = None  # the handbook's polite wording, for forbidden phrases


@dataclass(frozen=True)
class CallScore:
    score: float  # 100 minus deductions, floor 0; 0 when a fatal finding fired
    fatal: bool
    findings: tuple[Finding, ...]
    scorecard_name: str
    scorecard_hash: str
