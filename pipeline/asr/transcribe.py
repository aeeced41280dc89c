"""faster-whisper over each party's turns → utterances with per-character timings.

A party's turns are cut from its track and laid end to end with a second of silence between
them (pipeline/asr/packing.py), then recognised in one pass: the recogniser never hears the other
party outside the turns, needs few 30-second windows, and the silence lets it (and us) tell where
one turn ends, so every word maps back to its own turn and onto the recording's timeline. With
`asr.batch_size` > 0 both parties' turns are packed into one sequence of windows that start and
end between turns, decoded several windows per encoder/decoder call. Whisper's traditional
characters become simplified ones (OpenCC t2s), word by word, so timings stay attached.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from pipeline.asr.guards import WindowEvidence, find_loops, utterance_evidence
from pipeline.asr.model import bundled_model_dir, check_model_dir
from pipeline.asr.packing import (
    TURN_GAP_S,
    TURN_PADDING_S,
    Piece,
    Samples,
    join_turns,
    locate_words,
    turn_bounds,
    windows,
)
from pipeline.config import AsrConfig
from pipeline.records import CharTiming, SpeechTurn, Utterance
from pipeline.text import spoken_chars, to_simplified

# faster-whisper computes the features of the joined turns all at once (about 42 MB per minute):
# a party's turns are joined at most this long at a time, so that hours of speech cost what a
# call does. A call's turns are one group, as before.
MAX_JOINED_S = 300.0
# A word is attached to the turn it overlaps most; one further than this from every turn is noise.
MAX_WORD_DISTANCE_S = 1.0
# Whisper sometimes jumps over part of a 30 s window of the joined turns (seen after hold music:
# two check-ins and half of the next sentence gone, all heard when decoded alone). A turn at least
# this long whose words span less than this share of it is decoded again on its own.
RETRY_MIN_TURN_S = 1.0
RETRY_COVERAGE = 0.5


@dataclass(frozen=True)
class AsrWord:
    text: str
    start: float
    end: float
    probability: float
    window: WindowEvidence | None = None  # whisper's figures for the window the word came from
    segment: int = -1  # which of whisper's segments (sentences) of its decoding it is in; -1: unknown


class Recognizer:
    """A loaded whisper model with the project's decoding options. Load once, reuse for every call."""

    def __init__(self, config: AsrConfig) -> None:
        from faster_whisper import WhisperModel

        if config.model_dir is not None:
            self.model_path = check_model_dir(config.model_dir)
        else:
            self.model_path = check_model_dir(bundled_model_dir(config.cache_dir))
        self.config = config
        self.name = self.model_path.name
        self._model = WhisperModel(
            str(self.model_path),
            device="cpu",
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            local_files_only=True,
        )
        self._lock = threading.Lock()  # CTranslate2 models are shared; decode one call at a time
        self._batched: object | None = None

    def words(
        self, signal: np.ndarray, vad: bool = True, no_repeat_ngram_size: int | None = None
    ) -> list[AsrWord]:
        """Words with times (seconds on `signal`'s timeline), simplified Chinese.

        `vad` lets faster-whisper's Silero VAD skip non-speech first (for whole recordings);
        turns that diarization already cut need none. `no_repeat_ngram_size` overrides the
        configured one (a turn that looped is decoded again with it).
        """
        import ctranslate2

        with self._lock:
            ctranslate2.set_random_seed(self.config.seed)
            segments, _ = self._model.transcribe(
                signal,
                language=self.config.language,
                beam_size=self.config.beam_size,
                temperature=list(self.config.temperatures),
                condition_on_previous_text=False,
                compression_ratio_threshold=self.config.compression_ratio_threshold,
                log_prob_threshold=self.config.log_prob_threshold,
                no_speech_threshold=self.config.no_speech_threshold,
                no_repeat_ngram_size=(
                    self.config.no_repeat_ngram_size if no_repeat_ngram_size is None else no_repeat_ngram_size
                ),
                repetition_penalty=self.config.repetition_penalty,
                hallucination_silence_threshold=self.config.hallucination_silence_threshold,
                word_timestamps=True,
                hotwords=self.config.hotwords or None,
                vad_filter=vad,
                vad_parameters={
                    "min_silence_duration_ms": self.config.vad_min_silence_ms,
                    "speech_pad_ms": self.config.vad_speech_pad_ms,
                },
            )
            return _segment_words(segments)

    def window_words(self, signal: np.ndarray, clips: Sequence[tuple[float, float]]) -> list[AsrWord]:
        """Words of each (start, end) window of `signal` (≤ 30 s each), on `signal`'s timeline.

        The windows are decoded `batch_size` per call at the first temperature, without timestamp
        tokens; word times come from cross-attention alignment. There is no temperature fallback:
        decoding a failing window again alone with it was measured worse on drawn-out speech
        (bench/results/throughput-2026-11-29b.md); the evidence of a weak window stays on its
        utterances for review."""
        import ctranslate2
        from faster_whisper import BatchedInferencePipeline

        with self._lock:
            if self._batched is None:
                self._batched = BatchedInferencePipeline(self._model)
            ctranslate2.set_random_seed(self.config.seed)
            segments, _ = self._batched.transcribe(  # type: ignore[attr-defined]
                signal,
                language=self.config.language,
                beam_size=self.config.beam_size,
                temperature=self.config.temperatures[0],
                no_repeat_ngram_size=self.config.no_repeat_ngram_size,
                repetition_penalty=self.config.repetition_penalty,
                without_timestamps=not self.config.batch_timestamps,
                word_timestamps=True,
                hotwords=self.config.hotwords or None,
                vad_filter=False,
                clip_timestamps=[{"start": start, "end": end} for start, end in clips],
                batch_size=self.config.batch_size,
            )
            return _segment_words(segments)


