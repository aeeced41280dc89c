"""NO-INTERRUPT: one party starts talking while the other is talking.

An interruption by X of Y at time t, where X's voiced stretch starts at t:
  * Y is talking at t (t lies inside one of Y's voiced stretches, pauses ≤ 0.3 s bridged);
  * Y had already spoken at least `interrupt_min_prior_speech_s` (1.0 s) of voiced time in the
    turn that t falls in (Y's speech with pauses shorter than the turn gap, 0.8 s);
  * the overlap, from t until X stops or Y's turn ends, lasts at least `interrupt_min_overlap_s`
    (0.3 s);
  * X's words in the overlap (or, when the recogniser timed none there, the first words of X's
    utterance) are not only back-channels (是的、对、好的、嗯 …); an overlap with no recognised
    words at all is not counted either (a cough, a breath or an unrecognised 嗯) — unless X
    goes on talking beyond `backchannel_floor_s` (2 s): 对，对 and then three seconds over the
    customer is taking the floor;
  * X does not merely chime in: a stretch of X no longer than `backchannel_max_s` (1 s) that ends
    while Y's turn goes on, with at most `backchannel_max_chars` (3) recognised characters, is a
    back-channel whatever the recogniser made of it (嗯 often comes out as 文 or 恩).
The agent's interruptions are the handbook's deductions; the customer's are reported as context.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.config import MetricsConfig, TurnConfig
from pipeline.metrics.intervals import Span, containing, intersect, total, union
from pipeline.records import ROLES, Interruption, SpeechTurn, Utterance
from pipeline.text import normalize


def find_interruptions(
    utterances: Sequence[Utterance], activity: Sequence[SpeechTurn], config: MetricsConfig, turns: TurnConfig
) -> list[Interruption]:
    events: list[Interruption] = []
    for by, other in (ROLES, ROLES[::-1]):
        own = union(((v.start, v.end) for v in activity if v.speaker == by), config.pause_excluded_s)
        theirs = union(((v.start, v.end) for v in activity if v.speaker == other), config.pause_excluded_s)
        their_turns = union(theirs, turns.turn_gap_s)
        for start, end in own:
            talking = containing(theirs, start)
            if talking is None or talking[0] >= start:
                continue
            turn = containing(their_turns, start) or talking
            prior = total(intersect(theirs, [(turn[0], start)]))
            # Y goes on talking until the end of the turn: the leak rule can blank a few frames of
            # Y's channel while X is loud, which is not Y stopping.
            overlap_end = min(end, turn[1])
            if prior < config.interrupt_min_prior_speech_s - 1e-9:
                continue
            if overlap_end - start < config.interrupt_min_overlap_s - 1e-9:
                continue
            floor = config.interrupt_min_char_probability
            words = words_in(utterances, by, words_window(start, overlap_end), floor) or opening_words(
                utterances, by, start, floor=floor
            )
            if not words:
                continue
            if is_backchannel(words, config.backchannels) and end - start <= config.backchannel_floor_s:
                continue
            chime_in = end - start <= config.backchannel_max_s and end < turn[1]
            if chime_in and len(words) <= config.backchannel_max_chars:
                continue
            interrupted = words_in(utterances, other, (turn[0], overlap_end))
            events.append(
                Interruption(
                    round(start, 3),
                    round(overlap_end, 3),
                    by,
                    words,
                    interrupted,
                    round(overlap_end - start, 3),
                )
            )
    return sorted(events, key=lambda e: e.start)


def words_window(start: float, overlap_end: float) -> Span:
    """Where the interrupter's words over the other party are read: the overlap, a little wider
    (character times are the recogniser's, not the voice activity's)."""
    return start - 0.1, overlap_end + 0.2


def words_in(utterances: Sequence[Utterance], speaker: str, window: Span, floor: float = 0.0) -> str:
    """The party's recognised characters whose time falls in the window, each heard with at least
    `floor` probability (below it the recogniser guessed: a 嗯 written 可以 at 0.05)."""
    lo, hi = window
    return "".join(
        c.char
        for u in utterances
        if u.speaker == speaker and u.end >= lo and u.start <= hi
        for c in u.chars
        if lo <= (c.start + c.end) / 2 <= hi and c.probability >= floor
    )


def opening_words(
    utterances: Sequence[Utterance], speaker: str, at: float, count: int = 4, floor: float = 0.0
) -> str:
    """The first characters of the party's utterance starting at `at` (the recogniser's times for
    the words said over the other party are the least reliable), those heard with at least `floor`."""
    starting = [u for u in utterances if u.speaker == speaker and abs(u.start - at) <= 0.5]
    return "".join(c.char for c in starting[0].chars[:count] if c.probability >= floor) if starting else ""


def is_backchannel(text: str, backchannels: Sequence[str]) -> bool:
    """Only acknowledgement words (是的、对、好的、嗯 …), in any number and order."""
    rest = normalize(text)
    for token in sorted((normalize(b) for b in backchannels), key=len, reverse=True):
        rest = rest.replace(token, "")
    return rest == ""
