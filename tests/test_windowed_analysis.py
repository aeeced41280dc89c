"""A long recording is analysed window by window (voice activity, frame energy, the spectrogram of
the audio-event detectors), and each windowed result equals the whole-signal computation it
replaces, exactly: only the memory differs."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import SAMPLES, SHARED
from pyannote.core import SlidingWindow, SlidingWindowFeature

from pipeline.config import AcousticConfig, MonoConfig, Settings
from pipeline.diarize import models, vad
from pipeline.ingest import decode, read_meta
from pipeline.metrics import acoustic
from pipeline.process import transcribe_call
from pipeline.records import CallAudio


def _speech(seconds: float) -> np.ndarray:
    """Real speech, repeated to `seconds`, ending on a partial frame."""
    audio, rate = sf.read(SHARED / "audio" / "misc" / "funasr_vad_example_2spk.flac", dtype="float32")
    track = soxr.resample(audio if audio.ndim == 1 else audio[:, 0], rate, 16000).astype(np.float32)
    return np.tile(track, int(seconds * 16000 // len(track)) + 1)[: int(seconds * 16000) + 123]


def _whole_call_silero(signal: np.ndarray, window_s: float | None) -> np.ndarray:
    """The earlier computation: faster-whisper's model over one padded copy (or windows of it)."""
    padded = np.pad(signal, (0, (-len(signal)) % vad.SILERO_FRAME))
    model = vad._silero()
    if not window_s:
        return np.asarray(model(padded), dtype=np.float32).reshape(-1)
    window = int(window_s * 16000) // vad.SILERO_FRAME * vad.SILERO_FRAME
    warmup = int(vad.WARMUP_S * 16000) // vad.SILERO_FRAME * vad.SILERO_FRAME
    pieces = []
    for start in range(0, len(padded), window):
        begin = max(0, start - warmup)
        scores = np.asarray(model(padded[begin : start + window]), dtype=np.float32).reshape(-1)
        pieces.append(scores[(start - begin) // vad.SILERO_FRAME :])
    return np.concatenate(pieces)


@pytest.mark.parametrize("window_s", [None, 10.0])
def test_voice_activity_batch_by_batch_equals_the_model_over_the_whole_signal(window_s: float | None) -> None:
    signal = _speech(340.0)  # ten encoder batches and a part (faster-whisper scores 10,000 frames at once)
    kept = signal.copy()
    scores = vad._speech_probabilities(signal, window_s)
    assert np.array_equal(signal, kept), "the caller's samples are left alone"
    expected = _whole_call_silero(signal, window_s)
    assert scores.shape == expected.shape and np.array_equal(scores, expected)
    assert 0.2 < np.mean(scores > 0.5) < 0.95


def test_frame_energy_block_by_block_equals_the_whole_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    signal = _speech(30.0)
    frames = np.pad(signal.astype(np.float64), (0, (-len(signal)) % 512)).reshape(-1, 512)
    expected = (10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-10)).astype(np.float32)
    monkeypatch.setattr(vad, "_ENERGY_BLOCK_FRAMES", 100)
    assert np.array_equal(vad.frame_energy_db(signal), expected)


def test_audio_events_window_by_window_equal_the_whole_spectrogram(monkeypatch: pytest.MonkeyPatch) -> None:
    t = np.arange(30 * 16000) / 16000
    music = (0.2 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32)
    ring = (0.3 * np.sin(2 * np.pi * 450 * t) * ((t % 5) < 1)).astype(np.float32)
    speech = _speech(40.0)
    track = np.concatenate([speech, music, speech, ring, speech[:12345]])
    power = np.abs(librosa.stft(track, n_fft=acoustic.N_FFT, hop_length=acoustic.HOP, center=False)) ** 2
    config = AcousticConfig()
    whole = acoustic.frame_features(track, 16000, config)
    monkeypatch.setattr(acoustic, "_WINDOW_FRAMES", 1000)  # 32 s windows: five of them
    windowed = acoustic.frame_features(track, 16000, config)
    assert windowed.count == power.shape[1] == whole.count
    assert np.array_equal(windowed.level_db, 10 * np.log10(power.sum(axis=0) + 1e-12))
    assert np.array_equal(windowed.flatness, librosa.feature.spectral_flatness(S=power, power=1.0)[0])
    for name in ("ring_band", "telephone", "level_db", "flatness"):
        assert np.array_equal(getattr(windowed, name), getattr(whole, name))
    audio = CallAudio("c", 16000, {"mono": track}, "mono", "file", 16000, 1, "WAV/PCM_16", len(track) / 16000)
    events = acoustic.detect_audio_events(audio, config)
    assert {e.kind for e in events} == {"music", "ring"}
    music_events = [e for e in events if e.kind == "music"]
    assert (
        len(music_events) == 1
        and abs(music_events[0].start - 40) < 1.5
        and abs(music_events[0].end - 70) < 1.5
    )


def test_whisper_hears_the_same_turns_after_a_stereo_calls_tracks_are_let_go() -> None:
    """Analysing a call uses up its audio: once the stereo turns are known, only their samples are
    kept for whisper and the tracks are released (a long recording is not held while whisper runs).
    The transcript is the one the whole tracks give."""
    settings = Settings()
    path = SAMPLES / "1002_20261120-101233.wav"
    meta = read_meta(path, settings.input)
    kept = decode(path, meta, settings.input, settings.intake)
    given = decode(path, meta, settings.input, settings.intake)
    expected = transcribe_call(kept, settings)
    transcript = transcribe_call(given, settings, reuse_tracks=True)
    assert given.tracks == {}
    assert set(kept.tracks) == {"agent", "customer"} and all(len(t) for t in kept.tracks.values())
    assert transcript.utterances and transcript == expected


def test_whisper_and_the_sentence_check_hear_the_same_turns_after_a_mono_track_is_let_go() -> None:
    """A mono call's track goes too once it is diarized: whisper and the sentence check (switched on
    here: its voice prints read each sentence's samples) get only the turns' samples."""
    settings = Settings(mono=MonoConfig(sentence_voices=True))
    path = SAMPLES / "1003_20261120-143010.wav"
    meta = read_meta(path, settings.input)
    kept = decode(path, meta, settings.input, settings.intake)
    given = decode(path, meta, settings.input, settings.intake)
    assert kept.layout == "mono"
    expected = transcribe_call(kept, settings)
    transcript = transcribe_call(given, settings, reuse_tracks=True)
    assert given.tracks == {} and len(kept.tracks["mono"])
    assert transcript.utterances and transcript == expected


def _two_voices(chunks: int) -> tuple[np.ndarray, SlidingWindowFeature, np.ndarray]:
    """Island voice prints of two voices, one island per chunk (slot 0, every other chunk a
    second one in slot 1), and which voice each island is."""
    rng = np.random.default_rng(3)
    voices = rng.normal(size=(2, 256))
    embeddings = np.full((chunks, 4, 256), np.nan, dtype=np.float32)
    segmentations = np.zeros((chunks, 128, 4), dtype=np.float32)
    truth = np.full((chunks, 4), -1)
    for c in range(chunks):
        for slot in range(1 + c % 2):
            voice = (c + slot) % 2
            embeddings[c, slot] = voices[voice] + 0.3 * rng.normal(size=256)
            segmentations[c, 64 * slot : 64 * slot + 60, slot] = 1.0
            truth[c, slot] = voice
    return (
        embeddings,
        SlidingWindowFeature(segmentations, SlidingWindow(duration=4.096, step=1.024, start=0.0)),
        truth,
    )


def test_a_long_calls_speakers_are_clustered_from_a_bounded_number_of_islands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """scipy's linkage holds every pairwise distance: past `MAX_CLUSTERED_ISLANDS` island voice
    prints, the centroids come from an evenly spaced subset, and every island is still given to its
    speaker. Below it, pyannote's own clustering decides, unchanged."""
    import pyannote.audio.pipelines.clustering as clustering

    real_linkage, sizes = clustering.linkage, []

    def linkage(embeddings: np.ndarray, **kwargs: object) -> np.ndarray:
        sizes.append(len(embeddings))
        return real_linkage(embeddings, **kwargs)

    monkeypatch.setattr(clustering, "linkage", linkage)
    monkeypatch.setattr(models, "MAX_CLUSTERED_ISLANDS", 60)
    parameters = {"method": "average", "min_cluster_size": 5, "threshold": 0.7}
    bounded = models.BoundedAgglomerativeClustering(metric="cosine")
    bounded.instantiate(parameters)
    plain = clustering.AgglomerativeClustering(metric="cosine")
    plain.instantiate(parameters)

    embeddings, segmentations, truth = _two_voices(40)  # 60 islands: the bound is not reached
    ours, _, _ = bounded(embeddings, segmentations)
    theirs, _, _ = plain(embeddings, segmentations)
    assert sizes == [60, 60] and np.array_equal(ours, theirs)

    sizes.clear()
    embeddings, segmentations, truth = _two_voices(400)  # 600 islands
    hard, _, centroids = bounded(embeddings, segmentations)
    assert sizes == [60] and len(centroids) == 2
    active = truth >= 0
    first = hard[truth == 0][0]
    assert np.array_equal(hard[active] == first, truth[active] == 0)


def test_the_builtin_mono_diarization_clusters_with_the_bounded_clustering() -> None:
    pipeline = models.IslandSpeakerDiarization()
    assert isinstance(pipeline.clustering, models.BoundedAgglomerativeClustering)


def test_voice_prints_and_their_assignment_equal_pyannotes_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in mono diarization binarizes its segmentation a block of chunks at a time, writes
    the voice prints batch by batch into one array and takes the distances to the centroids a block
    at a time (a long recording's are not copied whole): the same numbers as pyannote's binarize,
    get_embeddings and assign_embeddings, on a real mono call."""
    from pyannote.audio.pipelines import SpeakerDiarization
    from pyannote.audio.pipelines.clustering import AgglomerativeClustering
    from pyannote.audio.utils.signal import binarize

    from pipeline.diarize.mono import _pipeline

    settings = Settings()
    path = SAMPLES / "1003_20261120-143010.wav"
    audio = decode(path, read_meta(path, settings.input), settings.input, settings.intake)
    track = audio.tracks["mono"][: 60 * 16000]
    pipeline, _ = _pipeline(settings.mono)
    file = {"waveform": torch.from_numpy(track).unsqueeze(0), "sample_rate": 16000, "uri": "c"}
    segmentations = pipeline.get_segmentations(file)
    assert isinstance(segmentations, models.IslandSegmentations)
    monkeypatch.setattr(models, "_BINARIZE_CHUNKS", 5)  # pyannote's binarize, a few chunks at a time
    binarized = binarize(segmentations, onset=pipeline.segmentation.threshold, initial_state=False)
    plain = SlidingWindowFeature(segmentations.data, segmentations.sliding_window)
    expected = binarize(plain, onset=pipeline.segmentation.threshold, initial_state=False)
    assert binarized.data.dtype == expected.data.dtype and np.array_equal(binarized.data, expected.data)
    assert 0 < binarized.data.mean() < 0.5
    with torch.inference_mode(), models.one_thread():
        ours = pipeline.get_embeddings(file, binarized)
        theirs = SpeakerDiarization.get_embeddings(pipeline, file, binarized)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(ours, theirs, equal_nan=True)
    valid = ~np.isnan(ours).any(axis=2)
    assert 20 < valid.sum() < valid.size

    monkeypatch.setattr(models, "_DISTANCE_ROWS", 7)  # blocks that split chunks' speakers apart
    chunk_idx, speaker_idx = np.nonzero(valid)
    clusters = np.arange(len(chunk_idx)) % 2
    found = pipeline.clustering.assign_embeddings(ours, chunk_idx, speaker_idx, clusters)
    expected = AgglomerativeClustering.assign_embeddings(
        pipeline.clustering, ours, chunk_idx, speaker_idx, clusters
    )
    for a, b in zip(found, expected, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def test_a_mono_track_is_freed_as_soon_as_it_is_let_go_after_its_diarization() -> None:
    """pyannote leaves the file it was given in a reference cycle, and the waveform shares the
    track's samples: the diarization empties the file, so that a long recording's track goes when
    the caller lets it go, not whenever the cyclic garbage collector runs (it outlived the
    diarization into whisper in one run of three: 2,061 MiB at 3 hours)."""
    import gc
    import weakref

    from pipeline.diarize.mono import diarize_mono

    settings = Settings()
    path = SAMPLES / "1003_20261120-143010.wav"
    audio = decode(path, read_meta(path, settings.input), settings.input, settings.intake)
    track = weakref.ref(audio.tracks["mono"])
    gc.collect()
    gc.disable()
    try:
        diarization = diarize_mono(audio, settings.mono, settings.turns)
        audio.tracks.pop("mono")
        assert track() is None
    finally:
        gc.enable()
    assert len({t.speaker for t in diarization.turns}) == 2