def _segment_words(segments: Iterable[object]) -> list[AsrWord]:
    """The words of whisper's segments (consumed here: faster-whisper decodes lazily), simplified,
    each with its window's evidence; empty words dropped."""
    words = [
        AsrWord(
            to_simplified(w.word),
            float(w.start),
            float(w.end),
            float(w.probability),
            _window(segment),
            index,
        )
        for index, segment in enumerate(segments)
        for w in (segment.words or [])  # type: ignore[attr-defined]
    ]
    return [w for w in words if w.text.strip()]


def _window(segment: object) -> WindowEvidence:
    return WindowEvidence(
        avg_logprob=float(segment.avg_logprob),  # type: ignore[attr-defined]
        no_speech_prob=float(segment.no_speech_prob),  # type: ignore[attr-defined]
        compression_ratio=float(segment.compression_ratio),  # type: ignore[attr-defined]
        temperature=float(segment.temperature or 0.0),  # type: ignore[attr-defined]
    )


@lru_cache(maxsize=2)
def load_recognizer(config: AsrConfig) -> Recognizer:
    return Recognizer(config)


def transcribe_turns(
    track: Samples, sample_rate: int, turns: Sequence[SpeechTurn], recognizer: Recognizer
) -> list[Utterance]:
    """Transcribe one party's turns on its track; one utterance per turn that has words."""
    return transcribe_parties([(track, turns)], sample_rate, recognizer)


def transcribe_parties(
    parts: Sequence[tuple[Samples, Sequence[SpeechTurn]]], sample_rate: int, recognizer: Recognizer
) -> list[Utterance]:
    """Transcribe each party's turns on its own track; one utterance per turn that has words.

    Sequentially (`asr.batch_size` 0) each party's joined turns are one decoding, window after
    window; batched, all parties' windows go through whisper together."""
    heard: list[list[AsrWord]] = [[] for _ in parts]
    if recognizer.config.batch_size:
        for chunk in batch_chunks([turns for _, turns in parts], MAX_JOINED_S):
            joined, pieces = join_turns([(parts[party][0], group) for party, group in chunk], sample_rate)
            if pieces:
                for k, moved in _to_recording_times(
                    recognizer.window_words(joined, windows(joined, sample_rate, pieces)), pieces
                ):
                    heard[chunk[k][0]].append(moved)
    else:
        for party, (track, turns) in enumerate(parts):
            for group in turn_groups(turns, MAX_JOINED_S):
                joined, pieces = join_turns([(track, group)], sample_rate)
                if pieces:
                    heard[party] += [
                        moved for _, moved in _to_recording_times(recognizer.words(joined, vad=False), pieces)
                    ]
    utterances: list[Utterance] = []
    for (track, turns), words in zip(parts, heard, strict=True):
        if not turns:
            continue
        words = _redo_skipped_turns(track, sample_rate, turns, words, recognizer)
        if recognizer.config.loop_retry_no_repeat_ngram_size:
            words = _redo_looping_turns(track, sample_rate, turns, words, recognizer)
        utterances += words_to_utterances(words, turns)
    return utterances


