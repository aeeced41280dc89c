"""The one place where text read from the store is prepared for leaving it in a report.

Every free text a report shows or writes (finding evidence, event notes, abuse examples) goes
through `for_output` when it is loaded in `pipeline/reports/monthly.py`, and every call's transcript
through `transcript_for_output` (as a whole, so that a number split over two utterances is caught),
and every call id or file name through `name_for_output` (as pages and tables are written);
HTML, CSV and XLSX only ever see their results. Both redact personal data with `pipeline.privacy`
unless `[privacy] unredacted_outputs` contains "report"; `build.load_month` sets that for the
duration of a report (`report_privacy`), and without it everything is redacted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from pipeline.config import PrivacyConfig
from pipeline.privacy import Redactor, redactor_for

_REDACT_ALL = Redactor(enabled=True)  # outside report_privacy: always redact
_redactor: ContextVar[Redactor | None] = ContextVar("report_redactor", default=None)


def _current() -> Redactor:
    return _redactor.get() or _REDACT_ALL


@contextmanager
def report_privacy(config: PrivacyConfig) -> Iterator[Redactor]:
    with redacting(redactor_for(config, "report")) as redactor:
        yield redactor


@contextmanager
def redacting(redactor: Redactor) -> Iterator[Redactor]:
    """Use `redactor` for what is prepared for output inside the block (`build.write_month` writes
    the files with the redactor `load_month` read them with)."""
    token = _redactor.set(redactor)
    try:
        yield redactor
    finally:
        _redactor.reset(token)


def redacts() -> bool:
    """Whether what is prepared for output now is redacted (else texts pass through unchanged)."""
    return _current().enabled


def name_for_output(name: object) -> str:
    """A call id, file name or path as a report may show it (the caller's number masked)."""
    return _current().name(name)


def for_output(text: str | None) -> str | None:
    return _current().text(text)


def transcript_for_output(lines: Sequence[tuple[str, str]]) -> list[str]:
    """A call's utterance texts, (speaker, text) in time order, as the report may show them."""
    return _current().utterances(lines)


def evidence_for_output(text: str | None, lines: Sequence[tuple[str, str]]) -> str | None:
    """A text quoting a call (a finding's evidence, a CRM note), redacted with the call's utterances
    (speaker, text) around it."""
    return _current().with_call(text, lines)
