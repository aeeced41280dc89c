"""Who spoke when: stereo by channel, mono by pyannote.audio speaker diarization."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.records import CallAudio, Diarization


def diarize(audio: CallAudio, settings: Settings) -> Diarization:
    if audio.is_stereo:
        from pipeline.diarize.stereo import diarize_stereo

        return diarize_stereo(audio, settings.stereo, settings.turns)
    from pipeline.diarize.mono import diarize_mono

    return diarize_mono(audio, settings.mono, settings.turns)
