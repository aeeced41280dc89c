"""The review MP3 says what the page hides: the spans whose text redaction masked are covered.

A call page shows 138****5678; its recording must not play the number. The times come from the
recogniser's character timings (`char_timings`): each character that redaction replaced or removed
is covered, from its start to its end, with a margin for the recogniser's timing error. An utterance
whose text changed but whose characters cannot be placed (no timings, or timings that do not spell
its text) is covered whole. The cover is a quiet 1 kHz tone, so a listener hears that something
was taken out rather than a gap that looks like a dropped line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Protocol

import numpy as np

from pipeline.store import Store
from pipeline.store.call_time import call_span, span_filter

Span = tuple[float, float]  # seconds from the start of the recording

MARGIN_S = 0.25  # whisper's word times are off by up to a couple of hundred milliseconds
TONE_HZ = 1000.0
TONE_LEVEL = 0.05  # about -26 dBFS: audible, not startling
_FADE_S = 0.01  # no click at the edges of the tone


@dataclass(frozen=True)
class SpokenLine:
    """An utterance as stored: its text, times and the recogniser's timed characters."""

    speaker: str
    start: float
    end: float
    text: str
    chars: tuple[tuple[str, float, float], ...] = ()  # (char, start, end), the spoken characters


def masked_spans(lines: Sequence[SpokenLine], redacted: Sequence[str]) -> tuple[Span, ...]:
    """The recording's spans to cover: where the text of `lines` differs from `redacted` (the
    same utterances after redaction), merged and in time order."""
    spans: list[Span] = []
    for line, shown in zip(lines, redacted, strict=True):
        if shown == line.text:
            continue
        changed = _changed_positions(line.text, shown)
        times = _char_times(line.text, line.chars)
        if times is None:
            spans.append((line.start, line.end))
            continue
        placed = [times[i] for i in changed if times[i] is not None]
        if not placed and changed:
            spans.append((line.start, line.end))  # only unspoken characters changed: be safe
        spans += [(max(0.0, start - MARGIN_S), end + MARGIN_S) for start, end in placed]  # type: ignore[misc]
    return _merged(spans)


def _changed_positions(original: str, shown: str) -> list[int]:
    """Positions in `original` that are not carried over unchanged into `shown`."""
    kept = set()
    for block in SequenceMatcher(None, original, shown, autojunk=False).get_matching_blocks():
        kept.update(range(block.a, block.a + block.size))
    return [i for i in range(len(original)) if i not in kept]


def _char_times(text: str, chars: Sequence[tuple[str, float, float]]) -> list[Span | None] | None:
    """Each position of `text` with its time (None for punctuation and spaces, which have none), or
    None when the timed characters do not spell the text's spoken characters in order."""
    if not chars:
        return None
    times: list[Span | None] = []
    k = 0
    for c in text:
        if k < len(chars) and chars[k][0] == c:
            times.append((chars[k][1], chars[k][2]))
            k += 1
        elif c.isalnum():
            return None  # a spoken character with no timing: the two disagree
        else:
            times.append(None)
    return times if k == len(chars) else None


def _merged(spans: Sequence[Span]) -> tuple[Span, ...]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def cover(samples: np.ndarray, rate: int, spans: Sequence[Span]) -> np.ndarray:
    """`samples` (mono) with each span replaced by the tone; a copy."""
    out = samples.copy()
    for start, end in spans:
        a, b = max(0, round(start * rate)), min(len(out), round(end * rate))
        if b <= a:
            continue
        t = np.arange(b - a) / rate
        tone = TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * t)
        fade = min(round(_FADE_S * rate), (b - a) // 2)
        if fade:
            ramp = np.linspace(0.0, 1.0, fade)
            tone[:fade] *= ramp
            tone[-fade:] *= ramp[::-1]
        out[a:b] = tone.astype(out.dtype)
    return out


def spans_tag(spans: Sequence[Span]) -> str:
    """A short name for a set of spans, so that a recording covered differently gets a new file."""
    if not spans:
        return ""
    text = ";".join(f"{a:.3f}-{b:.3f}" for a, b in spans)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ShownLine(Protocol):
    """An utterance as a report shows it (`transcripts.TranscriptLine`): its text already redacted."""

    @property
    def idx(self) -> int: ...
    @property
    def speaker(self) -> str: ...
    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def text(self) -> str: ...


def load_masked_spans(
    store: Store,
    transcripts: Mapping[str, Sequence[ShownLine]],
    stored_texts: Mapping[tuple[str, int], str] | None = None,
) -> dict[str, tuple[Span, ...]]:
    """The spans to cover in each call's review recording: where the shown `transcripts` differ from
    the stored text. Redaction is not run again, and character timings are read only for the few
    utterances that changed (a month holds tens of millions of them). `stored_texts`: the stored
    text of at least every changed utterance, by (call, index), when the caller has them
    (`transcripts.read_transcripts`, `monthly.read_month`); else they are read."""
    call_ids = list(transcripts)
    if not call_ids:
        return {}
    span = call_span(store.db, call_ids)  # zone maps skip other months (pipeline/store/call_time.py)
    if stored_texts is not None:
        stored = dict(stored_texts)
    else:
        during, span_params = span_filter("u", span)
        stored = {
            (row["call_id"], row["idx"]): row["text"]
            for row in store.query(
                "SELECT call_id, idx, text FROM utterances u WHERE call_id IN (SELECT unnest(?::VARCHAR[]))"
                + during,
                [call_ids, *span_params],
            )
        }
    changed = {
        (call_id, line.idx)
        for call_id, lines in transcripts.items()
        for line in lines
        if stored.get((call_id, line.idx), line.text) != line.text
    }
    if not changed:
        return {}
    chars: dict[tuple[str, int], list[tuple[str, float, float]]] = {}
    during, span_params = span_filter("t", span)
    for row in store.query(
        "SELECT call_id, utterance_idx, char, start_s, end_s FROM char_timings t "
        "WHERE list_contains(?, call_id) AND list_contains(?, call_id || chr(31) || CAST(utterance_idx AS VARCHAR))"
        f"{during} ORDER BY call_id, utterance_idx, idx",
        [sorted({c for c, _ in changed}), [f"{c}\x1f{i}" for c, i in changed], *span_params],
    ):
        chars.setdefault((row["call_id"], row["utterance_idx"]), []).append(
            (row["char"], row["start_s"], row["end_s"])
        )
    out = {}
    for call_id in sorted({c for c, _ in changed}):
        shown = [line for line in transcripts[call_id] if (call_id, line.idx) in changed]
        lines = [
            SpokenLine(
                line.speaker,
                line.start_s,
                line.end_s,
                stored[(call_id, line.idx)],
                tuple(chars.get((call_id, line.idx), ())),
            )
            for line in shown
        ]
        spans = masked_spans(lines, [line.text for line in shown])
        if spans:
            out[call_id] = spans
    return out
