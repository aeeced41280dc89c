"""The transcripts of a month's call pages: every utterance of the month's calls, as shown.

A month of a million-call store is 85,000 calls and 1.7 million utterances, so the read is built
for that: one query over the calls' time span (zone maps skip other months,
pipeline/store/call_time.py), its result fetched by column (`Store.columns`), and each line built
straight from the columns. The rows are read once: `UtteranceColumns.said` gives the (speaker,
text) of a call for the redaction of texts quoting it (pipeline/reports/monthly.py), and the stored
text of each utterance redaction changed goes to `audio_mask.load_masked_spans`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pipeline.cycles import collector_paused
from pipeline.reports.privacy import transcript_for_output
from pipeline.rules.evidence import recogniser_evidence_zh, scorecard_matching
from pipeline.rules.schema import Matching
from pipeline.store import Store
from pipeline.store.call_time import call_span, span_filter


@dataclass(frozen=True)
class TranscriptLine:
    idx: int
    speaker: str
    start_s: float
    end_s: float
    text: str
    recogniser: str = ""  # the recogniser's confidence, in Chinese (pipeline/rules/evidence.py)
    weak: bool = False  # too weak for the scorecard to judge by


Transcripts = dict[str, tuple[TranscriptLine, ...]]


def load_transcripts(store: Store, call_ids: Sequence[str]) -> Transcripts:
    """The utterances of these calls, in one query."""
    return read_transcripts(store, call_ids)[0]


def read_transcripts(store: Store, call_ids: Sequence[str]) -> tuple[Transcripts, dict[tuple[str, int], str]]:
    """`load_transcripts`, and the stored text of each utterance that redaction changed, by (call,
    utterance index): what `audio_mask.load_masked_spans` needs without reading the month again."""
    return UtteranceColumns.read(store, call_ids).transcripts(store)


class UtteranceColumns:
    """The stored utterances of some calls with their recogniser evidence, by column, in the order
    of call and utterance index."""

    def __init__(self, call_ids: Sequence[str], columns: dict[str, list]) -> None:
        self.call_ids = list(call_ids)
        self.columns = columns

    @classmethod
    def read(cls, store: Store, call_ids: Sequence[str]) -> UtteranceColumns:
        # The calls as a table joined once (not a list searched per row, nor a subquery per
        # utterance): 10.4 s → 2.1 s for a month of 8,900 calls in a 100,000-call store. An utterance
        # is recognised when it has a first timed character (idx 0): one row in 17 is joined. Each
        # table is read only over the calls' time span (zone maps skip the rest: 24.6 s → 2.6 s of
        # SQL for a month of a million-call store, bench/results/db-scale-2026-11-29d.md).
        span = call_span(store.db, call_ids)
        on_u, u_params = span_filter("u", span)
        on_e, e_params = span_filter("e", span)
        on_t, t_params = span_filter("t", span)
        columns = store.columns(
            "WITH wanted AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS call_id), "
            "timed AS (SELECT call_id, utterance_idx FROM char_timings t "
            f"WHERE idx = 0 AND call_id IN (SELECT call_id FROM wanted){on_t}), "
            "evidence AS (SELECT * FROM utterance_evidence e "
            f"WHERE call_id IN (SELECT call_id FROM wanted){on_e}) "
            "SELECT u.call_id, u.idx, u.speaker, u.start_s, u.end_s, u.text, u.confidence, e.avg_logprob, "
            "e.no_speech_prob, e.compression_ratio, coalesce(e.looping, false) AS looping, e.unheard_s, "
            "t.call_id IS NOT NULL AS recognised FROM utterances u LEFT JOIN evidence e "
            "ON e.call_id = u.call_id AND e.utterance_idx = u.idx "
            "LEFT JOIN timed t ON t.call_id = u.call_id AND t.utterance_idx = u.idx "
            f"WHERE u.call_id IN (SELECT call_id FROM wanted){on_u} ORDER BY u.call_id, u.idx",
            [list(call_ids), *t_params, *e_params, *u_params],
        )
        return cls(call_ids, columns)

    def runs(self) -> Iterator[tuple[str, int, int]]:
        """Each call's id and the range of its rows."""
        ids = self.columns["call_id"]
        first = 0
        for i in range(1, len(ids) + 1):
            if i == len(ids) or ids[i] != ids[first]:
                yield ids[first], first, i
                first = i

    def said(self) -> dict[str, list[tuple[str, str]]]:
        """Each call's utterances as (speaker, text), in order."""
        return {call_id: self._said(first, end) for call_id, first, end in self.runs()}

    def _said(self, first: int, end: int) -> list[tuple[str, str]]:
        """(speaker, text) of the rows [first, end)."""
        return list(zip(self.columns["speaker"][first:end], self.columns["text"][first:end], strict=True))

    def transcripts(self, store: Store) -> tuple[Transcripts, dict[tuple[str, int], str]]:
        """The lines as the call pages show them, and the stored text of those redaction changed."""
        with collector_paused():
            return self._transcripts(store)

    def _transcripts(self, store: Store) -> tuple[Transcripts, dict[tuple[str, int], str]]:
        rows = self.columns
        matching = _scorecard_matching(store, self.call_ids)
        # Lines are built from the columns (a dict per row cost 11.4 s of a million-call store's
        # month), and the recogniser's evidence is judged from the row as read (`_HeardRow`), not
        # from an Utterance built for it: a frozen record of 15 fields costs more than the judgement.
        heard = [
            _HeardRow(*values)
            for values in zip(
                rows["start_s"],
                rows["end_s"],
                rows["confidence"],
                rows["avg_logprob"],
                rows["no_speech_prob"],
                rows["compression_ratio"],
                rows["looping"],
                rows["unheard_s"],
                strict=True,
            )
        ]
        idx, speakers, texts, recognised = (rows[name] for name in ("idx", "speaker", "text", "recognised"))
        transcripts = {}
        changed: dict[tuple[str, int], str] = {}
        for call_id, first, end in self.runs():
            calls_matching = matching[call_id]
            # a call's text is redacted as a whole (numbers split over utterances)
            shown = transcript_for_output(self._said(first, end))
            lines = []
            for i, text in zip(range(first, end), shown, strict=True):
                note, weak = recogniser_evidence_zh(heard[i], calls_matching, recognised[i])
                lines.append(
                    TranscriptLine(
                        idx[i], speakers[i], heard[i].start, heard[i].end, text, note, weak is not None
                    )
                )
                if text != texts[i]:
                    changed[(call_id, idx[i])] = texts[i]
            transcripts[call_id] = tuple(lines)
        return transcripts, changed


