"""Who spoke when, on real speech rendered as telephone calls (labelled by construction)."""

from __future__ import annotations

from pathlib import Path

import lightning
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from callsim import voiced_segments
from conftest import MAGICDATA
from pyannote.core import Annotation, Segment
from pyannote.metrics.identification import IdentificationErrorRate
from realcalls import build_real_call

from pipeline.config import InputConfig, MonoConfig, Settings
from pipeline.diarize import diarize
from pipeline.diarize.mono import diarize_mono
from pipeline.evaluate import load_truth
from pipeline.ingest import decode, read_meta
from pipeline.records import CallAudio


def _reference(truth: dict) -> Annotation:
    reference = Annotation()
    for turn in truth["turns"]:
        reference[Segment(turn["start"], turn["end"])] = turn["speaker"]
    return reference


def _hypothesis(turns: list, mapping: dict[str, str] | None = None) -> Annotation:
    hypothesis = Annotation()
    for turn in turns:
        hypothesis[Segment(turn.start, turn.end)] = (mapping or {}).get(turn.speaker, turn.speaker)
    return hypothesis


@pytest.mark.parametrize("leak_db", [-24.0, -12.0])
def test_stereo_roles_with_cross_talk_and_the_interruption_survives(
    tmp_path: Path, magicdata_texts: dict[str, str], leak_db: float
) -> None:
    path = build_real_call(tmp_path, "st", magicdata_texts, stereo=True, leak_db=leak_db)
    settings = Settings()
    audio = decode(path, read_meta(path, settings.input), settings.input)
    result = diarize(audio, settings)
    truth = load_truth(path)
    error = IdentificationErrorRate(collar=0.25)(
        _reference(truth), _hypothesis(list(result.turns)), detailed=True
    )
    assert error["identification error rate"] < 0.05, error
    assert error["confusion"] < 0.5  # seconds: the leaked voice is never taken for the other party
    # the agent cuts in on the customer: both parties are active during the overlap
    overlap = next(o for o in truth["overlaps"] if o["kind"] == "interruption")
    middle = (overlap["start"] + overlap["end"]) / 2
    active = {v.speaker for v in result.voice_activity if v.start <= middle <= v.end}
    assert active == {"agent", "customer"}


def test_mono_builtin_pipeline_separates_two_voices(tmp_path: Path, magicdata_texts: dict[str, str]) -> None:
    path = build_real_call(tmp_path, "mo", magicdata_texts, stereo=False)
    settings = Settings()
    audio = decode(path, read_meta(path, settings.input), settings.input)
    result = diarize(audio, settings)
    labels = sorted({t.speaker for t in result.turns})
    assert labels == ["SPEAKER_00", "SPEAKER_01"] and not result.roles_known
    assert result.method.startswith("pyannote:builtin")
    first = min(result.turns, key=lambda t: t.start).speaker  # the agent opens this call
    mapping = {first: "agent", next(label for label in labels if label != first): "customer"}
    error = IdentificationErrorRate(collar=0.25)(
        _reference(load_truth(path)), _hypothesis(list(result.turns), mapping), detailed=True
    )
    assert error["confusion"] / error["total"] < 0.05, error


def _save_checkpoint(model: lightning.LightningModule, path: Path) -> None:
    """A checkpoint in pyannote.audio's format (what Model.from_pretrained reads)."""
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)


