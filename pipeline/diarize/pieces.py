"""Who spoke each sentence of a mono call, decided again once the words are known.

The mono diarization (`pipeline.diarize.mono`) decides who spoke from 4 s windows of voice
activity. When one party answers the other within a few tenths of a second, both voices fall in one
speech island and one window, the window's voice print is a blend, and a whole answer is given to
the wrong speaker (on the tuning calls: 2 of 16 mono calls with a third to half of their speech on
the wrong side). The transcript knows more than the voice activity did:

* **Sentences are one voice.** People hand the turn over at the end of a sentence. Whisper marks
  sentence ends with punctuation and puts a time on every character, so a turn cuts into pieces
  at 。？！ and at pauses between characters, even where the pause was too short for voice activity.
* **A call's common sound is not a voice.** Every voice print from one call shares its line, codec,
  handset and room; the two speakers' mean voice prints were 0.78–0.82 alike (cosine) on the
  tuning calls, so one party's prints do not stand out from the other's. The call's own mean
  print is that shared part: once it is subtracted, the pieces fall into two groups that matched
  the true speakers on 103 of 104 pieces of four failing and passing calls, where clustering the
  raw prints matched 60.

So each piece long enough for a voice print (`piece_min_s`) gets one (resemblyzer, as the
diarization), the prints are centred on the call's mean and split in two (Ward linkage,
deterministic), shorter pieces go to the nearer group, and the groups take the diarization's labels
they agree with most. The voice activity follows the pieces. Nothing changes when the diarization
found more than two voices, when there are too few pieces to tell, or when the split is not two
voices (a diarization that heard one voice gets a second one only when the sentences hold two): the
groups' raw prints as alike as one voice's (`same_speaker_similarity`; on the tuning calls two
voices 0.71–0.83, one voice split in two 0.90–0.97) or the groups not clearly apart
(`sentence_min_separation`, a silhouette).

Switched off by default (`[mono] sentence_voices`): in the full pipeline it lowered mono role
accuracy on both evaluation sets although the replay on stored transcripts raised it (figures and
the open problem: docs/metrics.md, "Mono: who spoke each sentence").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from pipeline.asr.packing import Samples
from pipeline.config import MonoConfig
from pipeline.ingest import ANALYSIS_RATE
from pipeline.records import CharTiming, SpeechTurn, Utterance

_SENTENCE_END = re.compile(r"[。？！?!；;]")
_SPOKEN = re.compile(r"\w")
MIN_PIECES = 4  # embedded pieces needed before the split is worth trusting
SECOND_VOICE = "-second-voice"  # label suffix of a voice found in sentences the diarization gave to one


def reassign_sentences(
    utterances: Sequence[Utterance],
    voice_activity: Sequence[SpeechTurn],
    signal: Samples,
    sample_rate: int,
    config: MonoConfig,
    min_group: int = 1,
) -> tuple[list[Utterance], list[SpeechTurn]]:
    """The mono stage's utterances and voice activity (cluster labels), each sentence given to the
    voice it sounds like; `min_group`: the long pieces each voice needs for the split to count."""
    pieces = sentence_pieces(utterances, config.sentence_gap_s)
    if len({p.speaker for p in pieces}) > 2:
        return list(utterances), list(voice_activity)
    prints = voice_prints(signal, sample_rate, pieces, config.sentence_join_min_s)
    return relabel_by_voice(
        utterances,
        voice_activity,
        prints,
        pieces,
        config.sentence_print_min_s,
        config.same_speaker_similarity,
        config.sentence_min_separation,
        min_group,
    )


# A call whose diarization heard one voice (pipeline/diarize/roles.merged_voices_check: the customer
# under a tenth of the speech in a real conversation) is known to hold two. There the raw prints
# decide little: two voices the diarization merged were 0.867 and 0.902 alike, as alike as one voice
# cut in two (0.88–0.97). What tells them apart is how clearly the centred prints fall into two
# groups when each group has pieces enough to judge: over the 96 mono calls of the six tuning
# batches (bench/results/accuracy-2026-11-30n.md), two voices gave a silhouette of 0.31–0.66 and one
# voice cut in two at most 0.26 wherever both groups held `MIN_PIECES` pieces or more (one voice's
# 0.49–0.51 came from groups of two or three pieces). So the merged call is split when the
# silhouette clears `sentence_min_separation` with both groups that large, unless the raw prints are
# as alike as the most alike one voice's.
MERGED_SAME_VOICE_SIMILARITY = 0.95


def split_merged_voices(
    utterances: Sequence[Utterance],
    voice_activity: Sequence[SpeechTurn],
    signal: Samples,
    sample_rate: int,
    config: MonoConfig,
) -> tuple[list[Utterance], list[SpeechTurn]] | None:
    """A call the diarization heard as one voice, each sentence given to the voice it sounds like;
    None when its sentences do not hold two voices either."""
    relaxed = config.model_copy(
        update={"same_speaker_similarity": max(config.same_speaker_similarity, MERGED_SAME_VOICE_SIMILARITY)}
    )
    split = reassign_sentences(utterances, voice_activity, signal, sample_rate, relaxed, min_group=MIN_PIECES)
    if split == (list(utterances), list(voice_activity)):
        return None
    # The voice activity under every utterance follows it: most of a merged call moved, and what
    # lay between its sentence pieces kept the one label (a tuning call's agent lost 13 % of its
    # speaking time to the customer that way).
    said = [(u.start, u.end, u.speaker) for u in split[0]]
    return split[0], _relabel(split[1], said)


@dataclass(frozen=True)
class Piece:
    """A stretch of one utterance between sentence ends or pauses."""

    utterance: int  # index into the utterances given
    first_char: int  # range of the utterance's chars
    last_char: int  # inclusive
    text_from: int  # range of the utterance's text
    text_to: int
    start: float
    end: float
    speaker: str


def sentence_pieces(utterances: Sequence[Utterance], split_gap_s: float) -> list[Piece]:
    """Each utterance cut at sentence-end punctuation and at pauses of `split_gap_s` between characters.

    Utterances whose characters are not timed one to one with their text stay whole."""
    pieces: list[Piece] = []
    for u_index, u in enumerate(utterances):
        spoken = [i for i, c in enumerate(u.text) if _SPOKEN.match(c) and c != "_"]
        if not u.chars or len(u.chars) != len(spoken):
            pieces.append(Piece(u_index, 0, len(u.chars) - 1, 0, len(u.text), u.start, u.end, u.speaker))
            continue
        cuts = [0]  # char index where a piece starts
        for k in range(1, len(u.chars)):
            between = u.text[spoken[k - 1] + 1 : spoken[k]]
            if _SENTENCE_END.search(between) or u.chars[k].start - u.chars[k - 1].end >= split_gap_s:
                cuts.append(k)
        bounds = [*cuts, len(u.chars)]
        for n, (a, b) in enumerate(pairwise(bounds)):
            text_from = 0 if n == 0 else spoken[a]
            text_to = len(u.text) if b == len(u.chars) else spoken[b]
            start = u.start if n == 0 else u.chars[a].start
            end = u.end if b == len(u.chars) else u.chars[b - 1].end
            pieces.append(Piece(u_index, a, b - 1, text_from, text_to, start, max(end, start), u.speaker))
    return pieces


def split_two_voices(
    prints: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(group of each print, the centred prints, centred centroid of group 0 and of group 1), or None
    if it cannot split.

    Prints are centred on their weighted mean, normalised, and cut in two by Ward linkage."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(prints) < MIN_PIECES:
        return None
    centred = _centre(prints, weights)
    groups = fcluster(linkage(centred, method="ward"), 2, criterion="maxclust") - 1
    if len(set(groups.tolist())) < 2:
        return None
    centroids = [
        _unit(np.average(centred[groups == g], axis=0, weights=weights[groups == g])) for g in (0, 1)
    ]
    return groups, centred, centroids[0], centroids[1]


def relabel_by_voice(
    utterances: Sequence[Utterance],
    voice_activity: Sequence[SpeechTurn],
    prints: dict[int, np.ndarray],
    pieces: Sequence[Piece],
    piece_min_s: float,
    same_speaker_similarity: float,
    min_separation: float,
    min_group: int = 1,
) -> tuple[list[Utterance], list[SpeechTurn]]:
    """Utterances and voice activity with each piece given to the voice group it sounds like.

    `prints` holds the voice print of each piece (by index in `pieces`) that is long enough for one;
    each group must hold `min_group` of those for the split to count (a silhouette over two or three
    pieces says little)."""
    labels = sorted({p.speaker for p in pieces})
    unchanged = list(utterances), list(voice_activity)
    if len(labels) == 1:  # the diarization heard one voice; the sentences may still hold two
        labels.append(f"{labels[0]}{SECOND_VOICE}")
    if len(labels) != 2:
        return unchanged
    long_ones = [i for i in prints if pieces[i].end - pieces[i].start >= piece_min_s]
    if len(long_ones) < MIN_PIECES:
        return unchanged
    raw = np.stack([prints[i] for i in long_ones])
    weights = np.array([pieces[i].end - pieces[i].start for i in long_ones])
    split = split_two_voices(raw, weights)
    if split is None:
        return unchanged
    groups, centred_prints, centre0, centre1 = split
    if min(int((groups == 0).sum()), int((groups == 1).sum())) < min_group:
        return unchanged
    raw0 = _unit(np.average(raw[groups == 0], axis=0, weights=weights[groups == 0]))
    raw1 = _unit(np.average(raw[groups == 1], axis=0, weights=weights[groups == 1]))
    if float(raw0 @ raw1) >= same_speaker_similarity or separation(centred_prints, groups) < min_separation:
        return unchanged  # one voice after all (a silent customer, or the agent alone)
    mean = np.average(raw, axis=0, weights=weights)
    group_of: dict[int, int] = dict(zip(long_ones, groups.tolist(), strict=True))
    for i, vector in prints.items():
        if i not in group_of:
            centred = _unit(vector - mean)
            group_of[i] = 0 if float(centred @ centre0) >= float(centred @ centre1) else 1
    # Each group takes the diarization label it shares the most speech with (of the two pairings).
    agree = {(g, lab): 0.0 for g in (0, 1) for lab in labels}
    for i, g in group_of.items():
        agree[(g, pieces[i].speaker)] += pieces[i].end - pieces[i].start
    straight = agree[(0, labels[0])] + agree[(1, labels[1])]
    crossed = agree[(0, labels[1])] + agree[(1, labels[0])]
    name = {0: labels[0], 1: labels[1]} if straight >= crossed else {0: labels[1], 1: labels[0]}
    decided = [replace(p, speaker=name[group_of[i]]) if i in group_of else p for i, p in enumerate(pieces)]
    return _rebuild(utterances, decided), _follow(voice_activity, pieces, decided)


def separation(centred_prints: np.ndarray, groups: np.ndarray) -> float:
    """How clearly the centred prints fall into the two groups (mean silhouette, cosine, −1…1).

    On the tuning calls two voices gave 0.41–0.68 and one voice split in two 0.09–0.26 (one 0.57)."""
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(centred_prints, groups, metric="cosine"))


def _rebuild(utterances: Sequence[Utterance], pieces: Sequence[Piece]) -> list[Utterance]:
    """Utterances cut where consecutive pieces of one utterance now belong to different speakers."""
    out: list[Utterance] = []
    by_utterance: dict[int, list[Piece]] = {}
    for p in pieces:
        by_utterance.setdefault(p.utterance, []).append(p)
    for u_index, u in enumerate(utterances):
        own = by_utterance.get(u_index, [])
        runs: list[list[Piece]] = []
        for p in own:
            if runs and runs[-1][-1].speaker == p.speaker:
                runs[-1].append(p)
            else:
                runs.append([p])
        if len(runs) == 1:
            out.append(replace(u, speaker=runs[0][0].speaker))
            continue
        for run in runs:
            first, last = run[0], run[-1]
            chars: tuple[CharTiming, ...] = u.chars[first.first_char : last.last_char + 1]
            out.append(
                replace(
                    u,
                    speaker=first.speaker,
                    start=round(first.start, 3),
                    end=round(last.end, 3),
                    text=u.text[first.text_from : last.text_to],
                    chars=chars,
                    confidence=round(float(np.mean([c.probability for c in chars])), 3)
                    if chars
                    else u.confidence,
                )
            )
    return out


def _follow(
    voice_activity: Sequence[SpeechTurn], before: Sequence[Piece], after: Sequence[Piece]
) -> list[SpeechTurn]:
    """Voice activity relabelled over the time of every piece whose speaker changed."""
    moved = [
        (p.start, p.end, q.speaker) for p, q in zip(before, after, strict=True) if p.speaker != q.speaker
    ]
    return _relabel(voice_activity, moved) if moved else list(voice_activity)


def _relabel(
    voice_activity: Sequence[SpeechTurn], spans: Sequence[tuple[float, float, str]]
) -> list[SpeechTurn]:
    """Voice activity given, over each (start, end, speaker) span, to that span's speaker."""
    out: list[SpeechTurn] = []
    for v in voice_activity:
        cursor = v.start
        for start, end, speaker in sorted(spans):
            if end <= cursor or start >= v.end:
                continue
            if start > cursor:
                out.append(SpeechTurn(v.speaker, cursor, start))
            out.append(SpeechTurn(speaker, max(start, cursor), min(end, v.end)))
            cursor = min(end, v.end)
        if cursor < v.end:
            out.append(SpeechTurn(v.speaker, cursor, v.end))
    return sorted(out, key=lambda s: (s.start, s.end))


def _centre(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The vectors less their weighted mean (what they all share), each of unit length."""
    centred = vectors - np.average(vectors, axis=0, weights=weights)
    return centred / (np.linalg.norm(centred, axis=1, keepdims=True) + 1e-9)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) + 1e-9)


def voice_prints(
    signal: Samples, sample_rate: int, pieces: Sequence[Piece], min_s: float
) -> dict[int, np.ndarray]:
    """The resemblyzer voice print of every piece at least `min_s` long (index in `pieces` → 256-d)."""
    import torch

    from pipeline.diarize.models import resemblyzer_embedding

    encoder = resemblyzer_embedding()
    if sample_rate != ANALYSIS_RATE:  # the encoder's mel frames assume it
        raise ValueError(f"voice prints need {ANALYSIS_RATE} Hz audio, not {sample_rate} Hz")
    prints: dict[int, np.ndarray] = {}
    for i, p in enumerate(pieces):
        if p.end - p.start < min_s:
            continue
        clip = signal[int(p.start * sample_rate) : int(p.end * sample_rate)]
        with torch.inference_mode():
            vector = encoder(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))[None, None, :])[0]
        if torch.all(torch.isfinite(vector)):
            prints[i] = vector.numpy()
    return prints
