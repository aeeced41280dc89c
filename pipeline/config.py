"""One typed configuration object, loaded once (TOML file + environment) and passed down.

Every threshold that decides something about a call lives here or in the scorecard, with the
handbook's value as the default, never as a literal in the code that uses it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from pipeline.errors import QUOTES_VALUE, CallQAError, field_problem

ChannelLayout = Literal["stereo-agent-left", "stereo-agent-right", "mono"]


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Section):
    # Matched against the file name; the extension in the pattern stands for any audio extension.
    filename_pattern: str = "{agent_id}_{YYYYmmdd-HHMMSS}*.wav"
    # Layout of two-channel recordings that have no sidecar saying otherwise.
    default_stereo_layout: Literal["stereo-agent-left", "stereo-agent-right"] = "stereo-agent-left"
    # Zone for timestamps taken from file names (sidecars carry their own zone).
    timezone: str = "Asia/Shanghai"
    extensions: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Only a real IANA zone name passes: the value reaches the database session and every clock.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知的时区“{value}”（例如 Asia/Shanghai）") from exc
        return value


class AsrConfig(_Section):
    # A local CTranslate2 whisper folder (e.g. a converted large-v3); empty = the bundled whisper-base.
    model_dir: Path | None = None
    # Where the bundled model is joined from its two PyPI parts (default ~/.cache/callqa).
    cache_dir: Path | None = None
    compute_type: str = "int8"
    beam_size: int = Field(5, ge=1)
    cpu_threads: int = Field(0, ge=0)  # 0 = all cores
    language: str = "zh"  # auto-detection picks Thai on telephone audio
    # Decoding temperatures: one (0.0) = beam search only, the same transcript however often and
    # in whatever order a recording is analysed. More (e.g. 0.0, 0.2, 0.4, 0.6) = whisper's fallback:
    # a window failing the tests below is decoded again by sampling, from CTranslate2's random
    # stream, which is per worker thread and seeded once, so the text then depended on what the
    # process had decoded before (a drawn-out track read two ways in one run). The fallback
    # bought no CER on real drawn-out speech (bench/results/asr-guards-2026-11-28.md: greedy =
    # fallback in every condition) and cost up to 3× the time on it; loops are handled by
    # `loop_retry_no_repeat_ngram_size` instead, and what stays weak goes to review.
    temperatures: tuple[float, ...] = (0.0,)
    seed: int = 0  # the sampling seed when temperatures above 0 are configured
    # Loop guards (faster-whisper; bench/asr_guards.py measured them, docs/metrics.md): a window
    # is decoded again at the next temperature when its text compresses above this ratio (UTF-8
    # bytes, so Chinese text sits higher than English) or its mean log-probability is below
    # log_prob_threshold, unless no_speech_prob says it is silence. None switches a test off.
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    # Beam search never repeats a token n-gram of this size (0 = off); > 1.0 penalises tokens
    # already produced; seconds of silence before a suspected hallucination that make whisper skip it.
    no_repeat_ngram_size: int = Field(0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0)
    hallucination_silence_threshold: float | None = None
    # A turn whose text loops (pipeline/asr/guards.py) is decoded again on its own with repeats of
    # this many tokens blocked (0 = no retry); the text that loops less is kept, a loop left is flagged.
    loop_retry_no_repeat_ngram_size: int = Field(3, ge=0)
    # faster-whisper's Silero VAD: its 2000 ms default keeps 1 s pauses inside one chunk.
    vad_min_silence_ms: int = Field(500, ge=0)
    vad_speech_pad_ms: int = Field(200, ge=0)
    # Windows of ≤ 30 s of packed turns decoded per encoder/decoder call (faster-whisper's
    # BatchedInferencePipeline, no temperature fallback). 0 = one window after another with
    # fallback: batched keeps two cores busy for one recording, but lost CER on drawn-out speech
    # (bench/results/throughput-2026-11-29d.md).
    batch_size: int = Field(0, ge=0)
    # Batched windows decoded with timestamp tokens (segment ends inside a window), as the
    # sequential path does: without them a turn's first characters were timed into the gap before
    # it (false interruptions, throughput-2026-11-29b). False = text tokens only.
    batch_timestamps: bool = True
    # Words whisper is told to expect in every window (faster-whisper's `hotwords`, given as previous
    # text). Empty by default: with the bundled whisper base the handbook's phrases as one prompt made
    # it repeat them after the speech (CER 0.11 -> 1.40), and seven key words alone cost a point of
    # CER (bench/results/asr-hotwords-2026-11-30.md). For a larger local model, measure first.
    hotwords: str = ""


class StereoConfig(_Section):
    # A frame is one party's speech only where its channel is this much louder than the other
    # party's leak into it (cross-talk), or the other channel is silent.
    louder_db: float = 6.0
    # Speech must stand this far above the channel's own noise floor.
    floor_margin_db: float = 12.0
    # Neural VAD on top of the energy rule (rejects tones and noise bursts).
    use_silero: bool = True
    silero_threshold: float = Field(0.35, ge=0.0, le=1.0)
    # Inside a sound island longer than `voiced_island_max_s` (hold music, tones, noise), past its
    # first `over_sound_settle_s`, a voice is also confirmed where Silero scores at least this for
    # `over_sound_min_s`: it scored the agent's check-ins over music 0.1–0.5 and the music alone
    # under 0.05 but for a note's attack (bench/results/accuracy-2026-11-29g.md). 0.35 = off.
    silero_threshold_over_sound: float = Field(0.15, ge=0.0, le=1.0)
    over_sound_min_s: float = Field(0.2, ge=0.0)
    over_sound_settle_s: float = Field(1.0, ge=0.0)
    # There Silero is also restarted every so many seconds (warmed up on the second before): run
    # on, it learns the music within seconds and scored a check-in 20 dB over it 0.00 for 3 s. On the
    # tuning batches' music holds, check-in speech found 0.800 → 0.886, music taken for the agent
    # unchanged at 2.2 s (bench/results/accuracy-2026-11-29j.md). 0 = off.
    over_sound_silero_window_s: float = Field(3.0, ge=0.0)
    # Silero restarts every so many seconds: left running, it learns minutes of hold music on the
    # agent's channel as background and misses the check-ins spoken over it. 0 = never restart.
    silero_window_s: float = Field(10.0, ge=0.0)
    # Line echo (the other party's voice coming back late and faint) is measured over the whole call
    # and subtracted before voice activity and ASR (pipeline/diarize/echo.py): the path may be up to
    # `echo_max_delay_s` long, and is cancelled only where that lowers the channel by `echo_min_erle_db`.
    echo_cancel: bool = True
    echo_max_delay_s: float = Field(0.08, gt=0.0, le=0.5)
    echo_min_erle_db: float = Field(3.0, ge=0.0)
    min_speech_s: float = Field(0.12, ge=0.0)
    fill_gap_s: float = Field(0.2, ge=0.0)
    # A run of sound without a 0.1 s break that Silero confirms anywhere is voiced throughout, up
    # to this length: Silero drops out on a slow speaker's drawn-out vowels. Longer runs are not
    # one breath of speech (hold music, tones, noise): there Silero decides frame by frame.
    voiced_island_max_s: float = Field(10.0, ge=0.0)


class MonoConfig(_Section):
    # A pyannote checkpoint folder (config.yaml + segmentation/, embedding/, plda/) the user copied in.
    # Empty = the built-in pipeline from weights that ship on PyPI (Silero VAD + resemblyzer).
    pyannote_dir: Path | None = None
    # A call has two parties: cluster into two, then merge them back when their voices are this
    # similar (cosine of the speaker centroids), i.e. only one party ever spoke.
    num_speakers: int = Field(2, ge=1)
    same_speaker_similarity: float = Field(0.86, ge=0.0, le=1.0)
    # Built-in pipeline: sliding window (a multiple of Silero's 32 ms frame) and its step as a
    # ratio. 4 s windows keep speech islands whole enough for stable embeddings on 8 kHz audio.
    window_s: float = Field(4.096, gt=0.5)
    step_ratio: float = Field(0.25, gt=0.0, le=1.0)
    speech_threshold: float = Field(0.5, ge=0.0, le=1.0)
    min_duration_off_s: float = Field(0.2, ge=0.0)
    # Average-linkage cosine distance at which the built-in clustering starts looking for clusters.
    clustering_threshold: float = Field(0.3, gt=0.0, le=2.0)
    # Silences of at least `recheck_silence_s` between the diarization's speech (0 = never) are
    # searched again for speech with Silero restarted every `silero_window_s` seconds. One pass over
    # the call learns hold music as background and misses the agent's check-ins over it (4 of 4 on a
    # tuning call); restarting it for the whole diarization heard them, but their music-blended voice
    # prints formed a cluster of their own and swapped a whole call's roles (role accuracy 0.841 →
    # 0.543). So only the search inside long silences restarts it, and what it finds there is given
    # to the party who speaks first after the silence — the agent coming back from a hold.
    recheck_silence_s: float = Field(10.0, ge=0.0)
    silero_window_s: float = Field(10.0, gt=0.0)
    # Inside those silences Silero is also restarted every so many seconds (warmed up on the second
    # before): even 10 s windows learn the music within seconds. On the tuning batches' mono music
    # holds, check-in speech found 0.693 → 0.801 with no music taken for speech. 0 = off.
    recheck_short_window_s: float = Field(3.0, ge=0.0)
    # Speech stretches shorter than this do not end such a silence: the diarization hears a check-in
    # over music in pieces, and a piece cut the hold into silences too short to search (tuning
    # batches' mono music holds: check-in speech found a further 48 → 61 s of 76 s, no music taken).
    recheck_fragment_s: float = Field(1.0, ge=0.0)
    # Where the diarization heard the call's first speech late (after ringback), the head of the
    # call is searched with Silero and the speech that runs on into it is added (mono.py,
    # first_words_heard_late). Tuning batch 3: two greetings had lost 您好 and 1.8-2.7 s.
    recheck_first_words: bool = True
    # Once the words are known, who spoke each sentence is decided again from its voice print centred
    # on the call's mean (pipeline/diarize/pieces.py): cut at 。？！ and at pauses of `sentence_gap_s`;
    # pieces of `sentence_print_min_s` or more form the two voices, pieces of `sentence_join_min_s` or
    # more join the nearer one, shorter ones keep the diarization's speaker. Off by default: replayed
    # on stored tuning transcripts it raised mono role accuracy 0.934 → 0.970, but in the full pipeline
    # it lowered it on the tuning set (0.934 → 0.879) and on the held-out set (0.843 → 0.720);
    # see docs/metrics.md.
    sentence_voices: bool = False
    sentence_gap_s: float = Field(0.3, gt=0.0)
    sentence_print_min_s: float = Field(1.0, gt=0.0)
    sentence_join_min_s: float = Field(0.5, gt=0.0)
    # Below this silhouette the two groups are one voice split in two (pipeline/diarize/pieces.py).
    sentence_min_separation: float = Field(0.3, ge=-1.0, le=1.0)


class TurnConfig(_Section):
    # A pause at least this long (or the other party speaking) ends a turn.
    turn_gap_s: float = Field(0.8, ge=0.0)
    # Words the agent says in the first turns that identify the agent in mono recordings.
    agent_cues: tuple[str, ...] = (
        "您好",
        "你好",
        "工号",
        "客服",
        "服务中心",
        "客户服务",
        "为您服务",
        "很高兴为您服务",
        "请问有什么可以帮",
        "有什么可以帮",
        "请问您贵姓",
        "怎么称呼",
        "还有其他问题",
        "还有什么能帮",
        "感谢您的来电",
        "对本次服务",
        "请您稍等",
    )
    role_cue_turns: int = Field(4, ge=1)


class RingConfig(_Section):
    """Ringback tone, per country. China: 450 Hz, 1 s on / 4 s off; North America: 440+480 Hz, 2 s / 4 s."""

    frequencies_hz: tuple[float, ...] = (450.0,)
    on_s: float = Field(1.0, gt=0.0)
    off_s: float = Field(4.0, ge=0.0)


class MetricsConfig(_Section):
    """Definitions of docs/metrics.md; every number here is the handbook's default.

    Pass/fail limits (3 rings, 3 s answer delay, 15 s between check-ins, 2 min holds …) belong to
    the scorecard; these settings only decide what is measured.
    """

    # RATE: characters per minute of the agent's own voiced time.
    rate_slow_below: float = 100.0
    rate_fast_above: float = 200.0
    pause_excluded_s: float = Field(0.3, ge=0.0)  # pauses longer than this are not speaking time
    # Voiced stretches can be widened by this much on each side, for a voice detector that trims
    # soft onsets and decays. The built-in one no longer does (onsets are taken from loudness).
    voicing_pad_s: float = Field(0.0, ge=0.0)
    # OPEN-IMMEDIATE: the agent's first word is the first voiced stretch at least this long.
    first_word_min_s: float = Field(0.2, ge=0.0)
    rate_min_utterance_s: float = Field(1.0, ge=0.0)  # shorter utterances are too short to judge
    rate_min_utterance_chars: int = Field(4, ge=1)
    # NO-INTERRUPT
    interrupt_min_prior_speech_s: float = Field(1.0, ge=0.0)
    interrupt_min_overlap_s: float = Field(0.3, ge=0.0)
    backchannels: tuple[str, ...] = (
        "是的",
        "是",
        "对",
        "对对",
        "好的",
        "好",
        "嗯",
        "嗯嗯",
        "哦",
        "啊",
        "行",
    )
    backchannel_max_s: float = Field(1.0, ge=0.0)  # a short chime-in the other party talks through
    backchannel_max_chars: int = Field(3, ge=0)  # … whose recognised words are this short (嗯 heard as 文)
    # Back-channel words excuse an overlap only when the speaker stops within this time: 对，对，
    # followed by three seconds over the customer is taking the floor.
    backchannel_floor_s: float = Field(2.0, ge=0.0)
    # A character the recogniser gave less than this probability is not a heard word in an overlap:
    # on the tuning set a 嗯 was written 可以 at 0.05, while the words of the 27 true interruptions
    # peaked at 0.88 or more.
    interrupt_min_char_probability: float = Field(0.3, ge=0.0, le=1.0)
    # Holds (docs/metrics.md, "Holds"). The words that matter for a hold (ask, check-in, thanks,
    # look-up, goodbye) are the scorecard's `phrases` section, not settings here.
    hold_min_s: float = Field(10.0, gt=0.0)
    hold_ask_window_s: float = Field(10.0, ge=0.0)
    hold_thank_window_s: float = Field(10.0, ge=0.0)
    # An agent turn this short, with the agent away at least checkin_quiet_s before it, can be a
    # check-in inside a hold rather than the end of it (docs/metrics.md, holds, step 3) …
    checkin_max_s: float = Field(12.0, gt=0.0)
    checkin_quiet_s: float = Field(4.0, ge=0.0)
    # … when the agent then stays away at least this long, whatever the words (an apologetic
    # 不好意思让您久等了，我还在为您查询 is a check-in when the waiting goes on after it) …
    checkin_away_s: float = Field(8.0, ge=0.0)
    # … and the customer does not take the floor: more speech than this in reply (outside the
    # agent's words) means the conversation resumed; 好的 / 嗯 / 行我再等等 are back-channels.
    checkin_reply_max_s: float = Field(2.0, ge=0.0)
    # The customer's reply to the agent's last words (e.g. 好的) happens within this time and
    # belongs before the hold, not in it.
    hold_reply_window_s: float = Field(2.0, ge=0.0)
    music_share: float = Field(0.5, ge=0.0, le=1.0)  # a hold is a music hold when music covers this share
    dead_air_min_s: float = Field(5.0, gt=0.0)
    # HANGUP-LAST: the agent may hang up once the customer stayed on this long after the closing.
    hangup_wait_s: float = Field(5.0, ge=0.0)
    # NUISANCE-MAX
    nuisance_call_type: str = "F"
    nuisance_max_s: float = Field(600.0, gt=0.0)


class AcousticConfig(_Section):
    """Non-speech sounds detected while the audio is at hand."""

    ring: RingConfig = RingConfig()
    ring_band_hz: float = Field(25.0, gt=0.0)  # half width of the band around each ring frequency
    ring_band_share: float = Field(0.6, gt=0.0, le=1.0)  # energy share in the band(s) for a ring frame
    music_min_s: float = Field(3.0, gt=0.0)
    # Music is sound that is not speech. Besides Silero over the whole call, a Silero restarted every
    # so many seconds (as the diarization's own is) may call a second speech: the whole-call one
    # learned a 65 s music hold as background and then scored the next 70 s of a slow agent's speech
    # under 0.2, four of the agent's sentences became "music" and one a false hold with a HOLD-THANK
    # deduction (tuning batch 4). 0 = the whole-call pass only.
    music_speech_window_s: float = Field(10.0, ge=0.0)


class IntakeConfig(_Section):
    """Checks a recording must pass before the expensive work (docs/operations.md, "Bad input")."""

    # Shorter recordings are skipped: nothing a QA rule can judge (a hang-up before anyone spoke).
    min_duration_s: float = Field(2.0, ge=0.0)
    # Longer recordings are skipped before decoding: a recording this long is almost always a line
    # left open, and the analysis holds the decoded 16 kHz tracks (0.46 GB per hour of stereo; the
    # rest works window by window, whisper on the turns only): 3 hours of stereo peaked at 1,621 MiB
    # (1.70 GB), 4 hours needs about 2.0 GiB (bench/results/long-recording-2026-11-29b.md). Raise
    # it (and run with --recheck) to analyse such recordings.
    max_duration_s: float = Field(4 * 3600.0, gt=0.0)
    # A file modified within this many seconds, or whose size or time changes while it is read,
    # is still being written by the phone system: skipped now, picked up by the next batch.
    settle_s: float = Field(60.0, ge=0.0)
    # A channel whose level (RMS) stays below this is silent: a recording with only silent
    # channels is skipped; a stereo recording with one silent channel is analysed as mono.
    silent_dbfs: float = Field(-55.0, le=0.0)
    # A warning when at least this share of the samples sits at the recording's peak (clipping).
    clipping_warn_share: float = Field(0.005, gt=0.0, le=1.0)
    # Audio formats the decoder cannot read: such files are listed as failed with a clear reason
    # instead of being silently ignored.
    unsupported_extensions: tuple[str, ...] = (
        ".amr",
        ".awb",
        ".m4a",
        ".aac",
        ".wma",
        ".g729",
        ".g723",
        ".silk",
    )


class BatchConfig(_Section):
    """The nightly batch as a writer of the database, and what is retried (docs/operations.md)."""

    # DuckDB admits one process at a time when one of them writes. Writers and readers open the
    # database for short moments and wait this long for the other side before giving up.
    db_lock_wait_s: float = Field(120.0, ge=0.0)
    # Prefect retries of one recording, only for failures that can pass on a retry (database
    # busy, I/O error), never for a corrupt file.
    retries: int = Field(2, ge=0)
    retry_delay_s: float = Field(30.0, ge=0.0)
    # A recording during which the batch died this many times (killed, out of memory, a crash in
    # a decoder) is no longer retried automatically; `callqa run DIR --recheck` tries it again.
    max_crashes: int = Field(2, ge=1)
    # Where recordings are analysed (docs/operations.md, "Dask"). Empty = the nightly flow starts a
    # local Dask cluster analysing `workers` recordings at once (0 = sized to this machine: one per
    # core, one worker process each, as memory allows); a scheduler address such
    # as "tcp://scheduler:8786" = an existing cluster, whose workers must see the recordings at the
    # same paths. A recording that kills its worker `max_crashes` times is recorded as failed.
    dask_address: str | None = None
    workers: int = Field(0, ge=0)


class AgentsConfig(_Section):
    # The centre's agents: CSV (UTF-8) with columns agent_id,agent_name. When set, a recording whose
    # agent_id is missing or not in the roster fails with a clear reason (an unknown agent cannot be
    # ranked or paid), and a missing agent_name is taken from the roster. Empty = no check.
    roster: Path | None = None


OutputName = Literal["export", "report", "show", "logs"]


class PrivacyConfig(_Section):
    """Personal data in what leaves the core store (standards, section 8; docs/operations.md)."""

    # Outputs allowed to show transcripts unredacted: any of "export", "report", "show", "logs".
    # Empty (the default) = phone, ID and bank card numbers and addresses are masked everywhere
    # outside the database.
    # Honoured only in the file named with --config (or the flow's `config`): a callqa.toml that
    # happens to lie in the working directory, or $CALLQA_CONFIG, cannot switch redaction off.
    unredacted_outputs: tuple[OutputName, ...] = ()
    # What callqa writes (database, reports, review audio, exports, batch summaries) is owner-only
    # (files 0600, folders 0700); true lets the owner's group read them (0640 / 0750).
    group_readable: bool = False

    def redacts(self, output: OutputName) -> bool:
        return output not in self.unredacted_outputs


class RetentionConfig(_Section):
    # Records are kept 3 years, filed by month (standards, section 8): `callqa purge` refuses to
    # remove a month younger than this unless forced.
    keep_months: int = Field(36, ge=1)


class PortalConfig(_Section):
    # The review portal (`callqa serve`, pipeline/portal).
    appeal_window_days: float = Field(
        5.0, ge=0.0
    )  # agents may appeal until this long after the month's first report
    session_idle_minutes: float = Field(30.0, gt=0.0)  # a session unused this long must log in again
    login_lock_after: int = Field(5, ge=1)  # failed logins in a row that lock the name …
    login_lock_minutes: float = Field(15.0, ge=0.0)  # … for this long
    login_delay_s: float = Field(0.5, ge=0.0)  # a failed login waits this, doubling per failure (max 8 s)
    secure_cookies: bool = False  # behind TLS: cookies only over HTTPS (`callqa serve --secure-cookies`)
    month_cache_s: float = Field(30.0, ge=0.0)  # a month's figures are read again after this long


class Settings(_Section):
    db: Path = Path("qa.duckdb")
    reports_dir: Path = Path("reports")
    # Folder of scorecards (YAML with `kind: scorecard`; one per business line via applies_to).
    # Empty = the repository's rules/ (rules/default.yaml).
    scorecards: Path | None = None
    input: InputConfig = InputConfig()
    asr: AsrConfig = AsrConfig()
    stereo: StereoConfig = StereoConfig()
    mono: MonoConfig = MonoConfig()
    turns: TurnConfig = TurnConfig()
    acoustic: AcousticConfig = AcousticConfig()
    metrics: MetricsConfig = MetricsConfig()
    intake: IntakeConfig = IntakeConfig()
    batch: BatchConfig = BatchConfig()
    agents: AgentsConfig = AgentsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    retention: RetentionConfig = RetentionConfig()
    # Where these settings came from, in Chinese, for the batch summary and every command's first
    # line (set by load_settings; not a key of the file).
    _source: str = PrivateAttr(default="未使用配置文件（全部为默认值）")

    @property
    def source(self) -> str:
        return self._source

    portal: PortalConfig = PortalConfig()


# [metrics] keys of earlier versions whose phrases now live in the scorecard's `phrases` section.
_MOVED_TO_SCORECARD = {
    key: f"这些用语已移到评分表（rules/default.yaml 的 phrases.{target}），请删除这一项"
    for key, target in {
        "hold_ask_phrases": "hold_ask",
        "checkin_phrases": "hold_checkin",
        "hold_thank_phrases": "hold_thanks",
        "hold_return_phrases": "hold_thanks",
        "hold_lookup_phrases": "hold_lookup",
        "closing_phrases": "goodbye",
        "phrase_max_errors_per_4_chars": "… matching costs in the scorecard's matching section",
    }.items()
}


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Settings from `path`, else $CALLQA_CONFIG, else ./callqa.toml when present, else defaults.

    `overrides` (e.g. db=...) win over the file; None values are ignored.
    """
    named = path is not None
    how = "由 --config 指定"
    if path is None:
        env = os.environ.get("CALLQA_CONFIG")
        if env:
            path, how = Path(env), "由环境变量 CALLQA_CONFIG 指定"
        elif Path("callqa.toml").is_file():
            path, how = Path("callqa.toml"), "当前目录中自动读取"
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CallQAError(f"{path}：找不到配置文件") from exc
        except tomllib.TOMLDecodeError as exc:
            raise CallQAError(f"{path}：不是有效的 TOML（{_toml_problem(exc)}）") from exc
    if os.environ.get("CALLQA_DB"):
        data["db"] = os.environ["CALLQA_DB"]
    data.update({key: value for key, value in overrides.items() if value is not None})
    privacy = data.get("privacy")
    if not named and isinstance(privacy, dict) and privacy.get("unredacted_outputs"):
        raise CallQAError(
            f"{path}（{how}）：[privacy] unredacted_outputs 会关闭脱敏，只在用 --config 明确指定的配置文件中生效；"
            "确需不脱敏的输出，请用 --config 指定这个文件"
        )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "；".join(
            f"{'.'.join(str(part) for part in err['loc'])}：{_problem_in_chinese(err)}"
            for err in exc.errors()
        )
        raise CallQAError(f"{path or '配置'}：{problems}") from exc
    if path is not None:
        settings._source = f"配置文件 {Path(path).resolve()}（{how}）"
    return settings


def config_line(settings: Settings) -> str:
    """Which configuration file is in force, and which outputs it leaves unredacted (Chinese): the
    batch summary and the commands that print what customers said show it."""
    open_outputs = settings.privacy.unredacted_outputs
    return settings.source + (
        f"；不脱敏的输出：{'、'.join(open_outputs)}" if open_outputs else "；所有输出均脱敏"
    )


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    """tomllib says `Expected ']' at the end of a table declaration (at line 1, column 8)`."""
    where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    return f"第 {where.group(1)} 行第 {where.group(2)} 列附近有语法错误" if where else "语法错误"


def _problem_in_chinese(err: dict) -> str:
    key = str(err["loc"][-1])
    if key in _MOVED_TO_SCORECARD:
        return _MOVED_TO_SCORECARD[key]
    shown = "" if err["type"] in QUOTES_VALUE else f"（而不是 {err.get('input')!r}）"
    return field_problem(err) + shown
