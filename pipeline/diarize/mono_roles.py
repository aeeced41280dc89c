"""Who is the agent in a mono call, once its words are known: from the two voices' sentences.

The diarization gives cluster labels; the words say which label is the agent (roles.assign_roles:
agents open with service phrases). A call whose customer has almost no speech is more often two
voices the clustering merged than a silent customer (roles.merged_voices_check); its sentences
are then split by the voices they sound like (pieces.split_merged_voices), kept only if the
customer then gets a real share of the call. Labels become roles last, on utterances and voice
activity alike, so that every later stage sees only "agent" and "customer".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pipeline.asr.packing import Samples
from pipeline.config import Settings
from pipeline.diarize.pieces import reassign_sentences, split_merged_voices
from pipeline.diarize.roles import assign_roles, merged_voices_check
from pipeline.diarize.timeline import merged_by_speaker
from pipeline.records import RoleAssignment, SpeechTurn, Utterance

FIRST_SPEAKER_NOTE = "没有听到客服用语：按先开口的一方为客服，请人工确认"
SPLIT_NOTE = "分段时两个人的声音被当成了一个人：已按每句话的声音重新分成两个人，请留意角色是否正确"


def mono_roles(
    utterances: Sequence[Utterance],
    voice_activity: Sequence[SpeechTurn],
    track: Samples,
    sample_rate: int,
    settings: Settings,
) -> tuple[list[Utterance], list[SpeechTurn], RoleAssignment, list[str]]:
    """(utterances and voice activity labelled agent/customer, the role assignment, notes for a person)."""
    cues, first_turns = settings.turns.agent_cues, settings.turns.role_cue_turns
    utterances = list(utterances)
    voice_activity = list(voice_activity)
    notes: list[str] = []
    if settings.mono.sentence_voices:
        utterances.sort(key=lambda u: (u.start, u.end))
        utterances, voice_activity = reassign_sentences(
            utterances, voice_activity, track, sample_rate, settings.mono
        )
    roles = assign_roles(utterances, cues, first_turns)
    if roles.source == "first-speaker":
        notes.append(FIRST_SPEAKER_NOTE)
    roles, merged = merged_voices_check(roles, utterances)
    if merged and not settings.mono.sentence_voices:
        utterances, voice_activity, roles, merged = _split_merged(
            utterances, voice_activity, roles, merged, track, sample_rate, settings
        )
    if merged:
        notes.append(merged)
    utterances = [replace(u, speaker=roles.mapping.get(u.speaker, "customer")) for u in utterances]
    voice_activity = merged_by_speaker(
        SpeechTurn(roles.mapping.get(v.speaker, "customer"), v.start, v.end) for v in voice_activity
    )
    return utterances, voice_activity, roles, notes


def _split_merged(
    utterances: list[Utterance],
    voice_activity: list[SpeechTurn],
    roles: RoleAssignment,
    merged: str,
    track: Samples,
    sample_rate: int,
    settings: Settings,
) -> tuple[list[Utterance], list[SpeechTurn], RoleAssignment, str]:
    """A mono call heard as one voice, its sentences split into the two voices they sound like
    (pieces.split_merged_voices) when that gives the customer a real share of the call; else as it was."""
    cues, first_turns = settings.turns.agent_cues, settings.turns.role_cue_turns
    utterances = sorted(utterances, key=lambda u: (u.start, u.end))
    split = split_merged_voices(utterances, voice_activity, track, sample_rate, settings.mono)
    if split is None:
        return utterances, voice_activity, roles, merged
    split_roles, still_merged = merged_voices_check(assign_roles(split[0], cues, first_turns), split[0])
    if still_merged:
        return utterances, voice_activity, roles, merged
    return split[0], split[1], split_roles, SPLIT_NOTE
