"""Who spoke when in a stereo recording: one party per channel, cross-talk removed.

Each channel also hears the other party faintly (line echo, headset leak). Neural VAD marks that
leaked voice as speech, so a frame counts as a party's speech only where

* Silero VAD hears speech on the party's channel (rejects ring tones, hum and clicks); because
  Silero reacts late to an onset after a long silence, each confirmed stretch starts earlier
  through the loud frames just before it (at most `ONSET_FRAMES`), and because it drops out on
  drawn-out vowels, a sound island it confirms anywhere (one breath: no 0.1 s break, at most
  `voiced_island_max_s` long) counts whole; inside longer sound (hold music) it scores a voice far
  lower than over silence, and lower still once its state has learned the music, so there a lower
  score held for `over_sound_min_s`, from a Silero also restarted every few seconds, confirms it too,
* the channel stands well above its own noise floor, and
* the channel is louder than what the other channel's leak alone would put there, by
  `louder_db` (the leak level is measured per call; with no measurable leak this reduces to
  "the other channel is silent or this one is clearly louder").

Both parties can be active in the same frame: overlaps survive, which interruption detection needs.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d

from pipeline.config import StereoConfig, TurnConfig
from pipeline.diarize.timeline import (
    build_turns,
    clean_segments,
    confirmed_islands,
    extend_onsets,
    long_sound,
    mask_to_segments,
    runs_at_least,
)
from pipeline.diarize.vad import (
    SILERO_FRAME,
    frame_energy_db,
    short_memory_probabilities,
    speech_probabilities,
)
from pipeline.records import ROLES, CallAudio, Diarization, SpeechTurn

# Frames where the source channel is this far above its floor are taken as "clearly talking" when
# measuring how much of it leaks into the other channel.
_LEAK_SOURCE_MARGIN_DB = 20.0
# Echo paths in telephone lines delay the leak by up to ~60 ms: two 32 ms frames either side.
_ECHO_FRAMES = 2
# How far back a confirmed voice may start through loud frames: Silero was measured up to ~1.4 s
# late after a long silence; music just before a check-in can add no more than this.
ONSET_FRAMES = 50  # 1.6 s


def diarize_stereo(audio: CallAudio, config: StereoConfig, turns: TurnConfig) -> Diarization:
    frame_s = SILERO_FRAME / audio.sample_rate
    energy = {role: frame_energy_db(audio.tracks[role]) for role in ROLES}
    frames = min(len(e) for e in energy.values())
    energy = {role: e[:frames] for role, e in energy.items()}
    floor = {role: noise_floor_db(energy[role]) for role in ROLES}
    if config.use_silero:
        probabilities = {
            role: speech_probabilities(audio.tracks[role], config.silero_window_s)[:frames] for role in ROLES
        }
    else:
        probabilities = {role: np.ones(frames, dtype=np.float32) for role in ROLES}
    island_frames = round(config.voiced_island_max_s / frame_s)

    voice_activity: list[SpeechTurn] = []
    for role, other in (ROLES, ROLES[::-1]):
        leak = leak_db(energy[other], energy[role], floor[other])
        above_floor = energy[role] >= floor[role] + config.floor_margin_db
        # The leak arrives late and smeared (line echo): compare with the other channel's loudest
        # nearby frame, not just the same frame, or every word onset leaks through.
        other_nearby = maximum_filter1d(energy[other], size=2 * _ECHO_FRAMES + 1)
        above_leak = energy[role] >= other_nearby + leak + config.louder_db
        audible = above_floor & above_leak
        # Over hold music Silero scores a voice 0.1–0.5 where it scores it 0.8 over silence, while the
        # music stays near zero but for a note's attack (a frame or three) and a new sound's first
        # second (Silero scores anything after quiet high, then learns it): inside sound longer than
        # a breath, past its first second, a lower score held for a moment confirms the voice too.
        over_sound = long_sound(audible, island_frames, round(config.over_sound_settle_s / frame_s))
        over_sound_scores = probabilities[role]
        if config.use_silero and config.over_sound_silero_window_s > 0 and over_sound.any():
            # Within seconds the recurrent state learns the music as background and scores a voice
            # spoken over it near zero: there Silero is also asked with a memory of a few seconds.
            over_sound_scores = np.maximum(
                over_sound_scores,
                short_memory_probabilities(audio.tracks[role], over_sound, config.over_sound_silero_window_s),
            )
        speechlike = (probabilities[role] >= config.silero_threshold) | runs_at_least(
            over_sound & (over_sound_scores >= config.silero_threshold_over_sound),
            max(1, round(config.over_sound_min_s / frame_s)),
        )
        # Silero confirms the voice; loudness gives its true start (Silero is late after silence)
        # and its extent within one breath (Silero drops out on a slow speaker's drawn-out vowels).
        anchors = speechlike & audible
        mask = extend_onsets(audible, anchors, ONSET_FRAMES) | confirmed_islands(
            audible, anchors, island_frames
        )
        segments = clean_segments(mask_to_segments(mask, frame_s), config.fill_gap_s, config.min_speech_s)
        voice_activity += [SpeechTurn(role, start, min(end, audio.duration_s)) for start, end in segments]
    voice_activity.sort(key=lambda s: (s.start, s.end))
    return Diarization(
        turns=tuple(build_turns(voice_activity, turns.turn_gap_s)),
        voice_activity=tuple(voice_activity),
        method="stereo:channel-energy+silero" if config.use_silero else "stereo:channel-energy",
        roles_known=True,
    )


def noise_floor_db(energy_db: np.ndarray) -> float:
    """The channel's quiet level: the 10th percentile of frame energy (calls have pauses)."""
    return float(np.percentile(energy_db, 10)) if energy_db.size else -100.0


def leak_db(source_db: np.ndarray, target_db: np.ndarray, source_floor_db: float) -> float:
    """How loud the source party sounds in the target channel, relative to the source channel (dB ≤ 0).

    Measured where the source talks clearly; the lower half of those frames are where the target
    party is quiet, so the median of the lower half is the leak, not the target's own voice.
    Returns -100 when the source never talks clearly (nothing to leak).
    """
    talking = source_db >= source_floor_db + _LEAK_SOURCE_MARGIN_DB
    if np.count_nonzero(talking) < 10:
        return -100.0
    differences = np.sort(target_db[talking] - source_db[talking])
    return float(min(0.0, np.median(differences[: max(1, len(differences) // 2)])))
