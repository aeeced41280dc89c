"""Word → utterance assembly, character timings, punctuation, model folder handling."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.asr.guards import WindowEvidence, find_loops, unheard_seconds
from pipeline.asr.model import BUNDLED_MODEL_BYTES, bundled_model_dir, check_model_dir
from pipeline.asr.packing import TURN_GAP_S, TURN_PADDING_S, Piece
from pipeline.asr.transcribe import (
    MAX_JOINED_S,
    AsrWord,
    _to_recording_times,
    batch_chunks,
    char_timings,
    normalize_punctuation,
    transcribe_turns,
    turn_groups,
    words_to_utterances,
)
from pipeline.config import AsrConfig
from pipeline.errors import CallQAError
from pipeline.records import SpeechTurn


def test_char_timings_split_tokens_evenly_and_skip_punctuation() -> None:
    chars = char_timings(AsrWord("还，", 1.0, 1.2, 0.9))
    assert [(c.char, c.start, c.end) for c in chars] == [("还", 1.0, 1.2)]
    chars = char_timings(AsrWord("这种", 0.0, 0.6, 0.8))
    assert [(c.char, c.start, c.end) for c in chars] == [("这", 0.0, 0.3), ("种", 0.3, 0.6)]
    assert [c.char for c in char_timings(AsrWord("32GB", 0, 1, 1))] == ["3", "2", "G", "B"]


def test_words_go_to_the_turn_they_overlap() -> None:
    turns = [SpeechTurn("agent", 0.0, 2.0), SpeechTurn("agent", 5.0, 7.0)]
    words = [
        AsrWord("您好", 0.1, 0.5, 0.9),
        AsrWord("，", 0.5, 0.5, 0.9),
        AsrWord("请问", 5.1, 5.5, 0.7),
        AsrWord("吗", 6.9, 7.3, 0.5),  # runs past the turn end: still this turn, timing clipped
        AsrWord("噪", 20.0, 20.2, 0.1),
    ]  # far from every turn: dropped
    first, second = words_to_utterances(words, turns)
    assert (first.text, first.start, first.end) == ("您好，", 0.0, 2.0)
    assert second.text == "请问吗" and second.chars[-1].end == 7.0
    assert second.confidence == pytest.approx(0.6)


def test_turn_without_words_gives_no_utterance() -> None:
    assert words_to_utterances([], [SpeechTurn("customer", 0, 1)]) == []


def test_joined_signal_times_map_back_to_the_recording() -> None:
    # turn A cut from 10.0 s (placed at 0.0 on the joined signal, 3 s long), turn B from 40.0 s
    # (placed at 4.0 after a 1 s gap)
    # (the second piece is the other party's, as when both channels share one joined signal)
    pieces = [Piece(0, 0.0, 10.0, 3.0), Piece(1, 4.0, 40.0, 2.0)]
    assert _to_recording_times([AsrWord("好", 1.0, 1.2, 1), AsrWord("的", 4.5, 4.7, 1)], pieces) == [
        (0, AsrWord("好", 11.0, 11.2, 1)),
        (1, AsrWord("的", 40.5, 40.7, 1)),
    ]
    # a word whisper timed into the gap (its sentence unknown) belongs to the nearer piece, clamped
    # inside it
    ((party, moved),) = _to_recording_times([AsrWord("吗", 3.1, 3.3, 1)], pieces)
    assert party == 0 and moved.start == pytest.approx(13.0) and moved.end == pytest.approx(13.0)


def _starts(words: list[AsrWord], pieces: list[Piece]) -> list[float]:
    """Where on the recording each word of one decoding lands."""
    return [moved.start for _, moved in _to_recording_times(words, pieces)]


def test_a_word_timed_into_the_gap_goes_with_its_own_sentence() -> None:
    # the return after a hold: whisper timed 感谢 early, into the silence before the turn and
    # nearer the check-in before it; its sentence (segment 1) goes on in the next turn
    pieces = [Piece(0, 0.0, 100.0, 3.0), Piece(0, 4.0, 146.0, 4.0)]
    words = [
        AsrWord("请您再等一下", 0.5, 2.6, 0.9, None, 0),
        AsrWord("感谢", 3.1, 3.4, 0.7, None, 1),
        AsrWord("您的耐心等待", 4.2, 5.6, 0.9, None, 1),
    ]
    assert _starts(words, pieces) == pytest.approx([100.5, 146.0, 146.2])
    # a sentence's last word timed late, into the gap: it stays with its sentence
    late = [
        AsrWord("请您再等", 0.5, 2.0, 0.9, None, 0),
        AsrWord("一下", 3.5, 3.9, 0.9, None, 0),
        AsrWord("您的耐心等待", 4.2, 5.6, 0.9, None, 1),
    ]
    assert _starts(late, pieces) == pytest.approx([100.5, 103.0, 146.2])
    # a short turn with no word of its own keeps the word timed just after it, though whisper wrote
    # it into the next turn's sentence (a backchannel 是的 then 这个不对)
    short = [Piece(0, 0.0, 100.0, 1.0), Piece(0, 2.0, 120.0, 3.0)]
    backchannel = [AsrWord("是的", 1.1, 1.3, 0.9, None, 0), AsrWord("这个不对", 2.2, 3.0, 0.9, None, 0)]
    assert _starts(backchannel, short) == pytest.approx([101.0, 120.2])
    # a sentence on both sides of the gap: the nearer piece, as without sentences
    both = [
        AsrWord("好", 2.0, 2.5, 0.9, None, 0),
        AsrWord("的", 3.1, 3.3, 0.9, None, 0),
        AsrWord("您", 4.1, 4.3, 0.9, None, 0),
    ]
    assert _starts(both, pieces)[1] == pytest.approx(103.0)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("您好,请问有什么可以帮您?", "您好，请问有什么可以帮您？"),
        ("价格是3.5元.", "价格是3.5元。"),
        ("好的 谢谢", "好的谢谢"),
        ("OK, 没问题!", "OK，没问题！"),
    ],
)
def test_punctuation_is_chinese(raw: str, clean: str) -> None:
    assert normalize_punctuation(raw) == clean


def test_bundled_model_is_joined_once_and_checked(tmp_path: Path) -> None:
    folder = bundled_model_dir(tmp_path)
    assert (folder / "model.bin").stat().st_size == BUNDLED_MODEL_BYTES
    assert check_model_dir(folder) == folder.resolve()
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert bundled_model_dir(tmp_path) == folder and (folder / "model.bin").stat().st_mtime_ns == stamp
    # a truncated join (disk full, killed process) is detected by size and redone
    with (folder / "model.bin").open("r+b") as handle:
        handle.truncate(1000)
    assert (bundled_model_dir(tmp_path) / "model.bin").stat().st_size == BUNDLED_MODEL_BYTES


def test_user_model_folder_without_tokenizer_is_refused(tmp_path: Path) -> None:
    source = bundled_model_dir(tmp_path / "cache")
    user = tmp_path / "large-v3"
    shutil.copytree(source, user)
    (user / "tokenizer.json").unlink()
    with pytest.raises(CallQAError, match=r"tokenizer\.json"):
        check_model_dir(user)
    with pytest.raises(CallQAError, match="no such folder"):
        check_model_dir(tmp_path / "missing")


# ---- loop guards and recogniser evidence (pipeline/asr/guards.py) -----------------------------


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("请您稍后对等从不仅仅仅仅仅仅仅仅", "仅"),  # the pilot's drawn-out closing
        ("请问还有其他的忙的忙的忙的忙", "的忙"),
        ("谢谢您，谢谢您，谢谢您，谢谢您", "谢谢您"),  # punctuation inside the loop
        ("哈哈哈哈哈", "哈"),
    ],
)
def test_loops_are_found(text: str, loop: str) -> None:
    (found,) = find_loops(text)
    assert found.unit == loop and text[found.start : found.end].replace("，", "").startswith(loop * 3)


@pytest.mark.parametrize(
    "text",
    [
        "对对对对",  # people say this
        "好的好的好的",
        "您好您好",
        "请问还有请还是需要帮助的忙",  # garbled, but not a loop: the word probabilities tell
        "我的电话是四零零八八八八八八八",  # digit runs repeat legitimately
        "要零要零要零要九九零零三零七要二三四",  # an ID number read with 幺
    ],
)
def test_ordinary_repetition_is_not_a_loop(text: str) -> None:
    assert find_loops(text) == []


def test_utterances_carry_the_weakest_window_and_the_loop_flag() -> None:
    good = WindowEvidence(avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.2, temperature=0.0)
    bad = WindowEvidence(avg_logprob=-1.3, no_speech_prob=0.4, compression_ratio=2.6, temperature=0.4)
    turns = [SpeechTurn("agent", 0.0, 3.0), SpeechTurn("agent", 5.0, 9.0)]
    words = [
        AsrWord("您好", 0.1, 0.5, 0.9, good),
        AsrWord("请您稍后对等从不", 5.1, 6.5, 0.7, good),
        AsrWord("仅仅仅仅仅仅仅仅", 6.5, 8.9, 0.6, bad),
    ]
    first, second = words_to_utterances(words, turns)
    assert (first.avg_logprob, first.no_speech_prob, first.compression_ratio, first.looping) == (
        -0.2,
        0.01,
        1.2,
        False,
    )
    assert (second.avg_logprob, second.no_speech_prob, second.compression_ratio, second.looping) == (
        -1.3,
        0.4,
        2.6,
        True,
    )
    assert second.unheard_s == 0.2  # words from 5.1 to 8.9 in a turn from 5.0 to 9.0
    (typed,) = words_to_utterances([AsrWord("您好", 0.1, 0.5, 0.9)], turns[:1])
    assert typed.avg_logprob is None and not typed.looping


class _ScriptedRecognizer:
    """Stands in for whisper: the joined pass loops on the second turn; decoding that turn alone
    with repeats blocked gives `retry` (what the real model does is measured in bench/asr_guards.py)."""

    def __init__(self, retry: str, loop_retry: int = 3) -> None:
        self.config = AsrConfig(loop_retry_no_repeat_ngram_size=loop_retry)
        self.retry = retry
        self.calls: list[int | None] = []

    def words(
        self, signal: np.ndarray, vad: bool = True, no_repeat_ngram_size: int | None = None
    ) -> list[AsrWord]:
        self.calls.append(no_repeat_ngram_size)
        if no_repeat_ngram_size is None:  # the joined pass: turn 1 at 0.2 s, turn 2 at 2.9 s
            return [
                AsrWord("您好", 0.3, 0.9, 0.9),
                AsrWord("请您稍后对等从不", 3.0, 4.0, 0.7),
                AsrWord("仅仅仅仅仅仅仅仅", 4.0, 5.5, 0.6),
            ]
        return [AsrWord(self.retry, 0.3, 2.0, 0.8)]


@pytest.mark.parametrize(
    ("retry", "expected", "looping"),
    [
        ("请您稍后对本次服务进行评价", "请您稍后对本次服务进行评价", False),  # the retry is kept
        (
            "请您仅仅仅仅仅仅仅仅仅仅",
            "请您稍后对等从不仅仅仅仅仅仅仅仅",
            True,
        ),  # loops more: first kept, flagged
        ("请您稍后对等仅仅仅仅仅仅", "请您稍后对等仅仅仅仅仅仅", True),  # loops less: kept, still flagged
    ],
)
def test_a_looping_turn_is_decoded_again_alone(retry: str, expected: str, looping: bool) -> None:
    track = np.zeros(16000 * 10, dtype=np.float32)
    turns = [SpeechTurn("agent", 0.5, 1.5), SpeechTurn("agent", 4.0, 6.5)]
    recognizer = _ScriptedRecognizer(retry)
    first, second = transcribe_turns(track, 16000, turns, recognizer)  # type: ignore[arg-type]
    assert first.text == "您好" and (second.text, second.looping) == (expected, looping)
    assert recognizer.calls == [None, 3]  # one joined pass, one retry of the looping turn only
    off = _ScriptedRecognizer(retry, loop_retry=0)
    assert transcribe_turns(track, 16000, turns, off)[1].looping and off.calls == [None]  # type: ignore[arg-type]


class _DotsRecognizer:
    """Stands in for whisper: the joined pass writes the second turn as dots (seen after hold music);
    that turn decoded alone gives its words."""

    def __init__(self) -> None:
        self.config = AsrConfig()
        self.lengths: list[int] = []

    def words(
        self, signal: np.ndarray, vad: bool = True, no_repeat_ngram_size: int | None = None
    ) -> list[AsrWord]:
        self.lengths.append(len(signal))
        if len(self.lengths) == 1:  # the joined pass: turn 1 at 0.2 s, turn 2 at 2.9 s
            return [AsrWord("您好", 0.3, 0.9, 0.9), AsrWord("………………", 3.0, 5.5, 0.4)]
        return [AsrWord("感谢您的耐心等待", 0.3, 2.2, 0.8)]


def test_a_turn_written_as_dots_is_decoded_again_alone() -> None:
    track = np.zeros(16000 * 10, dtype=np.float32)
    turns = [SpeechTurn("agent", 0.5, 1.5), SpeechTurn("agent", 4.0, 6.5)]
    recognizer = _DotsRecognizer()
    first, second = transcribe_turns(track, 16000, turns, recognizer)  # type: ignore[arg-type]
    assert (first.text, second.text) == ("您好", "感谢您的耐心等待")
    assert len(recognizer.lengths) == 2 and recognizer.lengths[1] == int((2.5 + 0.4) * 16000)


def test_speech_left_without_text_is_measured() -> None:
    assert unheard_seconds([(1.0, 2.0), (1.5, 3.0), (5.0, 6.0)], (0.5, 10.0)) == pytest.approx(9.5 - 3.0)
    assert unheard_seconds([], (0.0, 4.0)) == 4.0
    assert unheard_seconds([(-1.0, 11.0)], (0.0, 4.0)) == 0.0
    # a turn of 10 s whose words stop after 2.5 s: whisper dropped its drawn-out end
    turn = SpeechTurn("agent", 20.0, 30.0)
    (heard,) = words_to_utterances([AsrWord("请问还有其他", 20.1, 22.5, 0.9)], [turn])
    assert heard.unheard_s == pytest.approx(7.6)


class _CountingRecognizer:
    """Stands in for whisper: one word at the start of every second of the signal it is given."""

    def __init__(self) -> None:
        self.config = AsrConfig(loop_retry_no_repeat_ngram_size=0)
        self.lengths_s: list[float] = []

    def words(
        self, signal: np.ndarray, vad: bool = True, no_repeat_ngram_size: int | None = None
    ) -> list[AsrWord]:
        self.lengths_s.append(len(signal) / 16000)
        return [AsrWord("好", float(t), t + 0.3, 0.9) for t in range(int(len(signal) / 16000))]


def test_hours_of_turns_are_joined_a_few_minutes_at_a_time() -> None:
    """Whisper's features of the joined turns are held at once: a long recording's turns go in
    groups of at most MAX_JOINED_S, and every turn is still heard; a call's turns are one pass."""
    track = np.zeros(16000 * 1300, dtype=np.float32)
    turns = [SpeechTurn("agent", 10.0 * i, 10.0 * i + 4.0) for i in range(100)]  # 8 min joined
    recognizer = _CountingRecognizer()
    utterances = transcribe_turns(track, 16000, turns, recognizer)  # type: ignore[arg-type]
    assert len(recognizer.lengths_s) == 2 and max(recognizer.lengths_s) <= MAX_JOINED_S
    assert [u.start for u in utterances] == [t.start for t in turns]
    groups = turn_groups(turns, MAX_JOINED_S)
    assert [t for g in groups for t in g] == turns and len(groups) == 2
    call = _CountingRecognizer()
    assert len(transcribe_turns(track, 16000, turns[:20], call)) == 20 and len(call.lengths_s) == 1  # type: ignore[arg-type]


