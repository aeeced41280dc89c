"""Text normalisation shared by matching and evaluation: one canonical form for Chinese text.

Traditional → simplified (OpenCC t2s), full-width → half-width (NFKC), punctuation and spaces
removed, Arabic digits read digit by digit as Chinese (ASR writes 4008 or 四零零八 for the same
words), Latin letters upper-cased.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")
_NOT_SPOKEN = re.compile(r"[^\w]|_", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", to_simplified(text))
    return _NOT_SPOKEN.sub("", text).translate(_DIGITS).upper()


def spoken_chars(text: str) -> int:
    """Characters as read aloud: Chinese characters, letters and digits (no punctuation, no spaces)."""
    return len(normalize(text))