class _HeardRow(NamedTuple):
    """A stored utterance's times and recogniser evidence (`evidence.Heard`), as the month reads it."""

    start: float
    end: float
    confidence: float
    avg_logprob: float | None
    no_speech_prob: float | None
    compression_ratio: float | None
    looping: bool
    unheard_s: float | None
    chars: tuple[()] = ()  # not read: whether the text was recognised is a column of its own


def _scorecard_matching(store: Store, call_ids: Sequence[str]) -> defaultdict[str, Matching]:
    """Each call's current scorecard's `matching` limits (the defaults for calls not scored)."""
    # each card's text read once (joined per call it was 2.5 GB of copies for a month of 85,000 calls)
    rows = store.columns(
        "SELECT call_id, scorecard_hash FROM scores WHERE is_current AND call_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(call_ids)],
    )
    contents = {
        r["scorecard_hash"]: r["content"]
        for r in store.query(
            "SELECT scorecard_hash, content FROM scorecards WHERE scorecard_hash IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(set(rows["scorecard_hash"]))],
        )
    }
    parsed: dict[str, Matching] = {}
    out: defaultdict[str, Matching] = defaultdict(Matching)
    for call_id, scorecard_hash in zip(rows["call_id"], rows["scorecard_hash"], strict=True):
        content = contents.get(scorecard_hash) or ""
        if content not in parsed:
            parsed[content] = scorecard_matching(content)
        out[call_id] = parsed[content]
    return out
