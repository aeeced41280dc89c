"""Personal data in transcripts: found and masked before any text leaves the core store.

The QA database keeps what was said, unredacted (the core store, standards section 8). Everything
that leaves it — exports, monthly reports and review pages, `callqa show`, log lines — passes
through this module once, at the output's own boundary, unless `[privacy] unredacted_outputs`
names that output.

What is masked (docs/operations.md has the table with examples): phone, ID and bank card numbers
(`privacy_numbers.py`: read as people say them, in groups, pairs, numerals and ASR homophones), and
addresses, e-mails, WeChat/QQ ids, licence plates, passports, credentials and names introduced as
such (`privacy_words.py`).

File names, paths and call ids (the caller's number is often in them) go through `redact_name`
(`privacy_names.py`) wherever a person reads them; `Redactor.name` and `Redactor.line` (a message
that may quote a path, an error) apply it as configured.

Three entry points for transcripts: `redact_text` for one text on its own (a log line, an error message),
`redact_utterances` for a call's utterances read together (a number split over two utterances or
two speakers, a party repeating a hidden part of a number), and `redact_with_call` for a text that
quotes a call (a finding's evidence, a CRM note), masked with the numbers of the call around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipeline.config import OutputName, PrivacyConfig
from pipeline.privacy_names import redact_name
from pipeline.privacy_numbers import (
    BANK_CARD,
    ID_CARD,
    JOIN,
    LANDLINE,
    LOCAL_PHONE,
    MOBILE_LABEL,
    Hit,
    complete_number,
    digitish,
    followed_by_unit,
    number_hits,
    runs,
)
from pipeline.privacy_words import ADDRESS, EMAIL, NAME, asked_credential, word_hits

__all__ = [
    "ADDRESS",
    "BANK_CARD",
    "EMAIL",
    "ID_CARD",
    "LANDLINE",
    "LOCAL_PHONE",
    "MOBILE_LABEL",
    "NAME",
    "Redactor",
    "install_log_redaction",
    "redact_name",
    "redact_text",
    "redact_utterances",
    "redact_with_call",
    "redactor_for",
]


# ---- applying hits ----------------------------------------------------------------------------


def _apply(text: str, hits: Sequence[Hit]) -> str:
    """Replace the hits; of overlapping ones the one that starts first and is longest wins (an
    address that contains a number wins over it; on a tie the earlier in `hits`)."""
    chosen: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start))):
        if chosen and hit.start < chosen[-1].end:
            continue
        chosen.append(hit)
    out, pos = [], 0
    for hit in chosen:
        out.append(text[pos : hit.start])
        out.append(_replacement(text, hit) if hit.groups else _span_replacement(text, hit))
        pos = hit.end
    out.append(text[pos:])
    return "".join(out)


def _span_replacement(text: str, hit: Hit) -> str:
    """A labelled span: the label in every utterance's part of it (the join characters stay)."""
    assert hit.label is not None
    parts = text[hit.start : hit.end].split(JOIN)
    if len(parts) == 1:
        return hit.label
    return JOIN.join(_keep_edges(p, hit.label) if any(digitish(c) for c in p) else p for p in parts)


def _replacement(text: str, hit: Hit) -> str:
    """A number's replacement, group by group: a mask is split by how many digits each group holds,
    a label written once per stretch of groups. What lies between two groups goes, unless it is the
    boundary of two utterances or words that announce the next part (，后面是), which stay."""
    out: list[str] = []
    used = 0
    labelled = False
    for k, group in enumerate(hit.groups):
        if k:
            gap = text[hit.groups[k - 1].end : group.start]
            if group.kept_before or JOIN in gap:
                out.append(gap)
                labelled = False
        if hit.masked is not None:
            out.append(hit.masked[used : used + len(group.digits)])
            used += len(group.digits)
        elif not labelled:
            out.append(hit.label or "")
            labelled = True
    if hit.masked is not None and used < len(hit.masked):
        out.append(hit.masked[used:])
    return "".join(out)


def _keep_edges(part: str, piece: str) -> str:
    """Keep what surrounds the digits inside an utterance's part (its trailing comma, leading 嗯)."""
    if not piece:
        return part
    first = next(i for i, c in enumerate(part) if digitish(c))
    last = max(i for i, c in enumerate(part) if digitish(c))
    return part[:first] + piece + part[last + 1 :]