def _redo_skipped_turns(
    track: Samples,
    sample_rate: int,
    turns: Sequence[SpeechTurn],
    words: list[AsrWord],
    recognizer: Recognizer,
) -> list[AsrWord]:
    """Decode alone each turn the joined pass mostly skipped; keep whichever heard more. Words
    without a spoken character do not count as heard: whisper sometimes writes a whole window of
    turns as dots (……, seen after hold music), which is the same as skipping them."""

    def redo(turn: SpeechTurn, heard: list[AsrWord]) -> list[AsrWord] | None:
        length = turn.end - turn.start
        said = [w for w in heard if spoken_chars(w.text)]
        span = max(w.end for w in said) - min(w.start for w in said) if said else 0.0
        if length < RETRY_MIN_TURN_S or span >= RETRY_COVERAGE * length:
            return None
        alone = _decode_alone(track, sample_rate, turn, recognizer)
        return (
            alone
            if sum(spoken_chars(w.text) for w in alone) > sum(spoken_chars(w.text) for w in said)
            else None
        )

    return _replace_turns(words, turns, redo)


def _redo_looping_turns(
    track: Samples,
    sample_rate: int,
    turns: Sequence[SpeechTurn],
    words: list[AsrWord],
    recognizer: Recognizer,
) -> list[AsrWord]:
    """Decode alone, with repeated n-grams blocked, each turn whose text loops; keep the new text
    when it loops less. Blocking repeats everywhere costs CER on ordinary speech (digits, 好的好的:
    bench/asr_guards.py), so it is used only where a loop was seen. A loop that stays is flagged."""

    def redo(turn: SpeechTurn, heard: list[AsrWord]) -> list[AsrWord] | None:
        looped = _looped_chars("".join(w.text for w in sorted(heard, key=lambda w: w.start)))
        if not looped:
            return None
        alone = _decode_alone(
            track,
            sample_rate,
            turn,
            recognizer,
            no_repeat_ngram_size=recognizer.config.loop_retry_no_repeat_ngram_size,
        )
        return alone if alone and _looped_chars("".join(w.text for w in alone)) < looped else None

    return _replace_turns(words, turns, redo)


def _replace_turns(
    words: list[AsrWord],
    turns: Sequence[SpeechTurn],
    redo: Callable[[SpeechTurn, list[AsrWord]], list[AsrWord] | None],
) -> list[AsrWord]:
    """The words, with each turn's own replaced by what `redo` decoded again for it (None: kept)."""
    ordered = sorted(turns, key=lambda t: t.start)
    dropped: set[int] = set()
    extra: list[AsrWord] = []
    for turn, heard in zip(ordered, _words_by_turn(words, ordered), strict=True):
        better = redo(turn, heard)
        if better is not None:
            dropped.update(id(w) for w in heard)
            extra += better
    return [w for w in words if id(w) not in dropped] + extra


def _decode_alone(
    track: Samples, sample_rate: int, turn: SpeechTurn, recognizer: Recognizer, **options: int
) -> list[AsrWord]:
    """One turn decoded on its own (with a little padding), its words on the call's clock."""
    lo, hi = turn_bounds(len(track), sample_rate, turn)
    offset = lo / sample_rate
    return [
        replace(w, start=w.start + offset, end=w.end + offset)
        for w in recognizer.words(track[lo:hi].astype(np.float32), vad=False, **options)
    ]


def _looped_chars(text: str) -> int:
    return sum(loop.end - loop.start for loop in find_loops(text))


def _words_by_turn(words: Sequence[AsrWord], ordered: Sequence[SpeechTurn]) -> list[list[AsrWord]]:
    """Each word under the turn it overlaps most (or the nearest one); far-off words are dropped."""
    buckets: list[list[AsrWord]] = [[] for _ in ordered]
    for word in words:
        index = _best_turn(word, ordered)
        if index is not None:
            buckets[index].append(word)
    return buckets


def _to_recording_times(words: Sequence[AsrWord], pieces: Sequence[Piece]) -> list[tuple[int, AsrWord]]:
    """For each word of one decoding on the joined signal: the party it belongs to, and the word
    moved back onto the recording, inside the piece it belongs to (packing.locate_words)."""
    located = locate_words([(w.start, w.end, w.segment) for w in words], pieces)
    return [_to_recording_time(word, piece) for word, piece in zip(words, located, strict=True)]


def _to_recording_time(word: AsrWord, piece: Piece) -> tuple[int, AsrWord]:
    """The word moved back onto the recording, inside its piece; with the piece's party."""
    shift = piece.recording_start - piece.joined_start
    start = min(max(word.start, piece.joined_start), piece.joined_end)
    end = min(max(word.end, start), piece.joined_end)
    return piece.party, replace(word, start=round(start + shift, 3), end=round(end + shift, 3))