def test_batched_passes_hold_both_parties_of_a_call_and_minutes_of_a_long_recording() -> None:
    agent = [SpeechTurn("agent", 10.0 * i, 10.0 * i + 4.0) for i in range(20)]
    customer = [SpeechTurn("customer", 10.0 * i + 5.0, 10.0 * i + 8.0) for i in range(20)]
    # a call: one pass with both parties, every turn once, in order
    (call,) = batch_chunks([agent, customer], MAX_JOINED_S)
    assert [(party, group) for party, group in call] == [(0, agent), (1, customer)]
    # three hours: passes within MAX_JOINED_S of joined turns, every turn exactly once
    long_agent = [SpeechTurn("agent", 10.0 * i, 10.0 * i + 4.0) for i in range(1080)]
    long_customer = [SpeechTurn("customer", 10.0 * i + 5.0, 10.0 * i + 8.0) for i in range(1080)]
    chunks = batch_chunks([long_agent, long_customer], MAX_JOINED_S)
    joined = [
        sum(t.end - t.start + 2 * TURN_PADDING_S + TURN_GAP_S for _, group in chunk for t in group)
        for chunk in chunks
    ]
    assert max(joined) <= MAX_JOINED_S + 1e-9 and len(chunks) > 10
    assert [t for chunk in chunks for party, group in chunk if party == 0 for t in group] == long_agent
    assert [t for chunk in chunks for party, group in chunk if party == 1 for t in group] == long_customer