def _hits(text: str) -> list[Hit]:
    return word_hits(text) + number_hits(text)


def redact_text(text: str) -> str:
    """One text on its own: a note, a log line, an error message (a finding's evidence, when the
    call is at hand: `redact_with_call`)."""
    if not text:
        return text
    return _apply(text, _hits(text))


def redact_utterances(lines: Sequence[tuple[str, str]]) -> list[str]:
    """The texts of a call's utterances, (speaker, text) in time order, redacted together.

    A number that one speaker spreads over consecutive utterances is caught (each speaker's
    utterances are read as one text), and so is one that diarization cut between two speakers
    (the call is read as one text too), and so is a part of a personal number that anybody repeats
    (一三八一二三四，然后呢？ or the masked middle digits, 一二三四是吧？) — it would give back the
    digits the mask hides.
    """
    out, found = _redact_call(lines)
    if found:
        out = [_mask_echoes(text, found) if text else text for text in out]
    return out


def redact_with_call(text: str | None, lines: Sequence[tuple[str, str]]) -> str | None:
    """A text quoting a call (a finding's evidence, a CRM note) redacted with the call around it:
    on its own it may hold only the part of a number (its middle digits, its second half) that is
    personal only next to the rest of the call."""
    if not text:
        return text
    return _mask_echoes(redact_text(text), _found_in_call(tuple(lines)))


@lru_cache(maxsize=16)
def _found_in_call(lines: tuple[tuple[str, str], ...]) -> tuple[Hit, ...]:
    """The personal numbers of a call (cached: every finding of a call quotes the same call)."""
    return tuple(_redact_call(lines)[1])


def _redact_call(lines: Sequence[tuple[str, str]]) -> tuple[list[str], list[Hit]]:
    out = [_apply(text, word_hits(text)) if text else text for _, text in lines]
    by_speaker: dict[str, list[int]] = {}
    for index, (speaker, _) in enumerate(lines):
        by_speaker.setdefault(speaker, []).append(index)
    found = _asked_credentials(lines, out)
    # Then the whole call in time order: a number that a diarization error cut between two
    # speakers' turns (read before either part is masked on its own). Only complete numbers across
    # a boundary count here, not guesses from the words before them.
    found += _redact_reading(out, range(len(lines)), _cut_by_diarization)
    for indices in by_speaker.values():
        found += _redact_reading(out, indices, lambda joined, hit: True)
    return out, found


_REPLY_WINDOW = 4  # utterances after a question in which its answer is looked for
_CODE_DIGITS = range(3, 9)


def _asked_credentials(lines: Sequence[tuple[str, str]], out: list[str]) -> list[Hit]:
    """A code or password the other party says in reply to a question asking for it: masked in
    `out`, in place; one hit per question with the digits said, to mask them when read back."""
    found: list[Hit] = []
    for i, (asker, question) in enumerate(lines):
        label = asked_credential(question) if question else None
        if label is None:
            continue
        said = ""
        for k in range(i + 1, min(i + 1 + _REPLY_WINDOW, len(lines))):
            if lines[k][0] == asker:
                continue  # the asker's 嗯 or 您说 between the parts of the answer
            hits = [
                Hit(r.groups[0].start, r.groups[-1].end, None, label, digits, r.groups)
                for r in runs(out[k])
                if len(digits := "".join(g.digits for g in r.groups)) in _CODE_DIGITS
                and not followed_by_unit(out[k], r.groups[-1].end)
            ]
            said += "".join(h.digits for h in hits)
            out[k] = _apply(out[k], hits)
        if said:
            found.append(Hit(0, 0, None, label, said))
    return found


def _cut_by_diarization(joined: str, hit: Hit) -> bool:
    """A complete number over exactly two consecutive utterances, neither half of which is one on
    its own (a mobile followed by the other party's digits is that mobile, not a longer number)."""
    if hit.partial or joined.count(JOIN, hit.start, hit.end) != 1:
        return False
    halves = ["", ""]
    for group in hit.groups:
        halves[JOIN in joined[hit.start : group.start]] += group.digits
    return not any(complete_number(half) for half in halves)


