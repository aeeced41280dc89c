"""Personal numbers in file names, paths, call ids and log tracebacks (pipeline/privacy_names.py)."""

from __future__ import annotations

import logging
from datetime import datetime
from io import StringIO
from pathlib import Path

import pytest

from pipeline.batch import BatchSummary
from pipeline.config import PrivacyConfig
from pipeline.privacy import Redactor, install_log_redaction, redact_name
from pipeline.process import Outcome
from pipeline.reports.batch import write_batch_summary
from pipeline.reports.privacy import redacting
from pipeline.reports.render import call_page_name, page_name

NAMES = [
    # (name, as shown)
    ("13912345678_20261120-091502.wav", "139****5678_20261120-091502.wav"),
    ("/calls/1001_20261120-091502_13912345678.wav", "/calls/1001_20261120-091502_139****5678.wav"),
    ("call-139-1234-5678.wav", "call-139****5678.wav"),
    ("in_+86 139 1234 5678.mp3", "in_139****5678.mp3"),
    ("rec_010-87654321.wav", "rec_010-****4321.wav"),
    ("rec_01087654321_20261120.wav", "rec_*******4321_20261120.wav"),
    ("87654321.wav", "****4321.wav"),
    ("11010519900307123X.wav", "**************123X.wav"),
    ("6222021234567890_x.mp3", "************7890_x.mp3"),
    ("qq1090279091.wav", "qq******9091.wav"),
    # what stays: dates, times, Unix times, short ids, versions
    ("HX20261120-0001", "HX20261120-0001"),
    ("1001_20261120-091502.wav", "1001_20261120-091502.wav"),
    ("20261120091502_1001.wav", "20261120091502_1001.wav"),
    ("20261120091502123.wav", "20261120091502123.wav"),
    ("1763600000_A17.wav", "1763600000_A17.wav"),
    ("1763600000123_A17.wav", "1763600000123_A17.wav"),
    ("A03/CALL99.wav", "A03/CALL99.wav"),
    ("v1.2.3", "v1.2.3"),
    ("工号 1001 第 123456 号", "工号 1001 第 123456 号"),
]


@pytest.mark.parametrize(("name", "shown"), NAMES)
def test_names(name: str, shown: str) -> None:
    assert redact_name(name) == shown
    assert redact_name(shown) == shown  # twice changes nothing


def test_a_disabled_redactor_shows_names_as_they_are() -> None:
    assert Redactor(enabled=False).name(Path("13912345678.wav")) == "13912345678.wav"
    assert Redactor().name(Path("13912345678.wav")) == "139****5678.wav"
    assert Redactor().line(None) is None
    assert Redactor().line("打不开 /calls/13912345678.wav：我手机13812345678") == (
        "打不开 /calls/139****5678.wav：我手机138****5678"
    )


def test_a_traceback_in_the_log_names_no_caller() -> None:
    install_log_redaction(PrivacyConfig())
    out = StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("test_privacy_names")
    logger.addHandler(handler)
    try:
        try:
            open("/nonexistent/calls/rec_01087654321_20261120.wav")  # noqa: SIM115
        except OSError:
            logger.exception("cannot read %s", "/nonexistent/calls/rec_01087654321_20261120.wav")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "Traceback" in text and "FileNotFoundError" in text
    assert "87654321" not in text and text.count("_20261120.wav") == 3  # message, source line, error


def test_masked_ids_get_unique_pages_named_by_the_recording() -> None:
    a, b = "1001_20261120-091502_13912345678", "1001_20261120-091502_13987655678"  # same mask
    with redacting(Redactor()):
        names = {call_page_name(a, "a" * 64), call_page_name(b, "b" * 64)}
        assert names == {"1001_20261120-091502_139____5678-" + h * 16 + ".html" for h in "ab"}
        assert call_page_name("HX20261120-0001", "c" * 64) == page_name("HX20261120-0001")
    with redacting(Redactor(enabled=False)):
        assert call_page_name(a, "a" * 64) == page_name(a)


def test_the_batch_summary_names_no_caller(tmp_path: Path) -> None:
    summary = BatchSummary(
        [Outcome(Path("/calls/13912345678.wav"), "13912345678", "failed", "/calls/13912345678.wav：打不开")]
    )
    written = write_batch_summary(summary, Path("/calls/13912345678"), tmp_path, datetime(2026, 11, 20, 9))
    text = written.read_text(encoding="utf-8")
    assert "12345678" not in text and "| 139****5678.wav | 139****5678 | 失败 |" in text
