"""Personal numbers in file names, paths and call ids (used through `pipeline.privacy.redact_name`).

Many phone systems name a recording after the caller (13912345678_20261120-091502.wav), and the
call id is often the file name. A name is not a sentence: there is no 手机 or 编号 around the number
to say what it is, so every run of seven or more digits is masked unless it reads as a date or a
time (20261120, 20261120091502, a Unix time). A mobile number keeps its carrier prefix and last four
(139****5678, as in transcripts); any other run keeps its last four (*********1234). Digits grouped
as people write phone numbers (139-1234-5678, 010-87654321) are one run.
"""

from __future__ import annotations

import re
from datetime import datetime

_SEP = r"[-\s.]"
_MOBILE = re.compile(
    rf"(?<![0-9])(?:\+?86{_SEP}?)?(1[3-9][0-9]){_SEP}?([0-9]{{4}}){_SEP}?([0-9]{{4}})(?![0-9])"
)
_LANDLINE = re.compile(rf"(?<![0-9])(0[0-9]{{2,3}}){_SEP}([0-9]{{7,8}})(?![0-9])")
_RUN = re.compile(r"(?<![0-9])[0-9]{7,}[Xx]?(?![0-9])")
_MIN_DIGITS = 7

# Dates and times that name files: YYYYmmdd, YYYYmmddHHMM, YYYYmmddHHMMSS, with milliseconds.
_STAMPS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S", 17: "%Y%m%d%H%M%S%f"}
_STAMP_YEARS = range(1990, 2100)
_UNIX_YEARS = range(2010, 2100)  # from 1262304000: a 10-digit QQ number below it is not a time


def redact_name(name: str) -> str:
    """`name` (a file name, a path, a call id, any text holding them) with its personal-looking
    digit runs masked; dates and times stay."""
    if sum(c.isdigit() for c in name) < _MIN_DIGITS:
        return name
    name = _MOBILE.sub(lambda m: f"{m[1]}****{m[3]}", name)
    name = _LANDLINE.sub(lambda m: f"{m[1]}-{_keep_last_four(m[2])}", name)
    return _RUN.sub(lambda m: m[0] if _is_stamp(m[0]) else _keep_last_four(m[0]), name)


def _keep_last_four(digits: str) -> str:
    return "*" * (len(digits) - 4) + digits[-4:]


def _is_stamp(digits: str) -> bool:
    if not digits.isdigit():
        return False
    if (form := _STAMPS.get(len(digits))) is not None:
        try:
            return datetime.strptime(digits, form).year in _STAMP_YEARS
        except ValueError:
            return False
    if len(digits) in (10, 13):  # Unix seconds or milliseconds
        seconds = int(digits) // (1000 if len(digits) == 13 else 1)
        return datetime.fromtimestamp(seconds).year in _UNIX_YEARS and digits[0] == "1"
    return False
