"""Cut-ins in mono recordings: where the next speaker started before the previous one stopped.

The built-in diarization gives each speech island (speech between pauses) to one speaker, so it
cannot see two voices at once: when one party cuts in on the other, the end of the first
speaker's island already holds both voices and the cut-in disappears. Here, wherever a turn is
followed within `handover_gap_s` by the other speaker, the end of the turn is compared with its
beginning using one-second speaker embeddings. If the tail sounds less like the turn's own
speaker by at least `drop` (cosine-similarity difference between the two speakers' centroids),
for at least `min_tail_windows` windows reaching the end of the turn, the next speaker is taken
to have started where the tail fell halfway from the turn's usual score to its lowest. That
stretch is given to both speakers: the overlap that interruption detection needs.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from pyannote.core import Annotation, Segment

WINDOW_S = 1.0
HOP_S = 0.25
TAIL_S = 3.0  # how far back from a turn's end a cut-in is looked for


def mark_cut_ins(
    signal: np.ndarray,
    rate: int,
    annotation: Annotation,
    centroids: np.ndarray,
    embedder: torch.nn.Module,
    handover_gap_s: float = 1.5,
    drop: float = 0.1,
    min_tail_windows: int = 2,
) -> Annotation:
    labels = annotation.labels()
    if len(labels) != 2 or len(centroids) != 2:
        return annotation
    unit = centroids / (np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9)
    tracks = sorted(annotation.itertracks(yield_label=True), key=lambda item: item[0].start)
    marked = annotation.copy()
    for (turn, _, speaker), (following, _, next_speaker) in itertools.pairwise(tracks):
        if next_speaker == speaker or following.start - turn.end > handover_gap_s:
            continue
        start = _cut_in_start(
            signal, rate, turn, unit, labels.index(speaker), embedder, drop, min_tail_windows
        )
        if start is not None:
            marked[Segment(start, following.start), "cut-in"] = next_speaker
    return marked.support()  # joins the new stretch with the next speaker's turn


def _cut_in_start(
    signal: np.ndarray,
    rate: int,
    turn: Segment,
    unit: np.ndarray,
    own: int,
    embedder: torch.nn.Module,
    drop: float,
    min_tail_windows: int,
) -> float | None:
    if turn.duration < 2.0 * WINDOW_S:
        return None
    tail_from = max(turn.start + WINDOW_S, turn.end - TAIL_S)
    baseline_starts = np.linspace(turn.start, max(turn.start, tail_from - WINDOW_S), num=4)
    tail_starts = np.arange(tail_from, turn.end - WINDOW_S + 1e-9, HOP_S)
    if len(tail_starts) < min_tail_windows:
        return None
    score = _scores(signal, rate, np.concatenate([baseline_starts, tail_starts]), unit, own, embedder)
    baseline, tail = float(np.median(score[: len(baseline_starts)])), score[len(baseline_starts) :]
    lowest = int(np.argmin(tail))
    if baseline - tail[lowest] < drop:
        return None
    # the stretch around the lowest point that sounds less like the speaker than halfway down
    below = tail < (baseline + tail[lowest]) / 2
    first = lowest
    while first > 0 and below[first - 1]:
        first -= 1
    last = lowest
    while last + 1 < len(tail) and below[last + 1]:
        last += 1
    # it must last and reach the end of the turn (the last window or two still hold the
    # speaker's own last words, mixed with the other voice)
    if last - first + 1 < min_tail_windows or last < len(tail) - 3:
        return None
    # a window drops once the other voice fills part of it: it started about a quarter-window in
    return float(tail_starts[first] + WINDOW_S / 2 - HOP_S)


def _scores(
    signal: np.ndarray, rate: int, starts: np.ndarray, unit: np.ndarray, own: int, embedder: torch.nn.Module
) -> np.ndarray:
    """How much more each window sounds like speaker `own` than like the other (cosine difference)."""
    window = int(WINDOW_S * rate)
    batch = np.stack(
        [
            np.pad(
                signal[int(t * rate) : int(t * rate) + window],
                (0, max(0, window - len(signal[int(t * rate) : int(t * rate) + window]))),
            )
            for t in starts
        ]
    )
    with torch.inference_mode():
        vectors = embedder(torch.from_numpy(batch.astype(np.float32)).unsqueeze(1)).numpy()
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9
    return vectors @ unit[own] - vectors @ unit[1 - own]