def test_a_user_pyannote_folder_is_loaded_from_disk_offline(
    tmp_path: Path, magicdata_texts: dict[str, str]
) -> None:
    from pipeline.diarize.models import ResemblyzerEmbedding, SpeechIslandSegmentation

    folder = tmp_path / "my-pyannote"
    _save_checkpoint(SpeechIslandSegmentation(), folder / "segmentation" / "pytorch_model.bin")
    _save_checkpoint(ResemblyzerEmbedding(), folder / "embedding" / "pytorch_model.bin")
    (folder / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "pipeline": {
                    "name": "pipeline.diarize.models.IslandSpeakerDiarization",
                    "params": {
                        "segmentation": "$model/segmentation",
                        "embedding": "$model/embedding",
                        "clustering": "AgglomerativeClustering",
                    },
                },
                "params": {
                    "segmentation": {"threshold": 0.5, "min_duration_off": 0.2},
                    "clustering": {"method": "average", "min_cluster_size": 5, "threshold": 0.3},
                },
            }
        )
    )
    path = build_real_call(tmp_path, "mo", magicdata_texts, stereo=False)
    settings = Settings()
    audio = decode(path, read_meta(path, InputConfig()), InputConfig())
    result = diarize_mono(audio, MonoConfig(pyannote_dir=folder), settings.turns)
    assert result.method == f"pyannote:{folder}"
    assert len({t.speaker for t in result.turns}) == 2


def test_a_broken_pyannote_folder_is_a_clear_error(tmp_path: Path, magicdata_texts: dict[str, str]) -> None:
    from pipeline.errors import CallQAError

    path = build_real_call(tmp_path, "mo", magicdata_texts, stereo=False)
    audio = decode(path, read_meta(path, InputConfig()), InputConfig())
    with pytest.raises(CallQAError, match=r"no config\.yaml"):
        diarize_mono(audio, MonoConfig(pyannote_dir=tmp_path / "empty"), Settings().turns)


def _hold_music(seconds: float, rate: int = 16000) -> np.ndarray:
    """A slow piano-like arpeggio, as hold music plays on the agent's channel."""
    notes = [261.6, 329.6, 392.0, 523.3, 392.0, 329.6, 293.7, 349.2]
    t = np.arange(int(0.45 * rate)) / rate
    pieces = [
        sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3)) * np.exp(-3 * t) * 0.08 for f in notes
    ]
    music = np.concatenate(pieces * int(seconds / (0.45 * len(notes)) + 1))[: int(seconds * rate)]
    return music.astype(np.float32)


def _hold_with_check_ins(at: list[float], rate: int = 16000) -> tuple[np.ndarray, float]:
    """30 s of quiet line, then two minutes of hold music with real check-ins at `at` (and their length)."""
    clip, clip_rate = sf.read(MAGICDATA / "education_100001.flac", dtype="float32")
    assert clip_rate == rate
    agent = np.concatenate(
        [np.zeros(30 * rate, np.float32), _hold_music(130.0), np.zeros(10 * rate, np.float32)]
    )
    for start in at:
        lo = int(start * rate)
        agent[lo : lo + clip.size] += clip * 0.5
    return agent, clip.size / rate


def _covered(heard: list, start: float, end: float) -> float:
    return sum(max(0.0, min(v.end, end) - max(v.start, start)) for v in heard)


def test_a_check_in_after_minutes_of_hold_music_is_heard() -> None:
    # Silero left running adapts to the music and scores speech over it below 0.2 after a
    # minute or so; the stereo rule restarts it (stereo.silero_window_s).
    rate = 16000
    at = [40.0, 140.0]
    agent, clip_s = _hold_with_check_ins(at)
    noise = np.random.default_rng(7).normal(0, 1e-3, agent.size).astype(np.float32)
    audio = CallAudio(
        "hold", rate, {"agent": agent + noise, "customer": noise.copy()}, "stereo-agent-left", "config",
        rate, 2, "WAV/PCM", agent.size / rate,
    )  # fmt: skip
    settings = Settings()
    heard = diarize(audio, settings).voice_activity
    for start in at:
        end = start + clip_s
        covered = _covered([v for v in heard if v.speaker == "agent"], start, end)
        assert covered > 0.6 * (end - start), (start, heard)
    assert not any(v.speaker == "customer" for v in heard)