def _redact_reading(out: list[str], indices: Sequence[int], keep: Callable[[str, Hit], bool]) -> list[Hit]:
    """Redact the utterances `indices` of `out` read as one text, in place; the hits found."""
    if not indices:
        return []
    joined = JOIN.join(out[i].replace(JOIN, "") for i in indices)
    hits = [h for h in number_hits(joined) if keep(joined, h)]
    pieces = _apply(joined, hits).split(JOIN)
    if len(pieces) != len(indices):  # replacements keep the join characters
        raise AssertionError("redaction lost an utterance boundary")
    for i, piece in zip(indices, pieces, strict=True):
        out[i] = piece
    return hits


_ECHO_MIN_DIGITS = 4  # the masked middle four of a mobile number
_ECHO_MIN_LABELLED = 5  # of an ID or card number (its last four are often said: 尾号5678)


def _mask_echoes(text: str, found: Sequence[Hit]) -> str:
    """Mask a run of digits that repeats a hidden part of a personal number found in the call; a
    part that its mask leaves visible anyway (the carrier prefix, the last four) stays, and so does
    a run under five digits that only an ID or card number holds (尾号, or chance)."""
    hits = []
    for run in runs(text):
        digits = "".join(g.digits for g in run.groups)
        end = run.groups[-1].end
        if len(digits) < _ECHO_MIN_DIGITS or (len(digits) < 6 and followed_by_unit(text, end)):
            continue
        for source in found:
            at = source.digits.find(digits)
            if at < 0 or (source.masked is None and len(digits) < _ECHO_MIN_LABELLED):
                continue
            if any(digits in part for part in _visible(source)):
                continue
            masked = source.masked[at : at + len(digits)] if source.masked else None
            hits.append(Hit(run.groups[0].start, end, masked, source.label, digits, run.groups))
            break
    return _apply(text, hits) if hits else text


def _visible(hit: Hit) -> list[str]:
    """The parts of a number its mask leaves visible (carrier prefix, last four)."""
    if hit.masked is None:
        return [hit.digits[-4:]]
    parts, current = [], ""
    for digit, shown in zip(hit.digits, hit.masked, strict=False):
        if shown == "*":
            parts.append(current)
            current = ""
        else:
            current += digit
    return [p for p in [*parts, current] if p]


# ---- the outputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redactor:
    """Redaction as one output is configured: `enabled` False passes text through unchanged."""

    enabled: bool = True

    def text(self, text: str | None) -> str | None:
        return redact_text(text) if self.enabled and text else text

    def utterances(self, lines: Sequence[tuple[str, str]]) -> list[str]:
        return redact_utterances(lines) if self.enabled else [text for _, text in lines]

    def with_call(self, text: str | None, lines: Sequence[tuple[str, str]]) -> str | None:
        """A text quoting the call `lines` (evidence, a CRM note), redacted with the call around it."""
        return redact_with_call(text, lines) if self.enabled else text

    def name(self, name: object) -> str:
        """A file name, path or call id as a person may read it (`redact_name`)."""
        return redact_name(str(name)) if self.enabled else str(name)

    def line(self, message: str | None) -> str | None:
        """A message that may quote a transcript and a file name (an error, a progress line)."""
        if not message:
            return message
        return redact_name(redact_text(message)) if self.enabled else message


def redactor_for(config: PrivacyConfig, output: OutputName) -> Redactor:
    return Redactor(config.redacts(output))


_installed_factory: Callable[..., logging.LogRecord] | None = None
_TRACEBACKS = logging.Formatter()


def install_log_redaction(config: PrivacyConfig) -> None:
    """Every log record of this process is redacted when it is created, its traceback included
    (whatever logger, handler or library writes it), unless `[privacy] unredacted_outputs` contains "logs". Idempotent."""
    global _installed_factory
    if not config.redacts("logs"):
        return
    current = logging.getLogRecordFactory()
    if current is _installed_factory:
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to logging's own error report
            return record
        redacted = redact_name(redact_text(message))
        if redacted != message:
            record.msg, record.args = redacted, ()
        # A traceback's text (an exception message quoting a transcript or a file name): formatters
        # use `exc_text` when it is set, so it is formatted and redacted here, once.
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_name(redact_text(_TRACEBACKS.formatException(record.exc_info)))
        if record.stack_info:
            record.stack_info = redact_name(redact_text(record.stack_info))
        return record

    _installed_factory = factory
    logging.setLogRecordFactory(factory)