def turn_groups(turns: Sequence[SpeechTurn], max_joined_s: float) -> list[list[SpeechTurn]]:
    """Turns in order, cut into groups whose joined length (padding and gaps included) stays
    within `max_joined_s`; a longer turn is a group of its own."""
    groups: list[list[SpeechTurn]] = []
    joined = 0.0
    for turn in sorted(turns, key=lambda t: t.start):
        length = _joined_length(turn)
        if not groups or joined + length > max_joined_s:
            groups.append([])
            joined = 0.0
        groups[-1].append(turn)
        joined += length
    return groups


def _joined_length(turn: SpeechTurn) -> float:
    """Seconds a turn takes on the joined signal: itself, its padding and the silence after it."""
    return turn.end - turn.start + 2 * TURN_PADDING_S + TURN_GAP_S


def batch_chunks(
    turns_by_party: Sequence[Sequence[SpeechTurn]], max_joined_s: float
) -> list[list[tuple[int, list[SpeechTurn]]]]:
    """(party, turns) groups joined for one batched pass: every party's turns cut by `turn_groups`,
    consecutive groups put together while their joined length stays within `max_joined_s`. A
    call's turns are one pass (both parties, as before); hours of speech are passes of minutes."""
    chunks: list[list[tuple[int, list[SpeechTurn]]]] = []
    joined = 0.0
    for party, turns in enumerate(turns_by_party):
        for group in turn_groups(turns, max_joined_s):
            length = sum(_joined_length(t) for t in group)
            if not chunks or joined + length > max_joined_s:
                chunks.append([])
                joined = 0.0
            chunks[-1].append((party, group))
            joined += length
    return chunks


def words_to_utterances(words: Sequence[AsrWord], turns: Sequence[SpeechTurn]) -> list[Utterance]:
    """Attach each word to the turn it overlaps most (or the nearest one) and build utterances."""
    ordered = sorted(turns, key=lambda t: t.start)
    buckets = _words_by_turn(words, ordered)
    utterances = []
    for turn, bucket in zip(ordered, buckets, strict=True):
        if not bucket:
            continue
        bucket.sort(key=lambda w: w.start)
        text = normalize_punctuation("".join(w.text for w in bucket))
        if not text:
            continue
        chars = tuple(_clamp(c, turn) for w in bucket for c in char_timings(w))
        utterances.append(
            Utterance(
                speaker=turn.speaker,
                start=round(turn.start, 3),
                end=round(turn.end, 3),
                text=text,
                chars=chars,
                confidence=round(float(np.mean([w.probability for w in bucket])), 3),
                **utterance_evidence(  # type: ignore[arg-type]
                    (w.window for w in bucket if w.window is not None),
                    text,
                    ((w.start, w.end) for w in bucket),
                    (turn.start, turn.end),
                ),
            )
        )
    return utterances


def _clamp(char: CharTiming, turn: SpeechTurn) -> CharTiming:
    """Keep a character's time inside its turn (whisper's word times can run past a boundary)."""
    start = min(max(char.start, turn.start), turn.end)
    end = min(max(char.end, start), turn.end)
    return CharTiming(char.char, start, end, char.probability)


def _best_turn(word: AsrWord, turns: Sequence[SpeechTurn]) -> int | None:
    best, best_score = None, -MAX_WORD_DISTANCE_S
    for i, turn in enumerate(turns):
        overlap = min(word.end, turn.end) - max(word.start, turn.start)  # negative = distance apart
        if overlap > best_score:
            best, best_score = i, overlap
    return best


_SPOKEN = re.compile(r"[\w]", re.UNICODE)


def char_timings(word: AsrWord) -> list[CharTiming]:
    """Spread a word's time evenly over its spoken characters (punctuation and spaces get none).

    Whisper times tokens, and a Chinese token is one or two characters, so this is exact for most
    characters and an even split inside two-character tokens.
    """
    spoken = [c for c in word.text if _SPOKEN.match(c) and c != "_"]
    if not spoken:
        return []
    step = (word.end - word.start) / len(spoken)
    return [
        CharTiming(
            c,
            round(word.start + i * step, 3),
            round(word.start + (i + 1) * step, 3),
            round(word.probability, 3),
        )
        for i, c in enumerate(spoken)
    ]


_HALF_TO_FULL = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；"}
_CJK = r"\u3400-\u9fff"


def normalize_punctuation(text: str) -> str:
    """Chinese punctuation in Chinese text (whisper writes ASCII commas), no stray spaces."""
    text = text.strip()
    text = re.sub(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])", "", text)
    text = re.sub(r"[,?!:;]", lambda m: _HALF_TO_FULL[m.group()], text)
    # A full stop, except inside numbers such as 3.5.
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", "。", text)
    return text