def test_mono_check_ins_over_hold_music_are_heard_with_silero_restarts() -> None:
    """Check-ins over minutes of hold music in a mono call are heard (`[mono] recheck_silence_s`)."""
    rate = 16000
    at = [40.0, 140.0]
    mono, clip_s = _hold_with_check_ins(at)
    mono += np.random.default_rng(7).normal(0, 1e-3, mono.size).astype(np.float32)
    audio = CallAudio("hold", rate, {"mono": mono}, "mono", "config", rate, 1, "WAV/PCM", mono.size / rate)
    heard = list(diarize_mono(audio, MonoConfig(), Settings().turns).voice_activity)
    # the check-in after 110 s of music: the one pass over the call scores it as silence
    assert _covered(heard, 140.0, 140.0 + clip_s) > 0.6 * clip_s, heard
    # plain floats, as every stage stores them (a numpy scalar reached DuckDB as numpy.bool)
    assert all(type(v.start) is float and type(v.end) is float for v in heard), heard
    without = diarize_mono(audio, MonoConfig(recheck_silence_s=0.0), Settings().turns).voice_activity
    assert _covered(list(without), 140.0, 140.0 + clip_s) < 0.2 * clip_s, without


def test_the_first_words_the_diarization_heard_late_are_searched_again() -> None:
    """A greeting after ringback whose first second the diarization missed (`first_words_heard_late`):
    the speech that runs on into the first heard stretch is added; an island apart from it is not."""
    from pipeline.diarize.mono import first_words_heard_late
    from pipeline.records import SpeechTurn

    rate = 16000
    clip, _ = sf.read(MAGICDATA / "education_100001.flac", dtype="float32")
    signal = np.random.default_rng(3).normal(0, 1e-3, 20 * rate).astype(np.float32)
    signal[5 * rate : 5 * rate + clip.size] += clip * 0.5
    first_word = 5.0 + voiced_segments(clip)[0][0]
    late = SpeechTurn("SPEAKER_00", first_word + 1.2, 5.0 + clip.size / rate)
    found = first_words_heard_late(signal, rate, [late], MonoConfig())
    assert found and all(v.speaker == "SPEAKER_00" for v in found), found
    assert abs(found[0].start - first_word) < 0.3 and found[-1].end == late.start, (found, first_word)
    # heard from its first word: nothing to add
    assert first_words_heard_late(signal, rate, [SpeechTurn("S", first_word, late.end)], MonoConfig()) == []
    # an announcement 3 s before the first heard speech is not that speaker's first words
    apart = signal.copy()
    apart[5 * rate : 5 * rate + clip.size] = signal[: clip.size]
    apart[1 * rate : 2 * rate] += clip[:rate] * 0.5
    assert first_words_heard_late(apart, rate, [SpeechTurn("S", 5.0, 8.0)], MonoConfig()) == []


def test_the_first_words_begin_where_the_voice_rises_out_of_the_quiet() -> None:
    """Silero's score dips on a drawn-out first syllable; `voice_onset` follows the voice back to
    where it rose out of the line's quiet, and no further than that or than its limit."""
    from pipeline.diarize.mono import ONSET_WALK_BACK_MAX_S, voice_onset

    rate = 16000
    head = np.random.default_rng(5).normal(0, 1e-3, 6 * rate).astype(np.float32)
    t = np.arange(int(1.5 * rate)) / rate
    vowel = sum(np.sin(2 * np.pi * 180 * h * t) / h for h in (1, 2, 3, 4)).astype(np.float32) * 0.05
    head[2 * rate : 2 * rate + vowel.size] += vowel  # a steady voiced 您— from 2.0 s to 3.5 s
    assert voice_onset(head, rate, 2.6) == pytest.approx(2.0, abs=0.04)
    assert voice_onset(head, rate, 2.0) == 2.0  # already at the onset
    assert voice_onset(head, rate, 4.5) == 4.5  # quiet before it: nothing to follow back
    assert voice_onset(head, rate, 3.4) == pytest.approx(3.4 - ONSET_WALK_BACK_MAX_S, abs=0.04)


def test_a_second_speaker_needs_a_tenth_of_the_voice_prints() -> None:
    """The built-in clustering on voice prints of two close voices (60 and 40 prints) and an outlier
    island (6 prints, far from both): the outlier must not become the second speaker and put the
    two parties under one label, as it did with a fixed smallest cluster of 5 prints."""
    from pipeline.diarize.models import BoundedAgglomerativeClustering
    from pipeline.diarize.mono import _pipeline

    rng = np.random.default_rng(0)
    dim = 64
    shared = rng.normal(size=dim)
    agent, customer = shared + 0.9 * rng.normal(size=dim), shared + 0.9 * rng.normal(size=dim)
    outlier = 2 * rng.normal(size=dim)
    prints = np.vstack(
        [
            agent + 0.25 * rng.normal(size=(60, dim)),
            customer + 0.25 * rng.normal(size=(40, dim)),
            outlier + 0.25 * rng.normal(size=(6, dim)),
        ]
    )
    built_in = _pipeline(MonoConfig())[0].clustering

    def clusters(min_cluster_size: int) -> np.ndarray:
        clustering = BoundedAgglomerativeClustering(metric="cosine")
        clustering.instantiate(
            {"method": built_in.method, "min_cluster_size": min_cluster_size, "threshold": built_in.threshold}
        )
        return clustering.cluster(prints.copy(), min_clusters=2, max_clusters=2, num_clusters=2)

    found = clusters(built_in.min_cluster_size)
    assert len(set(found[:60])) == 1 and len(set(found[60:100])) == 1 and found[0] != found[60]
    merged = clusters(5)  # the former setting: agent and customer together, the outlier alone
    assert merged[0] == merged[60] and merged[100] != merged[0]


def test_a_first_word_said_apart_before_the_greeting_is_found() -> None:
    """喂 … 您好: a word-length stretch of voice a second before the first heard speech, which Silero
    scores as speech (over 0.5) for less than its 0.3 s minimum, is the speaker's first word (a tuning call's
    answer delay read 3.7 s for 2.2); a ring tone in its place is not."""
    from pipeline.diarize import mono
    from pipeline.diarize.mono import first_words_heard_late
    from pipeline.records import SpeechTurn

    rate = 16000
    clip, _ = sf.read(MAGICDATA / "education_100001.flac", dtype="float32")
    onset = voiced_segments(clip)[0][0]
    word = clip[int(onset * rate) : int((onset + 0.3) * rate)] * 0.5  # the clip's first syllable
    said_at = 3.3
    signal = np.random.default_rng(3).normal(0, 1e-3, 12 * rate).astype(np.float32)
    signal[int(said_at * rate) : int(said_at * rate) + word.size] += word
    greeting_at = 4.5
    signal[int(greeting_at * rate) : int(greeting_at * rate) + clip.size] += clip * 0.5
    heard = SpeechTurn("SPEAKER_00", greeting_at + onset, greeting_at + clip.size / rate)
    found = first_words_heard_late(signal, rate, [heard], MonoConfig())
    assert found and found[0].start == pytest.approx(said_at, abs=0.1), found
    assert found[0].end < heard.start and all(v.speaker == "SPEAKER_00" for v in found)
    # Silero's own stretches alone (the word-island search switched off) miss it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mono, "FIRST_WORD_MIN_SCORE", 2.0)
        assert first_words_heard_late(signal, rate, [heard], MonoConfig()) == []
    # a ring tone (450 Hz) where the word was: not anyone's first word
    toned = signal.copy()
    toned[int(said_at * rate) : int(said_at * rate) + word.size] -= word
    t = np.arange(word.size) / rate
    toned[int(said_at * rate) : int(said_at * rate) + word.size] += (
        0.2 * np.sin(2 * np.pi * 450 * t)
    ).astype(np.float32)
    assert first_words_heard_late(toned, rate, [heard], MonoConfig()) == []
